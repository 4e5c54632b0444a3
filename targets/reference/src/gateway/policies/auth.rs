//! Authentication (phase 4): `key-auth`, `basic-auth` and `jwt` share the
//! phase. They are tried in that order; the first that passes admits the
//! request and decides its consumer; if none passes, 401 (with
//! `www-authenticate` when `basic-auth` is in the chain). Each method removes
//! the credential it read before the request goes upstream (a JSON Web Token
//! is forwarded unchanged).

use crate::gateway::context::{ConsumerRt, Ctx};
use crate::gateway::phases::{Flow, PhaseHooks, UpstreamRequest};
use crate::gateway::respond;
use http::header::WWW_AUTHENTICATE;
use http::{request, HeaderValue};
use std::collections::HashMap;
use std::hash::{Hash, Hasher, RandomState};
use std::sync::Arc;

/// What one authentication method says about a request.
pub enum Verdict {
    /// Passed, with the consumer it identified (a JWT may name none).
    Admit(Option<Arc<ConsumerRt>>),
    Refuse,
}

/// One authentication method.
pub trait Authenticator: Send + Sync {
    fn authenticate(&self, req: &request::Parts, ctx: &mut Ctx) -> Verdict;
    /// Right after phase 4 admitted the request (by any method): remove
    /// what this method owns from the request every later phase sees (the
    /// client's copies of the headers a jwt writes, a query credential).
    fn settle(&self, _req: &mut request::Parts, _ctx: &mut Ctx) {}
    /// Phase 10: remove the credential this method read; `admitted` says
    /// whether this method is the one that passed.
    fn upstream_request(&self, up: &mut UpstreamRequest, ctx: &Ctx, admitted: bool);
}

/// The consumers of a config, indexed for each credential type.
#[derive(Default)]
pub struct Consumers {
    pub by_name: HashMap<String, Arc<ConsumerRt>>,
    /// Looked up with every request's key, as a [`GuessedKey`]. Hashed with
    /// SipHash under keys drawn at random per process (std's `RandomState`),
    /// so where a key lands tells a client nothing, and candidates compared
    /// in constant time, so how long a lookup takes says nothing about how
    /// much of a guessed key matches a stored one.
    pub by_key: hashbrown::HashMap<String, Arc<ConsumerRt>, RandomState>,
    /// user -> (SHA-256 of the password, consumer); see
    /// [`super::basic_auth`] for why digests.
    pub by_user: HashMap<String, (PasswordDigest, Arc<ConsumerRt>)>,
}

/// The phase-4 policy: every authentication method of a route's chain.
pub struct Authentication {
    methods: Vec<Box<dyn Authenticator>>,
    challenge: Option<HeaderValue>,
}

impl Authentication {
    pub fn new(methods: Vec<Box<dyn Authenticator>>, basic_realm: Option<&str>) -> Authentication {
        Authentication {
            methods,
            challenge: basic_realm
                .and_then(|r| HeaderValue::from_str(&format!("Basic realm=\"{r}\"")).ok()),
        }
    }
}

impl PhaseHooks for Authentication {
    fn request_filter(&self, req: &request::Parts, ctx: &mut Ctx) -> Flow {
        for (i, m) in self.methods.iter().enumerate() {
            if let Verdict::Admit(consumer) = m.authenticate(req, ctx) {
                ctx.consumer = consumer;
                ctx.authenticated_by = Some(i);
                return Flow::Continue;
            }
        }
        let mut resp = respond::unauthorized();
        if let Some(c) = &self.challenge {
            resp.headers_mut().insert(WWW_AUTHENTICATE, c.clone());
        }
        Flow::Stop(resp)
    }

    fn settle_request(&self, req: &mut request::Parts, ctx: &mut Ctx) {
        for m in &self.methods {
            m.settle(req, ctx);
        }
        // Then what the admitting method wrote: the request as later phases
        // (rate-limit keys, cache keys, balancing) and the upstream see it.
        for (h, v) in std::mem::take(&mut ctx.auth_headers) {
            req.headers.append(h, v);
        }
    }

    fn upstream_request(&self, up: &mut UpstreamRequest, ctx: &Ctx) {
        for (i, m) in self.methods.iter().enumerate() {
            m.upstream_request(up, ctx, ctx.authenticated_by == Some(i));
        }
    }
}

/// A key as a client sent it, to look up in [`Consumers::by_key`]: hashed
/// as the stored `String`s are, compared with [`constant_time_eq`] (`==`
/// on strings stops at the first byte that differs).
pub struct GuessedKey<'a>(pub &'a str);

impl Hash for GuessedKey<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.hash(state)
    }
}

