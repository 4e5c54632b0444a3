//! `gatefold drift`: does each gateway run what gatefold last applied
//! there (its manifest)? A hand edit or another tool shows here.

use crate::file::Fleet;
use crate::manifest::Manifest;
use crate::parallel::each;
use crate::plan::{short, Desired, PARALLEL};
use crate::provider::{self, Settings};
use gatefold_compiler::ir::diff::{self, Change};
use serde::Serialize;

/// One gateway's drift report.
#[derive(Debug, Serialize)]
pub struct GatewayDrift {
    pub gateway: String,
    pub state: DriftState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub applied_hash: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub running_hash: Option<String>,
    /// From what was applied to what runs, when the applied config is the
    /// one the spec gives now; else from the spec now to what runs.
    pub changes: Vec<Change>,
    /// Which of the two `changes` is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compared_with: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Where a gateway stands against its last apply.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DriftState {
    /// It runs what gatefold applied.
    NoDrift,
    /// It runs something else.
    Drift,
    /// gatefold never applied there (no manifest).
    NeverApplied,
    /// It could not be asked.
    Unknown,
}

/// Asks every gateway (in parallel) what it runs and what was applied.
pub fn drift(fleet: &Fleet, desired: Desired, settings: &Settings) -> Vec<GatewayDrift> {
    each(desired.configs, PARALLEL, |(name, config)| {
        let mut out = GatewayDrift {
            gateway: name.clone(),
            state: DriftState::Unknown,
            applied_hash: None,
            running_hash: None,
            changes: Vec::new(),
            compared_with: None,
            error: None,
        };
        let read = || -> Result<_, provider::Error> {
            let client = provider::for_gateway(&fleet.gateways[&name], settings)?;
            let running = client.running()?;
            Ok((running.manifest_from(client.as_ref())?, running))
        };
        let (manifest, running): (Option<Manifest>, _) = match read() {
            Ok(x) => x,
            Err(e) => {
                out.error = Some(e.to_string());
                return out;
            }
        };
        out.running_hash = Some(running.hash.clone());
        let Some(m) = manifest else {
            out.state = DriftState::NeverApplied;
            return out;
        };
        out.applied_hash = Some(m.hash.clone());
        if m.hash == running.hash {
            out.state = DriftState::NoDrift;
            return out;
        }
        out.state = DriftState::Drift;
        if let Some(ir) = &running.ir {
            out.changes = diff::diff(&config, ir);
            out.compared_with = Some(if config.hash.as_str() == m.hash {
                "applied"
            } else {
                "spec"
            });
        }
        out
    })
}

/// The report as text.
pub fn render(report: &[GatewayDrift]) -> String {
    let mut out = String::new();
    for g in report {
        match g.state {
            DriftState::NoDrift => out.push_str(&format!(
                "{}: no drift ({})\n",
                g.gateway,
                short(g.running_hash.as_deref().unwrap_or(""))
            )),
            DriftState::NeverApplied => out.push_str(&format!(
                "{}: never applied by gatefold (runs {})\n",
                g.gateway,
                short(g.running_hash.as_deref().unwrap_or(""))
            )),
            DriftState::Unknown => out.push_str(&format!(
                "{}: cannot tell: {}\n",
                g.gateway,
                g.error.as_deref().unwrap_or("")
            )),
            DriftState::Drift => {
                out.push_str(&format!(
                    "{}: DRIFT: runs {}, gatefold applied {}\n",
                    g.gateway,
                    short(g.running_hash.as_deref().unwrap_or("")),
                    short(g.applied_hash.as_deref().unwrap_or(""))
                ));
                if g.compared_with == Some("spec") {
                    out.push_str(
                        "  (the spec changed since; the difference is from the spec now)\n",
                    );
                }
                for line in diff::render(&g.changes).lines() {
                    out.push_str("  ");
                    out.push_str(line);
                    out.push('\n');
                }
            }
        }
    }
    out
}
