//! Language 1.1 forms this target does not emit (redirect parts) are
//! refused at compile time (fail closed), each naming its field; cors 1.1
//! compiles; `mirror` (advisory) is left
//! out with a warning, an error under `--strict`; `retry` `on: reset`
//! and redirect status 303 are carried out.

use gatefold_compiler::target::{check, Options};
use gatefold_target_envoy::Envoy as Target;

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
fn new_redirect_forms_are_refused_by_field_and_cors_forms_carried_out() {
    for (policy, field) in [
        ("{ redirect: { scheme: https } }", "scheme"),
        ("{ redirect: { host: new.example.com } }", "host"),
        ("{ redirect: { port: 8443 } }", "port"),
        ("{ redirect: { replace-prefix: /v2 } }", "replace-prefix"),
        ("{ redirect: { path: /v2 } }", "path"),
    ] {
        assert_eq!(gaps(policy, false), [(true, Some(field))], "{policy}");
    }
    // The 1.0 forms and the 1.1 additions it carries out compile cleanly
    // (cors 1.1 in the Lua filter: served by conformance
    // cors/wildcards-and-credentials).
    for policy in [
        "{ redirect: { to: /v2, status: 303 } }",
        "{ cors: { origins: [\"https://a.example\"], credentials: true } }",
        "{ cors: { origins: [\"https://*.example.com\"] } }",
        "{ cors: { origins: [\"https://a.example\"], methods: [\"*\"], headers: [\"*\"] } }",
        "{ cors: { origins: [\"*\"], credentials: true } }",
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
