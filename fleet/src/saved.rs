//! A saved plan: `gatefold plan --out FILE` writes, per gateway, the hash
//! the fleet wants there and the hash it ran when planned;
//! `gatefold apply --plan FILE` applies only when a plan made now (under
//! the fleet lock) finds exactly that. A gateway changed since the saved
//! plan, or a spec or fleet file that now wants something else, refuses
//! the whole apply before anything is touched: what a reviewer approved is
//! what is applied, or nothing is. Each switch is still a compare-and-swap
//! against the hash read under the lock.

use crate::plan::{short, Plan};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The format of saved plan files this gatefold reads and writes.
pub const FORMAT: u32 = 1;

/// A plan as saved for a later apply.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedPlan {
    /// Always [`FORMAT`].
    pub format: u32,
    /// In wave order.
    pub gateways: Vec<SavedGateway>,
}

/// One gateway of a saved plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct SavedGateway {
    pub gateway: String,
    /// The content hash the fleet wanted there.
    pub desired_hash: String,
    /// The content hash it ran; `None` when it could not be read.
    pub running_hash: Option<String>,
}

impl SavedPlan {
    /// What `plan` saw, to save.
    pub fn of(plan: &Plan) -> SavedPlan {
        SavedPlan {
            format: FORMAT,
            gateways: plan
                .gateways
                .iter()
                .map(|g| SavedGateway {
                    gateway: g.name.clone(),
                    desired_hash: g.desired.hash.to_string(),
                    running_hash: g.running.as_ref().ok().map(|r| r.hash.clone()),
                })
                .collect(),
        }
    }

    /// The file's text: pretty JSON, for review and version control.
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("a saved plan serializes");
        s.push('\n');
        s
    }

    /// Reads a saved plan, or says why the text is not one.
    pub fn from_json(text: &str) -> Result<SavedPlan, String> {
        let saved: SavedPlan = serde_json::from_str(text)
            .map_err(|e| format!("not a saved plan (`gatefold plan --out`): {e}"))?;
        if saved.format != FORMAT {
            return Err(format!(
                "saved plan format {} is not supported (this gatefold reads format {FORMAT}); plan again",
                saved.format
            ));
        }
        Ok(saved)
    }

    /// How `now` (a plan made just now) differs from the saved one, one
    /// line per difference; empty when applying `now` applies what was
    /// saved.
    pub fn differences(&self, now: &Plan) -> Vec<String> {
        let saved: BTreeMap<&str, &SavedGateway> = self
            .gateways
            .iter()
            .map(|g| (g.gateway.as_str(), g))
            .collect();
        let mut out = Vec::new();
        for g in &now.gateways {
            let Some(s) = saved.get(g.name.as_str()) else {
                out.push(format!(
                    "gateway `{}` is in the fleet but not in the saved plan",
                    g.name
                ));
                continue;
            };
            if s.desired_hash != g.desired.hash.as_str() {
                out.push(format!(
                    "gateway `{}`: the spec now gives {}, the saved plan {} (the spec or the fleet file changed since)",
                    g.name,
                    g.desired.hash.short(),
                    short(&s.desired_hash)
                ));
            }
            match (&s.running_hash, &g.running) {
                (None, _) => out.push(format!(
                    "gateway `{}` could not be read when the plan was saved",
                    g.name
                )),
                (Some(_), Err(e)) => out.push(format!("gateway `{}`: {e}", g.name)),
                (Some(then), Ok(r)) if *then != r.hash => out.push(format!(
                    "gateway `{}` changed since the saved plan: it runs {}, the plan saw {}",
                    g.name,
                    short(&r.hash),
                    short(then)
                )),
                (Some(_), Ok(_)) => {}
            }
        }
        for s in &self.gateways {
            if now.get(&s.gateway).is_none() {
                out.push(format!(
                    "gateway `{}` of the saved plan is no longer in the fleet",
                    s.gateway
                ));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::GatewayPlan;
    use crate::provider::{Error, Running};
    use std::sync::Arc;

    fn plan(gateways: &[(&str, &str)]) -> Plan {
        let spec = "gatefold: 1\napis:\n  a:\n    routes:\n      r: { path: /, policies: [ { mock: { status: 204 } } ] }\n";
        let desired = Arc::new(
            gatefold_compiler::compile_str("s.yaml", spec)
                .ir
                .expect("compiles"),
        );
        Plan {
            gateways: gateways
                .iter()
                .map(|(name, running)| GatewayPlan {
                    name: name.to_string(),
                    provider: "reference",
                    desired: desired.clone(),
                    client: Err(Error::Planned("none here")),
                    running: Ok(Running {
                        hash: running.to_string(),
                        ir: None,
                        manifest: None,
                    }),
                    changes: Vec::new(),
                })
                .collect(),
        }
    }

    #[test]
    fn a_saved_plan_reads_back_and_matches_only_the_same_fleet_in_the_same_state() {
        let then = plan(&[("a", "sha256:1"), ("b", "sha256:1")]);
        let saved = SavedPlan::from_json(&SavedPlan::of(&then).to_json()).expect("reads");
        assert_eq!(saved, SavedPlan::of(&then));
        assert!(saved.differences(&then).is_empty());
        // b was edited; c joined the fleet and a left it.
        let now = plan(&[("b", "sha256:2"), ("c", "sha256:1")]);
        let differences = saved.differences(&now).join("\n");
        assert!(
            differences.contains("`b` changed since the saved plan")
                && differences.contains("`c` is in the fleet but not in the saved plan")
                && differences.contains("`a` of the saved plan is no longer in the fleet"),
            "{differences}"
        );
    }

    #[test]
    fn another_format_is_refused() {
        let err = SavedPlan::from_json(r#"{"format": 2, "gateways": []}"#).expect_err("refused");
        assert!(err.contains("format 2 is not supported"), "{err}");
    }
}
