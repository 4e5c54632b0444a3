//! Where `{ env: NAME }` secrets are read when a config is loaded.
//!
//! Fail closed: a secret whose variable is unset or empty makes the whole
//! config refuse to load (at start-up the gateway does not start; on a push or
//! a `--watch` reload the old config keeps serving), with the variable named.

use std::collections::HashMap;

/// Looks up secret values by variable name.
pub trait SecretSource: Send + Sync + 'static {
    fn get(&self, name: &str) -> Option<String>;
}

/// The process environment (what `gatefold serve` uses).
#[derive(Debug, Default, Clone, Copy)]
pub struct EnvSecrets;

impl SecretSource for EnvSecrets {
    fn get(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

/// A fixed map (tests, embedding).
#[derive(Debug, Default, Clone)]
pub struct MapSecrets(pub HashMap<String, String>);

impl MapSecrets {
    pub fn new<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> MapSecrets {
        MapSecrets(
            pairs
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }
}

impl SecretSource for MapSecrets {
    fn get(&self, name: &str) -> Option<String> {
        self.0.get(name).cloned()
    }
}

/// Resolves one secret, or says which variable is missing.
pub fn resolve(
    source: &dyn SecretSource,
    secret: &gatefold_compiler::ir::Secret,
) -> Result<String, String> {
    let gatefold_compiler::ir::Secret::Env(name) = secret;
    match source.get(name) {
        Some(v) if !v.is_empty() => Ok(v),
        Some(_) => Err(format!("the secret variable `{name}` is empty")),
        None => Err(format!("the secret variable `{name}` is not set")),
    }
}
