//! `redirect` on Kong: the post-function's phase 9 chunk, run under luajit
//! against the Kong PDK stand-in (not Kong), on the spec's forms and on
//! hostile requests (an open redirect through a parameter or the kept
//! path, a host that is no host, a query key that must not leak).

use crate::common;

use common::*;

const SPEC: &str = r##"
gatefold: 1
gateway: { name: g, listen: 8080 }
upstreams: { u: { targets: [{ url: "http://127.0.0.1:9001" }] } }
consumers: { c: { credentials: { key: { env: C_KEY } } } }
apis:
  a:
    upstream: u
    routes:
      to: { path: "/go/{id}", policies: [{ redirect: { to: "/{id}" } }] }
      far: { path: "/far/{id}", policies: [{ redirect: { to: "https://docs.example.com/n/{id}?from=old#top", status: 308 } }] }
      https: { path: /secure/*, policies: [{ redirect: { scheme: https, status: 301 } }] }
      host: { path: /moved/*, policies: [{ redirect: { host: new.example.com } }] }
      hostport: { path: /hp/*, policies: [{ redirect: { host: new.example.com, port: 8443 } }] }
      v1: { path: /v1/*, policies: [{ redirect: { replace-prefix: /v2, status: 308 } }] }
      root: { path: /r/*, policies: [{ redirect: { replace-prefix: / } }] }
      item: { path: "/items/{id}", policies: [{ redirect: { path: "/catalog/{id}", status: 303 } }] }
      bare: { path: "/bare/{id}", policies: [{ redirect: { path: "/{id}" } }] }
  keyed:
    base-path: /k
    policies: [{ key-auth: { in: query, name: api_key } }]
    routes:
      moved: { path: /moved, policies: [{ redirect: { to: "https://partner.example.net/new" } }] }
"##;

/// `status location body` for each request, through the phases as Kong's
/// runloop runs the serverless plugins (the stand-in's `S.run`): the
/// global pre-function's `rewrite` hands over the location module, then
/// route `route`'s access chunks answer.
fn answers(route: &str, reqs: &[&str]) -> Vec<String> {
    let yaml = text(&emit(&compile(SPEC)));
    let calls: Vec<String> = reqs.iter().map(|r| format!("go({r})")).collect();
    let out = run_lua(&format!(
        r#"
S.configure({})
local function go(req)
  req.method = req.method or "GET"
  req.headers = req.headers or {{ {{ "host", "old.example.com:8080" }} }}
  local st = S.request(req)
  S.run("rewrite")
  S.run("access", {})
  print(tostring(st.status) .. " " .. tostring(S.kong.response.get_headers()["location"]) .. " " .. tostring(st.body))
end
{}
"#,
        lua_plugins(&yaml),
        gatefold_lua_script::lua::string(route),
        calls.join("\n")
    ));
    out.lines().map(str::to_string).collect()
}

const BAD: &str = r#"400 nil {"error":"bad request"}"#;

#[test]
fn to_fills_parameters_and_keeps_the_query() {
    assert_eq!(
        answers(
            "a.to",
            &[
                r#"{ path = "/go/42", query = "x=1&y=a+b" }"#,
                r#"{ path = "/go/42" }"#,
                // Kong's normalized path holds decoded bytes: written back encoded.
                r#"{ path = "/go/a b" }"#,
            ]
        ),
        ["302 /42?x=1&y=a+b ", "302 /42 ", "302 /a%20b ",]
    );
    assert_eq!(
        answers("a.far", &[r#"{ path = "/far/7", query = "x=1" }"#]),
        ["308 https://docs.example.com/n/7?from=old&x=1#top "]
    );
}

#[test]
fn a_parameter_never_makes_another_host() {
    // `/{id}` with `\evil.example` would be `/\evil.example`, which
    // browsers read as `//evil.example`.
    assert_eq!(
        answers(
            "a.to",
            &[
                r#"{ path = "/go/\\evil.example" }"#,
                r#"{ path = "/go/ok\\" }"#,
            ]
        ),
        [BAD, "302 /ok%5C "]
    );
}

#[test]
fn parts_come_from_the_request() {
    assert_eq!(
        answers(
            "a.https",
            &[
                r#"{ path = "/secure/a", query = "x=1" }"#,
                r#"{ path = "/secure/a", headers = { { "host", "old.example.com" } } }"#,
            ]
        ),
        [
            // A new scheme drops the request's port (the other scheme's).
            "301 https://old.example.com/secure/a?x=1 ",
            "301 https://old.example.com/secure/a ",
        ]
    );
    assert_eq!(
        answers(
            "a.host",
            &[
                r#"{ path = "/moved/a", query = "x=1" }"#,
                r#"{ path = "/moved/a", listener_scheme = "https", headers = { { "host", "old.example.com:443" } } }"#,
                r#"{ path = "/moved/a", headers = { { "host", "[2001:db8::1]:8080" } } }"#,
            ]
        ),
        [
            "302 http://new.example.com:8080/moved/a?x=1 ",
            // The scheme's default port is never written.
            "302 https://new.example.com/moved/a ",
            "302 http://new.example.com:8080/moved/a ",
        ]
    );
    assert_eq!(
        answers("a.hostport", &[r#"{ path = "/hp/x" }"#]),
        ["302 http://new.example.com:8443/hp/x "]
    );
}

#[test]
fn a_host_that_is_no_host_is_refused() {
    assert_eq!(
        answers(
            "a.https",
            &[
                r#"{ path = "/secure/a", headers = { { "host", "evil.example/x" } } }"#,
                r#"{ path = "/secure/a", headers = { { "host", "a@evil.example" } } }"#,
                r#"{ path = "/secure/a", headers = { { "host", "old.example.com:99999" } } }"#,
                r#"{ path = "/secure/a", headers = { { "host", "old.example.com:x" } } }"#,
                r#"{ path = "/secure/a", headers = {} }"#,
            ]
        ),
        [BAD, BAD, BAD, BAD, BAD]
    );
    // A given host: the request's is still checked when its port is kept,
    // as the reference does (the host is parsed before the port).
    assert_eq!(
        answers(
            "a.host",
            &[r#"{ path = "/moved/a", headers = { { "host", "[zz]:80" } } }"#]
        ),
        [BAD]
    );
}

#[test]
fn replace_prefix_keeps_the_rest() {
    assert_eq!(
        answers(
            "a.v1",
            &[
                r#"{ path = "/v1/a/b", query = "q=1" }"#,
                r#"{ path = "/v1" }"#,
                r#"{ path = "/v1/" }"#,
            ]
        ),
        [
            "308 http://old.example.com:8080/v2/a/b?q=1 ",
            "308 http://old.example.com:8080/v2 ",
            "308 http://old.example.com:8080/v2/ ",
        ]
    );
    // `/` as the prefix: the rest alone, refused when it names a host.
    assert_eq!(
        answers(
            "a.root",
            &[
                r#"{ path = "/r/a" }"#,
                r#"{ path = "/r" }"#,
                r#"{ path = "/r/\\evil.example" }"#,
            ]
        ),
        [
            "302 http://old.example.com:8080/a ",
            "302 http://old.example.com:8080/ ",
            BAD,
        ]
    );
}

#[test]
fn a_path_template_and_303() {
    assert_eq!(
        answers(
            "a.item",
            &[
                r#"{ method = "POST", path = "/items/9", query = "x=1" }"#,
                r#"{ path = "/items/\\evil" }"#,
            ]
        ),
        [
            "303 http://old.example.com:8080/catalog/9?x=1 ",
            "303 http://old.example.com:8080/catalog/%5Cevil ",
        ]
    );
    // With parts too, a parameter that would start the path with `/\`.
    assert_eq!(
        answers(
            "a.bare",
            &[r#"{ path = "/bare/\\evil" }"#, r#"{ path = "/bare/ok" }"#]
        ),
        [BAD, "302 http://old.example.com:8080/ok "]
    );
}

#[test]
fn a_query_key_never_reaches_the_location() {
    // Kong's key-auth (hide_credentials) already passed; the location is
    // built from the request as received, without every `api_key` pair.
    assert_eq!(
        answers(
            "keyed.moved",
            &[
                r#"{ path = "/k/moved", query = "api_key=K&x=1" }"#,
                r#"{ path = "/k/moved", query = "x=a+b&api_key=K&api_key=L" }"#,
                r#"{ path = "/k/moved", query = "api_key=K" }"#,
                r#"{ path = "/k/moved", query = "api_keyx=1&xapi_key=2" }"#,
            ]
        ),
        [
            "302 https://partner.example.net/new?x=1 ",
            "302 https://partner.example.net/new?x=a+b ",
            "302 https://partner.example.net/new ",
            "302 https://partner.example.net/new?api_keyx=1&xapi_key=2 ",
        ]
    );
}

#[test]
fn redirect_chunks_compile_and_validate() {
    let yaml = text(&emit(&compile(SPEC)));
    assert_chunks_compile(&yaml);
    // The redirect answers: no body check after it on those routes.
    let post = function_config(&yaml, "post-function", "a.to");
    let chunks = post["access"].to_string();
    assert!(chunks.contains("redirect (phase 9)"), "{chunks}");
    assert!(
        !chunks.contains("a body without content-length"),
        "{chunks}"
    );
}

#[test]
fn without_the_global_rewrite_a_redirect_fails_closed() {
    // As if the global pre-function were gone: no location module handed
    // over, so no location is built from the request.
    let yaml = text(&emit(&compile(SPEC)));
    let out = run_lua(&format!(
        r#"
S.configure({})
local st = S.request({{ method = "GET", path = "/secure/x", headers = {{ {{ "host", "old.example.com" }} }} }})
S.run("access", "a.https")
print(tostring(st.status) .. " " .. tostring(S.kong.response.get_headers()["location"]))
"#,
        lua_plugins(&yaml)
    ));
    assert_eq!(out.trim(), "500 nil");
}
