//! `gateway.tls` on Kong: certificates with vault-referenced keys, SNIs
//! owned by the first certificate covering them, and the global
//! pre-function's rewrite chunk (421 for a misdirected request, 308 from
//! the plain listener) run under luajit against the Kong PDK stand-in (not
//! Kong), on the spec's cases.

use crate::common;

use common::*;
use serde_json::Value;

const A: (&str, &[&str]) = ("a", &["tls.example.test", "*.wild.example.test"]);
const B: (&str, &[&str]) = ("b", &["other.example.test"]);

/// Two certificates as the conformance suite's `tls/sni` has them, keys in
/// variables; `extra` goes under `tls:`.
fn spec(extra: &str) -> String {
    format!(
        r#"
gatefold: 1
gateway:
  name: g
  listen: 8080
  tls:
    listen: 8443
{extra}    certificates:
      - {{ cert: {{ file: certs/a.pem }}, key: {{ env: TLS_KEY_A }} }}
      - {{ cert: {{ file: certs/b.pem }}, key: {{ env: TLS_KEY_B }} }}
upstreams: {{ u: {{ targets: [{{ url: "http://127.0.0.1:9001" }}] }} }}
apis:
  main:
    hosts: [tls.example.test, "*.wild.example.test", other.example.test]
    upstream: u
    routes:
      all: {{ path: /* }}
"#
    )
}

/// `status location body` of each request (a Lua table), run through the
/// rewrite phase of the config's global plugins; `pass` when none answers.
fn answers(yaml: &str, reqs: &[&str]) -> Vec<String> {
    let calls: Vec<String> = reqs.iter().map(|r| format!("go({r})")).collect();
    let out = run_lua(&format!(
        r#"
S.configure({})
local function go(req)
  req.method = req.method or "GET"
  req.path = req.path or "/x"
  local st = S.request(req)
  if S.run("rewrite") then
    print(tostring(st.status) .. " " .. tostring(S.kong.response.get_headers()["location"]) .. " " .. tostring(st.body))
  else
    print("pass")
  end
end
{}
"#,
        lua_plugins(yaml),
        calls.join("\n")
    ));
    out.lines().map(str::to_string).collect()
}

/// A TLS request with SNI `sni` (`nil`: none) and host header `host`.
fn tls(sni: &str, host: &str) -> String {
    let sni = if sni == "nil" {
        "nil".to_string()
    } else {
        format!("{sni:?}")
    };
    format!(
        r#"{{ listener_scheme = "https", sni = {sni}, headers = {{ {{ "host", {host:?} }} }} }}"#
    )
}

const MISDIRECTED: &str = r#"421 nil {"error":"misdirected request"}"#;

#[test]
fn a_host_the_connections_certificate_does_not_cover_is_misdirected() {
    let (ir, _) = compile_with_certs("misdirected", &[A, B], &spec(""));
    let yaml = text(&emit(&ir));
    assert_chunks_compile(&yaml);
    assert_eq!(
        answers(
            &yaml,
            &[
                &tls("tls.example.test", "tls.example.test"),
                &tls("tls.example.test", "TLS.Example.Test:8443"),
                &tls("other.example.test", "other.example.test"),
                &tls("x.wild.example.test", "x.wild.example.test"),
                // The connection's certificate is a (by SNI): b's host is not a's.
                &tls("tls.example.test", "other.example.test"),
                &tls("other.example.test", "tls.example.test"),
                // A certificate's `*.` takes one label.
                &tls("x.wild.example.test", "a.b.wild.example.test"),
                &tls("x.wild.example.test", "wild.example.test"),
                // No SNI, or one no certificate covers: the first certificate.
                &tls("nil", "tls.example.test"),
                &tls("nil", "other.example.test"),
                &tls("unknown.test", "x.wild.example.test"),
                &tls("unknown.test", "other.example.test"),
                // The plain listener serves without redirect-http.
                r#"{ headers = { { "host", "other.example.test" } } }"#,
            ]
        ),
        [
            "pass",
            "pass",
            "pass",
            "pass",
            MISDIRECTED,
            MISDIRECTED,
            MISDIRECTED,
            MISDIRECTED,
            "pass",
            MISDIRECTED,
            "pass",
            MISDIRECTED,
            "pass",
        ]
    );
}

#[test]
fn an_sni_name_belongs_to_the_first_certificate_covering_it() {
    // b repeats a's exact name and a name a's wildcard covers; c's wildcard
    // covers b's exact name, which stays b's.
    let (ir, _) = compile_with_certs(
        "owners",
        &[
            A,
            (
                "b",
                &[
                    "other.example.test",
                    "x.wild.example.test",
                    "tls.example.test",
                    "y.example.test",
                ],
            ),
            ("c", &["*.example.test", "other.example.test"]),
        ],
        r#"
gatefold: 1
gateway:
  name: g
  tls:
    listen: 443
    certificates:
      - { cert: { file: certs/a.pem }, key: { env: TLS_KEY_A } }
      - { cert: { file: certs/b.pem }, key: { env: TLS_KEY_B } }
      - { cert: { file: certs/c.pem }, key: { env: TLS_KEY_C } }
upstreams: { u: { targets: [{ url: "http://127.0.0.1:9001" }] } }
apis:
  main: { upstream: u, routes: { all: { path: /* } } }
"#,
    );
    let yaml = text(&emit(&ir));
    let doc: Value = serde_yaml::from_str(&yaml).unwrap();
    let snis: Vec<Vec<&str>> = doc["certificates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            c["snis"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|s| s["name"].as_str().unwrap())
                .collect()
        })
        .collect();
    assert_eq!(
        snis,
        vec![
            vec!["tls.example.test", "*.wild.example.test", "*"],
            vec!["other.example.test", "y.example.test"],
            vec!["*.example.test"],
        ]
    );
    // As Kong looks the names up (exact, `*.rest`, `*`), each SNI gets the
    // spec's certificate, and a host that certificate covers passes.
    assert_eq!(
        answers(
            &yaml,
            &[
                // a's wildcard, not b's exact name.
                &tls("x.wild.example.test", "x.wild.example.test"),
                &tls("x.wild.example.test", "other.example.test"),
                // b's exact name, before c's wildcard.
                &tls("y.example.test", "other.example.test"),
                &tls("y.example.test", "z.example.test"),
                // c's wildcard.
                &tls("z.example.test", "q.example.test"),
                &tls("z.example.test", "a.b.example.test"),
            ]
        ),
        [
            "pass",
            MISDIRECTED,
            "pass",
            MISDIRECTED,
            "pass",
            MISDIRECTED
        ]
    );
}

#[test]
fn redirect_http_answers_308_to_the_tls_port() {
    let (ir, _) = compile_with_certs("redirect", &[A, B], &spec("    redirect-http: true\n"));
    let yaml = text(&emit(&ir));
    assert_eq!(
        answers(
            &yaml,
            &[
                r#"{ path = "/x", query = "y=1&z", headers = { { "host", "TLS.example.test:8080" } } }"#,
                r#"{ method = "POST", path = "/a b", request_uri = "/a%20b", headers = { { "host", "[2001:db8::1]:8080" } } }"#,
                r#"{ path = "/", headers = { { "host", "unknown.test" } } }"#,
                // The TLS listener serves.
                &tls("tls.example.test", "tls.example.test"),
            ]
        ),
        [
            "308 https://tls.example.test:8443/x?y=1&z ",
            "308 https://[2001:db8::1]:8443/a%20b ",
            "308 https://unknown.test:8443/ ",
            "pass",
        ]
    );
    let on_443 = spec("    redirect-http: true\n").replace("listen: 8443", "listen: 443");
    let (ir, _) = compile_with_certs("redirect443", &[A, B], &on_443);
    let yaml = text(&emit(&ir));
    assert_eq!(
        answers(
            &yaml,
            &[r#"{ path = "/x", headers = { { "host", "tls.example.test:8080" } } }"#]
        ),
        ["308 https://tls.example.test/x "]
    );
}

#[test]
fn keys_are_vault_references_and_chains_are_embedded() {
    let (ir, chains) = compile_with_certs("keys", &[A, B], &spec(""));
    let yaml = text(&emit(&ir));
    let doc: Value = serde_yaml::from_str(&yaml).unwrap();
    let certs = doc["certificates"].as_array().unwrap();
    assert_eq!(certs.len(), 2);
    for (c, (chain, var)) in certs
        .iter()
        .zip(chains.iter().zip(["TLS_KEY_A", "TLS_KEY_B"]))
    {
        assert_eq!(c["cert"].as_str().unwrap(), chain);
        assert_eq!(c["key"].as_str().unwrap(), format!("{{vault://env/{var}}}"));
    }
    assert!(
        !yaml.contains("PRIVATE KEY"),
        "a key in the config:\n{yaml}"
    );
    // The same spec gives the same ids.
    let again = text(&emit(&ir));
    assert_eq!(yaml, again);
    // Without tls: no certificate and no tls chunk.
    let plain = text(&emit(&compile(PETSTORE)));
    assert!(!plain.contains("certificates:") && !plain.contains("gateway.tls"));
}

#[test]
fn a_key_file_is_refused_at_the_key() {
    let with_file = spec("").replace("{ env: TLS_KEY_B }", "{ file: certs/b.key }");
    let (ir, _) = compile_with_certs("keyfile", &[A, B], &with_file);
    let diags = gatefold_target_kong::chain_diagnostics(&ir);
    let errors: Vec<_> = diags
        .iter()
        .filter(|d| d.severity == gatefold_compiler::diag::Severity::Error)
        .collect();
    assert_eq!(errors.len(), 1, "{errors:?}");
    let e = errors[0];
    assert!(
        e.message.contains("certificate 2 from a file"),
        "{}",
        e.message
    );
    assert_eq!(
        e.help.as_deref(),
        Some("Kong reads TLS keys through a vault: write `key: { env: NAME }` and put the PEM key in NAME")
    );
    // At the `key` of the second certificate: its value's line and column.
    let (line, text) = with_file
        .lines()
        .enumerate()
        .find(|(_, l)| l.contains("certs/b.key"))
        .unwrap();
    let col = text.find("key: ").unwrap() + "key: ".len() + 1;
    let span = e.span.expect("a place");
    assert_eq!(
        (span.start.line as usize, span.start.col as usize),
        (line + 1, col)
    );
}
