//! `gatefold plan`: per gateway, the config the fleet wants there and the
//! semantic difference from what it runs.

use crate::file::Fleet;
use crate::parallel::{each, once, Cells};
use crate::provider::{self, Provider, Running, Settings};
use gatefold_compiler::diag::{Diagnostic, Diagnostics};
use gatefold_compiler::ir::diff::{self, Change};
use gatefold_compiler::ir::ValidIr;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// How many gateways are read (or changed) at once.
pub const PARALLEL: usize = 16;

/// One gateway's part of a plan.
pub struct GatewayPlan {
    pub name: String,
    /// The provider kind (`reference`, `nginx`, ...).
    pub provider: &'static str,
    /// What the fleet wants it to run (shared by the gateways with the
    /// same `deploy` selection).
    pub desired: Arc<ValidIr>,
    /// Its client; `Err` when it cannot be made (a planned provider, a
    /// missing token).
    pub client: Result<Box<dyn Provider>, provider::Error>,
    /// What it runs now, or why that is unknown.
    pub running: Result<Running, provider::Error>,
    /// What applying changes there, routes to consumers (empty: in sync).
    pub changes: Vec<Change>,
}

/// Where a gateway stands, for reports.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum State {
    InSync,
    Changes,
    Unknown,
}

impl GatewayPlan {
    pub fn state(&self) -> State {
        match &self.running {
            Err(_) => State::Unknown,
            Ok(r) if r.hash == self.desired.hash.as_str() => State::InSync,
            Ok(_) => State::Changes,
        }
    }

    /// A JSON report of this gateway's plan.
    pub fn to_json(&self) -> serde_json::Value {
        let mut v = serde_json::json!({
            "gateway": self.name,
            "provider": self.provider,
            "state": self.state(),
            "desired-hash": self.desired.hash,
            "changes": self.changes,
        });
        match &self.running {
            Ok(r) => v["running-hash"] = r.hash.clone().into(),
            Err(e) => v["error"] = e.to_string().into(),
        }
        v
    }
}

/// A fleet's plan: one entry per gateway, in wave order.
pub struct Plan {
    pub gateways: Vec<GatewayPlan>,
}

impl Plan {
    pub fn pending(&self) -> bool {
        self.gateways.iter().any(|g| g.state() != State::InSync)
    }

    pub fn get(&self, name: &str) -> Option<&GatewayPlan> {
        self.gateways.iter().find(|g| g.name == name)
    }

    /// The plan as text: per gateway, in sync or its semantic diff.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for g in &self.gateways {
            match (&g.running, g.state()) {
                (Err(e), _) => {
                    out.push_str(&format!("{} ({}): cannot tell: {e}\n", g.name, g.provider))
                }
                (Ok(_), State::InSync) => out.push_str(&format!(
                    "{} ({}): in sync ({})\n",
                    g.name,
                    g.provider,
                    g.desired.hash.short()
                )),
                (Ok(r), _) => {
                    out.push_str(&format!(
                        "{} ({}): {} -> {}\n",
                        g.name,
                        g.provider,
                        short(&r.hash),
                        g.desired.hash.short()
                    ));
                    if r.ir.is_some() {
                        for line in diff::render(&g.changes).lines() {
                            out.push_str("  ");
                            out.push_str(line);
                            out.push('\n');
                        }
                    } else {
                        out.push_str("  (the gateway shows only its hash: no route-level diff)\n");
                    }
                }
            }
        }
        let n = self.count(State::Changes);
        out.push_str(&format!(
            "{} gateway(s): {n} to change, {} in sync, {} unknown\n",
            self.gateways.len(),
            self.count(State::InSync),
            self.count(State::Unknown)
        ));
        out
    }

    pub fn count(&self, s: State) -> usize {
        self.gateways.iter().filter(|g| g.state() == s).count()
    }
}

/// The short form of a hash, as `ContentHash::short` writes it.
pub fn short(hash: &str) -> &str {
    let hex = hash.strip_prefix("sha256:").unwrap_or(hash);
    &hex[..hex.len().min(12)]
}

/// The compiled spec, or the diagnostics (fleet file and spec) that stop it.
pub struct Desired {
    /// Per gateway, in wave order: its name and config. Gateways with the
    /// same `deploy` selection share one config.
    pub configs: Vec<(String, Arc<ValidIr>)>,
}

