//! `gatefold apply`: the plan's changes, wave by wave; per gateway stage,
//! check, switch (a compare-and-swap against what the plan saw) and
//! verify; on a failure, per `on-failure`, put back every gateway this run
//! changed, or halt.

use crate::file::{Fleet, OnFailure};
use crate::manifest::{Action, Manifest};
use crate::parallel::{each, once, Cells};
use crate::plan::{clone_err, GatewayPlan, Plan, State, PARALLEL};
use crate::provider::{Error, Provider, Running, Staged};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;

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
    /// What failed on this gateway, kept when it was then rolled back.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
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
                End::RolledBack => match &g.failure {
                    Some(why) => format!("FAILED ({why}), rolled back to its previous config"),
                    None => "rolled back to its previous config".to_string(),
                },
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
    /// What failed, if anything (kept through a rollback).
    failure: Option<String>,
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
    if plan.count(State::Unknown) > 0 {
        return not_started(fleet, plan, report);
    }
    let mut ends: BTreeMap<String, (usize, Outcome)> = BTreeMap::new();
    let mut failed = false;
    let staging = Staging::default();
    for (w, wave) in fleet.waves.iter().enumerate() {
        let wave_no = w + 1;
        if failed {
            for g in wave {
                let o = Outcome {
                    end: End::Skipped,
                    failure: None,
                    touched: false,
                    restore: None,
                };
                ends.insert(g.clone(), (wave_no, o));
            }
            continue;
        }
        let members: Vec<&GatewayPlan> = wave.iter().filter_map(|g| plan.get(g)).collect();
        let outcomes = each(members, PARALLEL, |g| {
            let o = one(g, wave_no, revision.as_deref(), &staging, report);
            (g.name.clone(), o)
        });
        for (name, o) in outcomes {
            failed |= !o.end.is_ok();
            ends.insert(name, (wave_no, o));
        }
    }
    if failed {
        match fleet.on_failure {
            OnFailure::Rollback => roll_back(plan, &mut ends, report, |_| true),
            OnFailure::Halt => {
                // Finished gateways stay; one that failed after its switch
                // (its verify, or an answer lost) is in no known state, so
                // it goes back like under `rollback`.
                roll_back(plan, &mut ends, report, |o| !o.end.is_ok());
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
            failure: o.failure,
        })
        .collect();
    gateways.sort_by_key(|g| g.wave);
    Summary {
        command: "apply",
        ok: !failed,
        gateways,
    }
}

/// The summary of an apply that does not start because the plan could
/// not read some gateway: that wave would fail for certain, and every
/// change before it would only be made to be undone. Nothing is touched.
fn not_started(fleet: &Fleet, plan: &Plan, report: &(dyn Fn(&Event) + Sync)) -> Summary {
    let mut gateways = Vec::new();
    for (w, wave) in fleet.waves.iter().enumerate() {
        for g in wave.iter().filter_map(|g| plan.get(g)) {
            let end = match (&g.running, g.state()) {
                (Err(e), _) => {
                    report(&Event {
                        wave: w + 1,
                        gateway: g.name.clone(),
                        step: Step::Failed,
                        detail: Some(e.to_string()),
                    });
                    End::Failed(e.to_string())
                }
                (Ok(_), State::InSync) => End::InSync,
                (Ok(_), _) => End::Skipped,
            };
            gateways.push(GatewayEnd {
                gateway: g.name.clone(),
                wave: w + 1,
                end,
                failure: None,
            });
        }
    }
    Summary {
        command: "apply",
        ok: false,
        gateways,
    }
}

