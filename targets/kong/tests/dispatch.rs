//! The conformance suite's `routing` and `redirects` scenarios replayed on
//! Kong's generated config, emulated (Kong cannot run here): each request
//! goes through the global pre-function's `rewrite` chunk under luajit
//! against the Kong PDK stand-in (the `match` markers), then through a
//! small evaluator of the ATC expressions this target writes (equality,
//! prefixes, suffixes, regexes with the regex crate atc-router uses, `&&`
//! / `||`, every value of a field, and "highest priority wins"), then, on
//! a 405 route, through its pre-function, and on a route that answers
//! itself (mock, redirect), through its post-function. The status,
//! `allow`, `location` and the echo upstream reached must be the
//! scenario's. Not Kong: the evaluator knows only what the target emits,
//! and Kong's own path normalization and 404 body are not modelled.

use crate::common;

use common::*;
use serde_json::Value;
use std::collections::BTreeMap;

/// A request as the evaluator sees it.
struct Req {
    method: String,
    path: String,
    /// As `http.host`: nginx's `$host`, lower case, without the port.
    host: String,
    /// Lower-case name to values, after the rewrite chunk.
    headers: BTreeMap<String, Vec<String>>,
}

/// Evaluates `expr` (what `routing::expression` writes) against `req`.
fn eval(expr: &str, req: &Req) -> bool {
    let mut p = Parser {
        s: expr.as_bytes(),
        i: 0,
        req,
    };
    let v = p.or();
    p.ws();
    assert_eq!(p.i, p.s.len(), "trailing text in `{expr}`");
    v
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
    req: &'a Req,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.s.get(self.i) == Some(&b' ') {
            self.i += 1;
        }
    }
    fn eat(&mut self, t: &str) -> bool {
        self.ws();
        if self.s[self.i..].starts_with(t.as_bytes()) {
            self.i += t.len();
            true
        } else {
            false
        }
    }
    fn or(&mut self) -> bool {
        let mut v = self.and();
        while self.eat("||") {
            v |= self.and();
        }
        v
    }
    fn and(&mut self) -> bool {
        let mut v = self.term();
        while self.eat("&&") {
            v &= self.term();
        }
        v
    }
    fn term(&mut self) -> bool {
        if self.eat("(") {
            let v = self.or();
            assert!(self.eat(")"), "unbalanced");
            return v;
        }
        self.ws();
        let start = self.i;
        while self.s[self.i].is_ascii_alphanumeric() || b"._".contains(&self.s[self.i]) {
            self.i += 1;
        }
        let field = std::str::from_utf8(&self.s[start..self.i])
            .unwrap()
            .to_string();
        self.ws();
        let op = ["==", "^=", "=^", "~"]
            .into_iter()
            .find(|op| self.eat(op))
            .unwrap_or_else(|| panic!("no operator after {field}"));
        let lit = self.literal();
        // ATC: every value of the field must satisfy the predicate.
        let values: Vec<String> = match field.as_str() {
            "http.path" => vec![self.req.path.clone()],
            "http.method" => vec![self.req.method.clone()],
            "http.host" => vec![self.req.host.clone()],
            f => match f.strip_prefix("http.headers.") {
                // ngx.req.get_headers: `_` in the looked-up name is `-`.
                Some(h) => self
                    .req
                    .headers
                    .get(&h.replace('_', "-"))
                    .cloned()
                    .unwrap_or_default(),
                None => panic!("the evaluator does not know field {f}"),
            },
        };
        !values.is_empty()
            && values.iter().all(|v| match op {
                "==" => *v == lit,
                "^=" => v.starts_with(&lit),
                "=^" => v.ends_with(&lit),
                _ => regex::Regex::new(&lit).unwrap().is_match(v),
            })
    }
    fn literal(&mut self) -> String {
        self.ws();
        if self.eat("r#\"") {
            let rest = &self.s[self.i..];
            let end = rest.windows(2).position(|w| w == b"\"#").expect("raw end");
            self.i += end + 2;
            return String::from_utf8(rest[..end].to_vec()).unwrap();
        }
        assert!(self.eat("\""), "a string literal");
        let mut out = String::new();
        loop {
            let c = self.s[self.i];
            self.i += 1;
            match c {
                b'"' => return out,
                b'\\' => {
                    out.push(self.s[self.i] as char);
                    self.i += 1;
                }
                c => out.push(c as char),
            }
        }
    }
}

