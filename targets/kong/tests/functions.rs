//! The Lua Kong runs in pre-function and post-function, run under luajit
//! against the Kong PDK stand-in (tests/lua/kong_pdk_standin.lua, not
//! Kong): each request goes through the pre-function's access chunks
//! (priority 1,000,000, before cors and authentication), then what the
//! bundled plugins decide (the test sets the consumer key-auth found),
//! then the post-function's access chunks (priority -1000), and the
//! answers are the reference gateway's: 403, 413, 429 with `retry-after`
//! and `x-ratelimit-*`, mock answers with headers and an empty body.

use crate::common;

use common::*;

const SPEC: &str = r#"
gatefold: 1
gateway:
  name: g
  listen: 8080
  policies: [{ ip-filter: { deny: [10.9.9.9, "2001:db8:1::/48"], allow: [10.0.0.0/8, "2001:db8::/32", 192.0.2.128/25] } }]
upstreams: { u: { targets: [{ url: "http://127.0.0.1:9001" }] } }
consumers: { acme: { credentials: { key: { env: A_KEY } } } }
apis:
  a:
    upstream: u
    policies: [{ key-auth: { in: header, name: x-key } }, { rate-limit: { requests: 2, per: 10s, key: consumer } }]
    routes:
      small: { path: /small, policies: [{ request-size-limit: { max: 10B } }] }
      big: { path: /big }
      mock: { path: /mock, policies: [{ mock: { status: 204, headers: { x-a: b } } }] }
"#;