/// Configs staged and checked once for every gateway whose provider
/// stages alike ([`Provider::stages_alike`]), by provider kind and hash.
#[derive(Default)]
struct Staging {
    staged: Cells<(&'static str, String), Result<Arc<Staged>, Error>>,
    checked: Cells<(&'static str, String), Result<(), Error>>,
    /// [`Provider::changes`] by provider kind, running and desired hash.
    changes: Cells<(&'static str, String, String), Option<Arc<String>>>,
}

impl Staging {
    fn stage(&self, client: &dyn Provider, g: &GatewayPlan) -> Result<Arc<Staged>, Error> {
        if !client.stages_alike() {
            return client.stage(&g.desired).map(Arc::new);
        }
        let key = (g.provider, g.desired.hash.to_string());
        match once(&self.staged, key).get_or_init(|| client.stage(&g.desired).map(Arc::new)) {
            Ok(s) => Ok(s.clone()),
            Err(e) => Err(clone_err(e)),
        }
    }

    /// The changes to send instead of the whole config, when the plan read
    /// the running config and the provider sends changes.
    fn changes(
        &self,
        client: &dyn Provider,
        g: &GatewayPlan,
        running: &Running,
    ) -> Option<Arc<String>> {
        let from = running.ir.as_ref()?;
        let key = (g.provider, running.hash.clone(), g.desired.hash.to_string());
        once(&self.changes, key)
            .get_or_init(|| client.changes(from, &g.desired).map(Arc::new))
            .clone()
    }

    fn check(&self, client: &dyn Provider, g: &GatewayPlan, staged: &Staged) -> Result<(), Error> {
        if !client.stages_alike() {
            return client.check(staged);
        }
        let key = (g.provider, staged.hash.clone());
        match once(&self.checked, key).get_or_init(|| client.check(staged)) {
            Ok(()) => Ok(()),
            Err(e) => Err(clone_err(e)),
        }
    }
}

/// One gateway: stage, check, switch, verify.
fn one(
    g: &GatewayPlan,
    wave: usize,
    revision: Option<&str>,
    staging: &Staging,
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
            failure: Some(e.to_string()),
            touched,
            restore,
        }
    };
    if g.state() == State::InSync {
        event(Step::Done, None);
        return Outcome {
            end: End::InSync,
            failure: None,
            touched: false,
            restore: None,
        };
    }
    let (client, running) = match (&g.client, &g.running) {
        (Ok(c), Ok(r)) => (c.as_ref(), r),
        (Err(e), _) | (_, Err(e)) => return fail(e, false, None),
    };
    // The manifest the plan read with the running config's hash, where the
    // gateway tells both at once (a config changed since is refused by the
    // switch's compare-and-swap).
    let previous = match running.manifest_from(client) {
        Ok(p) => p,
        Err(e) => return fail(&e, false, None),
    };
    // A gateway never applied to gets a manifest naming what it ran.
    let never_applied = || {
        Manifest::new(
            &running.hash,
            None,
            revision.map(str::to_string),
            Action::Rollback,
        )
    };
    let restore = previous.unwrap_or_else(never_applied);
    event(Step::Stage, None);
    let staged = match staging.stage(client, g) {
        Ok(s) => s,
        Err(e) => return fail(&e, false, None),
    };
    event(Step::Check, None);
    if let Err(e) = staging.check(client, g, &staged) {
        return fail(&e, false, None);
    }
    event(Step::Switch, None);
    let manifest = Manifest::new(
        &staged.hash,
        Some(&running.hash),
        revision.map(str::to_string),
        Action::Apply,
    );
    let switched = match staging.changes(client, g, running) {
        Some(changes) => client.switch_changes(&staged, &changes, &running.hash, &manifest),
        None => client.switch(&staged, &running.hash, &manifest),
    };
    let switched = match switched {
        Ok(s) => s,
        Err(e) => {
            let touched = match &e {
                // The gateway said no: nothing changed there.
                Error::Conflict { .. } | Error::Rejected(_) => false,
                // No answer: it may have taken, or may still take.
                Error::Unreachable(_) => true,
                // An error answered (a 5xx from a proxy in front, say) may come
                // after the change took: what runs now tells.
                _ => !matches!(client.running(), Ok(now) if now.hash == running.hash),
            };
            return fail(&e, touched, Some(restore));
        }
    };
    // What the switch replaced, where it tells: the plan's read may be older
    // (someone applied and rolled back to the same config since, which the
    // compare-and-swap cannot see).
    let restore = match switched.replaced {
        // Our own manifest: an earlier attempt of this switch took (its
        // answer lost) and the config was put back by hand since, keeping
        // the manifest. What it replaced is not known here any more.
        Some(Some(m)) if m == manifest => restore,
        Some(replaced) => replaced.unwrap_or_else(never_applied),
        None => restore,
    };
    event(Step::Verify, None);
    if let Err(e) = client.verify(&staged.hash) {
        return fail(&e, true, Some(restore));
    }
    event(Step::Done, None);
    Outcome {
        end: End::Applied,
        failure: None,
        touched: true,
        restore: Some(restore),
    }
}

/// Puts back every gateway this run touched that `which` picks, in
/// parallel.
fn roll_back(
    plan: &Plan,
    ends: &mut BTreeMap<String, (usize, Outcome)>,
    report: &(dyn Fn(&Event) + Sync),
    which: impl Fn(&Outcome) -> bool,
) {
    let todo: Vec<(String, usize, Manifest)> = ends
        .iter()
        .filter(|(_, (_, o))| o.touched && which(o))
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
            Err(e) => Err(clone_err(e)),
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
    let before = g.running.as_ref().map_err(clone_err)?;
    client.revert(g.desired.hash.as_str(), &before.hash, restore)?;
    client.verify(&before.hash)
}

#[cfg(test)]
mod tests {
    //! The apply engine's decisions against a fake gateway (named as one):
    //! the real compare-and-swap and rollback are tested on the reference
    //! gateway (`cli/tests/fleet.rs`, `targets/reference/tests/operations.rs`).

