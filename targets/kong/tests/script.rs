//! Scripts on Kong: the emitted post-function Lua run under luajit against
//! a Kong-PDK stand-in (tests/lua/kong_pdk_standin.lua, not Kong) in the
//! sandbox Kong gives such code: upstream headers and path set, respond()
//! ending the request, ctx carried from request to response, and a run-time
//! failure on either side answering 500 {"error":"script failed"} with the
//! failing operation's spec position logged.

mod common;

use common::*;
use serde_json::Value;

const SPEC: &str = r#"
gatefold: 1
gateway: { name: g, listen: 8080 }
upstreams: { u: { targets: [{ url: "http://127.0.0.1:9001" }] } }
apis:
  a:
    upstream: u
    policies:
      - script:
          request: |
            const v = req.header("x-version");
            if (v === "2") { req.setHeader("x-upstream-version", "2"); }
            const tenant = req.query("tenant");
            if (!tenant) { return respond(400, { error: "tenant required" }, { "x-why": "no tenant" }); }
            if (tenant === "boom") { req.header("x-missing").trim(); }
            ctx.tenant = tenant.toLowerCase();
            req.setPath("/" + ctx.tenant + req.path);
          response: |
            res.setHeader("x-tenant", ctx.tenant ?? "none");
            if (res.status >= 500) { res.setHeader("cache-control", "no-store"); }
            if (res.header("x-fail") === "yes") { res.header("x-missing").trim(); }
    routes:
      items: { path: /items }
"#;

/// The post-function plugin's config (the route's, else the global one).
fn functions() -> Value {
    function_config(&text(&emit(&compile(SPEC))), "post-function", "a.items")
}

/// Runs `body` (Lua using `S`, `access`, `header_filter`, `body_filter`:
/// the post-function's lists of functions) under luajit; its stdout.
fn run(body: &str) -> String {
    let c = functions();
    run_lua(&format!(
        "local access = {}\nlocal header_filter = {}\nlocal body_filter = {}\n{body}",
        lua_phase(&c, "access"),
        lua_phase(&c, "header_filter"),
        lua_phase(&c, "body_filter")
    ))
}

/// Lua printing the state after a request: status, body, headers, logs.
const SHOW: &str = r#"
local function show(st)
  print("exited " .. tostring(st.exited == true))
  print("status " .. tostring(st.status))
  print("body " .. tostring(st.body))
  print("path " .. tostring(st.upstream_path))
  for _, kv in ipairs(st.headers) do print("req " .. kv[1] .. ": " .. kv[2]) end
  for _, kv in ipairs(st.res_headers) do print("res " .. kv[1] .. ": " .. kv[2]) end
  for _, l in ipairs(st.logs) do print("log " .. l) end
end
"#;

/// The spec line holding `needle` (1-based), for the logged position.
fn line_of(needle: &str) -> usize {
    SPEC.lines().position(|l| l.contains(needle)).unwrap() + 1
}

#[test]
fn a_request_goes_on_with_its_changes_and_ctx_reaches_the_response() {
    let out = run(&format!(
        r#"{SHOW}
local st = S.request({{ method = "GET", path = "/items", ip = "127.0.0.1", query = "tenant=ACME",
  headers = {{ {{ "X-Version", "2" }} }} }})
assert(not S.phases(access))
S.upstream(503, {{ {{ "content-type", "text/plain" }} }}, "down")
S.phases(header_filter)
S.phases(body_filter)
show(st)
"#
    ));
    assert!(out.contains("exited false"), "{out}");
    assert!(out.contains("req x-upstream-version: 2"), "{out}");
    assert!(out.contains("path /acme/items"), "{out}");
    // ctx.tenant from the request script, read by the response script.
    assert!(out.contains("res x-tenant: acme"), "{out}");
    assert!(out.contains("res cache-control: no-store"), "{out}");
    assert!(
        out.contains("status 503") && out.contains("body down"),
        "{out}"
    );
}

