//! `match` conditions on Kong: the global pre-function's `rewrite` chunk
//! marks the conditions that hold (run under luajit against the Kong PDK
//! stand-in, not Kong), route expressions require the markers, and the 405
//! routes count only the routes whose conditions hold.

use crate::common;

use common::*;

/// Values a client controls and the ATC string syntax cares about.
const HOSTILE: &str = r##"a"#\" || http.path ^= r#"/"# ]] \n"##;

fn spec() -> String {
    format!(
        r#"
gatefold: 1
gateway: {{ name: g, listen: 8080 }}
upstreams: {{ u: {{ targets: [{{ url: "http://127.0.0.1:9001" }}] }} }}
apis:
  a:
    upstream: u
    routes:
      v2json:
        path: /items/*
        methods: [GET]
        match:
          headers: {{ x-version: "2" }}
          query: {{ format: json }}
      v2:
        path: /items/*
        methods: [GET, POST]
        match: {{ headers: {{ X-Version: "2" }} }}
      hostile:
        path: /h
        methods: [GET]
        match:
          headers: {{ x-h: {hostile} }}
          query: {{ {hostile}: {hostile} }}
      plus:
        path: /p
        methods: [GET]
        match: {{ query: {{ q: "a+b" }} }}
      items:
        path: /items/*
        methods: [PUT]
"#,
        hostile = serde_json::Value::from(HOSTILE)
    )
}

fn yaml() -> String {
    text(&emit(&compile(&spec())))
}

fn doc() -> serde_json::Value {
    serde_yaml::from_str(&yaml()).unwrap()
}

fn route(doc: &serde_json::Value, name: &str) -> serde_json::Value {
    doc["routes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("no route {name}"))
        .clone()
}

fn global_pre(doc: &serde_json::Value) -> serde_json::Value {
    doc["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| {
            p["name"] == "pre-function" && p.get("route").is_none() && p.get("service").is_none()
        })
        .expect("a global pre-function")
        .clone()
}

#[test]
fn expressions_require_markers_and_hold_no_condition_value() {
    let doc = doc();
    // Conditions are numbered in IR order: /h's two and /p's one (exact
    // paths) come first, so x-version=2 is 4 and format=json 5.
    assert_eq!(
        route(&doc, "a.v2json")["expression"],
        "(http.path == r#\"/items\"# || http.path ^= r#\"/items/\"#) && http.method == r#\"GET\"# && http.headers.gatefold_cond_4 == \"1\" && http.headers.gatefold_cond_5 == \"1\""
    );
    assert_eq!(
        route(&doc, "a.v2")["expression"],
        "(http.path == r#\"/items\"# || http.path ^= r#\"/items/\"#) && (http.method == r#\"GET\"# || http.method == r#\"POST\"#) && http.headers.gatefold_cond_4 == \"1\""
    );
    // No client-controlled text in any expression: the hostile value is
    // only in the Lua, as a Lua string.
    for r in doc["routes"].as_array().unwrap() {
        let e = r["expression"].as_str().unwrap();
        assert!(!e.contains("||  http.path") && !e.contains("]]"), "{e}");
        assert!(
            !e.contains("x-h") && !e.contains("format") && !e.contains("json"),
            "{e}"
        );
    }
    // More conditions first where paths and methods overlap (priority
    // from IR order; `items` takes only PUT, so its place does not matter).
    let prio = |n: &str| route(&doc, n)["priority"].as_u64().unwrap();
    assert!(prio("a.v2json") > prio("a.v2"));
}

#[test]
fn every_chunk_compiles_with_hostile_values() {
    let yaml = yaml();
    assert_chunks_compile(&yaml);
    let pre = global_pre(&doc());
    let rewrite = pre["config"]["rewrite"][0].as_str().unwrap();
    assert!(rewrite.contains("CONDITIONS"), "{rewrite}");
}

/// Runs the rewrite chunk on a request; the markers set, as `n=v` sorted.
fn markers(req: &str) -> String {
    let pre = global_pre(&doc());
    format!(
        r#"
local rewrite = {}
local function go(req)
  local st = S.request(req)
  S.phases(rewrite)
  local out = {{}}
  for _, kv in ipairs(st.headers) do
    if kv[1]:find("^gatefold") then out[#out + 1] = kv[1] .. "=" .. kv[2] end
  end
  table.sort(out)
  print(table.concat(out, " "))
end
{req}
"#,
        lua_phase(&pre["config"], "rewrite")
    )
}

/// The markers a request gets, with x-version=2 (4) written `V` and
/// format=json (5) `F`.
fn marked(headers: &str, query: &str) -> String {
    run_lua(&markers(&format!(
        "go({{ method = \"GET\", path = \"/items/1\", query = {query:?}, headers = {headers} }})"
    )))
    .trim()
    .replace("gatefold-cond-4=1", "V")
    .replace("gatefold-cond-5=1", "F")
}

#[test]
fn headers_compare_their_first_line_exactly() {
    assert_eq!(marked(r#"{ { "X-Version", "2" } }"#, ""), "V");
    // A header sent twice: its first line decides (Kong's ATC would
    // require every line to be "2").
    assert_eq!(
        marked(r#"{ { "x-version", "2" }, { "x-version", "3" } }"#, ""),
        "V"
    );
    assert_eq!(
        marked(r#"{ { "x-version", "3" }, { "x-version", "2" } }"#, ""),
        ""
    );
    assert_eq!(marked(r#"{ { "x-version", " 2" } }"#, ""), "");
    assert_eq!(marked(r#"{ { "x-version", "20" } }"#, ""), "");
}

#[test]
fn query_compares_the_first_occurrence_decoded() {
    let h = r#"{ { "x-version", "2" } }"#;
    assert_eq!(marked(h, "format=json"), "V F");
    assert_eq!(marked(h, "%66ormat=%6Ason"), "V F");
    assert_eq!(marked(h, "a=1&format=json&format=xml"), "V F");
    assert_eq!(marked(h, "format=xml&format=json"), "V");
    assert_eq!(marked(h, "format=JSON"), "V");
    assert_eq!(marked(h, "xformat=json"), "V");
}

#[test]
fn a_plus_is_a_plus_and_hostile_values_are_compared_as_text() {
    // `q: "a+b"`: `+` is not a space (get_uri_args would read "a b").
    let no = "{}";
    let plus = |q: &str| marked(no, q);
    let n = |m: &str| m.split(' ').filter(|x| !x.is_empty()).count();
    assert_eq!(n(&plus("q=a+b")), 1);
    assert_eq!(n(&plus("q=a%2Bb")), 1);
    assert_eq!(n(&plus("q=a%20b")), 0);
    // The hostile header and parameter hold exactly as written.
    let enc: String = HOSTILE.bytes().map(|b| format!("%{b:02X}")).collect();
    let h = format!(
        "{{ {{ \"x-h\", {} }} }}",
        gatefold_lua_script::lua::string(HOSTILE)
    );
    assert_eq!(n(&marked(&h, &format!("{enc}={enc}"))), 2);
    assert_eq!(n(&marked(&h, "")), 1);
}

#[test]
fn client_copies_of_the_markers_are_removed() {
    assert_eq!(
        marked(
            r#"{ { "gatefold-cond-1", "1" }, { "gatefold_cond_2", "1" }, { "gatefold-cond-3", "1" } }"#,
            ""
        ),
        ""
    );
}

#[test]
fn every_pre_function_removes_the_markers_first() {
    let yaml = yaml();
    let doc = doc();
    for p in doc["plugins"].as_array().unwrap() {
        if p["name"] == "pre-function" && !p["tags"].to_string().contains("dispatch:405") {
            let first = p["config"]["access"][0].as_str().unwrap();
            assert!(
                first.contains("the `match` markers stay in Kong"),
                "{first}"
            );
        }
    }
    let cfg = function_config(&yaml, "pre-function", "a.v2");
    let out = run_lua(&format!(
        r#"
local access = {}
local st = S.request({{ method = "GET", path = "/items/1", headers = {{ {{ "gatefold-cond-1", "1" }}, {{ "x-a", "b" }} }} }})
S.phases(access)
for _, kv in ipairs(st.headers) do print(kv[1]) end
"#,
        lua_phase(&cfg, "access")
    ));
    assert_eq!(out.trim(), "x-a");
}

/// The answer of the 405 route of `/items/*` to a request with `headers`.
fn fallback(headers: &str) -> String {
    let doc = doc();
    let name = doc["routes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| {
            r["name"].as_str().unwrap().starts_with("gatefold-405")
                && r["expression"].as_str().unwrap().contains("/items")
        })
        .expect("the 405 route of /items/*")["name"]
        .clone();
    let p = doc["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "pre-function" && p["route"] == name)
        .expect("its own pre-function")
        .clone();
    run_lua(&format!(
        r#"
local access = {}
local st = S.request({{ method = "DELETE", path = "/items/1", headers = {headers} }})
S.phases(access)
print(st.status .. " " .. st.body .. " " .. tostring(S.kong.response.get_headers()["allow"]))
"#,
        lua_phase(&p["config"], "access")
    ))
    .trim()
    .to_string()
}

#[test]
fn the_405_counts_only_routes_whose_conditions_hold() {
    // Only `items` (PUT) holds.
    assert_eq!(fallback("{}"), r#"405 {"error":"method not allowed"} PUT"#);
    // v2 (GET, POST) holds too; v2json (GET) needs marker 2 as well.
    assert_eq!(
        fallback(r#"{ { "gatefold-cond-4", "1" } }"#),
        r#"405 {"error":"method not allowed"} GET, POST, PUT"#
    );
}

#[test]
fn only_conditions_make_a_404_of_a_405() {
    // Every route of the path conditioned: none holding is 404.
    let yaml = text(&emit(&compile(
        r#"
gatefold: 1
gateway: { name: g, listen: 8080 }
upstreams: { u: { targets: [{ url: "http://127.0.0.1:9001" }] } }
apis:
  a:
    upstream: u
    routes:
      x: { path: /x, methods: [GET], match: { headers: { x-v: "2" } } }
"#,
    )));
    let cfg = function_config(&yaml, "pre-function", "gatefold-405-1");
    let out = run_lua(&format!(
        r#"
local access = {}
for _, h in ipairs({{ {{}}, {{ {{ "gatefold-cond-1", "1" }} }} }}) do
  local st = S.request({{ method = "POST", path = "/x", headers = h }})
  S.phases(access)
  print(st.status .. " " .. st.body)
end
"#,
        lua_phase(&cfg, "access")
    ));
    assert_eq!(
        out.trim(),
        "404 {\"error\":\"no route\"}\n405 {\"error\":\"method not allowed\"}"
    );
}

#[test]
fn a_header_nginx_drops_is_refused() {
    let ir = compile(
        r#"
gatefold: 1
gateway: { name: g, listen: 8080 }
upstreams: { u: { targets: [{ url: "http://127.0.0.1:9001" }] } }
apis:
  a:
    upstream: u
    routes:
      x: { path: /x, match: { headers: { x_v: "2" } } }
      y: { path: /y, match: { headers: { x-v: "2" } } }
"#,
    );
    let errors: Vec<String> = gatefold_target_kong::chain_diagnostics(&ir)
        .iter()
        .map(|d| d.message.clone())
        .collect();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].contains("header `x_v`") && errors[0].contains("a.x"),
        "{errors:?}"
    );
}
