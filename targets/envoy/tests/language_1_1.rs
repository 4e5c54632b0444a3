//! Language 1.1 redirect parts and cors forms compile; `mirror` (advisory)
//! is approximate, a warning, an error under `--strict`; `retry` `on: reset`
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
fn redirect_and_cors_forms_compile() {
    // Redirect parts and cors 1.1 in the Lua filter: served by conformance
    // redirects/*, cors/wildcards-and-credentials.
    for policy in [
        "{ redirect: { to: /v2, status: 303 } }",
        "{ redirect: { to: \"https://a.example/x?y=1\" } }",
        "{ redirect: { scheme: https } }",
        "{ redirect: { host: new.example.com, port: 8443 } }",
        "{ redirect: { replace-prefix: /v2 } }",
        "{ redirect: { path: /v2, status: 303 } }",
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

/// `mirror` is Envoy's request mirroring, which differs in what the copy
/// carries (`Support::Approximate`, served in `policies`): advisory, so a
/// warning, an error under `--strict`.
#[test]
fn mirror_is_approximate_with_a_warning() {
    let policy = "{ mirror: { upstream: shadow, percent: 10 } }";
    assert_eq!(gaps(policy, false), [(false, None)]);
    assert_eq!(gaps(policy, true), [(true, None)]);
}