    use super::*;
    use crate::file::{Fleet, OnFailure};
    use crate::plan::GatewayPlan;
    use crate::provider::{Running, Staged, Switched};
    use gatefold_compiler::ir::ValidIr;
    use std::collections::BTreeMap;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;

    /// What a fake gateway does wrong.
    #[derive(Clone, Copy, PartialEq)]
    enum Fault {
        None,
        /// Someone changed it between the plan and the switch.
        ChangedSincePlan,
        /// It takes the switch but keeps serving the old config.
        VerifyFails,
        /// As `VerifyFails`, and between the plan and the switch someone
        /// applied and rolled back to the same config: the hash is the
        /// plan's, the manifest theirs. Its switch tells what it replaced.
        ReappliedSincePlan,
        /// As `VerifyFails`, and it holds this apply's own manifest when
        /// switched (an earlier attempt took, then the config was put back
        /// by hand); its switch tells that as what it replaced.
        HoldsOurManifest,
    }

    /// A fake gateway: a running hash, its history and a manifest.
    /// It stages alike (as the reference gateway does) and counts, with
    /// the other fakes of its run, how often it was asked to stage.
    struct FakeGateway {
        state: Mutex<(String, Vec<String>, Option<Manifest>)>,
        fault: Fault,
        stages: Arc<AtomicUsize>,
    }

    impl FakeGateway {
        fn new(hash: &str, fault: Fault, stages: Arc<AtomicUsize>) -> FakeGateway {
            FakeGateway {
                state: Mutex::new((hash.to_string(), Vec::new(), None)),
                fault,
                stages,
            }
        }
    }

    impl Provider for FakeGateway {
        fn running(&self) -> Result<Running, Error> {
            Ok(Running {
                hash: self.state.lock().unwrap().0.clone(),
                ir: None,
                manifest: None,
            })
        }
        fn manifest(&self) -> Result<Option<Manifest>, Error> {
            Ok(self.state.lock().unwrap().2.clone())
        }
        fn stage(&self, desired: &ValidIr) -> Result<Staged, Error> {
            self.stages.fetch_add(1, Ordering::SeqCst);
            Ok(Staged {
                hash: desired.hash.to_string(),
                body: String::new(),
            })
        }
        fn check(&self, _: &Staged) -> Result<(), Error> {
            Ok(())
        }
        fn stages_alike(&self) -> bool {
            true
        }
        fn switch(&self, staged: &Staged, expect: &str, m: &Manifest) -> Result<Switched, Error> {
            let mut s = self.state.lock().unwrap();
            if self.fault == Fault::ChangedSincePlan {
                s.0 = "sha256:edited".into();
            }
            if self.fault == Fault::ReappliedSincePlan {
                s.2 = Some(theirs());
            }
            if self.fault == Fault::HoldsOurManifest {
                s.2 = Some(m.clone());
            }
            if s.0 != expect {
                return Err(Error::Conflict {
                    expected: expect.into(),
                    running: s.0.clone(),
                });
            }
            let old = std::mem::replace(&mut s.0, staged.hash.clone());
            s.1.push(old);
            let replaced = s.2.replace(m.clone());
            let tells = matches!(
                self.fault,
                Fault::ReappliedSincePlan | Fault::HoldsOurManifest
            );
            Ok(Switched {
                replaced: tells.then_some(replaced),
            })
        }
        fn verify(&self, hash: &str) -> Result<(), Error> {
            let s = self.state.lock().unwrap();
            let fails = matches!(
                self.fault,
                Fault::VerifyFails | Fault::ReappliedSincePlan | Fault::HoldsOurManifest
            );
            if fails && s.1.len() == 1 && s.0 == hash {
                return Err(Error::Verify("serves the old config".into()));
            }
            Ok(())
        }
        fn revert(&self, expect: &str, back_to: &str, m: &Manifest) -> Result<(), Error> {
            let mut s = self.state.lock().unwrap();
            if s.0 == back_to {
                return Ok(());
            }
            assert_eq!(s.0, expect, "reverted a config it did not set");
            s.0 = s.1.pop().expect("history");
            s.2 = Some(m.clone());
            Ok(())
        }
    }

