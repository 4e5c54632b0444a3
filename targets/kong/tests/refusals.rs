//! Kinds the Kong target cannot carry out exactly are refused before
//! anything is written (security kinds always), naming the policy.

use crate::common;

use common::*;
use gatefold_compiler::ir::PolicyKind;
use gatefold_compiler::target::Target;
use gatefold_target_kong::Kong;

fn spec(policy: &str) -> String {
    format!(
        r#"
gatefold: 1
gateway: {{ name: g, listen: 8080 }}
upstreams: {{ u: {{ targets: [{{ url: "http://127.0.0.1:9001" }}] }} }}
consumers: {{ a: {{ credentials: {{ key: {{ env: A_KEY }}, basic: {{ user: a, password: {{ env: A_PASS }} }} }} }} }}
apis:
  a:
    upstream: u
    routes:
      one: {{ path: /one, policies: [{policy}] }}
"#
    )
}

/// The error gaps of a spec with one policy on one route.
fn refused(policy: &str) -> Vec<(PolicyKind, Option<&'static str>)> {
    let ir = compile(&spec(policy));
    gaps(&ir)
        .into_iter()
        .filter(|g| g.error)
        .map(|g| (g.policy.kind, g.field))
        .collect()
}

#[test]
fn security_kinds_done_in_lua_are_accepted() {
    // ip-filter, request-size-limit and rate-limit are Lua in
    // pre-function / post-function in the spec's phase order (tests/functions.rs).
    assert!(refused("{ ip-filter: { deny: [192.0.2.0/24] } }").is_empty());
    assert!(refused("{ request-size-limit: { max: 1KiB } }").is_empty());
    assert!(refused("{ rate-limit: { requests: 10, per: 1m, key: ip } }").is_empty());
}

#[test]
fn a_retry_that_retries_is_approximate_not_refused() {
    // Kong's service `retries` (tests/retry.rs): a warning per field that
    // differs, never an error (retry is not a security kind).
    assert!(refused("{ retry: { attempts: 2, on: [connect-failure, 502] } }").is_empty());
    let ir = compile(&spec(
        "{ retry: { attempts: 2, on: [connect-failure, 502] } }",
    ));
    let fields: Vec<_> = gaps(&ir)
        .into_iter()
        .map(|g| (g.policy.kind, g.field, g.value))
        .collect();
    assert_eq!(
        fields,
        vec![
            (PolicyKind::Retry, Some("attempts"), Some("over 0")),
            (PolicyKind::Retry, Some("on"), Some("500, 502, 503, 504")),
        ]
    );
}

#[test]
fn templated_request_headers_are_refused() {
    assert!(refused("{ mock: { body: hi, headers: { x-a: b } } }").is_empty());
    assert_eq!(
        refused("{ request-headers: { set: { x-a: \"$(uri_captures.x)\" } } }"),
        vec![(PolicyKind::RequestHeaders, Some("set"))]
    );
}

#[test]
fn accepted_kinds_pass() {
    assert!(refused("{ key-auth: { in: query, name: apikey } }").is_empty());
    assert!(refused("{ mock: { body: hi } }").is_empty());
    // Lua at phase 9 (tests/redirect.rs).
    assert!(refused("{ redirect: { to: /elsewhere } }").is_empty());
}

#[test]
fn a_choice_of_methods_with_a_query_key_or_a_request_script_is_refused() {
    // A choice of methods is Lua (auth.rs), which does not remove a query
    // key yet nor defer removing a credential past a request script.
    let header = compile(&spec(
        "{ key-auth: { in: header, name: x-key } }, { basic-auth: {} }",
    ));
    assert!(!Kong.spec_diagnostics(&header).has_errors());
    let query = compile(&spec(
        "{ key-auth: { in: query, name: k } }, { basic-auth: {} }",
    ));
    let d = Kong.spec_diagnostics(&query);
    assert!(
        d.iter().any(|x| x.message.contains("(a query key)")),
        "{d:?}"
    );
    let script = compile(&spec(
        "{ key-auth: { in: header, name: x-key } }, { basic-auth: {} }, { script: { request: \"ctx.a = 1;\" } }",
    ));
    let d = Kong.spec_diagnostics(&script);
    assert!(
        d.iter().any(|x| x
            .message
            .contains("beside a choice of authentication methods")),
        "{d:?}"
    );
    let one = compile(&spec("{ key-auth: { in: query, name: k } }"));
    assert!(!Kong.spec_diagnostics(&one).has_errors());
}

#[test]
fn upstream_retries_are_warnings() {
    // Kong retries on connection errors and timeouts only, never on an
    // answer's status; the spec also on statuses: declared, not refused.
    let ir = compile(
        r#"
gatefold: 1
gateway: { name: g, listen: 8080 }
upstreams: { u: { targets: [{ url: "http://127.0.0.1:9001" }], retries: { attempts: 2, on: [502] } } }
apis: { a: { upstream: u, routes: { one: { path: /one } } } }
"#,
    );
    let d = Kong.spec_diagnostics(&ir);
    assert!(!d.has_errors(), "{d:?}");
    let messages: Vec<&str> = d.iter().map(|x| x.message.as_str()).collect();
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert!(
        messages[0].contains("upstream `u`")
            && messages[0].contains("never retries on an answer's status"),
        "{messages:?}"
    );
}