/// Lua running one request through route `route` of `SPEC`: `REQ` (a
/// stand-in request table) in, the state printed out. `consumer` is what
/// key-auth found (it runs between the two functions).
fn request(route: &str, req: &str, consumer: Option<&str>) -> String {
    let yaml = text(&emit(&compile(SPEC)));
    let pre = function_config(&yaml, "pre-function", route);
    let post = function_config(&yaml, "post-function", route);
    let consumer = consumer.map_or("nil".to_string(), |c| format!("{c:?}"));
    format!(
        r#"
local pre_access, pre_header = {}, {}
local post_access = {}
local function go(req)
  local st = S.request(req)
  local exited = S.phases(pre_access)
  if not exited then
    st.consumer = {consumer}
    exited = S.phases(post_access)
  end
  if not exited then S.upstream(200, {{}}, "ok") end
  S.phases(pre_header)
  local hs = {{}}
  for _, kv in ipairs(st.res_headers) do hs[#hs + 1] = kv[1] .. "=" .. kv[2] end
  table.sort(hs)
  print(st.status .. " " .. tostring(st.body) .. " read=" .. tostring(st.body_read == true) .. " " .. table.concat(hs, " "))
end
{req}
"#,
        lua_phase(&pre, "access"),
        lua_phase(&pre, "header_filter"),
        lua_phase(&post, "access"),
    )
}

fn get(ip: &str) -> String {
    format!("go({{ method = \"GET\", path = \"/big\", ip = {ip:?}, headers = {{}} }})")
}

#[test]
fn ip_filter_answers_403_before_authentication_for_v4_and_v6() {
    // No consumer: authentication would refuse, but phase 1 comes first.
    let calls: Vec<String> = [
        "10.1.2.3",
        "10.9.9.9",
        "192.0.2.200",
        "192.0.2.100",
        "2001:db8::1",
        "2001:db8:1::5",
        "::ffff:10.1.2.3",
        "not an address",
    ]
    .iter()
    .map(|ip| get(ip))
    .collect();
    let out = run_lua(&request("a.big", &calls.join("\n"), None));
    let statuses: Vec<&str> = out.lines().map(|l| &l[..3]).collect();
    // allowed ones go on (200 from the stand-in upstream); deny wins over
    // allow; an IPv4-mapped address is the IPv4 one; no address: refused.
    assert_eq!(
        statuses,
        ["200", "403", "200", "403", "200", "403", "200", "403"],
        "{out}"
    );
    assert!(
        out.lines()
            .nth(1)
            .unwrap()
            .contains(r#"403 {"error":"forbidden"} read=false content-type=application/json"#),
        "{out}"
    );
}

#[test]
fn content_length_over_the_limit_is_413_before_authentication() {
    let out = run_lua(&request(
        "a.small",
        r#"
go({ method = "POST", path = "/small", ip = "10.0.0.1", headers = { { "content-length", "11" } }, req_body = "01234567890" })
go({ method = "POST", path = "/small", ip = "10.0.0.1", headers = { { "content-length", "10" } }, req_body = "0123456789" })
"#,
        None,
    ));
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with(r#"413 {"error":"payload too large"} read=false"#),
        "{out}"
    );
    assert!(lines[1].starts_with("200"), "{out}");
}

#[test]
fn a_body_without_content_length_is_read_after_the_checks_and_limited() {
    // The baseline max-body (1 MiB) on /big; 10 bytes on /small. Bodies
    // over nginx's 8k buffer go through get_raw_body's file limit.
    let small = run_lua(&request(
        "a.small",
        r#"go({ method = "POST", path = "/small", ip = "10.0.0.1", headers = { { "transfer-encoding", "chunked" } }, req_body = "01234567890" })"#,
        Some("acme"),
    ));
    assert!(
        small.starts_with(r#"413 {"error":"payload too large"} read=true"#),
        "{small}"
    );
    let big = run_lua(&request(
        "a.big",
        r#"
go({ method = "POST", path = "/big", ip = "10.0.0.1", headers = { { "transfer-encoding", "chunked" } }, req_body = string.rep("x", 2 * 1048576) })
go({ method = "POST", path = "/big", ip = "10.0.0.1", headers = { { "transfer-encoding", "chunked" } }, req_body = string.rep("x", 100000) })
"#,
        Some("acme"),
    ));
    let lines: Vec<&str> = big.lines().collect();
    assert!(lines[0].starts_with("413"), "{big}");
    assert!(lines[1].starts_with("200"), "{big}");
}

#[test]
fn rate_limit_counts_per_instance_in_fixed_windows_with_the_reference_headers() {
    // 2 per 10 s per consumer, shared by the api's routes: /big and /small
    // count together. At t = 3 s the window ends in 7 s.
    let out = run_lua(&request(
        "a.big",
        r#"
S.clock = 3
go({ method = "GET", path = "/big", ip = "10.0.0.1", headers = {} })
go({ method = "GET", path = "/big", ip = "10.0.0.1", headers = {} })
go({ method = "GET", path = "/big", ip = "10.0.0.1", headers = {} })
S.clock = 10
go({ method = "GET", path = "/big", ip = "10.0.0.1", headers = {} })
"#,
        Some("acme"),
    ));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0],
        "200 ok read=true x-ratelimit-limit=2 x-ratelimit-remaining=1 x-ratelimit-reset=7",
        "{out}"
    );
    assert!(lines[1].contains("x-ratelimit-remaining=0"), "{out}");
    assert_eq!(
        lines[2],
        r#"429 {"error":"too many requests"} read=false content-type=application/json retry-after=7 x-ratelimit-limit=2 x-ratelimit-remaining=0 x-ratelimit-reset=7"#,
        "{out}"
    );
    // A new window at t = 10 s.
    assert!(
        lines[3].starts_with("200")
            && lines[3].contains("x-ratelimit-remaining=1 x-ratelimit-reset=10"),
        "{out}"
    );
}

#[test]
fn the_mock_answers_after_the_rate_limit_with_its_headers_and_an_empty_body() {
    let out = run_lua(&request(
        "a.mock",
        r#"
go({ method = "GET", path = "/mock", ip = "10.0.0.1", headers = {} })
go({ method = "GET", path = "/mock", ip = "10.0.0.1", headers = {} })
go({ method = "GET", path = "/mock", ip = "10.0.0.1", headers = {} })
"#,
        Some("acme"),
    ));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0],
        "204  read=false x-a=b x-ratelimit-limit=2 x-ratelimit-remaining=1 x-ratelimit-reset=10",
        "{out}"
    );
    assert!(lines[2].starts_with("429"), "{out}");
}

#[test]
fn every_function_chunk_compiles() {
    assert_chunks_compile(&text(&emit(&compile(SPEC))));
}

