//! Scripts on Kong: the emitted post-function Lua run under luajit against
//! a Kong-PDK stand-in (tests/lua/kong_pdk_standin.lua, not Kong) in the
//! sandbox Kong gives such code: upstream headers and path set, respond()
//! ending the request, ctx carried from request to response, and a run-time
//! failure on either side answering 500 {"error":"script failed"} with the
//! failing operation's spec position logged.

mod common;

use common::*;
use serde_json::Value;
use std::io::Write;
use std::process::{Command, Stdio};

/// The `luajit` binary, found as the launcher finds it.
fn luajit() -> std::path::PathBuf {
    gatefold_runtime::lua::Luajit::locate()
        .unwrap_or_else(|e| panic!("{e}"))
        .binary()
        .to_path_buf()
}

const STANDIN: &str = include_str!("lua/kong_pdk_standin.lua");

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

/// The post-function plugin's config.
fn functions() -> Value {
    let yaml = text(&emit(&compile(SPEC)));
    let doc: Value = serde_yaml::from_str(&yaml).unwrap();
    let plugins = doc["plugins"].as_array().expect("plugins");
    let p = plugins
        .iter()
        .find(|p| p["name"] == "post-function")
        .unwrap_or_else(|| panic!("no post-function plugin:\n{yaml}"));
    p["config"].clone()
}

fn lua_str(s: &str) -> String {
    gatefold_lua_script::lua::string(s)
}

/// Runs `body` (Lua using `S`, `access`, `header_filter`, `body_filter`)
/// under luajit; its stdout.
fn run(body: &str) -> String {
    let c = functions();
    let one = |phase: &str| {
        lua_str(
            c[phase][0]
                .as_str()
                .unwrap_or_else(|| panic!("{phase}: {c}")),
        )
    };
    let src = format!(
        "local S = (function()\n{STANDIN}\nend)()\nlocal access = S.load({})\nlocal header_filter = S.load({})\nlocal body_filter = S.load({})\n{body}",
        one("access"),
        one("header_filter"),
        one("body_filter")
    );
    let mut child = Command::new(luajit())
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("luajit runs (scripts/install-runtimes.sh installs it)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(src.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "luajit failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
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
assert(not S.phase(access))
S.upstream(503, {{ {{ "content-type", "text/plain" }} }}, "down")
S.phase(header_filter)
S.phase(body_filter)
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
assert(S.phase(access), "respond() ends the request")
S.phase(header_filter)
S.phase(body_filter)
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
assert(S.phase(access))
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
assert(not S.phase(access))
S.upstream(200, {{ {{ "x-fail", "yes" }}, {{ "x-request-id", "abc" }}, {{ "content-length", "5" }} }}, "hello")
S.phase(header_filter)
S.phase(body_filter)
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
    let c = functions();
    for phase in ["access", "header_filter", "body_filter"] {
        let src = c[phase][0].as_str().unwrap();
        let path =
            std::env::temp_dir().join(format!("gatefold-kong-{}-{phase}.lua", std::process::id()));
        std::fs::write(&path, src).unwrap();
        let out = Command::new(luajit())
            .arg("-bl")
            .arg(&path)
            .output()
            .expect("luajit runs");
        let _ = std::fs::remove_file(&path);
        assert!(
            out.status.success(),
            "{phase}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn a_script_with_a_mock_or_request_headers_on_its_route_is_refused() {
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
    assert_eq!(messages.len(), 2, "{messages:#?}");
    assert!(
        messages[0].contains("route `a.one`") && messages[0].contains("request-transformer"),
        "{messages:#?}"
    );
    assert!(
        messages[1].contains("route `a.two`") && messages[1].contains("request-termination"),
        "{messages:#?}"
    );
}
