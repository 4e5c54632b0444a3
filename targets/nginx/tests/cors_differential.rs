//! cors (with language 1.1's origin patterns, `*` methods and headers, and
//! credentials with any origin) answers on nginx exactly as on the
//! reference gateway: the same preflights and requests (origins in other
//! cases, with ports, odd labels; asked methods and headers) sent to both
//! over real sockets get the same status and CORS headers.

use crate::common;

use common::*;
use gatefold_compiler::target::{Options, Target};
use gatefold_runtime::launch::{Launch, Launched};

const SPEC: &str = r#"
gatefold: 1
apis:
  main:
    routes:
      pattern:
        path: /p
        policies:
          - cors: { origins: ["https://*.example.com", "http://exact.test:8080"], methods: ["*"], headers: ["*"], expose: [x-a, x-b], credentials: true, max-age: 10m }
          - mock: { status: 200, body: p }
      any-cred:
        path: /c
        policies:
          - cors: { origins: ["*"], credentials: true, headers: [x-one] }
          - mock: { status: 200, body: c }
      star:
        path: /s
        policies:
          - cors: { origins: ["*"], methods: ["*"], headers: ["*"] }
          - mock: { status: 200, body: s }
      listed:
        path: /l
        policies:
          - cors: { origins: ["https://app.test"], methods: [GET, PUT] }
          - mock: { status: 200, body: l }
"#;

const CORS: [&str; 8] = [
    "access-control-allow-origin",
    "access-control-allow-methods",
    "access-control-allow-headers",
    "access-control-allow-credentials",
    "access-control-expose-headers",
    "access-control-max-age",
    "vary",
    "allow",
];

#[test]
fn cors_answers_as_the_reference_does() {
    let ir = compile(SPEC);
    let ng = run(&ir, &[]);
    let work = tempfile::tempdir().unwrap();
    let listen = free_addr();
    let output = gatefold_target_reference::Reference.emit(
        &ir,
        &Options {
            listen: Some(listen),
            ..Options::default()
        },
    );
    let launch = Launch::new(
        gatefold_compiler::ir::TargetKind::Reference,
        work.path(),
        listen,
    );
    let reference = Launched::start(launch, &output).unwrap();
    let origins = [
        None,
        Some("https://a.example.com"),
        Some("https://A.B.Example.COM"),
        Some("HTTPS://a.example.com"),
        Some("https://example.com"),
        Some("https://.example.com"),
        Some("https://a..example.com"),
        Some("https://a_b.example.com"),
        Some("https://a.example.com:443"),
        Some("https://a.example.com.evil.net"),
        Some("http://a.example.com"),
        Some("http://exact.test:8080"),
        Some("http://EXACT.test:8080"),
        Some("https://app.test"),
        Some("null"),
    ];
    let asks: [Option<(&str, Option<&str>)>; 4] = [
        None,
        Some(("PUT", Some("x-a, X-B"))),
        Some(("DELETE", None)),
        Some(("get", Some("x-one"))),
    ];
    let mut differ = Vec::new();
    let mut allowed = 0;
    for path in ["/p", "/c", "/s", "/l"] {
        for origin in origins {
            for ask in asks {
                let mut headers: Vec<(&str, &str)> = Vec::new();
                if let Some(o) = origin {
                    headers.push(("origin", o));
                }
                let method = match ask {
                    Some((m, h)) => {
                        headers.push(("access-control-request-method", m));
                        if let Some(h) = h {
                            headers.push(("access-control-request-headers", h));
                        }
                        "OPTIONS"
                    }
                    None => "GET",
                };
                let see = |addr| {
                    let r = request(addr, method, path, &headers, b"");
                    let cors: Vec<(String, Vec<String>)> = CORS
                        .iter()
                        .map(|h| {
                            (
                                h.to_string(),
                                r.all(h).into_iter().map(str::to_string).collect(),
                            )
                        })
                        .collect();
                    (r.status, cors)
                };
                let want = see(reference.listen());
                let got = see(ng.addr);
                allowed += usize::from(!want.1[0].1.is_empty());
                if want != got {
                    differ.push(format!(
                        "{method} {path} {headers:?}:\n  reference {want:?}\n  nginx     {got:?}"
                    ));
                }
            }
        }
    }
    reference.stop().unwrap();
    assert!(differ.is_empty(), "{}", differ.join("\n"));
    assert!(allowed > 40, "{allowed}");
}