/// Runs `chunks` (a Lua list expression) on a request; prints its headers
/// as `name=value` lines, then `status allow body` when it answered.
/// The items of a Lua list expression `{ a, b }`.
fn inner(list: &str) -> &str {
    list.trim()
        .strip_prefix('{')
        .and_then(|l| l.strip_suffix('}'))
        .unwrap()
        .trim()
        .trim_end_matches(',')
}

fn lua(
    chunks: &str,
    method: &str,
    path: &str,
    query: &str,
    headers: &[(String, String)],
) -> String {
    let hs: Vec<String> = headers
        .iter()
        .map(|(n, v)| format!("{{ {}, {} }}", s(n), s(v)))
        .collect();
    run_lua(&format!(
        r#"
local list = {chunks}
local st = S.request({{ method = {}, path = {}, query = {}, headers = {{ {} }} }})
local exited = S.phases(list)
for _, kv in ipairs(st.headers) do print("H " .. kv[1]:lower() .. "=" .. kv[2]) end
local h = S.kong.response.get_headers()
if exited then print("A " .. st.status .. " " .. tostring(h["allow"]) .. " " .. tostring(h["location"])) end
"#,
        s(method),
        s(path),
        // No `?` at all: no query (`ngx.var.request_uri` has none).
        if query.is_empty() {
            "nil".to_string()
        } else {
            s(query)
        },
        hs.join(", ")
    ))
}

fn s(x: &str) -> String {
    gatefold_lua_script::lua::string(x)
}

