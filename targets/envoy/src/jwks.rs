//! A PEM public key (SubjectPublicKeyInfo) as a JWKS, which is what
//! `jwt_authn` reads: RSA keys as `n`/`e`, P-256 keys as `x`/`y`, each with
//! the one algorithm the spec allows, so Envoy itself refuses other `alg`s.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use gatefold_compiler::ir::policy::JwtAlgorithm;
use serde_json::json;

/// One DER element: (tag, contents, rest).
fn element(der: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = der.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (first as usize, rest)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n].iter().fold(0usize, |a, b| (a << 8) | *b as usize);
        (len, &rest[n..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

/// An unsigned big-endian integer without leading zero bytes.
fn unsigned(int: &[u8]) -> &[u8] {
    let start = int
        .iter()
        .position(|b| *b != 0)
        .unwrap_or(int.len().saturating_sub(1));
    &int[start..]
}

/// The JWKS for `pem`, or `None` when it is not a public key of the kind
/// `alg` needs (the front end has checked it already).
pub fn from_pem(pem: &str, alg: JwtAlgorithm) -> Option<String> {
    let body: String = pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .map(str::trim)
        .collect();
    let der = STANDARD.decode(body).ok()?;
    let (0x30, spki, _) = element(&der)? else {
        return None;
    };
    let (0x30, _algorithm, rest) = element(spki)? else {
        return None;
    };
    let (0x03, bits, _) = element(rest)? else {
        return None;
    };
    let key = bits.strip_prefix(&[0])?;
    let b64 = |b: &[u8]| URL_SAFE_NO_PAD.encode(b);
    let jwk = match alg {
        JwtAlgorithm::RS256 => {
            let (0x30, seq, _) = element(key)? else {
                return None;
            };
            let (0x02, n, rest) = element(seq)? else {
                return None;
            };
            let (0x02, e, _) = element(rest)? else {
                return None;
            };
            json!({ "kty": "RSA", "alg": "RS256", "n": b64(unsigned(n)), "e": b64(unsigned(e)) })
        }
        JwtAlgorithm::ES256 => {
            let point = key.strip_prefix(&[4])?;
            if point.len() != 64 {
                return None;
            }
            json!({ "kty": "EC", "alg": "ES256", "crv": "P-256", "x": b64(&point[..32]), "y": b64(&point[32..]) })
        }
        JwtAlgorithm::HS256 => return None,
    };
    Some(json!({ "keys": [jwk] }).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rsa_and_ec_keys_become_jwks() {
        let rsa = include_str!("../../reference/tests/keys/rs256-public.pem");
        let jwks: serde_json::Value =
            serde_json::from_str(&from_pem(rsa, JwtAlgorithm::RS256).unwrap()).unwrap();
        assert_eq!(jwks["keys"][0]["e"], "AQAB");
        assert_eq!(jwks["keys"][0]["kty"], "RSA");
        let ec = include_str!("../../reference/tests/keys/es256-public.pem");
        let jwks: serde_json::Value =
            serde_json::from_str(&from_pem(ec, JwtAlgorithm::ES256).unwrap()).unwrap();
        assert_eq!(jwks["keys"][0]["x"].as_str().unwrap().len(), 43);
        assert!(from_pem(rsa, JwtAlgorithm::ES256).is_none());
    }
}
