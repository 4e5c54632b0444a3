//! Real Envoy serving compiled specs on 127.0.0.1 free ports, with an echo
//! upstream: statuses, headers, bodies and what the upstream received.

use crate::common;

use common::*;

fn example(name: &str, ports: &[(&str, &Upstream)]) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples")
        .join(name)
        .join("gatefold.yaml");
    let mut text = std::fs::read_to_string(path).unwrap();
    for (from, up) in ports {
        text = text.replace(from, &up.url());
    }
    text
}

#[test]
fn quickstart_serves_mocks_and_proxies() {
    let up = Upstream::start("local");
    let gw = serve(&example("quickstart", &[("http://127.0.0.1:9000", &up)]));
    let hello = get(gw.addr, "/hello", &[]);
    assert_eq!(hello.status, 200);
    assert_eq!(hello.header("content-type"), Some("application/json"));
    assert_eq!(hello.text(), r#"{"message":"hello from gatefold"}"#);
    // Mocks answer without the upstream; the route takes only GET.
    let post = send(gw.addr, "POST", "/hello", &[], b"");
    assert_eq!(post.status, 405);
    assert_eq!(post.header("allow"), Some("GET"));
    assert_eq!(post.text(), r#"{"error":"method not allowed"}"#);
    assert_eq!(get(gw.addr, "/legacy/x/y", &[]).status, 410);
    // strip-base-path: /echo/index.html goes up as /index.html, /echo as /.
    let r = get(gw.addr, "/echo/index.html?q=1", &[("x-debug", "1")]);
    assert_eq!(r.status, 200);
    let seen = r.seen();
    assert_eq!(seen["path"], "/index.html?q=1");
    assert_eq!(seen["headers"]["x-forwarded-by"], "gatefold");
    assert!(seen["headers"].get("x-debug").is_none(), "{seen}");
    assert_eq!(seen["headers"]["host"], up.addr.to_string());
    assert_eq!(seen["headers"]["x-forwarded-host"], "gw.test");
    assert!(r.header("x-request-id").is_some());
    assert_eq!(get(gw.addr, "/echo", &[]).seen()["path"], "/");
    let none = get(gw.addr, "/nothing", &[]);
    assert_eq!(none.status, 404);
    assert_eq!(none.text(), r#"{"error":"no route"}"#);
    assert_eq!(none.header("content-type"), Some("application/json"));
    assert_eq!(up.hits.load(std::sync::atomic::Ordering::SeqCst), 2);
}

#[test]
fn petstore_authenticates_limits_and_authorizes() {
    std::env::set_var("ACME_API_KEY", "acme-key");
    std::env::set_var("GLOBEX_API_KEY", "globex-key");
    std::env::set_var("GLOBEX_API_KEY_NEXT", "globex-next");
    std::env::set_var("STAFF_API_KEY", "staff-key");
    let a = Upstream::start("pets-1");
    let b = Upstream::start("pets-2");
    let gw = serve(&example(
        "petstore",
        &[("http://127.0.0.1:9001", &a), ("http://127.0.0.1:9002", &b)],
    ));
    let no_key = get(gw.addr, "/pets", &[]);
    assert_eq!(no_key.status, 401);
    assert_eq!(no_key.text(), r#"{"error":"unauthorized"}"#);
    // Declared approximation: route response headers are on refusals too
    // (the spec's phase 13 would skip them).
    assert_eq!(no_key.header("cache-control"), Some("no-store"));
    let wrong = get(gw.addr, "/pets", &[("x-api-key", "nope")]);
    assert_eq!(wrong.status, 401);
    let ok = get(
        gw.addr,
        "/pets/7",
        &[("x-api-key", "globex-next"), ("x-debug", "1")],
    );
    assert_eq!(ok.status, 200);
    let seen = ok.seen();
    assert_eq!(seen["path"], "/pets/7");
    // The key never reaches the upstream; the transforms apply.
    assert!(seen["headers"].get("x-api-key").is_none(), "{seen}");
    assert!(seen["headers"].get("x-debug").is_none(), "{seen}");
    assert_eq!(seen["headers"]["x-gateway"], "petstore");
    assert_eq!(ok.header("cache-control"), Some("no-store"));
    assert_eq!(ok.header("x-powered-by"), None);
    assert_eq!(ok.header("x-ratelimit-limit"), Some("100"));
    assert_eq!(ok.header("x-ratelimit-remaining"), Some("99"));
    // acl: only staff delete.
    let denied = send(
        gw.addr,
        "DELETE",
        "/pets/7",
        &[("x-api-key", "acme-key")],
        b"",
    );
    assert_eq!(denied.status, 403);
    assert_eq!(denied.text(), r#"{"error":"forbidden"}"#);
    let staff = send(
        gw.addr,
        "DELETE",
        "/pets/7",
        &[("x-api-key", "staff-key")],
        b"",
    );
    assert_eq!(staff.status, 200);
    assert_eq!(staff.seen()["method"], "DELETE");
    // request-size-limit 64KiB on create: refused before the upstream.
    let big = vec![b'x'; 70 * 1024];
    let r = send(gw.addr, "POST", "/pets", &[("x-api-key", "acme-key")], &big);
    assert_eq!(r.status, 413);
    assert_eq!(r.text(), r#"{"error":"payload too large"}"#);
    let small = send(
        gw.addr,
        "POST",
        "/pets",
        &[("x-api-key", "acme-key")],
        b"{}",
    );
    assert_eq!(small.seen()["body-length"], 2);
    // CORS preflight for DELETE, routed by the method it asks about.
    let pre = send(
        gw.addr,
        "OPTIONS",
        "/pets/7",
        &[
            ("origin", "https://app.petstore.example"),
            ("access-control-request-method", "DELETE"),
        ],
        b"",
    );
    assert_eq!(pre.status, 204);
    assert_eq!(
        pre.header("access-control-allow-origin"),
        Some("https://app.petstore.example")
    );
    assert_eq!(
        pre.header("access-control-allow-methods"),
        Some("GET, POST, DELETE")
    );
    assert_eq!(pre.header("access-control-max-age"), Some("600"));
    assert_eq!(
        pre.header("access-control-allow-headers"),
        Some("content-type, x-api-key")
    );
    // Actual requests from the origin get the headers, refusals too.
    let refused = get(
        gw.addr,
        "/pets",
        &[("origin", "https://app.petstore.example")],
    );
    assert_eq!(refused.status, 401);
    assert_eq!(
        refused.header("access-control-allow-origin"),
        Some("https://app.petstore.example")
    );
    assert_eq!(
        refused.header("access-control-allow-credentials"),
        Some("true")
    );
    let other = get(
        gw.addr,
        "/pets",
        &[
            ("origin", "https://evil.example"),
            ("x-api-key", "acme-key"),
        ],
    );
    assert_eq!(other.status, 200);
    assert_eq!(other.header("access-control-allow-origin"), None);
    // status is not rate limited.
    let status = get(gw.addr, "/pets/status", &[("x-api-key", "acme-key")]);
    assert_eq!(status.status, 200);
    assert_eq!(status.header("x-ratelimit-limit"), None);
}

/// Envoy answers a request its cluster has no host for (response flag UH)
/// in two ways, told apart by the cluster: where health checks took every
/// target out, 503 `no healthy upstream`; where no target's name resolved
/// (no host at all, no health checks), 502 `bad gateway` as for any
/// unreachable upstream. Both in one configuration, so one set of
/// local-reply mappers must tell them apart; a `mock` answering 503 keeps
/// its own body.
#[test]
fn no_host_is_503_after_health_checks_and_502_for_an_unresolved_name() {
    let sick = Upstream::start("sick");
    sick.healthy
        .store(false, std::sync::atomic::Ordering::SeqCst);
    let gw = serve(&format!(
        r#"
gatefold: 1
upstreams:
  sick: {{ targets: [{{ url: "{}" }}], health: {{ path: /healthz, interval: 1s, timeout: 1s, unhealthy-after: 1 }} }}
  nowhere: {{ targets: [{{ url: "http://nowhere.invalid:8080" }}] }}
apis:
  main:
    upstream: nowhere
    routes:
      nowhere: {{ path: /nowhere }}
      sick: {{ path: /sick, upstream: sick }}
      busy: {{ path: /busy, policies: [{{ mock: {{ status: 503, body: "busy\n" }} }}] }}
"#,
        sick.url()
    ));
    let nowhere = get(gw.addr, "/nowhere", &[]);
    assert_eq!(
        (nowhere.status, nowhere.json()),
        (502, serde_json::json!({ "error": "bad gateway" }))
    );
    assert_eq!(nowhere.header("content-type"), Some("application/json"));
    // Targets start healthy: poll until the first failed check takes the
    // one target out.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let sick_reply = loop {
        let r = get(gw.addr, "/sick", &[]);
        if r.status != 200 || std::time::Instant::now() > deadline {
            break r;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert_eq!(
        (sick_reply.status, sick_reply.json()),
        (503, serde_json::json!({ "error": "no healthy upstream" }))
    );
    let busy = get(gw.addr, "/busy", &[]);
    assert_eq!((busy.status, busy.text()), (503, "busy\n".to_string()));
    assert_eq!(get(gw.addr, "/nowhere", &[]).status, 502);
}