    /// The manifest of someone else's apply and rollback to the config the
    /// plan saw ([`Fault::ReappliedSincePlan`]).
    fn theirs() -> Manifest {
        at_fixed_time(Manifest::new(
            "sha256:old",
            Some("sha256:theirs"),
            None,
            Action::Rollback,
        ))
    }

    /// A test manifest made twice (once for the fake, once for the
    /// assertion) must compare equal even when a second ticks between.
    fn at_fixed_time(mut m: Manifest) -> Manifest {
        m.applied_at = "2026-01-01T00:00:00Z".into();
        m
    }

    fn desired() -> ValidIr {
        let spec = "gatefold: 1\napis:\n  a:\n    routes:\n      r: { path: /, policies: [ { mock: { status: 204 } } ] }\n";
        gatefold_compiler::compile_str("s.yaml", spec)
            .ir
            .expect("compiles")
    }

    /// Applies to gateways `(name, fault)` in the given waves: the summary,
    /// the hash each ends on, and how many times a config was staged.
    fn run(gateways: &[(&str, Fault)], waves: &[&[&str]]) -> (Summary, Vec<String>, usize) {
        let (summary, fakes) = run_seen(gateways, waves, None);
        let hashes = fakes
            .iter()
            .map(|f| f.state.lock().unwrap().0.clone())
            .collect();
        let stages = fakes.first().map_or(0, |f| f.stages.load(Ordering::SeqCst));
        (summary, hashes, stages)
    }

    /// [`run`], with the plan having read `seen` as each gateway's manifest
    /// (as a reference gateway's status tells it): the summary and the fakes.
    fn run_seen(
        gateways: &[(&str, Fault)],
        waves: &[&[&str]],
        seen: Option<Option<Manifest>>,
    ) -> (Summary, Vec<Arc<FakeGateway>>) {
        let fleet = Fleet {
            path: "fleet.yaml".into(),
            spec: "s.yaml".into(),
            gateways: BTreeMap::new(),
            deploy: Vec::new(),
            waves: waves
                .iter()
                .map(|w| w.iter().map(|g| g.to_string()).collect())
                .collect(),
            on_failure: OnFailure::Rollback,
        };
        let stages = Arc::new(AtomicUsize::new(0));
        let fakes: Vec<Arc<FakeGateway>> = gateways
            .iter()
            .map(|(_, f)| Arc::new(FakeGateway::new("sha256:old", *f, stages.clone())))
            .collect();
        struct Shared(Arc<FakeGateway>);
        impl Provider for Shared {
            fn running(&self) -> Result<Running, Error> {
                self.0.running()
            }
            fn manifest(&self) -> Result<Option<Manifest>, Error> {
                self.0.manifest()
            }
            fn stage(&self, d: &ValidIr) -> Result<Staged, Error> {
                self.0.stage(d)
            }
            fn check(&self, s: &Staged) -> Result<(), Error> {
                self.0.check(s)
            }
            fn stages_alike(&self) -> bool {
                self.0.stages_alike()
            }
            fn switch(&self, s: &Staged, e: &str, m: &Manifest) -> Result<Switched, Error> {
                self.0.switch(s, e, m)
            }
            fn verify(&self, h: &str) -> Result<(), Error> {
                self.0.verify(h)
            }
            fn revert(&self, e: &str, b: &str, m: &Manifest) -> Result<(), Error> {
                self.0.revert(e, b, m)
            }
        }
        let plan = Plan {
            gateways: gateways
                .iter()
                .zip(&fakes)
                .map(|((name, _), fake)| GatewayPlan {
                    name: name.to_string(),
                    provider: "fake",
                    desired: Arc::new(desired()),
                    client: Ok(Box::new(Shared(fake.clone()))),
                    running: fake.running().map(|r| Running {
                        manifest: seen.clone(),
                        ..r
                    }),
                    changes: Vec::new(),
                })
                .collect(),
        };
        let summary = apply(&fleet, &plan, None, &|_| {});
        (summary, fakes)
    }

