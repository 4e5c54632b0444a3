//! `LOCATION` (the part-wise redirect's location every Lua target builds)
//! under luajit, against the reference gateway's `parts_location` on the
//! same inputs: the same location, or both a 400.

use crate::common;

use common::run_lua;
use gatefold_compiler::ir::policy::{RedirectParts, RedirectScheme};
use gatefold_lua_script::{lua::string as s, LOCATION};
use gatefold_target_reference::gateway::policies::redirect::parts_location;

const AUTHORITIES: &[Option<&str>] = &[
    None,
    Some(""),
    Some("example.com"),
    Some("example.com:80"),
    Some("example.com:443"),
    Some("example.com:8443"),
    Some("example.com:+8443"),
    Some("example.com:"),
    Some("example.com:65536"),
    Some("example.com:99999999999999999999"),
    Some("example.com:x"),
    Some("a_b-c.example"),
    Some("127.0.0.1:8080"),
    Some("[::1]"),
    Some("[::1]:8443"),
    Some("[::ffff:127.0.0.1]"),
    Some("[1:2:3:4:5:6:7:8]"),
    Some("[1:2:3]"),
    Some("[::1"),
    Some("[::1]x"),
    Some("[fe80::1%eth0]"),
    Some("a:b:c"),
    Some("evil.example/x"),
    Some("a@b"),
    Some("a b"),
    Some("ex\\ample"),
];

const PATHS: &[&str] = &[
    "/",
    "/items/1",
    "//evil.example",
    "/\\evil.example",
    "items",
    "/a b",
    "/a\nb",
    "/a\tb",
    "/\u{e9}",
];

const QUERIES: &[Option<&str>] = &[None, Some(""), Some("a=1&b=2")];

fn parts() -> Vec<RedirectParts> {
    let mut out = Vec::new();
    for scheme in [
        None,
        Some(RedirectScheme::Http),
        Some(RedirectScheme::Https),
    ] {
        for host in [None, Some("new.example.com".to_string())] {
            for port in [None, Some(80), Some(443), Some(8443)] {
                out.push(RedirectParts {
                    scheme,
                    host: host.clone(),
                    port,
                    path: None,
                });
            }
        }
    }
    out
}

fn lua_opt(v: Option<&str>) -> String {
    v.map_or("nil".to_string(), s)
}

#[test]
fn every_lua_target_builds_the_reference_gateways_location() {
    let mut program = format!("local L = (function()\n{LOCATION}end)()\n");
    program.push_str("local function show(v) io.write(v == nil and \"<400>\" or v, \"\\0\") end\n");
    let mut expected = Vec::new();
    for p in parts() {
        for listener in [RedirectScheme::Http, RedirectScheme::Https] {
            for authority in AUTHORITIES {
                for path in PATHS {
                    for query in QUERIES {
                        expected.push(
                            parts_location(&p, listener, *authority, path, *query).map_or_else(
                                || "<400>".to_string(),
                                |v| String::from_utf8(v.as_bytes().to_vec()).unwrap(),
                            ),
                        );
                        program.push_str(&format!(
                            "show(L.parts({{ scheme = {}, host = {}, port = {} }}, {}, {}, {}, {}))\n",
                            lua_opt(p.scheme.map(|x| x.as_str())),
                            lua_opt(p.host.as_deref()),
                            p.port.map_or("nil".to_string(), |n| n.to_string()),
                            s(listener.as_str()),
                            lua_opt(*authority),
                            s(path),
                            lua_opt(*query),
                        ));
                    }
                }
            }
        }
    }
    let out = run_lua(&program);
    let got: Vec<&str> = out.split('\0').filter(|l| !l.is_empty()).collect();
    assert_eq!(got.len(), expected.len(), "one answer per case");
    let mut cases = 0;
    for (i, (g, e)) in got.iter().zip(&expected).enumerate() {
        assert_eq!(g, e, "case {i}");
        cases += 1;
    }
    // The grid holds both kinds of answer.
    assert!(expected.iter().any(|e| e == "<400>"));
    assert!(expected
        .iter()
        .any(|e| e == "https://new.example.com:8443/items/1?a=1&b=2"));
    assert!(cases > 10_000);
}

#[test]
fn a_prefix_routes_rest_keeps_its_leading_slash() {
    let program = format!(
        "local L = (function()\n{LOCATION}end)()\n\
         for _, c in ipairs({{ {{'/v1/a/b', 1}}, {{'/v1/', 1}}, {{'/v1', 1}}, {{'/api/v1/x//y', 2}}, {{'//evil.example', 0}} }}) do\n\
           io.write('[', L.prefix_tail(c[1], c[2]), ']\\n')\n\
         end\n"
    );
    assert_eq!(
        run_lua(&program),
        "[/a/b]\n[/]\n[]\n[/x//y]\n[//evil.example]\n"
    );
}
