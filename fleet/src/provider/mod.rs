//! One [`Provider`] per kind of gateway: how to read what it runs, and how
//! to stage, check, switch, verify and revert a config there.

pub mod cloudflare;
pub mod envoy;
pub mod files;
pub mod host;
mod http;
pub mod kong;
pub mod md5;
pub mod nginx;
pub mod reference;

use crate::file::{Gateway, ProviderConfig};
use crate::manifest::Manifest;
use gatefold_compiler::ir::ValidIr;
use std::sync::Arc;
use std::time::Duration;

/// What a gateway runs now.
#[derive(Clone, Debug)]
pub struct Running {
    /// The content hash of the running config.
    pub hash: String,
    /// The running config, for the semantic diff; `None` when the gateway
    /// cannot show it (only its hash). Shared: gateways running the same
    /// config share one copy of it.
    pub ir: Option<Arc<ValidIr>>,
    /// The manifest of the last apply, when the read that found what runs
    /// brought it along ([`Head`]): `Some(None)` when gatefold never
    /// applied there, `None` when not read (apply then asks
    /// [`Provider::manifest`]).
    pub manifest: Option<Option<Manifest>>,
}

impl Running {
    /// The manifest of the last apply there: the one read with this, else
    /// asked of `client`.
    pub fn manifest_from(&self, client: &dyn Provider) -> Result<Option<Manifest>, Error> {
        match &self.manifest {
            Some(seen) => Ok(seen.clone()),
            None => client.manifest(),
        }
    }
}

/// A cheap read of what a gateway runs ([`Provider::head`]).
#[derive(Clone, Debug)]
pub struct Head {
    /// The content hash of the running config.
    pub hash: String,
    /// The manifest of the last apply, when the same read tells it (as in
    /// [`Running::manifest`]).
    pub manifest: Option<Option<Manifest>>,
}

/// What a switch found where it switched.
#[derive(Clone, Debug, Default)]
pub struct Switched {
    /// The manifest the switch replaced, as the gateway held it when it
    /// switched (what a rollback of this apply restores): `Some(None)`
    /// when no apply had recorded one there, `None` when the switch could
    /// not tell (the manifest the plan read stands in).
    pub replaced: Option<Option<Manifest>>,
}

/// A config prepared for a gateway, not yet switched to.
#[derive(Clone, Debug)]
pub struct Staged {
    /// The config's content hash (what verify looks for).
    pub hash: String,
    /// What is sent or written: a provider's own format.
    pub body: String,
}

/// What went wrong with a gateway. Messages never hold a secret.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// It could not be reached (down, refused, timed out).
    #[error("unreachable: {0}")]
    Unreachable(String),
    /// It runs another config than the plan saw (compare-and-swap failed).
    #[error("changed since the plan: it runs {running}, the plan saw {expected}")]
    Conflict { expected: String, running: String },
    /// It (or its checker) refused the config; the old one keeps serving.
    #[error("refused the config: {0}")]
    Rejected(String),
    /// After the switch it does not serve the new config.
    #[error("verify failed: {0}")]
    Verify(String),
    /// Anything else it answered that was not expected.
    #[error("{0}")]
    Failed(String),
    /// This provider is not built yet.
    #[error("the `{0}` provider is planned, not built yet")]
    Planned(&'static str),
}

