//! `gatefold apply`: the plan's changes, wave by wave; per gateway stage,
//! check, switch (a compare-and-swap against what the plan saw) and
//! verify; on a failure, per `on-failure`, put back every gateway this run
//! changed, or halt.

use crate::file::{Fleet, OnFailure};
use crate::manifest::{Action, Manifest};
use crate::parallel::each;
use crate::plan::{GatewayPlan, Plan, State, PARALLEL};
use crate::provider::{Error, Provider};
use serde::Serialize;
use std::collections::BTreeMap;

/// Something that happened during an apply, for live progress.
#[derive(Clone, Debug, Serialize)]
pub struct Event {
    /// 1-based wave number.
    pub wave: usize,
    pub gateway: String,
    pub step: Step,
    /// What went wrong, for failures.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// A step of one gateway's apply.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Step {
    Stage,
    Check,
    Switch,
    Verify,
    Done,
    Failed,
    Revert,
    Reverted,
    RevertFailed,
}

/// Where a gateway ended up after an apply (or a rollback).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "state", content = "detail")]
pub enum End {
    /// It already ran the wanted config.
    InSync,
    /// It runs the new config.
    Applied,
    /// It failed; it runs what it ran before (the change never took).
    Failed(String),
    /// It was changed, then put back to what it ran before.
    RolledBack,
    /// Putting it back failed: it may run the new config; the reason.
    RollbackFailed(String),
    /// Not touched: the apply stopped before its wave.
    Skipped,
    /// It was changed and stays so (`on-failure: halt`), or it failed
    /// after its switch and could not be put back; the reason.
    LeftChanged(String),
}

impl End {
    pub fn is_ok(&self) -> bool {
        matches!(self, End::InSync | End::Applied)
    }
}

/// The end state of every gateway, in wave order.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    /// `apply` or `rollback`, for the last line of the text summary.
    #[serde(skip)]
    pub command: &'static str,
    pub ok: bool,
    pub gateways: Vec<GatewayEnd>,
}

/// One gateway's end state and the hash it runs, as far as known.
#[derive(Clone, Debug, Serialize)]
pub struct GatewayEnd {
    pub gateway: String,
    pub wave: usize,
    #[serde(flatten)]
    pub end: End,
}

impl Summary {
    /// The summary as text, one line per gateway.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for g in &self.gateways {
            let line = match &g.end {
                End::InSync => "in sync".to_string(),
                End::Applied => "applied".to_string(),
                End::Failed(why) => format!("FAILED, runs its previous config: {why}"),
                End::RolledBack => "rolled back to its previous config".to_string(),
                End::RollbackFailed(why) => {
                    format!("ROLLBACK FAILED, may run the new config: {why}")
                }
                End::Skipped => "skipped (not reached), runs its previous config".to_string(),
                End::LeftChanged(why) => format!("left on the new config: {why}"),
            };
            out.push_str(&format!("{} (wave {}): {line}\n", g.gateway, g.wave));
        }
        out.push_str(if self.ok {
            "apply: ok\n"
        } else {
            "apply: FAILED\n"
        });
        out
    }
}

/// What a gateway's apply did, for the rollback decision.
struct Outcome {
    end: End,
    /// The switch was sent (it may have taken even if it reported an error).
    touched: bool,
    /// The manifest to restore when putting it back.
    restore: Option<Manifest>,
}

/// Applies `plan` to `fleet`; `report` sees every step as it happens.
pub fn apply(
    fleet: &Fleet,
    plan: &Plan,
    revision: Option<String>,
    report: &(dyn Fn(&Event) + Sync),
) -> Summary {
    let mut ends: BTreeMap<String, (usize, Outcome)> = BTreeMap::new();
    let mut failed = false;
    for (w, wave) in fleet.waves.iter().enumerate() {
        let wave_no = w + 1;
        if failed {
            for g in wave {
                let o = Outcome {
                    end: End::Skipped,
                    touched: false,
                    restore: None,
                };
                ends.insert(g.clone(), (wave_no, o));
            }
            continue;
        }
        let members: Vec<&GatewayPlan> = wave.iter().filter_map(|g| plan.get(g)).collect();
        let outcomes = each(members, PARALLEL, |g| {
            (g.name.clone(), one(g, wave_no, revision.as_deref(), report))
        });
        for (name, o) in outcomes {
            failed |= !o.end.is_ok();
            ends.insert(name, (wave_no, o));
        }
    }
    if failed {
        match fleet.on_failure {
            OnFailure::Rollback => roll_back(plan, &mut ends, report),
            OnFailure::Halt => {
                for (_, o) in ends.values_mut() {
                    if o.end == End::Applied {
                        o.end = End::LeftChanged("on-failure: halt".into());
                    }
                }
            }
        }
    }
    let mut gateways: Vec<GatewayEnd> = ends
        .into_iter()
        .map(|(gateway, (wave, o))| GatewayEnd {
            gateway,
            wave,
            end: o.end,
        })
        .collect();
    gateways.sort_by_key(|g| g.wave);
    Summary {
        command: "apply",
        ok: !failed,
        gateways,
    }
}