/// Compiles the fleet's spec and cuts it per gateway (`deploy`). Errors are
/// rendered text (spec diagnostics with excerpts, or the fleet file's).
pub fn desired(fleet: &Fleet) -> Result<Desired, String> {
    let compiled = gatefold_compiler::compile_path(&fleet.spec);
    let Some(ir) = compiled.ir else {
        return Err(compiled.render());
    };
    let known = ir.api_names();
    let mut diags = Diagnostics::new();
    for d in &fleet.deploy {
        for (api, span) in &d.apis {
            if !known.contains(api) {
                let names: Vec<&str> = known.iter().map(String::as_str).collect();
                diags.push(
                    Diagnostic::error(
                        "unknown-api",
                        *span,
                        format!("`deploy` names api `{api}`, which the spec does not define"),
                    )
                    .with_help(gatefold_compiler::front::decode::did_you_mean(api, &names)),
                );
            }
        }
    }
    if diags.has_errors() {
        return Err(render_fleet(fleet, &diags));
    }
    // One config per distinct selection, not per gateway: cutting (and
    // later staging and hashing) a large spec 50 times was most of what a
    // fleet apply spent beyond a single-gateway one.
    let whole = Arc::new(ir);
    let mut cuts: BTreeMap<BTreeSet<String>, Arc<ValidIr>> = BTreeMap::new();
    let mut configs = Vec::new();
    for name in fleet.waves.iter().flatten() {
        let gw = &fleet.gateways[name];
        let config = match fleet.apis_for(gw) {
            None => whole.clone(),
            Some(apis) => match cuts.get(&apis) {
                Some(c) => c.clone(),
                None => {
                    let cut = Arc::new(whole.select_apis(&apis).map_err(|e| {
                        format!(
                            "error: the part of the spec for gateway `{name}` is not a valid config: {e}\n"
                        )
                    })?);
                    cuts.insert(apis, cut.clone());
                    cut
                }
            },
        };
        configs.push((name.clone(), config));
    }
    Ok(Desired { configs })
}

fn render_fleet(fleet: &Fleet, diags: &Diagnostics) -> String {
    // The fleet file is re-read for its excerpts: it was read moments ago.
    let mut sources = gatefold_compiler::source::Sources::new();
    let text = std::fs::read_to_string(&fleet.path).unwrap_or_default();
    sources.add(gatefold_compiler::source::SourceFile::new(
        fleet.path.display().to_string(),
        text,
    ));
    diags.render(&sources)
}

/// Asks every gateway what it runs (in parallel) and diffs it against
/// what the fleet wants there.
pub fn plan(fleet: &Fleet, desired: Desired, settings: &Settings) -> Plan {
    let seen = Seen::default();
    let gateways = each(desired.configs, PARALLEL, |(name, config)| {
        let gw = &fleet.gateways[&name];
        let client = provider::for_gateway(gw, settings);
        let running = match &client {
            Ok(c) => read(c.as_ref(), &config, &seen),
            Err(e) => Err(clone_err(e)),
        };
        let changes = match &running {
            Ok(Running { ir: Some(old), .. }) => {
                let key = (old.hash.to_string(), config.hash.to_string());
                once(&seen.diffs, key)
                    .get_or_init(|| diff::diff(old, &config))
                    .clone()
            }
            _ => Vec::new(),
        };
        GatewayPlan {
            name,
            provider: gw.provider.kind(),
            desired: config,
            client,
            running,
            changes,
        }
    });
    Plan { gateways }
}

/// What a gateway runs: only its hash when that shows it in sync (no
/// diff to show, and reading and parsing a large config from each of many
/// gateways is what a no-change plan would spend its time on), else the
/// whole config for the semantic diff. The manifest comes along where the
/// hash's read tells it.
/// Many gateways of a fleet run the same config: it is read and parsed
/// from the first of them, and diffed once.
fn read(client: &dyn Provider, desired: &ValidIr, seen: &Seen) -> Result<Running, provider::Error> {
    let Some(head) = client.head()? else {
        return client.running();
    };
    if head.hash == desired.hash.as_str() {
        return Ok(Running {
            hash: head.hash,
            ir: None,
            manifest: head.manifest,
        });
    }
    let mut mine = None;
    let cell = once(&seen.configs, head.hash.clone());
    let cached = cell.get_or_init(|| {
        let read = client.running();
        let ir = match &read {
            Ok(Running {
                hash: h,
                ir: Some(ir),
                ..
            }) if *h == head.hash => Some(ir.clone()),
            _ => None,
        };
        mine = Some(read);
        ir
    });
    let running = match (mine, cached) {
        (Some(read), _) => read?,
        (None, Some(ir)) => Running {
            hash: head.hash.clone(),
            ir: Some(ir.clone()),
            manifest: None,
        },
        // The first reader of this hash found something else: read again.
        (None, None) => client.running()?,
    };
    // The manifest belongs to the config the head named: kept only when
    // the config read is that one (a change in between: apply reads it).
    let manifest = if running.hash == head.hash {
        head.manifest
    } else {
        None
    };
    Ok(Running {
        manifest,
        ..running
    })
}