/// A gateway's side of fleet sync. Every method blocks; each gateway is
/// driven from its own thread.
pub trait Provider: Send + Sync {
    /// What the gateway runs now.
    fn running(&self) -> Result<Running, Error>;
    /// The hash of what the gateway runs (and the manifest, where the same
    /// read tells it), when it can tell it more cheaply than
    /// [`Provider::running`] (which reads the whole config); `None` when
    /// it cannot. A plan reads no config from a gateway whose hash says it
    /// is in sync, and an apply no manifest the plan has read.
    fn head(&self) -> Result<Option<Head>, Error> {
        Ok(None)
    }
    /// The manifest of the last apply there; `None` when gatefold never
    /// applied there.
    fn manifest(&self) -> Result<Option<Manifest>, Error>;
    /// Prepares `desired` in the gateway's own format.
    fn stage(&self, desired: &ValidIr) -> Result<Staged, Error>;
    /// Checks a staged config (the target's own checker where it has one).
    fn check(&self, staged: &Staged) -> Result<(), Error>;
    /// Whether [`Provider::stage`] and [`Provider::check`] depend on the
    /// config alone: not on the gateway, its files or its checker, nor
    /// leave state in the provider that the switch reads. An apply then
    /// stages and checks each config once per kind of provider and hands
    /// the result to every such gateway. `false` (the default): each
    /// gateway stages and checks its own.
    fn stages_alike(&self) -> bool {
        false
    }
    /// Switches to `staged` atomically, only when the gateway still runs
    /// `expect`, recording `manifest` with it.
    fn switch(&self, staged: &Staged, expect: &str, manifest: &Manifest)
        -> Result<Switched, Error>;
    /// `desired` as its changes from `running`, in a form the gateway
    /// takes instead of the whole config; `None` (the default) when the
    /// provider sends whole configs. An apply asks once per pair of
    /// configs and hands the result to [`Provider::switch_changes`].
    fn changes(&self, _running: &ValidIr, _desired: &ValidIr) -> Option<String> {
        None
    }
    /// [`Provider::switch`], sending `changes` (from
    /// [`Provider::changes`], made from the config `expect` names) instead
    /// of the whole config; the whole of `staged` when the gateway cannot
    /// take them.
    fn switch_changes(
        &self,
        staged: &Staged,
        _changes: &str,
        expect: &str,
        manifest: &Manifest,
    ) -> Result<Switched, Error> {
        self.switch(staged, expect, manifest)
    }
    /// Whether the gateway now serves `hash`.
    fn verify(&self, hash: &str) -> Result<(), Error>;
    /// Goes back to the config before the running one, only when the
    /// gateway still runs `expect`, recording `manifest`. Nothing to do
    /// (`Ok`) when it already runs `back_to` (the switch never took).
    fn revert(&self, expect: &str, back_to: &str, manifest: &Manifest) -> Result<(), Error>;
}

/// `verify`'s answer once a provider has read the hash its gateway serves.
pub(crate) fn serving(seen: &str, hash: &str) -> Result<(), Error> {
    if seen == hash {
        Ok(())
    } else {
        Err(Error::Verify(format!("it serves {seen}, not {hash}")))
    }
}

/// Where a `revert` stands, from the hash the gateway serves now: `true`
/// when it already serves `back_to` (nothing to do), an error when it
/// serves neither that nor `expect` (someone else changed it).
pub(crate) fn reverted_already(now: &str, expect: &str, back_to: &str) -> Result<bool, Error> {
    if now == back_to {
        return Ok(true);
    }
    if now != expect {
        return Err(Error::Conflict {
            expected: expect.to_string(),
            running: now.to_string(),
        });
    }
    Ok(false)
}

/// Settings every provider shares.
#[derive(Clone, Debug)]
pub struct Settings {
    /// How long one request to a gateway may take.
    pub timeout: Duration,
    /// Attempts for a request answered 429 or 5xx or not answered.
    pub attempts: u32,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            timeout: Duration::from_secs(30),
            attempts: 3,
        }
    }
}

/// The provider for a gateway of the fleet file. Reading a secret from the
/// environment happens here, so a missing one is reported per gateway.
pub fn for_gateway(gw: &Gateway, settings: &Settings) -> Result<Box<dyn Provider>, Error> {
    match &gw.provider {
        ProviderConfig::Reference { admin, token } => {
            let token = match token {
                Some(t) => Some(t.read().map_err(Error::Failed)?),
                None => None,
            };
            Ok(Box::new(reference::Reference::new(admin, token, settings)?))
        }
        ProviderConfig::Nginx {
            config_dir,
            ssh,
            reload,
            listen,
        } => nginx::provider(config_dir, ssh.as_ref(), reload.clone(), *listen, settings),
        ProviderConfig::Envoy {
            config_dir,
            admin,
            listen,
        } => Ok(envoy::provider(
            config_dir,
            admin.clone(),
            *listen,
            settings,
        )),
        ProviderConfig::Kong { admin, token } => {
            let token = match token {
                Some(t) => Some(t.read().map_err(Error::Failed)?),
                None => None,
            };
            Ok(Box::new(kong::Kong::new(admin, token, settings)?))
        }
        ProviderConfig::Cloudflare {
            account,
            token,
            script,
            api,
        } => {
            let account = account.read().map_err(Error::Failed)?;
            let token = token.read().map_err(Error::Failed)?;
            Ok(Box::new(cloudflare::Cloudflare::new(
                api, &account, token, script, settings,
            )?))
        }
    }
}
