//! Every language 1.1 policy form is carried out (redirect parts, cors
//! wildcards and credentials, `retry` `on: reset`, status 303): no gap,
//! even under `--strict`; their behaviour over real nginx is the
//! conformance suite's. `mirror` (advisory) is left out with a warning, an
//! error under `--strict`.

use gatefold_compiler::target::{check, Options};
use gatefold_target_nginx::Nginx as Target;

fn compile(policy: &str) -> gatefold_compiler::ir::ValidIr {
    let text = format!(
        "gatefold: 1
upstreams:
  u: {{ targets: [{{ url: \"http://127.0.0.1:9000\" }}] }}
  shadow: {{ targets: [{{ url: \"http://127.0.0.1:9001\" }}] }}
apis:
  a:
    upstream: u
    routes:
      r: {{ path: /v1/*, policies: [{policy}] }}
"
    );
    let compiled = gatefold_compiler::compile_str("t.yaml", &text);
    match compiled.ir {
        Some(ir) => ir,
        None => panic!("{}", compiled.render()),
    }
}

/// (error, field) of each gap.
fn gaps(policy: &str, strict: bool) -> Vec<(bool, Option<&'static str>)> {
    let options = Options {
        strict,
        ..Options::default()
    };
    check(&Target::default(), &compile(policy), &options)
        .into_iter()
        .map(|g| (g.error, g.field))
        .collect()
}

#[test]
fn new_redirect_and_cors_forms_compile_cleanly() {
    for (policy, field) in [
        ("{ redirect: { scheme: https } }", "scheme"),
        ("{ redirect: { host: new.example.com } }", "host"),
        ("{ redirect: { port: 8443 } }", "port"),
        ("{ redirect: { replace-prefix: /v2 } }", "replace-prefix"),
        ("{ redirect: { path: /v2 } }", "path"),
        (
            "{ cors: { origins: [\"https://*.example.com\"] } }",
            "origins",
        ),
        (
            "{ cors: { origins: [\"https://a.example\"], methods: [\"*\"] } }",
            "methods",
        ),
        (
            "{ cors: { origins: [\"https://a.example\"], headers: [\"*\"] } }",
            "headers",
        ),
        (
            "{ cors: { origins: [\"*\"], credentials: true } }",
            "credentials",
        ),
    ] {
        assert_eq!(gaps(policy, true), [], "{policy} ({field})");
    }
    // The 1.0 forms too.
    for policy in [
        "{ redirect: { to: /v2, status: 303 } }",
        "{ cors: { origins: [\"https://a.example\"], credentials: true } }",
    ] {
        assert_eq!(gaps(policy, true), [], "{policy}");
    }
    // `reset` adds no gap to what `retry` has on this target anyway.
    assert_eq!(
        gaps(
            "{ retry: { attempts: 1, on: [connect-failure, reset] } }",
            false
        ),
        gaps("{ retry: { attempts: 1, on: [connect-failure] } }", false)
    );
}

#[test]
fn mirror_is_left_out_with_a_warning() {
    let policy = "{ mirror: { upstream: shadow, percent: 10 } }";
    assert_eq!(gaps(policy, false), [(false, None)]);
    assert_eq!(gaps(policy, true), [(true, None)]);
}
