//! The runner's own rules, with stand-in targets (the reference target
//! under declarations it does not really make): a declared deviation is
//! asserted (it passes only when the deviating expectation holds), one the
//! target does not declare fails, a kind the target cannot carry out is
//! "refused at compile", and a wrong expectation fails.

use gatefold_compiler::ir::{PolicyKind, TargetKind, ValidIr};
use gatefold_compiler::target::{Options, Output, Support, Target};
use gatefold_conformance::run::{run, Env, Outcome};
use gatefold_conformance::scenario::ScenarioFile;
use gatefold_target_reference::Reference;
use std::path::PathBuf;

/// The reference target, declaring `kind` as `support`.
struct Declaring(PolicyKind, Support);

impl Target for Declaring {
    fn kind(&self) -> TargetKind {
        TargetKind::Reference
    }
    fn support(&self, kind: PolicyKind) -> Support {
        if kind == self.0 {
            self.1
        } else {
            Reference.support(kind)
        }
    }
    fn emit(&self, ir: &ValidIr, options: &Options) -> Output {
        Reference.emit(ir, options)
    }
}

fn env(tag: &str) -> Env {
    Env::new(PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("runner-{tag}"))).unwrap()
}

fn file(id: &str, text: &str) -> ScenarioFile {
    ScenarioFile {
        id: id.into(),
        path: PathBuf::from(format!("{id}.yaml")),
        text: text.into(),
    }
}

/// A deprecation scenario; on `reference` a deviation says the headers are
/// missing, with `want` as the deviating status.
fn deprecation(deviation_status: u16) -> ScenarioFile {
    file(
        "test/deprecation",
        &format!(
            r#"about: test
spec: |
  gatefold: 1
  apis:
    main:
      policies: [{{ deprecation: {{ since: "2025-01-01" }} }}]
      routes:
        m: {{ path: /m, policies: [{{ mock: {{ body: hi }} }}] }}
requests:
  - path: /m
    expect: {{ status: 200, headers: {{ deprecation: "@1735689600" }} }}
deviations:
  reference:
    kind: deprecation
    expect:
      0: {{ status: {deviation_status}, body: hi }}
"#
        ),
    )
}

const APPROXIMATE: Support = Support::Approximate {
    note: "a test declaration",
};

#[test]
fn a_declared_deviation_is_asserted_never_skipped() {
    let env = env("declared");
    let approx = Declaring(PolicyKind::Deprecation, APPROXIMATE);
    assert_eq!(
        run(&deprecation(200), &approx, &env),
        Outcome::Deviation("`deprecation`".into())
    );
    // The deviating expectation is checked: a wrong one fails.
    let wrong = run(&deprecation(418), &approx, &env);
    assert!(
        matches!(&wrong, Outcome::Fail(why) if why[0].contains("status 200 (want 418)")),
        "{wrong:?}"
    );
}

#[test]
fn a_deviation_the_target_does_not_declare_fails() {
    let env = env("undeclared");
    let outcome = run(&deprecation(200), &Reference, &env);
    assert!(
        matches!(&outcome, Outcome::Fail(why) if why[0].contains("does not declare it approximate")),
        "{outcome:?}"
    );
}

#[test]
fn a_kind_the_target_cannot_carry_out_is_refused_at_compile() {
    let env = env("refused");
    let scenario = file(
        "test/refused",
        r#"about: test
env: { K: k }
spec: |
  gatefold: 1
  consumers:
    c: { credentials: { key: { env: K } } }
  apis:
    main:
      policies: [{ key-auth: {} }]
      routes:
        m: { path: /m, policies: [{ mock: { body: hi } }] }
requests:
  - { path: /m, headers: ["x-api-key: k"], expect: { status: 200 } }
"#,
    );
    // key-auth is a security kind: approximate is refused too (fail closed).
    for support in [Support::Unsupported, APPROXIMATE] {
        let t = Declaring(PolicyKind::KeyAuth, support);
        assert_eq!(
            run(&scenario, &t, &env),
            Outcome::Refused("`key-auth`".into())
        );
    }
    assert_eq!(run(&scenario, &Reference, &env), Outcome::Pass);
}