#[test]
fn a_limit_keyed_by_a_header_request_headers_changes_is_refused() {
    let ir = compile(
        r#"
gatefold: 1
gateway: { name: g, listen: 8080 }
upstreams: { u: { targets: [{ url: "http://127.0.0.1:9001" }] } }
apis:
  a:
    upstream: u
    policies: [{ rate-limit: { requests: 2, per: 10s, key: "header:x-tenant" } }]
    routes:
      one: { path: /one, policies: [{ request-headers: { set: { x-tenant: t } } }] }
      two: { path: /two }
"#,
    );
    let d = gatefold_target_kong::chain_diagnostics(&ir);
    let messages: Vec<String> = d.iter().map(|d| d.message.clone()).collect();
    assert_eq!(messages.len(), 1, "{messages:#?}");
    assert!(messages[0].contains("route `a.one`"), "{messages:#?}");
}

#[test]
fn an_ip_filter_with_a_client_address_from_headers_is_refused() {
    let ir = compile(
        r#"
gatefold: 1
gateway:
  name: g
  listen: 8080
  baseline: { client-address: { trusted-proxies: [10.0.0.0/8] } }
  policies: [{ ip-filter: { deny: [192.0.2.0/24] } }]
upstreams: { u: { targets: [{ url: "http://127.0.0.1:9001" }] } }
apis: { a: { upstream: u, routes: { one: { path: /one } } } }
"#,
    );
    assert!(gatefold_target_kong::chain_diagnostics(&ir).has_errors());
}

