//! `jwt`: `authorization: Bearer <token>`, verified (HS256, RS256, ES256).
//! `exp`/`nbf` are checked against the gateway's clock with `leeway`, `iss`
//! and `aud` when configured. The token is forwarded unchanged; configured
//! claims are copied into request headers (client-sent copies always removed).

use super::auth::{Authenticator, Consumers, Verdict};
use crate::gateway::clock::Clock;
use crate::gateway::context::Ctx;
use crate::gateway::phases::UpstreamRequest;
use crate::gateway::secrets::{self, SecretSource};
use gatefold_compiler::ir::policy::{Jwt, JwtAlgorithm, JwtKey, PublicKey};
use http::header::AUTHORIZATION;
use http::{request, HeaderName, HeaderValue};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};
use std::sync::Arc;

pub struct JwtMethod {
    key: DecodingKey,
    validation: Validation,
    issuer: Option<String>,
    audiences: Vec<String>,
    consumer_claim: String,
    claims_to_headers: Vec<(String, HeaderName)>,
    leeway_secs: f64,
    clock: Arc<dyn Clock>,
    consumers: Arc<Consumers>,
}

impl JwtMethod {
    pub fn new(
        cfg: &Jwt,
        secrets_src: &dyn SecretSource,
        clock: Arc<dyn Clock>,
        consumers: Arc<Consumers>,
    ) -> Result<JwtMethod, String> {
        let alg = match cfg.key.algorithm() {
            JwtAlgorithm::HS256 => Algorithm::HS256,
            JwtAlgorithm::RS256 => Algorithm::RS256,
            JwtAlgorithm::ES256 => Algorithm::ES256,
        };
        let pem = |text: &str| -> Result<DecodingKey, String> {
            match alg {
                Algorithm::RS256 => DecodingKey::from_rsa_pem(text.as_bytes()),
                _ => DecodingKey::from_ec_pem(text.as_bytes()),
            }
            .map_err(|e| format!("jwt: the public key is not a usable {alg:?} PEM key: {e}"))
        };
        let key = match &cfg.key {
            JwtKey::Hs256 { secret } => {
                DecodingKey::from_secret(secrets::resolve(secrets_src, secret)?.as_bytes())
            }
            JwtKey::Rs256(public) | JwtKey::Es256(public) => match public {
                PublicKey::File { pem: text, .. } => pem(text)?,
                PublicKey::Env(name) => {
                    let text = secrets::resolve(
                        secrets_src,
                        &gatefold_compiler::ir::Secret::Env(name.clone()),
                    )?;
                    pem(&text)?
                }
            },
        };
        let mut validation = Validation::new(alg);
        // Time and audience are checked below, against the injected clock
        // and with the spec's exact rules.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        validation.leeway = 0;
        let claims_to_headers = cfg
            .claims_to_headers
            .iter()
            .map(|(claim, h)| {
                HeaderName::from_bytes(h.as_str().as_bytes())
                    .map(|h| (claim.clone(), h))
                    .map_err(|_| format!("jwt: `{h}` is not a header name"))
            })
            .collect::<Result<_, _>>()?;
        Ok(JwtMethod {
            key,
            validation,
            issuer: cfg.issuer.clone(),
            audiences: cfg.audiences.iter().cloned().collect(),
            consumer_claim: cfg.consumer_claim.clone(),
            claims_to_headers,
            leeway_secs: cfg.leeway.millis as f64 / 1000.0,
            clock,
            consumers,
        })
    }

    fn verify(&self, token: &str) -> Option<Map<String, Value>> {
        let data =
            jsonwebtoken::decode::<Map<String, Value>>(token, &self.key, &self.validation).ok()?;
        let claims = data.claims;
        let now = self.clock.now().as_secs_f64();
        let num = |k: &str| claims.get(k).map(|v| v.as_f64());
        match num("exp") {
            Some(None) => return None,
            Some(Some(exp)) if now >= exp + self.leeway_secs => return None,
            _ => {}
        }
        match num("nbf") {
            Some(None) => return None,
            Some(Some(nbf)) if now + self.leeway_secs < nbf => return None,
            _ => {}
        }
        if let Some(iss) = &self.issuer {
            if claims.get("iss").and_then(Value::as_str) != Some(iss.as_str()) {
                return None;
            }
        }
        if !self.audiences.is_empty() {
            let ok = match claims.get("aud") {
                Some(Value::String(a)) => self.audiences.contains(a),
                Some(Value::Array(list)) => list
                    .iter()
                    .filter_map(Value::as_str)
                    .any(|a| self.audiences.iter().any(|x| x == a)),
                _ => false,
            };
            if !ok {
                return None;
            }
        }
        Some(claims)
    }
}

fn bearer(req: &request::Parts) -> Option<&str> {
    let v = req.headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
}

impl Authenticator for JwtMethod {
    fn authenticate(&self, req: &request::Parts, ctx: &mut Ctx) -> Verdict {
        let Some(claims) = bearer(req).and_then(|t| self.verify(t)) else {
            return Verdict::Refuse;
        };
        for (claim, header) in &self.claims_to_headers {
            let value = match claims.get(claim) {
                None => continue,
                Some(Value::String(s)) => s.clone(),
                Some(other) => other.to_string(),
            };
            if let Ok(v) = HeaderValue::from_str(&value) {
                ctx.auth_headers.push((header.clone(), v));
            }
        }
        let consumer = claims
            .get(&self.consumer_claim)
            .and_then(Value::as_str)
            .and_then(|name| self.consumers.by_name.get(name))
            .cloned();
        Verdict::Admit(consumer)
    }

    fn settle(&self, req: &mut request::Parts, _ctx: &mut Ctx) {
        // Client-sent copies never pass, whichever method admitted.
        for (_, header) in &self.claims_to_headers {
            req.headers.remove(header);
        }
    }

    /// The claims headers were settled at phase 4; the token goes on as is.
    fn upstream_request(&self, _up: &mut UpstreamRequest, _ctx: &Ctx, _admitted: bool) {}
}
