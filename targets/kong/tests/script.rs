//! Scripts on Kong: the emitted post-function Lua run under luajit against
//! a Kong-PDK stand-in (tests/lua/kong_pdk_standin.lua, not Kong) in the
//! sandbox Kong gives such code: upstream headers and path set, respond()
//! ending the request, ctx carried from request to response, and a run-time
//! failure on either side answering 500 {"error":"script failed"} with the
//! failing operation's spec position logged. Each request goes through
//! the phases as Kong's runloop runs the serverless plugins (the stand-in's
//! `S.run`: `rewrite` only the global ones, later phases the most specific
//! of each name), since the runtime the route chunks use is handed over by
//! the global pre-function's `rewrite` in `kong.ctx.shared`.

use crate::common;

use common::*;

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

/// Runs `body` (Lua using `S`, configured with `spec`'s pre-function and
/// post-function plugins: `S.run(PHASE, ROUTE)` runs a phase as Kong
/// would) under luajit; its stdout.
fn run_spec(spec: &str, body: &str) -> String {
    let yaml = text(&emit(&compile(spec)));
    run_lua(&format!("S.configure({})\n{body}", lua_plugins(&yaml)))
}

/// [`run_spec`] on `SPEC`.
fn run(body: &str) -> String {
    run_spec(SPEC, body)
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
S.run("rewrite")
assert(not S.run("access", "a.items"))
S.upstream(503, {{ {{ "content-type", "text/plain" }} }}, "down")
S.run("header_filter", "a.items")
S.run("body_filter", "a.items")
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
S.run("rewrite")
assert(S.run("access", "a.items"), "respond() ends the request")
S.run("header_filter", "a.items")
S.run("body_filter", "a.items")
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
S.run("rewrite")
assert(S.run("access", "a.items"))
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
S.run("rewrite")
assert(not S.run("access", "a.items"))
S.upstream(200, {{ {{ "x-fail", "yes" }}, {{ "x-request-id", "abc" }}, {{ "content-length", "5" }} }}, "hello")
S.run("header_filter", "a.items")
S.run("body_filter", "a.items")
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

/// Routes with plugins of their own, a request script using the case
/// tables and a response-only script.
const ROUTES: &str = r#"
gatefold: 1
gateway: { name: g, listen: 8080 }
upstreams: { u: { targets: [{ url: "http://127.0.0.1:9001" }] } }
apis:
  a:
    upstream: u
    routes:
      one:
        path: /one
        policies:
          - ip-filter: { deny: [10.9.9.9] }
          - script:
              request: 'ctx.who = "one"; req.setHeader("x-script", "one");'
              response: 'res.setHeader("x-who", ctx.who ?? "none");'
      two:
        path: /two
        policies: [{ script: { request: 'req.setHeader("x-script", "two".toUpperCase());' } }]
      three:
        path: /three
        policies: [{ script: { response: 'res.setHeader("x-three", "yes");' } }]
      four: { path: /four }
"#;

#[test]
fn the_runtime_is_in_the_config_once_and_every_scripted_route_gets_it() {
    let yaml = text(&emit(&compile(ROUTES)));
    // The runtime's first line, once for three scripted routes.
    let first = gatefold_lua_script::runtime().lines().next().unwrap();
    assert_eq!(yaml.matches(first).count(), 1, "{yaml}");
    // The case tables too, though only one script needs them.
    assert_eq!(
        yaml.matches("-- Unicode case mappings").count(),
        1,
        "{yaml}"
    );
    // a.one has a pre-function of its own (the ip-filter), which Kong runs
    // instead of the global one in access: its runtime comes from the
    // global one's rewrite, which Kong runs on every request.
    let own = function_config(&yaml, "pre-function", "a.one");
    assert!(own.get("rewrite").is_none(), "{own}");
    let out = run_spec(
        ROUTES,
        &format!(
            r#"{SHOW}
local function go(route, path, ip)
  local st = S.request({{ method = "GET", path = path, ip = ip or "127.0.0.1", headers = {{}} }})
  S.run("rewrite")
  if not S.run("access", route) then S.upstream(200, {{}}, "ok") end
  S.run("header_filter", route)
  S.run("body_filter", route)
  print("== " .. route)
  show(st)
end
go("a.one", "/one")
go("a.one", "/one", "10.9.9.9")
go("a.two", "/two")
go("a.three", "/three")
go("a.four", "/four")
"#
        ),
    );
    let of = |route: &str, n: usize| -> String {
        out.split("== ")
            .filter(|b| b.starts_with(route))
            .nth(n)
            .unwrap_or_else(|| panic!("no {route}: {out}"))
            .to_string()
    };
    let one = of("a.one", 0);
    assert!(one.contains("status 200"), "{one}");
    assert!(one.contains("req x-script: one"), "{one}");
    assert!(one.contains("res x-who: one"), "{one}");
    // Its own pre-function ran in access.
    let denied = of("a.one", 1);
    assert!(denied.contains("status 403"), "{denied}");
    assert!(of("a.two", 0).contains("req x-script: TWO"), "{out}");
    // The response-only script ran: the pass chunk marked phase 8.
    assert!(of("a.three", 0).contains("res x-three: yes"), "{out}");
    let four = of("a.four", 0);
    assert!(
        four.contains("status 200") && !four.contains("x-"),
        "{four}"
    );
    assert!(!out.contains("log err"), "{out}");
}

#[test]
fn a_script_chunk_run_without_the_runtime_answers_500_and_says_why() {
    // As if the global pre-function were gone: no rewrite phase.
    let out = run(&format!(
        r#"{SHOW}
local st = S.request({{ method = "GET", path = "/items", ip = "127.0.0.1", query = "tenant=a", headers = {{}} }})
assert(S.run("access", "a.items"), "the request side ends the request")
S.run("header_filter", "a.items")
S.run("body_filter", "a.items")
show(st)
"#
    ));
    assert!(out.contains("status 500"), "{out}");
    assert!(out.contains(r#"body {"error":"script failed"}"#), "{out}");
    assert!(
        out.contains("log err: gatefold: script `api/a/script` (test.yaml:")
            && out.contains("no script runtime in kong.ctx.shared"),
        "{out}"
    );
    // The response script does not run on the refusal.
    assert!(!out.contains("x-tenant"), "{out}");
}

/// Paths a request script sets, then phase 10 (as the conformance
/// scenario scripts/setpath-then-phase-10.yaml, without its route holding
/// `request-headers`, which Kong refuses beside a request script).
const SET_PATH: &str = r#"
gatefold: 1
gateway: { name: g, listen: 8080 }
upstreams: { u: { targets: [{ url: "http://127.0.0.1:9001" }] } }
apis:
  based:
    base-path: /svc
    strip-base-path: true
    upstream: u
    routes:
      moved:
        path: /m/*
        policies:
          - script:
              request: |
                req.setHeader("x-saw", req.path);
                req.setPath("/svc/new" + req.path.slice(6));
      kept:
        path: /k/*
        policies: [{ script: { request: 'req.setHeader("x-s", "1");' } }]
  plain:
    upstream: u
    routes:
      prefix:
        path: /p/*
        policies:
          - rewrite: { strip-prefix: /p, add-prefix: /q }
          - script: { request: 'req.setPath("/p/set" + req.path.slice(2));' }
      outside:
        path: /o/*
        policies:
          - rewrite: { strip-prefix: /o, add-prefix: /q }
          - script: { request: 'req.setPath("/elsewhere");' }
      template:
        path: "/t/{id}"
        policies:
          - rewrite: { path: "/items/{id}" }
          - script: { request: 'req.setPath("/elsewhere");' }
"#;

#[test]
fn a_prefix_rewrite_applies_to_the_path_a_request_script_set() {
    let out = run_spec(
        SET_PATH,
        r#"
local function go(route, path)
  local st = S.request({ method = "GET", path = path, ip = "127.0.0.1", headers = {} })
  S.run("rewrite")
  assert(not S.run("access", route), "the request goes on")
  local saw = ""
  for _, kv in ipairs(st.headers) do if kv[1] == "x-saw" then saw = " saw " .. kv[2] end end
  print(route .. " " .. path .. " -> " .. tostring(st.upstream_path) .. saw)
end
go("based.moved", "/svc/m/abc")
go("based.kept", "/svc/k/x")
go("plain.prefix", "/p/a/b")
go("plain.outside", "/o/a")
go("plain.template", "/t/42")
"#,
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        [
            // strip-base-path on the path the script set; the script saw
            // the request's path.
            "based.moved /svc/m/abc -> /new/abc saw /svc/m/abc",
            // No path set: the request's path is stripped.
            "based.kept /svc/k/x -> /k/x",
            "plain.prefix /p/a/b -> /q/set/a/b",
            // A set path outside the prefix keeps it whole; the prefix is added.
            "plain.outside /o/a -> /q/elsewhere",
            // A whole-path template replaces the set path, with the
            // request's params.
            "plain.template /t/42 -> /items/42",
        ],
        "{out}"
    );
}

#[test]
fn the_path_chunks_of_a_scripted_prefix_route_are_these() {
    let yaml = text(&emit(&compile(SET_PATH)));
    let post = function_config(&yaml, "post-function", "plain.prefix");
    let access: Vec<&str> = post["access"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    insta::assert_snapshot!(
        "kong_setpath_then_prefix_rewrite",
        access.join("\n-- ----\n")
    );
}
