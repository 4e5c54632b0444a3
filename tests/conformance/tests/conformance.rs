//! The conformance suite: every scenario on every target of
//! `targets::all()`, the matrix in `docs/conformance.md` kept in sync, and
//! the suite's targets kept equal to `gatefold capabilities`.

use gatefold_compiler::ir::TargetKind;
use gatefold_conformance::matrix::{document, Row};
use gatefold_conformance::run::{declared_approximate, run, Env, Outcome};
use gatefold_conformance::scenario::{load_all, scenarios_dir, Placeholders, ScenarioFile};
use gatefold_conformance::targets;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The size goal: at least this many scenarios and requests.
const MIN_SCENARIOS: usize = 60;
const MIN_REQUESTS: usize = 300;

#[test]
fn scenarios_parse_reach_the_size_goal_and_declare_only_declared_deviations() {
    let files = load_all(&scenarios_dir()).unwrap();
    let mut requests = 0;
    let all = targets::all();
    let mut problems = Vec::new();
    for f in &files {
        match f.parse(&Placeholders::dummy()) {
            Ok(s) => {
                requests += s.requests.len();
                for (name, d) in &s.deviations {
                    match all.iter().find(|t| t.kind().as_str() == name) {
                        // A deviation for a target not built in yet is
                        // checked once it is.
                        None if TargetKind::parse(name).is_some() => {}
                        None => problems.push(format!("{}: no target `{name}`", f.id)),
                        Some(t) if declared_approximate(t.as_ref(), d).is_none() => problems.push(
                            format!("{}: {name} does not declare `{}` approximate", f.id, d.kind),
                        ),
                        Some(_) => {}
                    }
                }
            }
            Err(e) => problems.push(e),
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(
        files.len() >= MIN_SCENARIOS && requests >= MIN_REQUESTS,
        "{} scenarios and {requests} requests; the goal is {MIN_SCENARIOS} and {MIN_REQUESTS}",
        files.len()
    );
}

#[test]
fn the_suite_runs_the_targets_gatefold_capabilities_lists() {
    // docs/capabilities.md holds `gatefold capabilities` (the CLI's tests
    // check that): the same matrix from the suite's targets means the suite
    // runs exactly the targets the CLI carries, with the same declarations.
    // In the CLI's order: nginx, envoy, kong, cloudflare, then reference.
    let mut all = targets::pending();
    all.extend(targets::all());
    let order = [
        TargetKind::Nginx,
        TargetKind::Envoy,
        TargetKind::Kong,
        TargetKind::Cloudflare,
        TargetKind::Reference,
    ];
    all.sort_by_key(|t| order.iter().position(|k| *k == t.kind()));
    let refs: Vec<&dyn gatefold_compiler::target::Target> =
        all.iter().map(|t| t.as_ref()).collect();
    let matrix = gatefold_compiler::target::matrix_markdown(&refs);
    let doc = std::fs::read_to_string(repo().join("docs/capabilities.md")).unwrap();
    assert!(
        doc.contains(&matrix),
        "the suite's targets and pending targets (tests/conformance/src/targets.rs) differ from `gatefold capabilities` (docs/capabilities.md); the suite's matrix:\n{matrix}"
    );
}

#[test]
fn every_scenario_on_every_target() {
    let only = std::env::var("GATEFOLD_CONFORMANCE_ONLY").ok();
    let wanted = std::env::var("GATEFOLD_CONFORMANCE_TARGETS").ok();
    let files: Vec<_> = load_all(&scenarios_dir())
        .unwrap()
        .into_iter()
        .filter(|f| only.as_deref().is_none_or(|w| f.id.contains(w)))
        .collect();
    let all: Vec<_> = targets::all()
        .into_iter()
        .filter(|t| {
            wanted
                .as_deref()
                .is_none_or(|w| w.split(',').any(|n| n.trim() == t.kind().as_str()))
        })
        .collect();
    let scratch = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("conformance");
    let kinds: Vec<TargetKind> = all.iter().map(|t| t.kind()).collect();
    let columns = run_all(&files, &kinds, &scratch);
    let mut failures = Vec::new();
    let mut rows = Vec::new();
    for (i, f) in files.iter().enumerate() {
        let parsed = f.parse(&Placeholders::dummy());
        let (about, requests) = match &parsed {
            Ok(s) => (s.about.clone(), s.requests.len()),
            Err(e) => (e.clone(), 0),
        };
        let cells: Vec<Outcome> = columns.iter().map(|c| c[i].clone()).collect();
        for (t, cell) in all.iter().zip(&cells) {
            if let Outcome::Fail(why) = cell {
                failures.push(format!("{} on {}:\n  {}", f.id, t.kind(), why.join("\n  ")));
            }
        }
        rows.push(Row {
            id: f.id.clone(),
            about,
            requests,
            cells,
        });
    }
    assert!(
        failures.is_empty(),
        "{} scenario runs failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    if only.is_some() || wanted.is_some() {
        return;
    }
    let text = document(&kinds, &rows);
    let path = repo().join("docs/conformance.md");
    if std::env::var_os("GATEFOLD_BLESS").is_some() {
        std::fs::write(&path, &text).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == text,
        "docs/conformance.md is stale: rerun with GATEFOLD_BLESS=1 (cargo test -p gatefold-conformance) and review the diff"
    );
}

/// Scenario runs at once (`GATEFOLD_CONFORMANCE_JOBS` overrides). Most of a
/// run is waiting for a runtime to start, answer and stop, so more runs than
/// cores keep the cores busy; one thread per target left the suite waiting
/// on Envoy, the slowest to start, long after the other columns were done.
fn jobs() -> usize {
    std::env::var("GATEFOLD_CONFORMANCE_JOBS")
        .ok()
        .and_then(|n| n.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(4)
}

/// Runs every file on every target of `kinds`; the outcomes per target, in
/// the order of `files`. Worker threads take the next (scenario, target)
/// pair from one shared queue; each has its own echo upstreams and its own
/// targets (a target is not `Sync`), and runs one scenario at a time, as the
/// upstreams' counters expect.
fn run_all(files: &[ScenarioFile], kinds: &[TargetKind], scratch: &Path) -> Vec<Vec<Outcome>> {
    // Scenario-major order, so every target's runs are spread over the
    // whole suite rather than one target's all at the end.
    let pairs: Vec<(usize, usize)> = (0..files.len())
        .flat_map(|f| (0..kinds.len()).map(move |k| (f, k)))
        .collect();
    let next = AtomicUsize::new(0);
    let done: Mutex<Vec<Vec<Option<Outcome>>>> =
        Mutex::new(vec![vec![None; files.len()]; kinds.len()]);
    std::thread::scope(|scope| {
        for _ in 0..jobs().min(pairs.len()) {
            scope.spawn(|| {
                let targets = targets::all();
                let env = Env::new(scratch.to_path_buf()).expect("echo upstreams start");
                while let Some(&(f, k)) = pairs.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let t = targets
                        .iter()
                        .find(|t| t.kind() == kinds[k])
                        .expect("the target");
                    let started = std::time::Instant::now();
                    let outcome = run(&files[f], t.as_ref(), &env);
                    eprintln!(
                        "{:<10} {:<50} {} ({} ms)",
                        kinds[k],
                        files[f].id,
                        outcome.cell(),
                        started.elapsed().as_millis()
                    );
                    done.lock().unwrap()[k][f] = Some(outcome);
                }
            });
        }
    });
    done.into_inner()
        .unwrap()
        .into_iter()
        .map(|column| {
            column
                .into_iter()
                .map(|o| o.expect("every pair ran"))
                .collect()
        })
        .collect()
}
