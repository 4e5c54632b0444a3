//! Portable scripts over real sockets (policy-spec "script"): the request
//! script at phase 8 changes what goes upstream or answers with
//! `respond()`, the response script runs after `response-headers`, `ctx`
//! carries from one to the other, and a script failing at run time answers
//! 500 `{"error":"script failed"}` on either side.

use crate::common;
use common::*;

fn script_spec(up: &Upstream) -> String {
    format!(
        r#"gatefold: 1
upstreams:
  app: {{ targets: [{{ url: {} }}] }}
policies:
  tenant-routing:
    script:
      request: |
        const v = req.header("x-version");
        if (v === "2") {{ req.setHeader("x-upstream-version", "2"); }}
        const tenant = req.query("tenant");
        if (!tenant) {{ return respond(400, {{ error: "tenant required" }}); }}
        ctx.tenant = tenant.toLowerCase();
        req.removeHeader("x-secret");
      response: |
        res.setHeader("x-tenant", ctx.tenant ?? "none");
        if (res.status >= 500) {{ res.setHeader("cache-control", "no-store"); }}
        res.removeHeader("x-powered-by");
apis:
  app:
    upstream: app
    policies: [tenant-routing]
    routes:
      items:
        path: /items
        policies:
          - response-headers: {{ set: {{ x-tenant: from-headers, x-shaped: "1" }} }}
      segments:
        path: /t/*
        policies:
          - script:
              request: |
                const parts = req.path.split("/");
                const tenant = parts[2];
                if (!tenant) {{ return respond(404, "no tenant", {{ "x-why": "segment" }}); }}
                req.setHeader("x-tenant", tenant);
                req.setPath("/tenants/" + tenant);
      rewritten:
        path: /r/*
        policies:
          - script:
              request: |
                req.setPath("/v2" + req.path.slice(2));
      failing:
        path: /fail
        policies:
          - script:
              request: |
                const h = req.header("x-mode");
                if (h === "crlf") {{ req.setHeader("x-a", "a\r\nx-injected: 1" + req.path); }}
                if (h === "null") {{ log(req.header("x-missing").length); }}
                if (h === "status") {{ return respond(parseInt(req.query("s") ?? "0"), "x"); }}
      failing-response:
        path: /fail-response
        policies:
          - script:
              response: |
                res.setHeader("x-status", `${{res.status}}`);
                if (res.header("x-upstream") === "app") {{ res.setHeader("x-a", res.header("x-missing").trim()); }}
"#,
        up.url()
    )
}

/// The design's tenant-routing script: header routing, `respond(400)`,
/// `ctx` from request to response, response headers after `response-headers`.
#[tokio::test]
async fn the_tenant_routing_script_runs_on_both_sides() {
    let up = Upstream::start("app").await;
    let gw = gateway(&script_spec(&up)).await;

    let r = gw
        .send(
            "GET",
            "/items?tenant=ACME",
            &[("x-version", "2"), ("x-secret", "s")],
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.upstream_header("x-upstream-version").as_deref(),
        Some("2")
    );
    assert_eq!(r.upstream_header("x-secret"), None, "removed by the script");
    // The response script runs after `response-headers`, so its value wins.
    assert_eq!(r.header("x-tenant"), Some("acme"));
    assert_eq!(r.header("x-shaped"), Some("1"));
    assert_eq!(r.header("x-powered-by"), None);

    // Without the header, nothing is added upstream.
    let r = gw.get("/items?tenant=a").await;
    assert_eq!(r.upstream_header("x-upstream-version"), None);

    // respond(): 400 before the upstream, and the response script does not
    // run (phases 9-13 are skipped).
    let hits = up.hits();
    let r = gw.get("/items").await;
    r.assert_error(400, "tenant required");
    assert_eq!(r.header("x-tenant"), None);
    assert_eq!(up.hits(), hits, "respond() answers without the upstream");

    // An upstream 5xx goes through the response script.
    let r = gw
        .send("GET", "/items?tenant=b", &[("x-test-status", "503")], None)
        .await;
    assert_eq!(r.status, 503);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(r.header("x-tenant"), Some("b"));
}

/// `req.setPath` changes the path sent upstream; a path segment read with
/// 0-based indexes; `respond()` with a text body and headers.
#[tokio::test]
async fn scripts_route_by_path_segment_and_set_the_upstream_path() {
    let up = Upstream::start("app").await;
    let gw = gateway(&script_spec(&up)).await;
    let r = gw.get("/r/items/1?tenant=x").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["path"], "/v2/items/1");
    assert_eq!(r.json()["query"], "tenant=x");

    let r = gw.get("/t/acme/orders").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["path"], "/tenants/acme");
    assert_eq!(r.upstream_header("x-tenant").as_deref(), Some("acme"));

    let hits = up.hits();
    let r = gw.get("/t").await;
    assert_eq!(r.status, 404);
    assert_eq!(r.text(), "no tenant");
    assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
    assert_eq!(r.header("x-why"), Some("segment"));
    assert_eq!(up.hits(), hits);
}

/// Every run-time failure answers 500 `{"error":"script failed"}`: a
/// header value with CR/LF (never sent), a property of `null`, a status
/// out of range; on the response side too, replacing the upstream's answer.
#[tokio::test]
async fn runtime_failures_answer_500_script_failed() {
    let up = Upstream::start("app").await;
    let gw = gateway(&script_spec(&up)).await;
    let hits = up.hits();
    for (mode, query) in [
        ("crlf", ""),
        ("null", ""),
        ("status", "?s=700"),
        ("status", "?s=abc"),
    ] {
        let r = gw
            .send("GET", &format!("/fail{query}"), &[("x-mode", mode)], None)
            .await;
        r.assert_error(500, "script failed");
        assert_eq!(r.header("x-injected"), None);
    }
    assert_eq!(
        up.hits(),
        hits,
        "a failed request script never reaches the upstream"
    );
    // A status in range works.
    let r = gw
        .send("GET", "/fail?s=418", &[("x-mode", "status")], None)
        .await;
    assert_eq!(r.status, 418);
    assert_eq!(r.text(), "x");
    // No failure: the request goes on.
    let r = gw.get("/fail").await;
    assert_eq!(r.status, 200, "{}", r.text());

    let r = gw.get("/fail-response").await;
    r.assert_error(500, "script failed");
    assert_eq!(
        r.header("x-status"),
        None,
        "the failed response is replaced whole"
    );
}

/// The five scripts of `examples/scripts` (the spec folder as written, its
/// upstream pointed at the test's), served by the reference gateway.
#[tokio::test]
async fn the_example_scripts_serve() {
    use gatefold_compiler::source::{SourceFile, Sources};
    let up = Upstream::start("app").await;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/scripts");
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    names.sort();
    let mut sources = Sources::new();
    for p in names {
        let text = std::fs::read_to_string(&p)
            .unwrap()
            .replace("http://127.0.0.1:9001", &up.url());
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        sources.add(SourceFile::new(name, text));
    }
    let compiled = gatefold_compiler::compile_sources(sources, |_| dir.clone());
    let rendered = compiled.render();
    let ir = compiled
        .ir
        .unwrap_or_else(|| panic!("examples/scripts does not compile:\n{rendered}"));
    let gw = gateway_ir(ir, &[], |_| {}).await;

    // A/B: an explicit variant is a path prefix and a response header.
    let r = gw
        .send("GET", "/shop/home", &[("x-variant", "B")], None)
        .await;
    assert_eq!(r.json()["path"], "/b/shop/home");
    assert_eq!(r.header("x-variant"), Some("b"));

    // Validation.
    let r = gw
        .send(
            "POST",
            "/orders",
            &[("content-type", "text/plain")],
            Some("x"),
        )
        .await;
    assert_eq!(r.status, 415);
    assert_eq!(r.json()["expected"], "application/json");
    let r = gw
        .send(
            "POST",
            "/orders",
            &[
                ("content-type", "application/json"),
                ("idempotency-key", "short"),
            ],
            Some("{}"),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    let r = gw
        .send(
            "POST",
            "/orders",
            &[("content-type", "application/json; charset=utf-8")],
            Some("{}"),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(gw.get("/orders?page-size=101").await.status, 400);
    assert_eq!(gw.get("/orders?page-size=1e2").await.status, 400);
    assert_eq!(gw.get("/orders?page-size=50").await.status, 200);

    // Response shaping: the upstream's own marker header is kept, an error is not cached.
    let r = gw
        .send("GET", "/site/x", &[("x-test-status", "404")], None)
        .await;
    assert_eq!(r.status, 404);
    assert_eq!(r.header("cache-control"), Some("no-store"));

    // Tenant from a path segment.
    let r = gw.get("/t/Acme-1/orders/7").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["path"], "/orders/7");
    assert_eq!(r.upstream_header("x-tenant").as_deref(), Some("acme-1"));
    assert_eq!(r.header("x-tenant"), Some("acme-1"));
    assert_eq!(gw.get("/t/ac%20me/x").await.status, 400);

    // Maintenance window.
    let r = gw
        .send("GET", "/api/x", &[("x-maintenance", " on ")], None)
        .await;
    r.assert_error(503, "down for maintenance");
    assert_eq!(r.header("retry-after"), Some("600"));
    let r = gw
        .send(
            "GET",
            "/api/x",
            &[("x-maintenance", "on"), ("x-staff-bypass", "yes")],
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.upstream_header("x-staff-bypass"), None);
}
