//! The CLI contract: exit codes, diagnostics with file:line:col, byte-identical
//! output, explain's phase order and origins, the generated capability matrix.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn gatefold(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gatefold"))
        .args(args)
        .current_dir(repo())
        .output()
        .expect("gatefold runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gatefold-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A command line the CLI cannot parse is a user error (exit 1) with the
/// usage on stderr, never 2, which means "differences found"; `--help` and
/// `--version` succeed.
#[test]
fn usage_errors_exit_1_and_help_succeeds() {
    for args in [
        &["validate", "--bogus", "examples/quickstart"][..],
        &["diff", "examples/quickstart"][..],
        &["no-such-command"][..],
    ] {
        let o = gatefold(args);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", text(&o.stderr));
        assert!(
            text(&o.stderr).contains("Usage:"),
            "{args:?}: {}",
            text(&o.stderr)
        );
    }
    for args in [&["--help"][..], &["diff", "--help"][..], &["--version"][..]] {
        let o = gatefold(args);
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", text(&o.stderr));
        assert!(!o.stdout.is_empty(), "{args:?}");
    }
}

#[test]
fn examples_validate() {
    for e in [
        "examples/quickstart",
        "examples/petstore",
        "examples/kitchen-sink",
    ] {
        let out = gatefold(&["validate", e]);
        assert_eq!(out.status.code(), Some(0), "{e}: {}", text(&out.stderr));
    }
}

#[test]
fn a_bad_spec_exits_1_with_its_place() {
    let dir = scratch("bad");
    let spec = dir.join("spec.yaml");
    std::fs::write(
        &spec,
        "gatefold: 1\nupstreams:\n  u: { targets: [{ url: \"http://127.0.0.1:9\" }] }\napis:\n  a:\n    upstream: u\n    routes:\n      list:\n        path: /x\n        method: [GET]\n",
    )
    .unwrap();
    let out = gatefold(&["validate", spec.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains(&format!("{}:10:9", spec.display())), "{err}");
    assert!(err.contains("did you mean `methods`?"), "{err}");

    let out = gatefold(&["validate", spec.to_str().unwrap(), "--format", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["ok"], false);
    assert_eq!(report["diagnostics"][0]["code"], "unknown-key");
    assert_eq!(report["diagnostics"][0]["line"], 10);
    assert_eq!(report["diagnostics"][0]["column"], 9);
}

#[test]
fn compile_is_byte_identical() {
    let dir = scratch("compile");
    let (a, b) = (dir.join("a"), dir.join("b"));
    for out in [&a, &b] {
        let o = gatefold(&[
            "compile",
            "examples/petstore",
            "--target",
            "reference",
            "--out",
            out.to_str().unwrap(),
        ]);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    }
    let read = |d: &Path| std::fs::read(d.join("gatefold.ir.json")).unwrap();
    assert!(!read(&a).is_empty());
    assert_eq!(read(&a), read(&b));
}

#[test]
fn the_ir_does_not_depend_on_how_the_spec_path_is_typed() {
    let dir = scratch("spelling");
    let (a, b) = (dir.join("a"), dir.join("b"));
    for (spec, out) in [("examples/petstore", &a), ("./examples/petstore/", &b)] {
        let o = gatefold(&[
            "compile",
            spec,
            "--target",
            "reference",
            "--out",
            out.to_str().unwrap(),
        ]);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    }
    let read = |d: &Path| std::fs::read(d.join("gatefold.ir.json")).unwrap();
    assert_eq!(read(&a), read(&b));
}

#[test]
fn unknown_targets_are_user_errors() {
    let dir = scratch("target");
    let o = gatefold(&[
        "compile",
        "examples/petstore",
        "--target",
        "apache",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o.stderr).contains("`apache` is not a target"));
}

#[test]
fn explain_shows_the_chain_in_phase_order_with_origins() {
    let out = gatefold(&[
        "explain",
        "examples/petstore",
        "--route",
        "pets.delete",
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let routes: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let chain = routes[0]["chain"].as_array().unwrap();
    let kinds: Vec<&str> = chain.iter().map(|s| s["kind"].as_str().unwrap()).collect();
    // cors (phase 2) < key-auth (4) < acl (5) < rate-limit (6) < request-headers (10) < response-headers (13)
    let position = |k: &str| {
        kinds
            .iter()
            .position(|x| *x == k)
            .unwrap_or_else(|| panic!("{k} in {kinds:?}"))
    };
    assert!(position("cors") < position("key-auth"));
    assert!(position("key-auth") < position("acl"));
    assert!(position("acl") < position("rate-limit"));
    assert!(position("rate-limit") < position("request-headers"));
    assert!(position("request-headers") < position("response-headers"));
    let acl = &chain[position("acl")];
    assert_eq!(acl["level"], "route");
    assert_eq!(acl["via"][0], "staff-only");
    assert_eq!(chain[position("key-auth")]["level"], "api");

    let out = gatefold(&["explain", "examples/petstore", "--route", "pets.delete"]);
    let shown = text(&out.stdout);
    assert!(
        shown.contains("acl") && shown.contains("route via staff-only"),
        "{shown}"
    );
}

#[test]
fn the_capability_matrix_in_docs_is_generated() {
    let out = gatefold(&["capabilities"]);
    assert_eq!(out.status.code(), Some(0));
    let matrix = text(&out.stdout);
    let doc = std::fs::read_to_string(repo().join("docs/capabilities.md")).unwrap();
    assert!(
        doc.contains(&matrix),
        "docs/capabilities.md is stale: regenerate its table with `gatefold capabilities`"
    );
    let json = gatefold(&["capabilities", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["reference"]["kinds"]["mock"], "built-in");
    assert_eq!(v["reference"]["kinds"]["script"], "built-in");
    assert_eq!(v["nginx"]["kinds"]["script"], "emulated");
    assert_eq!(v["kong"]["kinds"]["jwt"], "emulated");
    // A service's `retries`; the fields Kong retries otherwise are
    // approximate (targets/kong/src/retry.rs).
    assert_eq!(v["kong"]["kinds"]["retry"], "built-in");
    assert_eq!(v["kong"]["kinds"]["cache"], "unsupported");
    assert!(v["reference"]["fields"].is_array());
}

/// What a target cannot carry out is refused at compile time, at its
/// place (a `native` nginx directive outside the subset nginx takes, in a
/// copy of kitchen-sink), nothing is written, and a compile writes a
/// manifest beside the files.
#[test]
fn compile_refuses_what_a_target_cannot_carry_out_and_writes_a_manifest() {
    let dir = scratch("fail-closed");
    let spec = dir.join("spec");
    std::fs::create_dir_all(spec.join("keys")).unwrap();
    for f in ["language-1-1.yaml", "keys/jwt-rs256.pub"] {
        std::fs::copy(repo().join("examples/kitchen-sink").join(f), spec.join(f)).unwrap();
    }
    let main = std::fs::read_to_string(repo().join("examples/kitchen-sink/gatefold.yaml")).unwrap();
    let hostile = main.replace(
        r#"directives: ["proxy_buffering off;"]"#,
        r#"directives: ["proxy_buffering off;", "return 200 hi;"]"#,
    );
    assert_ne!(main, hostile, "kitchen-sink changed");
    std::fs::write(spec.join("gatefold.yaml"), hostile).unwrap();
    let o = gatefold(&[
        "compile",
        spec.to_str().unwrap(),
        "--target",
        "nginx",
        "--out",
        dir.join("ks").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    let err = text(&o.stderr);
    assert!(
        err.contains("nginx directive `return` is not in the subset"),
        "{err}"
    );
    assert!(err.contains("route/catalog.export/native"), "{err}");
    assert!(err.contains("gatefold.yaml:"), "at its place: {err}");
    assert!(!err.contains("script"), "nginx runs scripts: {err}");
    assert!(!dir.join("ks/conf/nginx.conf").exists());
    assert!(!dir.join("ks").exists());
    // The reference gateway carries out everything: it compiles there.
    let o = gatefold(&[
        "compile",
        "examples/kitchen-sink",
        "--target",
        "reference",
        "--out",
        dir.join("ks-ref").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(dir.join("ks-ref/gatefold.ir.json").exists());

    let o = gatefold(&[
        "compile",
        "examples/petstore",
        "--target",
        "reference",
        "--out",
        dir.join("pets").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("pets/gatefold.manifest.json")).unwrap())
            .unwrap();
    assert_eq!(manifest["entry"], "gatefold.ir.json");
    assert_eq!(manifest["target"], "reference");
    assert!(manifest["secrets"]
        .as_array()
        .unwrap()
        .contains(&serde_json::json!({ "env": "STAFF_API_KEY" })));
}

/// Every reporting command answers `--format json` with a JSON report on
/// stdout, also when it fails before or instead of compiling.
#[test]
fn json_reports_on_failure() {
    let dir = scratch("json-failures");
    let bad = dir.join("bad.yaml");
    std::fs::write(
        &bad,
        "gatefold: 1\napis:\n  a:\n    routes:\n      r: { path: /r }\n",
    )
    .unwrap();
    let bad = bad.to_str().unwrap();
    let out = dir.join("out");
    let out = out.to_str().unwrap();
    for args in [
        &["explain", bad, "--format", "json"][..],
        &[
            "explain",
            "examples/petstore",
            "--route",
            "nope.none",
            "--format",
            "json",
        ],
        &[
            "explain",
            "examples/petstore",
            "--route",
            "nodot",
            "--format",
            "json",
        ],
        &[
            "compile",
            bad,
            "--target",
            "reference",
            "--out",
            out,
            "--format",
            "json",
        ],
        &[
            "compile",
            "examples/petstore",
            "--target",
            "apache",
            "--out",
            out,
            "--format",
            "json",
        ],
    ] {
        let o = gatefold(args);
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        let report: serde_json::Value = serde_json::from_slice(&o.stdout)
            .unwrap_or_else(|e| panic!("{args:?}: stdout is not JSON ({e}): {}", text(&o.stdout)));
        assert_eq!(report["ok"], false, "{args:?}");
        assert!(report["diagnostics"][0]["message"].is_string(), "{args:?}");
        assert!(o.stderr.is_empty(), "{args:?}: {}", text(&o.stderr));
    }
}

/// `script` runs in the request and the response phase, each with its cost
/// bound; `native` in none of the portable phases.
#[test]
fn explain_shows_script_and_native_phases() {
    let out = gatefold(&["explain", "examples/kitchen-sink"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    // A chain step: `  6. PHASES  KIND  ORIGIN  PLACE`.
    let line = |kind: &str| {
        shown
            .lines()
            .find(|l| l.split_whitespace().any(|w| w == kind))
            .unwrap_or_else(|| panic!("no `{kind}` step in:\n{shown}"))
            .to_string()
    };
    assert!(
        line("script").contains("request-script + response"),
        "{shown}"
    );
    assert!(
        line("native").contains("no phase (target-specific)"),
        "{shown}"
    );
    // Under the script's step: each side's phase and its cost bound.
    let bound = shown
        .lines()
        .find(|l| l.contains("script cost bound:"))
        .unwrap_or_else(|| panic!("no cost bound in:\n{shown}"));
    assert!(
        bound.contains("request-script: at most ") && bound.contains("; response: at most "),
        "{bound}"
    );
}

/// The acceptance check: each bad-spec case fails validation with exit 1
/// and names the place of its first error as `file:line:col`.
#[test]
fn every_bad_spec_fails_at_its_place() {
    let corpus = repo().join("compiler/tests/bad-specs");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&corpus)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir() || p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    cases.sort();
    assert!(cases.len() >= 35);
    let prefix = format!("{}/", repo().display());
    for case in cases {
        let rel = case.display().to_string().replacen(&prefix, "", 1);
        let compiled = gatefold_compiler::compile_path(&case);
        let first = compiled
            .diagnostics
            .iter()
            .find(|d| d.severity == gatefold_compiler::diag::Severity::Error)
            .unwrap_or_else(|| panic!("{rel}: no error"));
        let place = compiled
            .sources
            .locate(first.span.expect("placed"))
            .replacen(&prefix, "", 1);
        let out = gatefold(&["validate", &rel]);
        assert_eq!(out.status.code(), Some(1), "{rel}");
        let err = text(&out.stderr);
        assert!(err.contains(&place), "{rel}: `{place}` not in:\n{err}");
    }
}

/// `gatefold diff`: exit 0 when equal (a spec against its own compiled IR),
/// 2 when different (with the change in text and JSON), 1 on a bad spec.
#[test]
fn diff_exits_by_outcome() {
    let dir = scratch("diff");
    let o = gatefold(&[
        "compile",
        "examples/petstore",
        "--target",
        "reference",
        "--out",
        dir.join("ir").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let ir = dir.join("ir/gatefold.ir.json");
    let same = gatefold(&["diff", ir.to_str().unwrap(), "examples/petstore"]);
    assert_eq!(same.status.code(), Some(0), "{}", text(&same.stderr));
    assert_eq!(text(&same.stdout), "no changes\n");

    let spec = std::fs::read_to_string(repo().join("examples/petstore/gatefold.yaml")).unwrap();
    let changed = dir.join("changed.yaml");
    std::fs::write(&changed, spec.replacen("requests: 100", "requests: 150", 1)).unwrap();
    let o = gatefold(&["diff", "examples/petstore", changed.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    let shown = text(&o.stdout);
    assert!(shown.contains("~ policy api/pets/rate-limit"), "{shown}");
    assert!(shown.contains("policy.requests: 100 -> 150"), "{shown}");
    let o = gatefold(&[
        "diff",
        "examples/petstore",
        changed.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["equal"], false);
    assert_eq!(v["changes"].as_array().unwrap().len(), 1);
    assert_eq!(v["changes"][0]["subject"]["id"], "api/pets/rate-limit");

    let bad = dir.join("bad.yaml");
    std::fs::write(&bad, "gatefold: 1\napis: [\n").unwrap();
    let o = gatefold(&["diff", "examples/petstore", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
}

/// Fail closed: a `request-headers` value holding `$(`, which the Kong
/// target cannot carry out (request-transformer would evaluate it; not an
/// advisory kind), is an error at the policy's place with or without
/// `--strict` (never left out with a warning), and nothing is written.
#[test]
fn strict_turns_unsupported_policies_into_errors() {
    let dir = scratch("strict");
    let spec = dir.join("spec.yaml");
    std::fs::write(
        &spec,
        "gatefold: 1\nupstreams: { u: { targets: [{ url: \"http://127.0.0.1:9\" }] } }\napis:\n  a:\n    upstream: u\n    routes:\n      r:\n        path: /\n        policies:\n          - request-headers: { set: { x-a: \"$(uri)\" } }\n",
    )
    .unwrap();
    let spec_arg = spec.to_str().unwrap();
    for strict in [false, true] {
        let out = dir.join(format!("out-{strict}"));
        let mut args = vec![
            "compile",
            spec_arg,
            "--target",
            "kong",
            "--out",
            out.to_str().unwrap(),
        ];
        if strict {
            args.push("--strict");
        }
        let o = gatefold(&args);
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "strict={strict}: {err}");
        assert!(
            err.contains("error")
                && err.contains(
                    "cannot carry it out: `request-headers` option `set: with $(` (policy `route/a.r/request-headers` on route `a.r`)"
                ),
            "{err}"
        );
        assert!(err.contains(&format!("{}:10:13", spec.display())), "{err}");
        // Nothing is written, so the error must not say the policy "is left out".
        assert!(!err.contains("it is left out"), "{err}");
        assert!(!out.exists());
    }
}

/// A route name alone (`hello`) is not a route id: the error suggests the
/// full `API.ROUTE` that has that name, in text and JSON.
#[test]
fn explain_suggests_the_full_route_id() {
    let out = gatefold(&["explain", "examples/quickstart", "--route", "legacy"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("did you mean `--route hello.legacy`?"),
        "{err}"
    );
    let out = gatefold(&[
        "explain",
        "examples/quickstart",
        "--route",
        "hello.legacyy",
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        report["diagnostics"][0]["help"],
        "did you mean `--route hello.legacy`?"
    );
}

/// `explain` shows the `location` a redirect builds, with the parts taken
/// from the request in `<...>` (language 1.1), in text and JSON.
#[test]
fn explain_shows_the_location_a_redirect_builds() {
    for (route, location) in [
        ("moved.to-https", "https://<host><path>[?<query>]"),
        (
            "moved.new-host",
            "<scheme>://new.example.com:8443<path>[?<query>]",
        ),
        (
            "moved.v1",
            "<scheme>://<host>[:<port>]/v2<rest after /v1>[?<query>]",
        ),
        (
            "moved.item",
            "<scheme>://<host>[:<port>]/catalog/{id}[?<query>]",
        ),
        ("catalog.old-item", "/catalog/{id}[?<query>]"),
    ] {
        let out = gatefold(&["explain", "examples/kitchen-sink", "--route", route]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let shown = text(&out.stdout);
        assert!(
            shown.contains(&format!("  redirects to {location}\n")),
            "{route}: {shown}"
        );
        let out = gatefold(&[
            "explain",
            "examples/kitchen-sink",
            "--route",
            route,
            "--format",
            "json",
        ]);
        let items: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(items[0]["redirects-to"], location, "{route}");
    }
}

/// A route answered by `mock` or `redirect` sends nothing upstream, though
/// its api names an upstream: explain must not show one.
#[test]
fn explain_shows_no_upstream_on_routes_that_answer_themselves() {
    for (route, kind) in [("catalog.teapot", "mock"), ("catalog.old-item", "redirect")] {
        let out = gatefold(&["explain", "examples/kitchen-sink", "--route", route]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let shown = text(&out.stdout);
        assert!(
            shown.contains(&format!("upstream: (none: answered by `{kind}`)")),
            "{shown}"
        );
        let out = gatefold(&[
            "explain",
            "examples/kitchen-sink",
            "--route",
            route,
            "--format",
            "json",
        ]);
        let items: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(items[0]["upstream"], serde_json::Value::Null, "{items}");
        assert_eq!(items[0]["answered-by"], kind);
    }
}

/// `gatefold explain SPEC | head`: the reader goes away before the report is
/// written. The command stops quietly (exit 0, nothing on stderr) instead
/// of panicking on the closed pipe, as `print!` would.
#[test]
fn a_closed_stdout_pipe_ends_a_report_quietly() {
    for args in [
        &["explain", "examples/petstore"][..],
        &["explain", "examples/petstore", "--format", "json"][..],
        &["capabilities"][..],
    ] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_gatefold"))
            .args(args)
            .current_dir(repo())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("gatefold runs");
        // Close the read end before gatefold has written anything.
        drop(child.stdout.take());
        let out = child.wait_with_output().expect("gatefold ends");
        let err = text(&out.stderr);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert_eq!(out.status.code(), Some(0), "{args:?}: {err}");
    }
}