/// One gateway: stage, check, switch, verify.
fn one(
    g: &GatewayPlan,
    wave: usize,
    revision: Option<&str>,
    report: &(dyn Fn(&Event) + Sync),
) -> Outcome {
    let event = |step, detail: Option<String>| {
        report(&Event {
            wave,
            gateway: g.name.clone(),
            step,
            detail,
        })
    };
    let fail = |e: &Error, touched, restore| {
        event(Step::Failed, Some(e.to_string()));
        Outcome {
            end: End::Failed(e.to_string()),
            touched,
            restore,
        }
    };
    if g.state() == State::InSync {
        event(Step::Done, None);
        return Outcome {
            end: End::InSync,
            touched: false,
            restore: None,
        };
    }
    let (client, running) = match (&g.client, &g.running) {
        (Ok(c), Ok(r)) => (c.as_ref(), r),
        (Err(e), _) | (_, Err(e)) => return fail(e, false, None),
    };
    let previous = match client.manifest() {
        Ok(p) => p,
        Err(e) => return fail(&e, false, None),
    };
    // A gateway never applied to gets a manifest naming what it ran.
    let restore = previous.unwrap_or_else(|| {
        Manifest::new(
            &running.hash,
            None,
            revision.map(str::to_string),
            Action::Rollback,
        )
    });
    event(Step::Stage, None);
    let staged = match client.stage(&g.desired) {
        Ok(s) => s,
        Err(e) => return fail(&e, false, None),
    };
    event(Step::Check, None);
    if let Err(e) = client.check(&staged) {
        return fail(&e, false, None);
    }
    event(Step::Switch, None);
    let manifest = Manifest::new(
        &staged.hash,
        Some(&running.hash),
        revision.map(str::to_string),
        Action::Apply,
    );
    if let Err(e) = client.switch(&staged, &running.hash, &manifest) {
        // An unanswered switch may have taken: it counts as touched.
        let touched = matches!(e, Error::Unreachable(_));
        return fail(&e, touched, Some(restore));
    }
    event(Step::Verify, None);
    if let Err(e) = client.verify(&staged.hash) {
        return fail(&e, true, Some(restore));
    }
    event(Step::Done, None);
    Outcome {
        end: End::Applied,
        touched: true,
        restore: Some(restore),
    }
}

/// Puts back every gateway this run touched, in parallel.
fn roll_back(
    plan: &Plan,
    ends: &mut BTreeMap<String, (usize, Outcome)>,
    report: &(dyn Fn(&Event) + Sync),
) {
    let todo: Vec<(String, usize, Manifest)> = ends
        .iter()
        .filter(|(_, (_, o))| o.touched)
        .filter_map(|(n, (w, o))| Some((n.clone(), *w, o.restore.clone()?)))
        .collect();
    let results = each(todo, PARALLEL, |(name, wave, restore)| {
        let event = |step, detail| {
            report(&Event {
                wave,
                gateway: name.clone(),
                step,
                detail,
            })
        };
        event(Step::Revert, None);
        let g = plan.get(&name).expect("planned");
        let result = match &g.client {
            Ok(c) => revert(c.as_ref(), g, &restore),
            Err(e) => Err(crate::plan::clone_err(e)),
        };
        match &result {
            Ok(()) => event(Step::Reverted, None),
            Err(e) => event(Step::RevertFailed, Some(e.to_string())),
        }
        (name, result)
    });
    for (name, result) in results {
        if let Some((_, o)) = ends.get_mut(&name) {
            o.end = match result {
                Ok(()) => End::RolledBack,
                Err(e) => End::RollbackFailed(e.to_string()),
            };
        }
    }
}

/// Back from the new config to the one the plan saw, then verified.
fn revert(client: &dyn Provider, g: &GatewayPlan, restore: &Manifest) -> Result<(), Error> {
    let before = g.running.as_ref().map_err(crate::plan::clone_err)?;
    client.revert(g.desired.hash.as_str(), &before.hash, restore)?;
    client.verify(&before.hash)
}