#[test]
fn respond_ends_the_request_and_the_response_script_does_not_run() {
    let out = run(&format!(
        r#"{SHOW}
local st = S.request({{ method = "GET", path = "/items", ip = "127.0.0.1", headers = {{}} }})
assert(S.phases(access), "respond() ends the request")
S.phases(header_filter)
S.phases(body_filter)
show(st)
"#
    ));
    assert!(out.contains("exited true"), "{out}");
    assert!(out.contains("status 400"), "{out}");
    assert!(out.contains(r#"body {"error":"tenant required"}"#), "{out}");
    assert!(out.contains("res content-type: application/json"), "{out}");
    assert!(out.contains("res x-why: no tenant"), "{out}");
    // A response made before phase 9 skips phase 13.
    assert!(!out.contains("x-tenant"), "{out}");
}

#[test]
fn a_failing_request_script_answers_500_and_logs_its_spec_position() {
    let out = run(&format!(
        r#"{SHOW}
local st = S.request({{ method = "GET", path = "/items", ip = "127.0.0.1", query = "tenant=boom",
  headers = {{ {{ "x-version", "2" }} }} }})
assert(S.phases(access))
show(st)
"#
    ));
    assert!(out.contains("status 500"), "{out}");
    assert!(out.contains(r#"body {"error":"script failed"}"#), "{out}");
    assert!(out.contains("res content-type: application/json"), "{out}");
    let at = format!("test.yaml:{}:", line_of("tenant === \"boom\""));
    assert!(
        out.lines()
            .any(|l| l.starts_with("log err: ") && l.contains(&at)),
        "no error log at {at}: {out}"
    );
    // Nothing the failed script set reaches the upstream.
    assert!(!out.contains("x-upstream-version"), "{out}");
}

#[test]
fn a_failing_response_script_replaces_the_response_with_500() {
    let out = run(&format!(
        r#"{SHOW}
local st = S.request({{ method = "GET", path = "/items", ip = "127.0.0.1", query = "tenant=a", headers = {{}} }})
assert(not S.phases(access))
S.upstream(200, {{ {{ "x-fail", "yes" }}, {{ "x-request-id", "abc" }}, {{ "content-length", "5" }} }}, "hello")
S.phases(header_filter)
S.phases(body_filter)
show(st)
"#
    ));
    assert!(out.contains("status 500"), "{out}");
    assert!(out.contains(r#"body {"error":"script failed"}"#), "{out}");
    assert!(out.contains("res content-type: application/json"), "{out}");
    // The gateway's own header stays; the upstream's go.
    assert!(out.contains("res x-request-id: abc"), "{out}");
    assert!(
        !out.contains("x-fail") && !out.contains("content-length"),
        "{out}"
    );
    let at = format!("test.yaml:{}:", line_of("res.header(\"x-missing\")"));
    assert!(out.contains(&at), "no error log at {at}: {out}");
}

#[test]
fn every_chunk_passes_luajit_bytecode_listing() {
    assert_chunks_compile(&text(&emit(&compile(SPEC))));
}

#[test]
fn a_script_with_request_headers_on_its_route_is_refused_but_a_mock_is_not() {
    let spec = r#"
gatefold: 1
gateway: { name: g, listen: 8080 }
upstreams: { u: { targets: [{ url: "http://127.0.0.1:9001" }] } }
apis:
  a:
    upstream: u
    policies:
      - script: { request: "log(1);" }
    routes:
      one: { path: /one, policies: [{ request-headers: { set: { x-a: b } } }] }
      two: { path: /two, policies: [{ mock: { body: "hi" } }] }
      three: { path: /three }
"#;
    let ir = compile(spec);
    let diags = gatefold_target_kong::chain_diagnostics(&ir);
    let messages: Vec<String> = diags.iter().map(|d| d.message.clone()).collect();
    // The mock is answered in the same post-function, after the script.
    assert_eq!(messages.len(), 1, "{messages:#?}");
    assert!(
        messages[0].contains("route `a.one`") && messages[0].contains("request-transformer"),
        "{messages:#?}"
    );
}
