//! `native: { nginx: { directives: [...] } }`: a checked subset of nginx
//! directives goes into the locations of the routes the policy covers, and
//! anything else is refused at the policy's place, before any file is
//! written.

use crate::common;

use common::*;
use gatefold_compiler::target::{Options, Target};
use gatefold_target_nginx::Nginx;

fn spec(directives: &str, route_policies: &str) -> String {
    format!(
        r#"gatefold: 1
upstreams: {{ u: {{ targets: [{{ url: "http://127.0.0.1:9001" }}] }} }}
apis:
  a:
    upstream: u
    routes:
      stream:
        path: /stream
        policies:
          - native:
              nginx: {{ directives: {directives} }}{route_policies}
      plain: {{ path: /plain }}
"#
    )
}

fn messages(text: &str) -> Vec<String> {
    let c = gatefold_compiler::compile_str("spec.yaml", text);
    let Some(ir) = c.ir.as_ref() else {
        panic!("{}", c.render())
    };
    Nginx::default()
        .spec_diagnostics(ir)
        .iter()
        .map(|d| {
            assert!(d.span.is_some(), "{}", d.message);
            format!("{} | {}", d.message, d.help.clone().unwrap_or_default())
        })
        .collect()
}

/// Accepted directives land in the route's own location only, and the
/// result passes `nginx -t`.
#[test]
fn accepted_directives_are_written_into_the_route_location() {
    let text = spec(
        r#"["proxy_buffering off;", "gzip on;", "gzip_types application/json text/css;"]"#,
        "",
    );
    assert!(messages(&text).is_empty());
    let out = emit(&compile(&text), &Options::default());
    check_output(&out);
    let conf = conf(&out);
    assert_eq!(conf.matches("proxy_buffering off;").count(), 1, "{conf}");
    assert_eq!(
        conf.matches("gzip_types application/json text/css;")
            .count(),
        1
    );
    // In the location of `stream`, after the proxy set-up.
    let at = conf.find("proxy_buffering off;").unwrap();
    let route = conf[..at]
        .rfind("route a.stream")
        .expect("the route's location");
    assert!(!conf[route..at].contains("route a.plain"), "{conf}");
}

/// What is outside the subset, or could escape the directive, is refused at
/// the policy with what to write instead.
#[test]
fn everything_else_is_refused_at_the_policy() {
    for (directives, says) in [
        (r#"["return 200;"]"#, "`return` is not in the subset"),
        (r#"["allow all;"]"#, "`allow` is not in the subset"),
        (
            r#"["proxy_buffering off; return 200;"]"#,
            "has arguments nginx would not take",
        ),
        (r#"["proxy_buffering off"]"#, "does not end with `;`"),
        (
            r#"["gzip_types text/css}; location / {;"]"#,
            "has arguments",
        ),
        (r#"["proxy_buffering $x;"]"#, "has arguments"),
        (r#"[{ raw: "x" }]"#, "is not a string"),
    ] {
        let got = messages(&spec(directives, ""));
        assert_eq!(got.len(), 1, "{directives}: {got:#?}");
        assert!(
            got[0].contains("target `nginx`, policy `route/a.stream/native`")
                && got[0].contains(says),
            "{directives}: {got:#?}"
        );
        assert!(got[0].contains(" | "), "a help line: {got:#?}");
    }
}

/// nginx caches only buffered responses: `proxy_buffering off` on a route
/// with `cache` would make the cache never store, so it is refused.
#[test]
fn unbuffered_cached_route_is_refused() {
    let cached = spec(
        r#"["proxy_buffering off;"]"#,
        "\n          - cache: { ttl: 1m }",
    );
    let got = messages(&cached);
    assert_eq!(got.len(), 1, "{got:#?}");
    assert!(got[0].contains("would stop its `cache`"), "{got:#?}");
    let buffered = spec(
        r#"["proxy_buffer_size 16k;"]"#,
        "\n          - cache: { ttl: 1m }",
    );
    assert!(messages(&buffered).is_empty());
}