/// Replays scenario `name` (`GROUP/NAME`); the requests whose outcome on
/// the emulated Kong differs from the scenario's, described.
fn replay(name: &str) -> (usize, Vec<String>) {
    let file = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(format!("../../tests/conformance/scenarios/{name}.yaml"));
    let scenario: Value = serde_yaml::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
    let spec = scenario["spec"]
        .as_str()
        .unwrap()
        .replace("{{echo}}", "http://127.0.0.1:1")
        .replace("{{echo2}}", "http://127.0.0.1:2");
    let yaml = text(&emit(&compile(&spec)));
    let doc: Value = serde_yaml::from_str(&yaml).unwrap();
    let plugins = doc["plugins"].as_array().unwrap();
    let global_pre = plugins
        .iter()
        .find(|p| {
            p["name"] == "pre-function" && p.get("route").is_none() && p.get("service").is_none()
        })
        .unwrap();
    let rewrite = lua_phase(&global_pre["config"], "rewrite");
    let mut routes: Vec<&Value> = doc["routes"].as_array().unwrap().iter().collect();
    routes.sort_by_key(|r| std::cmp::Reverse(r["priority"].as_u64().unwrap()));
    // Service -> echo name, through the Kong upstream's target port.
    let echo_of = |service: &str| -> String {
        let svc = doc["services"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["name"] == service)
            .unwrap();
        let up = doc["upstreams"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["name"] == svc["host"])
            .unwrap();
        match up["targets"][0]["target"].as_str().unwrap() {
            "127.0.0.1:1" => "a".to_string(),
            "127.0.0.1:2" => "b".to_string(),
            t => t.to_string(),
        }
    };
    let mut wrong = Vec::new();
    let requests = scenario["requests"].as_array().unwrap();
    for r in requests {
        let method = r["method"].as_str().unwrap_or("GET");
        let full = r["path"].as_str().unwrap();
        let (path, query) = full.split_once('?').unwrap_or((full, ""));
        let host = r["host"].as_str().unwrap_or("gatefold.test");
        let mut headers: Vec<(String, String)> = vec![("host".to_string(), host.to_string())];
        headers.extend(r["headers"].as_array().into_iter().flatten().map(|h| {
            let (n, v) = h.as_str().unwrap().split_once(':').unwrap();
            (n.trim().to_string(), v.trim().to_string())
        }));
        let out = lua(&rewrite, method, path, query, &headers);
        let mut seen = BTreeMap::<String, Vec<String>>::new();
        let mut after = Vec::new();
        for line in out.lines() {
            let (k, v) = line.strip_prefix("H ").unwrap().split_once('=').unwrap();
            seen.entry(k.to_string()).or_default().push(v.to_string());
            after.push((k.to_string(), v.to_string()));
        }
        let req = Req {
            method: method.to_string(),
            path: path.to_string(),
            host: host
                .rsplit_once(':')
                .map_or(host, |(h, _)| h)
                .to_ascii_lowercase(),
            headers: seen,
        };
        let chosen = routes
            .iter()
            .find(|x| eval(x["expression"].as_str().unwrap(), &req));
        let expect = &r["expect"];
        let status = expect["status"].as_u64().unwrap();
        let allow = expect["headers"]["allow"].as_str().unwrap_or("nil");
        let want = match status {
            _ if expect["headers"]["location"].is_string() => {
                format!(
                    "{status} {}",
                    expect["headers"]["location"].as_str().unwrap()
                )
            }
            404 => "404".to_string(),
            405 => format!("405 {allow}"),
            s => match expect["upstream"]["echo"].as_str() {
                Some(e) => format!("{s} {e}"),
                None => s.to_string(),
            },
        };
        let got = match chosen {
            None => "404".to_string(),
            Some(route) if route["name"].as_str().unwrap().starts_with("gatefold-405") => {
                // The route's own pre-function, else its service's.
                let p = plugins
                    .iter()
                    .find(|p| p["name"] == "pre-function" && p["route"] == route["name"])
                    .or_else(|| {
                        plugins.iter().find(|p| {
                            p["name"] == "pre-function" && p["service"] == route["service"]["name"]
                        })
                    })
                    .unwrap();
                let out = lua(
                    &lua_phase(&p["config"], "access"),
                    method,
                    path,
                    query,
                    &after,
                );
                let answer = out.lines().find_map(|l| l.strip_prefix("A ")).unwrap();
                let answer = answer.strip_suffix(" nil").unwrap();
                answer.strip_suffix(" nil").unwrap_or(answer).to_string()
            }
            Some(route) if route["service"].is_null() => {
                // A route answering itself (mock, redirect): the global
                // pre-function's rewrite (it hands over the redirect
                // location module), then its post-function, the route's
                // own else the global one.
                let post = function_config(&yaml, "post-function", route["name"].as_str().unwrap());
                let access = lua_phase(&post, "access");
                let items: Vec<&str> = [inner(&rewrite), inner(&access)]
                    .into_iter()
                    .filter(|i| !i.is_empty())
                    .collect();
                let both = format!("{{ {} }}", items.join(", "));
                let out = lua(&both, method, path, query, &headers);
                let answer = out
                    .lines()
                    .find_map(|l| l.strip_prefix("A "))
                    .unwrap_or("none");
                let mut words = answer.split(' ');
                let status = words.next().unwrap().to_string();
                match (expect["headers"]["location"].as_str(), words.nth(1)) {
                    (Some(_), Some(l)) => format!("{status} {l}"),
                    _ => status,
                }
            }
            Some(route) => {
                let echo = echo_of(route["service"]["name"].as_str().unwrap());
                match expect["upstream"]["echo"].as_str() {
                    Some(_) => format!("{status} {echo}"),
                    None => status.to_string(),
                }
            }
        };
        // A 405 whose expectation names no `allow` is compared by status.
        let got = if want == "405 nil" {
            got.split(' ').next().unwrap().to_string()
        } else {
            got
        };
        let want = if want == "405 nil" {
            "405".to_string()
        } else {
            want
        };
        if got != want {
            wrong.push(format!(
                "{method} {full} host={host} {headers:?}: Kong {got}, the spec {want}"
            ));
        }
    }
    (requests.len(), wrong)
}

#[test]
fn match_conditions_route_as_the_scenario_expects() {
    let (n, wrong) = replay("routing/match-conditions");
    assert!(n >= 15, "{n} requests");
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[test]
fn every_routing_and_redirect_scenario_answers_as_it_expects() {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/conformance/scenarios");
    let mut all = Vec::new();
    let mut n = 0;
    for group in ["routing", "redirects"] {
        for e in std::fs::read_dir(root.join(group)).unwrap() {
            let p = e.unwrap().path();
            let name = format!("{group}/{}", p.file_stem().unwrap().to_string_lossy());
            let (count, wrong) = replay(&name);
            n += count;
            all.extend(wrong.into_iter().map(|w| format!("{name}: {w}")));
        }
    }
    all.sort();
    assert!(all.is_empty(), "{all:#?}");
    assert!(n >= 140, "only {n} requests");
}
