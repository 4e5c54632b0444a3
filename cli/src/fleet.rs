//! `gatefold plan | apply | drift | rollback FLEET`: fleet sync (see the
//! `gatefold-fleet` crate and `docs/fleet.md`).
//!
//! Exit codes: `plan` 0 in sync, 2 changes pending; `drift` 0 none, 2
//! drift; `apply` and `rollback` 0 when every gateway ended as asked; 1 for
//! a bad fleet file or spec, a gateway that cannot be read or changed, or
//! a refused lock.

use super::Format;
use gatefold_fleet::apply::{self, Event, Summary};
use gatefold_fleet::drift::{self, DriftState};
use gatefold_fleet::file::Fleet;
use gatefold_fleet::plan::{self, Desired, Plan, State};
use gatefold_fleet::provider::Settings;
use gatefold_fleet::saved::SavedPlan;
use gatefold_fleet::{lock, manifest, rollback};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

/// Exit code when a plan has changes or a gateway drifted.
const PENDING: u8 = 2;

/// What every fleet command takes besides the fleet file.
pub struct Common {
    pub format: Format,
    /// Seconds one request to a gateway may take.
    pub timeout: u64,
}

impl Common {
    fn settings(&self) -> Settings {
        Settings {
            timeout: Duration::from_secs(self.timeout.max(1)),
            ..Settings::default()
        }
    }
}

/// The fleet and the config each gateway should run, or the exit code
/// after reporting why not.
fn load(path: &Path, format: Format) -> Result<(Fleet, Desired), ExitCode> {
    let fleet = match Fleet::load(path) {
        Ok(f) => f,
        Err(refused) => {
            match format {
                Format::Text => eprint!("{}", refused.render()),
                Format::Json => {
                    let out = serde_json::json!({
                        "ok": false,
                        "diagnostics": refused.diagnostics.to_json(&refused.sources),
                    });
                    crate::stdout::outln!("{out}");
                }
            }
            return Err(ExitCode::from(super::USER_ERROR));
        }
    };
    match plan::desired(&fleet) {
        Ok(d) => {
            crate::alloc::for_network_phase();
            Ok((fleet, d))
        }
        Err(text) => {
            match format {
                Format::Text => eprint!("{text}"),
                Format::Json => {
                    crate::stdout::outln!(
                        "{}",
                        serde_json::json!({ "ok": false, "errors": [text] })
                    )
                }
            }
            Err(ExitCode::from(super::USER_ERROR))
        }
    }
}

fn print_plan(plan: &Plan, format: Format) {
    match format {
        Format::Text => crate::stdout::out!("{}", plan.render()),
        Format::Json => {
            let out = serde_json::json!({
                "ok": true,
                "pending": plan.pending(),
                "gateways": plan.gateways.iter().map(|g| g.to_json()).collect::<Vec<_>>(),
            });
            crate::stdout::outln!("{out}");
        }
    }
}

/// `gatefold plan FLEET [--out FILE]`.
pub fn plan(path: &Path, out: Option<&Path>, common: &Common) -> ExitCode {
    let (fleet, desired) = match load(path, common.format) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let plan = plan::plan(&fleet, desired, &common.settings());
    print_plan(&plan, common.format);
    if let Some(out) = out {
        if let Err(e) = std::fs::write(out, SavedPlan::of(&plan).to_json()) {
            super::report_global(
                common.format,
                "cannot-write",
                format!("cannot write the plan to `{}`: {e}", out.display()),
                "check the path and its permissions",
            );
            return ExitCode::from(super::INTERNAL_ERROR);
        }
    }
    if plan.count(State::Unknown) > 0 {
        ExitCode::from(super::USER_ERROR)
    } else if plan.pending() {
        ExitCode::from(PENDING)
    } else {
        ExitCode::SUCCESS
    }
}

/// `gatefold apply FLEET [--yes] [--plan FILE]`.
pub fn apply(path: &Path, yes: bool, saved: Option<&Path>, common: &Common) -> ExitCode {
    let saved = match saved.map(read_saved).transpose() {
        Ok(s) => s,
        Err(msg) => return refuse(common.format, "bad-saved-plan", msg),
    };
    let (fleet, desired) = match load(path, common.format) {
        Ok(x) => x,
        Err(code) => return code,
    };
    // Held from before the plan to the end: the plan is what this apply
    // changes from, and a second apply waits its turn.
    let _lock = match lock::acquire(&fleet.path) {
        Ok(l) => l,
        Err(msg) => return refuse(common.format, "fleet-locked", msg),
    };
    let plan = plan::plan(&fleet, desired, &common.settings());
    print_plan(&plan, common.format);
    if let Some(saved) = &saved {
        // Checked under the lock, so nothing gatefold does changes it
        // before the switches (each still a compare-and-swap).
        let differences = saved.differences(&plan);
        if !differences.is_empty() {
            return refuse(
                common.format,
                "plan-changed",
                format!(
                    "the saved plan is not what applying would do now; nothing was changed:\n  {}",
                    differences.join("\n  ")
                ),
            );
        }
    }
    if !plan.pending() {
        if common.format == Format::Text {
            eprintln!("nothing to apply: every gateway is in sync");
        }
        // Still a summary, so its last line always names every gateway's
        // end state (here `in sync`; nothing is sent to any gateway).
        return print_summary(&apply::apply(&fleet, &plan, None, &|_| {}), common.format);
    }
    // A saved plan was the confirmation: it is applied as it was reviewed.
    if saved.is_none() && !yes && !confirm() {
        return refuse(
            common.format,
            "not-confirmed",
            "apply changes gateways: confirm on a terminal, pass --yes, or apply a saved plan (--plan)".into(),
        );
    }
    let revision = manifest::revision(&fleet.spec);
    let summary = with_progress(common.format, plan.count(State::Changes) as u64, |report| {
        apply::apply(&fleet, &plan, revision, report)
    });
    print_summary(&summary, common.format)
}

