//! A public key as a JWKS, which is what `jwt_authn` reads: the JWK members
//! the compiler read from the spec's PEM file (RSA `n`/`e`, P-256 `x`/`y`),
//! each with the one algorithm the spec allows, so Envoy itself refuses
//! other `alg`s.

use gatefold_compiler::ir::policy::{Jwk, JwtAlgorithm};
use serde_json::json;

/// The JWKS of one key for `alg`.
pub fn from_jwk(jwk: &Jwk, alg: JwtAlgorithm) -> String {
    let key = match jwk {
        Jwk::Rsa { n, e } => json!({ "kty": "RSA", "alg": format!("{alg:?}"), "n": n, "e": e }),
        Jwk::Ec { x, y } => {
            json!({ "kty": "EC", "alg": format!("{alg:?}"), "crv": "P-256", "x": x, "y": y })
        }
    };
    json!({ "keys": [key] }).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rsa_and_ec_keys_become_jwks() {
        let rsa = Jwk::Rsa {
            n: "sXch".into(),
            e: "AQAB".into(),
        };
        let jwks: serde_json::Value =
            serde_json::from_str(&from_jwk(&rsa, JwtAlgorithm::RS256)).unwrap();
        assert_eq!(jwks["keys"][0]["e"], "AQAB");
        assert_eq!(jwks["keys"][0]["kty"], "RSA");
        assert_eq!(jwks["keys"][0]["alg"], "RS256");
        let ec = Jwk::Ec {
            x: "f83O".into(),
            y: "x_FE".into(),
        };
        let jwks: serde_json::Value =
            serde_json::from_str(&from_jwk(&ec, JwtAlgorithm::ES256)).unwrap();
        assert_eq!(jwks["keys"][0]["crv"], "P-256");
        assert_eq!(jwks["keys"][0]["alg"], "ES256");
        assert_eq!(jwks["keys"][0]["y"], "x_FE");
    }
}