#[test]
fn a_path_whose_method_no_route_takes_gets_405_with_allow_below_every_route() {
    let yaml = text(&emit(&compile(
        r#"
gatefold: 1
gateway: { name: g, listen: 8080 }
upstreams: { u: { targets: [{ url: "http://127.0.0.1:9001" }] } }
apis:
  a:
    upstream: u
    routes:
      list: { path: /items, methods: [GET] }
      add: { path: /items, methods: [POST] }
      any: { path: /open }
"#,
    )));
    let doc: serde_json::Value = serde_yaml::from_str(&yaml).unwrap();
    let routes = doc["routes"].as_array().unwrap();
    let fallback: Vec<&serde_json::Value> = routes
        .iter()
        .filter(|r| r["name"].as_str().unwrap().starts_with("gatefold-405-"))
        .collect();
    // /open takes every method: one fallback, for /items, below the routes.
    assert_eq!(fallback.len(), 1, "{yaml}");
    assert_eq!(fallback[0]["expression"], r##"http.path == r#"/items"#"##);
    let lowest_real = routes
        .iter()
        .filter(|r| !r["name"].as_str().unwrap().starts_with("gatefold-405-"))
        .map(|r| r["priority"].as_u64().unwrap())
        .min()
        .unwrap();
    assert!(fallback[0]["priority"].as_u64().unwrap() < lowest_real);
    // Its service's pre-function (Kong runs a service's plugin on a route
    // without its own) answers.
    let service = &fallback[0]["service"]["name"];
    assert_eq!(service, "gatefold-405.GET.POST", "{yaml}");
    let pre = doc["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "pre-function" && &p["service"] == service)
        .unwrap_or_else(|| panic!("no pre-function on {service}:\n{yaml}"))["config"]
        .clone();
    let out = run_lua(&format!(
        r#"
local st = S.request({{ method = "DELETE", path = "/items", ip = "127.0.0.1", headers = {{}} }})
assert(S.phases({}))
local hs = {{}}
for _, kv in ipairs(st.res_headers) do hs[#hs + 1] = kv[1] .. "=" .. kv[2] end
table.sort(hs)
print(st.status .. " " .. st.body .. " " .. table.concat(hs, " "))
"#,
        lua_phase(&pre, "access")
    ));
    assert_eq!(
        out.trim(),
        r#"405 {"error":"method not allowed"} allow=GET, POST content-type=application/json"#
    );
}

#[test]
fn strip_base_path_and_rewrites_set_the_upstream_path() {
    let yaml = text(&emit(&compile(
        r#"
gatefold: 1
gateway: { name: g, listen: 8080 }
upstreams: { u: { targets: [{ url: "http://127.0.0.1:9001" }] } }
apis:
  pets:
    upstream: u
    base-path: /pets
    strip-base-path: true
    routes:
      one: { path: "/{id}" }
      all: { path: / }
  b:
    upstream: u
    routes:
      files: { path: "/files/*", policies: [{ rewrite: { strip-prefix: /files, add-prefix: /static } }] }
      item: { path: "/v1/{kind}/{id}", policies: [{ rewrite: { path: "/items/{id}/{kind}" } }] }
"#,
    )));
    let path_of = |route: &str, path: &str| {
        let post = function_config(&yaml, "post-function", route);
        run_lua(&format!(
            "local st = S.request({{ method = \"GET\", path = {path:?}, ip = \"127.0.0.1\", headers = {{}} }})\nassert(not S.phases({}))\nprint(st.upstream_path)",
            lua_phase(&post, "access")
        ))
        .trim()
        .to_string()
    };
    assert_eq!(path_of("pets.one", "/pets/7"), "/7");
    assert_eq!(path_of("pets.all", "/pets"), "/");
    assert_eq!(path_of("b.files", "/files/a/b.css"), "/static/a/b.css");
    assert_eq!(path_of("b.files", "/files"), "/static");
    assert_eq!(path_of("b.item", "/v1/cats/3"), "/items/3/cats");
}

#[test]
fn deprecation_headers_go_on_responses_after_phase_7_only() {
    let yaml = text(&emit(&compile(
        r#"
gatefold: 1
gateway: { name: g, listen: 8080 }
upstreams: { u: { targets: [{ url: "http://127.0.0.1:9001" }] } }
apis:
  a:
    upstream: u
    routes:
      old:
        path: /old
        policies:
          - rate-limit: { requests: 1, per: 1m, key: global }
          - deprecation: { since: "2025-01-01", sunset: "2026-06-30", link: "https://docs.example.com/v2" }
"#,
    )));
    let pre = function_config(&yaml, "pre-function", "a.old");
    let post = function_config(&yaml, "post-function", "a.old");
    let out = run_lua(&format!(
        r#"
local pre_access, pre_header, post_access = {}, {}, {}
for _ = 1, 2 do
  local st = S.request({{ method = "GET", path = "/old", ip = "127.0.0.1", headers = {{}} }})
  if not S.phases(pre_access) and not S.phases(post_access) then S.upstream(200, {{}}, "ok") end
  S.phases(pre_header)
  local hs = {{}}
  for _, kv in ipairs(st.res_headers) do if not kv[1]:find("^x%-") then hs[#hs + 1] = kv[1] .. "=" .. kv[2] end end
  table.sort(hs)
  print(st.status .. " " .. table.concat(hs, " "))
end
"#,
        lua_phase(&pre, "access"),
        lua_phase(&pre, "header_filter"),
        lua_phase(&post, "access"),
    ));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0],
        r#"200 deprecation=@1735689600 link=<https://docs.example.com/v2>; rel="deprecation" sunset=Tue, 30 Jun 2026 00:00:00 GMT"#,
        "{out}"
    );
    // Refused at phase 6: no deprecation headers, as in the spec.
    assert_eq!(
        lines[1], "429 content-type=application/json retry-after=60",
        "{out}"
    );
}

#[test]
fn traffic_split_picks_the_kong_upstream_by_header_then_weight() {
    let yaml = text(&emit(&compile(
        r#"
gatefold: 1
gateway: { name: g, listen: 8080 }
upstreams:
  pets: { targets: [{ url: "http://127.0.0.1:9001" }] }
  pets-v2: { targets: [{ url: "https://127.0.0.1:9002" }] }
apis:
  a:
    routes:
      one:
        path: /one
        policies:
          - traffic-split:
              header-match: [{ name: x-canary, value: always, upstream: pets-v2 }]
              to: [{ upstream: pets, weight: 1 }, { upstream: pets-v2, weight: 0 }]
"#,
    )));
    let doc: serde_json::Value = serde_yaml::from_str(&yaml).unwrap();
    let route = &doc["routes"][0];
    // The first destination's service (header matches are named first).
    assert_eq!(route["service"]["name"], "pets-v2", "{yaml}");
    let post = function_config(&yaml, "post-function", "a.one");
    let out = run_lua(&format!(
        r#"
local access = {}
for _, h in ipairs({{ {{ {{ "x-canary", "always" }} }}, {{ {{ "x-canary", "no" }} }}, {{}} }}) do
  local st = S.request({{ method = "GET", path = "/one", ip = "127.0.0.1", headers = h }})
  assert(not S.phases(access))
  print(st.upstream_name .. " " .. st.scheme)
end
"#,
        lua_phase(&post, "access")
    ));
    // A weight of 0 is never picked.
    assert_eq!(out, "pets-v2 https\npets http\npets http\n");
}