/// `gatefold rollback FLEET [--gateway G]`.
pub fn rollback(path: &Path, gateway: Option<&str>, yes: bool, common: &Common) -> ExitCode {
    let (fleet, _) = match load(path, common.format) {
        Ok(x) => x,
        Err(code) => return code,
    };
    if let Some(g) = gateway {
        if !fleet.gateways.contains_key(g) {
            let names: Vec<&str> = fleet.gateways.keys().map(String::as_str).collect();
            return refuse(
                common.format,
                "unknown-gateway",
                format!(
                    "the fleet has no gateway `{g}`: {}",
                    gatefold_compiler::front::decode::did_you_mean(g, &names)
                ),
            );
        }
    }
    let _lock = match lock::acquire(&fleet.path) {
        Ok(l) => l,
        Err(msg) => return refuse(common.format, "fleet-locked", msg),
    };
    if !yes && !confirm() {
        return refuse(
            common.format,
            "not-confirmed",
            "rollback changes gateways: confirm on a terminal, or pass --yes".into(),
        );
    }
    let revision = manifest::revision(&fleet.spec);
    let summary = rollback::rollback(&fleet, gateway, revision, &common.settings());
    print_summary(&summary, common.format)
}

/// `gatefold drift FLEET`.
pub fn drift(path: &Path, common: &Common) -> ExitCode {
    let (fleet, desired) = match load(path, common.format) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let report = drift::drift(&fleet, desired, &common.settings());
    match common.format {
        Format::Text => crate::stdout::out!("{}", drift::render(&report)),
        Format::Json => {
            let out = serde_json::json!({ "ok": true, "gateways": report });
            crate::stdout::outln!("{out}");
        }
    }
    if report.iter().any(|g| g.state == DriftState::Unknown) {
        ExitCode::from(super::USER_ERROR)
    } else if report.iter().any(|g| g.state == DriftState::Drift) {
        ExitCode::from(PENDING)
    } else {
        ExitCode::SUCCESS
    }
}

fn refuse(format: Format, code: &'static str, msg: String) -> ExitCode {
    super::report_global(format, code, msg, "see `gatefold apply --help`");
    ExitCode::from(super::USER_ERROR)
}

/// A saved plan file, or why it cannot be used.
fn read_saved(path: &Path) -> Result<SavedPlan, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the saved plan `{}`: {e}", path.display()))?;
    SavedPlan::from_json(&text).map_err(|e| format!("`{}`: {e}", path.display()))
}

/// Asks on the terminal; `false` when there is none to ask on.
fn confirm() -> bool {
    if !std::io::stdin().is_terminal() || !std::io::stderr().is_terminal() {
        return false;
    }
    eprint!("apply these changes? [y/N] ");
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer).is_ok() && answer.trim().eq_ignore_ascii_case("y")
}

/// Runs `work` with live progress: a bar on a terminal, else one JSON line
/// per event (on stdout with `--format json`, on stderr otherwise).
fn with_progress<T>(
    format: Format,
    changes: u64,
    work: impl FnOnce(&(dyn Fn(&Event) + Sync)) -> T,
) -> T {
    if format == Format::Text && std::io::stderr().is_terminal() {
        let bar = ProgressBar::new(changes);
        bar.set_style(
            ProgressStyle::with_template("{spinner} [{bar:30}] {pos}/{len} {wide_msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.enable_steady_tick(Duration::from_millis(100));
        let result = work(&|e: &Event| {
            bar.set_message(format!("wave {} {}: {:?}", e.wave, e.gateway, e.step));
            match e.step {
                apply::Step::Done => bar.inc(1),
                apply::Step::Failed | apply::Step::RevertFailed => bar.println(format!(
                    "{} failed: {}",
                    e.gateway,
                    e.detail.as_deref().unwrap_or("")
                )),
                _ => {}
            }
        });
        bar.finish_and_clear();
        return result;
    }
    work(&|e: &Event| {
        let line = serde_json::json!({ "event": e });
        match format {
            Format::Json => crate::stdout::outln!("{line}"),
            Format::Text => eprintln!("{line}"),
        }
    })
}

fn print_summary(summary: &Summary, format: Format) -> ExitCode {
    match format {
        Format::Text => crate::stdout::out!("{}", summary.render()),
        Format::Json => crate::stdout::outln!("{}", serde_json::json!({ "summary": summary })),
    }
    if summary.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(super::USER_ERROR)
    }
}