    fn ends(s: &Summary) -> Vec<(String, End)> {
        s.gateways
            .iter()
            .map(|g| (g.gateway.clone(), g.end.clone()))
            .collect()
    }

    #[test]
    fn a_gateway_changed_since_the_plan_is_not_overwritten() {
        let (summary, hashes, _) = run(
            &[
                ("a", Fault::None),
                ("b", Fault::ChangedSincePlan),
                ("c", Fault::None),
            ],
            &[&["a"], &["b"], &["c"]],
        );
        assert!(!summary.ok);
        let ends = ends(&summary);
        assert_eq!(ends[0], ("a".into(), End::RolledBack));
        assert!(
            matches!(&ends[1].1, End::Failed(why) if why.contains("changed since the plan")),
            "{ends:?}"
        );
        assert_eq!(ends[2], ("c".into(), End::Skipped));
        // b keeps the operator's edit; a is back; c never touched.
        assert_eq!(hashes, ["sha256:old", "sha256:edited", "sha256:old"]);
    }

    /// The manifest the plan read in the rollback tests below.
    fn planned() -> Manifest {
        at_fixed_time(Manifest::new(
            "sha256:old",
            None,
            Some("abc123".into()),
            Action::Apply,
        ))
    }

    /// One gateway with `fault` (its verify fails), the plan having read
    /// [`planned`]: it is rolled back to the old config; the manifest it
    /// is left with.
    fn restored_manifest(fault: Fault) -> Option<Manifest> {
        let (summary, fakes) = run_seen(&[("a", fault)], &[&["a"]], Some(Some(planned())));
        assert_eq!(ends(&summary)[0].1, End::RolledBack);
        let state = fakes[0].state.lock().unwrap();
        assert_eq!(state.0, "sha256:old");
        state.2.clone()
    }

    #[test]
    fn the_manifest_the_plan_read_is_the_one_a_rollback_restores() {
        // The fake's own manifest (none) is not what the plan saw: a
        // rollback restoring the plan's shows the apply did not read again.
        assert_eq!(restored_manifest(Fault::VerifyFails), Some(planned()));
    }

    #[test]
    fn the_manifest_the_switch_replaced_is_the_one_a_rollback_restores() {
        // Between the plan and the switch someone applied and rolled back
        // to the same config: the compare-and-swap passes, and the rollback
        // puts back their manifest, not the older one the plan read.
        assert_eq!(restored_manifest(Fault::ReappliedSincePlan), Some(theirs()));
    }

    #[test]
    fn a_switch_naming_our_own_manifest_as_replaced_leaves_the_plans_to_restore() {
        assert_eq!(restored_manifest(Fault::HoldsOurManifest), Some(planned()));
    }

    #[test]
    fn a_verify_failing_after_the_switch_rolls_that_gateway_back_too() {
        let (summary, hashes, _) = run(
            &[("a", Fault::None), ("b", Fault::VerifyFails)],
            &[&["a", "b"]],
        );
        let ends = ends(&summary);
        assert_eq!(ends[0].1, End::RolledBack);
        // b took the switch, so it is put back, not just marked failed.
        assert_eq!(ends[1].1, End::RolledBack, "{ends:?}");
        // The summary still says why.
        assert!(
            summary
                .render()
                .contains("b (wave 1): FAILED (verify failed"),
            "{}",
            summary.render()
        );
        assert_eq!(hashes, ["sha256:old", "sha256:old"]);
    }

    #[test]
    fn a_config_is_staged_once_for_gateways_that_stage_alike_and_each_still_swaps_its_own() {
        let (summary, hashes, stages) = run(
            &[
                ("a", Fault::None),
                ("b", Fault::ChangedSincePlan),
                ("c", Fault::None),
            ],
            &[&["a", "b", "c"]],
        );
        // Three gateways, one config: staged (and checked) once.
        assert_eq!(stages, 1);
        // The shared staging does not share the compare-and-swap: b, edited
        // since the plan, refuses; a and c took the switch and go back.
        let ends = ends(&summary);
        assert!(
            matches!(&ends[1].1, End::Failed(why) if why.contains("changed since the plan")),
            "{ends:?}"
        );
        assert_eq!(ends[0].1, End::RolledBack);
        assert_eq!(ends[2].1, End::RolledBack);
        assert_eq!(hashes, ["sha256:old", "sha256:edited", "sha256:old"]);
    }
}
