//! The bad-spec corpus: every case under `tests/bad-specs/` is one mistake a
//! real user makes (a `NN-name.yaml` file, or a `NN-name/` folder of files).
//! Each must fail to compile, and its rendered diagnostics are snapshotted
//! verbatim, so where they point and what they suggest is reviewed like code.

use gatefold_compiler::compile_path;
use gatefold_compiler::diag::Severity;
use std::path::{Path, PathBuf};

/// Relative to the crate, so file names in the snapshots are the same on
/// every machine (cargo runs integration tests from the crate folder).
const CORPUS: &str = "tests/bad-specs";

fn cases() -> Vec<PathBuf> {
    let mut cases: Vec<PathBuf> = std::fs::read_dir(CORPUS)
        .expect("run from the compiler crate folder")
        .map(|e| e.expect("readable corpus").path())
        .filter(|p| p.is_dir() || p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    cases.sort();
    cases
}

fn case_name(path: &Path) -> String {
    let stem = path.file_stem().expect("case has a name");
    stem.to_string_lossy().into_owned()
}

#[test]
fn the_corpus_is_large_enough() {
    assert!(cases().len() >= 35, "expected at least 35 bad specs");
}

#[test]
fn every_bad_spec_fails_with_a_placed_and_helpful_diagnostic() {
    for case in cases() {
        let compiled = compile_path(&case);
        assert!(
            compiled.ir.is_none(),
            "{} compiled, but it is meant to fail",
            case.display()
        );
        let rendered = compiled.render();
        for d in compiled.diagnostics.iter() {
            let what = format!("{}: [{}] {}", case.display(), d.code, d.message);
            assert!(d.span.is_some(), "{what}: no place in the spec");
            assert!(d.help.is_some(), "{what}: no help line");
        }
        assert!(
            compiled
                .diagnostics
                .iter()
                .any(|d| d.severity == Severity::Error),
            "{}: no error",
            case.display()
        );
        insta::assert_snapshot!(case_name(&case), rendered);
    }
}

/// `disable` naming a kind that is not inherited removes nothing: a warning
/// (the spec still compiles), placed at the entry and snapshotted like the
/// errors.
#[test]
fn disable_of_a_kind_not_inherited_is_a_warning() {
    let text = "gatefold: 1

upstreams:
  pets:
    targets: [{ url: \"http://127.0.0.1:9001\" }]

apis:
  pets:
    upstream: pets
    routes:
      list: { path: /pets, methods: [GET], disable: [cors] }
";
    let compiled = gatefold_compiler::compile_str("disable-not-inherited.yaml", text);
    assert!(compiled.ir.is_some(), "{}", compiled.render());
    let codes: Vec<_> = compiled
        .diagnostics
        .iter()
        .map(|d| (d.severity, d.code))
        .collect();
    assert_eq!(codes, [(Severity::Warning, "disable-nothing")]);
    insta::assert_snapshot!(compiled.render());
}

/// Language 1.1 allows `credentials: true` with origin `*` (answered with
/// the request's origin), with a warning at `credentials` saying what it
/// opens, snapshotted like the errors.
#[test]
fn cors_credentials_with_any_origin_is_a_warning() {
    let text = "gatefold: 1

upstreams:
  app:
    targets: [{ url: \"http://127.0.0.1:9001\" }]

apis:
  app:
    upstream: app
    policies:
      - cors: { origins: [\"*\"], credentials: true }
    routes:
      all: { path: /* }
";
    let compiled = gatefold_compiler::compile_str("cors-credentials-any-origin.yaml", text);
    assert!(compiled.ir.is_some(), "{}", compiled.render());
    let codes: Vec<_> = compiled
        .diagnostics
        .iter()
        .map(|d| (d.severity, d.code))
        .collect();
    assert_eq!(codes, [(Severity::Warning, "cors-credentials-any-origin")]);
    assert!(compiled.diagnostics.iter().all(|d| d.help.is_some()));
    insta::assert_snapshot!(compiled.render());
}