#[test]
fn an_advisory_kind_left_out_counts_as_refused_at_compile() {
    let env = env("left-out");
    let scenario = file(
        "test/left-out",
        r#"about: test
spec: |
  gatefold: 1
  apis:
    main:
      policies: [{ deprecation: {} }]
      routes:
        m: { path: /m, policies: [{ mock: { body: hi } }] }
requests:
  - { path: /m, expect: { status: 200, headers: { deprecation: "@0" } } }
"#,
    );
    let lacking = Declaring(PolicyKind::Deprecation, Support::Unsupported);
    assert_eq!(
        run(&scenario, &lacking, &env),
        Outcome::Refused("`deprecation` left out".into())
    );
}

#[test]
fn every_part_of_an_expectation_is_compared() {
    let env = env("compared");
    let scenario = file(
        "test/compared",
        r#"about: test
spec: |
  gatefold: 1
  upstreams:
    a: { targets: [{ url: "{{echo}}" }] }
  apis:
    main:
      upstream: a
      routes:
        all: { path: /* }
requests:
  - path: /x?q=1
    expect:
      status: 201
      headers: { x-echo: b }
      present: [x-nope]
      absent: [x-echo]
      body: other
      body-contains: zzz
      body-size: 99
      upstream: { echo: b, method: POST, path: /y, query: q=2, headers: { x-h: v }, present: [x-p], absent: [host], body-size: 5, count: 2 }
  - path: /x
    expect: { status: 200, upstream: none }
"#,
    );
    let Outcome::Fail(why) = run(&scenario, &Reference, &env) else {
        panic!("a scenario whose every expectation is wrong fails");
    };
    let text = why.join("\n");
    for part in [
        "status 200 (want 201)",
        "header x-echo: \"a\" (want \"b\")",
        "no header x-nope",
        "header x-echo: \"a\" (want none)",
        "body \"echo:a\" (want \"other\")",
        "want it to contain \"zzz\"",
        "body of 6 bytes (want 99)",
        "upstream echo \"a\" (want \"b\")",
        "upstream method \"GET\" (want \"POST\")",
        "upstream path \"/x\" (want \"/y\")",
        "upstream query \"q=1\" (want \"q=2\")",
        "upstream: no header x-h",
        "upstream: no header x-p",
        "upstream header host:",
        "upstream body of 0 bytes (want 5)",
        "1 upstream requests (want 2)",
        "request 1 (GET /x): the upstream received GET /x (want nothing)",
    ] {
        assert!(text.contains(part), "missing {part:?} in:\n{text}");
    }
}

#[test]
fn nginx_gets_a_secret_file_for_each_tls_key_kept_in_the_environment() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("runner-secret-files");
    let _ = std::fs::remove_dir_all(&dir);
    gatefold_conformance::tls::Certs::make()
        .unwrap()
        .write(&dir)
        .unwrap();
    std::fs::write(
        dir.join("gatefold.yaml"),
        "gatefold: 1
gateway:
  tls:
    listen: 8443
    certificates:
      - { cert: { file: certs/a.pem }, key: { file: certs/a.key } }
      - { cert: { file: certs/b.pem }, key: { env: KEY_B } }
apis:
  main:
    routes:
      m: { path: /m, policies: [{ mock: {} }] }
",
    )
    .unwrap();
    let compiled = gatefold_compiler::compile_path(&dir);
    let ir = compiled.ir.as_ref().expect("the spec compiles");
    use gatefold_runtime::launch::secret_files;
    assert_eq!(
        secret_files(TargetKind::Nginx, ir),
        [("keys/cert-1.key".to_string(), "KEY_B".to_string())].into(),
        "the second certificate's key, at the nginx target's tls_key_file(1)"
    );
    assert!(secret_files(TargetKind::Reference, ir).is_empty());
}