/// What one plan has read and computed, by content hash: a running config
/// (by its hash), a diff (by the running and desired hashes).
#[derive(Default)]
struct Seen {
    configs: Cells<String, Option<Arc<ValidIr>>>,
    diffs: Cells<(String, String), Vec<Change>>,
}

/// A copy of a provider error for a second place (the plan keeps both
/// "no client" and "cannot read").
pub fn clone_err(e: &provider::Error) -> provider::Error {
    use provider::Error as E;
    match e {
        E::Unreachable(m) => E::Unreachable(m.clone()),
        E::Conflict { expected, running } => E::Conflict {
            expected: expected.clone(),
            running: running.clone(),
        },
        E::Rejected(m) => E::Rejected(m.clone()),
        E::Verify(m) => E::Verify(m.clone()),
        E::Failed(m) => E::Failed(m.clone()),
        E::Planned(p) => E::Planned(p),
    }
}

/// The names of the gateways in `plan` whose config would change.
pub fn changing(plan: &Plan) -> BTreeSet<String> {
    plan.gateways
        .iter()
        .filter(|g| g.state() == State::Changes)
        .map(|g| g.name.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{Action, Manifest};
    use crate::provider::{Error, Head, Staged, Switched};

    /// A gateway whose status names `head` and whose config read finds
    /// `config` (another hash when it changed between the two reads).
    struct Gateway {
        head: Head,
        config: &'static str,
    }

    impl Provider for Gateway {
        fn running(&self) -> Result<Running, Error> {
            Ok(Running {
                hash: self.config.into(),
                ir: None,
                manifest: None,
            })
        }
        fn head(&self) -> Result<Option<Head>, Error> {
            Ok(Some(self.head.clone()))
        }
        fn manifest(&self) -> Result<Option<Manifest>, Error> {
            unreachable!("the plan reads no manifest of its own")
        }
        fn stage(&self, _: &ValidIr) -> Result<Staged, Error> {
            unreachable!()
        }
        fn check(&self, _: &Staged) -> Result<(), Error> {
            unreachable!()
        }
        fn switch(&self, _: &Staged, _: &str, _: &Manifest) -> Result<Switched, Error> {
            unreachable!()
        }
        fn verify(&self, _: &str) -> Result<(), Error> {
            unreachable!()
        }
        fn revert(&self, _: &str, _: &str, _: &Manifest) -> Result<(), Error> {
            unreachable!()
        }
    }

    #[test]
    fn the_manifest_read_with_the_hash_stays_only_with_that_config() {
        let desired = gatefold_compiler::compile_str(
            "s.yaml",
            "gatefold: 1\napis:\n  a:\n    routes:\n      r: { path: /, policies: [ { mock: { status: 204 } } ] }\n",
        )
        .ir
        .expect("compiles");
        let m = Manifest::new("sha256:old", None, None, Action::Apply);
        let head = |hash: &str| Head {
            hash: hash.into(),
            manifest: Some(Some(m.clone())),
        };
        // In sync: the status alone, manifest and all.
        let synced = Gateway {
            head: head(desired.hash.as_str()),
            config: "unread",
        };
        let r = read(&synced, &desired, &Seen::default()).unwrap();
        assert_eq!(r.manifest, Some(Some(m.clone())));
        // Behind: the config read is the one the status named.
        let behind = Gateway {
            head: head("sha256:old"),
            config: "sha256:old",
        };
        let r = read(&behind, &desired, &Seen::default()).unwrap();
        assert_eq!(
            (r.hash.as_str(), r.manifest),
            ("sha256:old", Some(Some(m.clone())))
        );
        // Changed between the two reads: the manifest was another config's,
        // so apply is left to read it.
        let moved = Gateway {
            head: head("sha256:old"),
            config: "sha256:newer",
        };
        let r = read(&moved, &desired, &Seen::default()).unwrap();
        assert_eq!((r.hash.as_str(), r.manifest), ("sha256:newer", None));
    }
}