impl hashbrown::Equivalent<String> for GuessedKey<'_> {
    fn equivalent(&self, stored: &String) -> bool {
        constant_time_eq(self.0.as_bytes(), stored.as_bytes())
    }
}

/// Compares secrets without stopping at the first difference (a length
/// that differs still returns at once).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    // `black_box` keeps the optimizer from turning the fold into a loop
    // that exits once the accumulator is nonzero.
    a.iter()
        .zip(b)
        .fold(0u8, |acc, (x, y)| std::hint::black_box(acc | (x ^ y)))
        == 0
}

/// A basic-auth password as it is stored and compared: its SHA-256. Every
/// digest has the same length, so the comparison's time does not depend on
/// the stored password's length, and a user who does not exist gets the
/// same comparison, against a stand-in digest.
// No `Debug`: a digest is not printed anywhere.
#[derive(Clone, Copy)]
pub struct PasswordDigest([u8; 32]);

impl PasswordDigest {
    /// What an unknown user's password is compared with: all zeros, which
    /// no known input hashes to.
    pub const STAND_IN: PasswordDigest = PasswordDigest([0; 32]);

    pub fn of(password: &str) -> PasswordDigest {
        use sha2::Digest;
        PasswordDigest(sha2::Sha256::digest(password.as_bytes()).into())
    }

    /// Whether two digests are equal, in constant time.
    pub fn matches(&self, other: &PasswordDigest) -> bool {
        constant_time_eq(&self.0, &other.0)
    }
}

/// Indexes the consumers of a config by credential, reading every secret.
/// Fails (naming each variable) when a secret is unset or empty, or when two
/// consumers turn out to share a key.
pub fn build_consumers(
    ir: &gatefold_compiler::ir::Ir,
    secrets_src: &dyn crate::gateway::secrets::SecretSource,
) -> Result<Consumers, Vec<String>> {
    use crate::gateway::secrets::resolve;
    let mut c = Consumers::default();
    let mut errors = Vec::new();
    for (name, def) in &ir.consumers {
        let rt = Arc::new(ConsumerRt {
            name: name.as_str().into(),
            groups: def.groups.iter().map(|g| g.to_string()).collect(),
        });
        c.by_name.insert(name.to_string(), rt.clone());
        for k in &def.keys {
            match resolve(secrets_src, k) {
                Ok(v) => match c.by_key.get(&v) {
                    Some(other) if other.name != rt.name => errors.push(format!(
                        "consumers `{}` and `{name}` have the same key value; keys must identify one consumer",
                        other.name
                    )),
                    _ => {
                        c.by_key.insert(v, rt.clone());
                    }
                },
                Err(e) => errors.push(format!("consumer `{name}`: {e}")),
            }
        }
        if let Some(b) = &def.basic {
            match resolve(secrets_src, &b.password) {
                Ok(p) => {
                    c.by_user
                        .insert(b.user.clone(), (PasswordDigest::of(&p), rt.clone()));
                }
                Err(e) => errors.push(format!("consumer `{name}`: {e}")),
            }
        }
    }
    if errors.is_empty() {
        Ok(c)
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_digests_match_only_the_same_password() {
        let stored = PasswordDigest::of("s3cret:pw");
        assert!(stored.matches(&PasswordDigest::of("s3cret:pw")));
        for other in ["s3cret", "s3cret:pw ", "S3cret:pw", ""] {
            assert!(!stored.matches(&PasswordDigest::of(other)), "{other:?}");
        }
        // The stand-in an unknown user's password is compared with admits
        // nothing, the empty password included.
        for pw in ["", "s3cret:pw", "\0"] {
            assert!(!PasswordDigest::STAND_IN.matches(&PasswordDigest::of(pw)));
        }
    }

    #[test]
    fn constant_time_eq_is_equality() {
        assert!(constant_time_eq(b"", b""));
        assert!(constant_time_eq(b"bob-key", b"bob-key"));
        for other in [&b"Bob-key"[..], b"bob-kez", b"bob-ke", b"bob-key2", b""] {
            assert!(!constant_time_eq(b"bob-key", other), "{other:?}");
        }
    }

    #[test]
    fn a_guessed_key_finds_exactly_its_stored_key() {
        let mut t: hashbrown::HashMap<String, u8, RandomState> = Default::default();
        t.insert("alice-key".into(), 1);
        t.insert("bob-key".into(), 2);
        assert_eq!(t.get(&GuessedKey("alice-key")), Some(&1));
        assert_eq!(t.get(&GuessedKey("bob-key")), Some(&2));
        assert_eq!(t.get(&GuessedKey("bob-kez")), None);
        assert_eq!(t.get(&GuessedKey("")), None);
    }
}
