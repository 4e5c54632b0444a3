//! Operating the gateway: the admin API, hot swaps under load, `--watch`,
//! graceful shutdown, the access log, and hostile clients.

use crate::common;
use common::*;
use gatefold_target_reference::gateway::watch::Source;
use gatefold_target_reference::gateway::{Gateway, Options};
use serde_json::json;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn mock_spec(body: &str) -> String {
    format!(
        "gatefold: 1
apis:
  a:
    routes:
      r: {{ path: /, policies: [{{ mock: {{ body: {body} }} }}] }}
"
    )
}

async fn put_config(admin: std::net::SocketAddr, body: &str, token: Option<&str>) -> Resp {
    let auth = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("authorization", a.as_str())).collect();
    send(admin, "PUT", "/config", &headers, Some(body)).await
}

#[tokio::test]
async fn admin_status_config_metrics_and_healthz() {
    let gw = gateway(&mock_spec("one")).await;
    let admin = gw.admin();
    gw.get("/").await;
    gw.get("/missing").await;
    let status = get(admin, "/status").await.json();
    let hash = gw.gw.shared().runtime.load().ir.hash.to_string();
    assert_eq!(status["config_hash"], hash);
    assert_eq!(status["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(status["routes"], 1);
    assert_eq!(status["loaded_at"], "2027-01-15T08:00:00.000Z");
    assert!(status["uptime_seconds"].is_u64());
    let config = get(admin, "/config").await;
    assert_eq!(config.header("content-type"), Some("application/json"));
    assert_eq!(config.text(), compile(&mock_spec("one")).to_json());
    assert_eq!(
        get(admin, "/healthz").await.json(),
        json!({ "status": "ok" })
    );
    let metrics = get(admin, "/metrics").await.text();
    assert!(
        metrics.contains("gatefold_requests_total{route=\"a.r\",status=\"200\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("gatefold_requests_total{route=\"\",status=\"404\"} 1"));
    assert!(metrics.contains("gatefold_request_duration_seconds_count{route=\"a.r\"} 1"));
    assert_eq!(get(admin, "/nope").await.status, 404);
    assert_eq!(
        send(admin, "DELETE", "/config", &[], None).await.status,
        405
    );
}

#[tokio::test]
async fn admin_put_rejects_bad_configs_and_rolls_back() {
    let gw = gateway(&mock_spec("one")).await;
    let admin = gw.admin();
    // A spec in YAML.
    let r = put_config(admin, &mock_spec("two"), None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["ok"], true);
    assert_eq!(gw.get("/").await.text(), "two");
    // A broken spec: 400 with diagnostics, and the old config keeps serving.
    let r = put_config(
        admin,
        "gatefold: 1\napis:\n  a:\n    routes:\n      r: { path: nope }\n",
        None,
    )
    .await;
    assert_eq!(r.status, 400);
    let body = r.json();
    assert_eq!(body["ok"], false);
    assert!(
        !body["diagnostics"].as_array().unwrap().is_empty(),
        "{body}"
    );
    assert!(body["diagnostics"][0]["line"].is_u64(), "{body}");
    assert_eq!(gw.get("/").await.text(), "two");
    // A valid spec the gateway cannot load (secret not set): 400, names it.
    let needs_secret = "gatefold: 1
consumers:
  c: { credentials: { key: { env: NOT_SET_ANYWHERE } } }
apis:
  a:
    policies: [{ key-auth: {} }]
    routes:
      r: { path: /, policies: [{ mock: { body: three } }] }
";
    let r = put_config(admin, needs_secret, None).await;
    assert_eq!(r.status, 400);
    assert!(r.text().contains("NOT_SET_ANYWHERE"), "{}", r.text());
    // A compiled IR; a hand-edited one is refused. `GET /config` answers a pushed IR as it was pushed (here indented),
    // not serialized again.
    let ir = compile(&mock_spec("four")).to_json();
    let pretty =
        serde_json::to_string_pretty(&serde_json::from_str::<serde_json::Value>(&ir).unwrap())
            .unwrap();
    assert_ne!(pretty, ir);
    assert_eq!(put_config(admin, &pretty, None).await.status, 200);
    assert_eq!(gw.get("/").await.text(), "four");
    assert_eq!(get(admin, "/config").await.text(), pretty);
    let r = put_config(admin, &ir.replace("four", "evil"), None).await;
    assert_eq!(r.status, 400);
    assert!(r.text().contains("hash"), "{}", r.text());
    // Rollback walks back through the configs that served.
    assert_eq!(get(admin, "/status").await.json()["rollback_depth"], 2);
    assert_eq!(
        send(admin, "POST", "/rollback", &[], None).await.status,
        200
    );
    assert_eq!(gw.get("/").await.text(), "two");
    // A config rolled back to is serialized (it came as a spec).
    assert_eq!(
        get(admin, "/config").await.text(),
        gw.gw.shared().runtime.load().ir.to_json()
    );
    assert_eq!(
        send(admin, "POST", "/rollback", &[], None).await.status,
        200
    );
    assert_eq!(gw.get("/").await.text(), "one");
    let r = send(admin, "POST", "/rollback", &[], None).await;
    assert_eq!(r.status, 409);
    assert_eq!(gw.get("/").await.text(), "one");
    let metrics = get(admin, "/metrics").await.text();
    assert!(
        metrics.contains("gatefold_config_reloads_total{result=\"rejected\"} 3"),
        "{metrics}"
    );
}

/// `PATCH /config`: a compiled IR as its changes from the running one (what
/// `gatefold apply` sends). Applied when they make the IR they name from
/// the running config; 412 when another config runs; 422, nothing changed,
/// when they do not make that IR or are not changes at all.
#[tokio::test]
async fn admin_takes_a_config_as_its_changes() {
    use gatefold_compiler::ir::delta::IrDelta;
    let gw = gateway(&mock_spec("one")).await;
    let admin = gw.admin();
    let one = gw.gw.shared().runtime.load().ir.clone();
    let two = compile(&mock_spec("two"));
    let three = compile(&mock_spec("three"));
    let changes = |d: &IrDelta| serde_json::to_string(d).unwrap();
    let patch = |headers: Vec<(&'static str, String)>, body: String| async move {
        let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        send(admin, "PATCH", "/config", &h, Some(&body)).await
    };
    // Changes for another config: 412 naming the running one.
    let r = patch(vec![], changes(&IrDelta::between(&two, &three))).await;
    assert_eq!(r.status, 412, "{}", r.text());
    assert_eq!(r.json()["config_hash"], one.hash.as_str());
    // Changes that make another IR than they name.
    let mut forged = IrDelta::between(&one, &two);
    forged.hash = three.hash.clone();
    let r = patch(vec![], changes(&forged)).await;
    assert_eq!(r.status, 422, "{}", r.text());
    assert!(r.text().contains("does not match its hash"), "{}", r.text());
    // `if-match` naming another config than the changes apply to.
    let right = changes(&IrDelta::between(&one, &two));
    let r = patch(vec![("if-match", two.hash.to_string())], right.clone()).await;
    assert_eq!(r.status, 422, "{}", r.text());
    let r = patch(vec![], mock_spec("two")).await;
    assert_eq!(r.status, 422, "{}", r.text());
    assert!(r.text().contains("not the changes"), "{}", r.text());
    assert_eq!(gw.get("/").await.text(), "one");
    // The right changes: served, recorded, and `GET /config` is the IR.
    let manifest = r#"{"hash":"x","action":"apply"}"#.to_string();
    let r = patch(
        vec![
            ("if-match", one.hash.to_string()),
            ("gatefold-manifest", manifest),
        ],
        right,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["config_hash"], two.hash.as_str());
    assert_eq!(gw.get("/").await.text(), "two");
    assert_eq!(get(admin, "/manifest").await.json()["action"], "apply");
    assert_eq!(get(admin, "/config").await.text(), two.to_json());
    // Changes to a config made from changes (whose routes' JSON the
    // gateway kept for the hash).
    let r = patch(vec![], changes(&IrDelta::between(&two, &three))).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(gw.get("/").await.text(), "three");
    // And it rolls back as any config does.
    let r = send(admin, "POST", "/rollback", &[], None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(gw.get("/").await.text(), "two");
}

/// Route `id`'s proxy plan in `rt`.
fn plan_of(
    rt: &gatefold_target_reference::gateway::runtime::Runtime,
    id: &str,
) -> Arc<gatefold_target_reference::gateway::runtime::ProxyPlan> {
    let r = rt.routes.iter().find(|r| &*r.id == id).unwrap();
    r.proxy.clone().unwrap()
}

/// Sends the gateway `yaml`'s IR as its changes from the running one
/// (`PATCH /config`), which it must take.
async fn patch_to(gw: &Gw, yaml: &str) {
    use gatefold_compiler::ir::delta::IrDelta;
    let running = gw.gw.shared().runtime.load_full();
    let body = serde_json::to_string(&IrDelta::between(&running.ir, &compile(yaml))).unwrap();
    let r = send(gw.admin(), "PATCH", "/config", &[], Some(&body)).await;
    assert_eq!(r.status, 200, "{}", r.text());
}

/// A reload keeps a kept route's proxy plan only while its upstream's
/// pool is the one it had: changes that move an upstream's target send
/// that upstream's routes to the new target at once, and the routes of an
/// upstream left as it was keep their plan (the same one, shared).
#[tokio::test]
async fn changes_that_move_an_upstream_reach_its_new_target() {
    let (a, b, c) = (
        Upstream::start("a").await,
        Upstream::start("b").await,
        Upstream::start("c").await,
    );
    let spec = |first: &Upstream| {
        format!(
            "gatefold: 1
upstreams:
  one: {{ targets: [{{ url: {} }}] }}
  two: {{ targets: [{{ url: {} }}] }}
apis:
  x:
    routes:
      r1: {{ path: /one, upstream: one }}
      r2: {{ path: /two, upstream: two }}
",
            first.url(),
            c.url()
        )
    };
    let gw = gateway(&spec(&a)).await;
    let upstream_of = |r: Resp| r.header("x-upstream").unwrap_or_default().to_string();
    assert_eq!(upstream_of(gw.get("/one").await), "a");
    assert_eq!(upstream_of(gw.get("/two").await), "c");
    let before = gw.gw.shared().runtime.load_full();
    patch_to(&gw, &spec(&b)).await;
    assert_eq!(upstream_of(gw.get("/one").await), "b");
    assert_eq!(upstream_of(gw.get("/two").await), "c");
    let after = gw.gw.shared().runtime.load_full();
    assert!(!Arc::ptr_eq(
        &plan_of(&after, "x.r1"),
        &plan_of(&before, "x.r1")
    ));
    assert!(Arc::ptr_eq(
        &plan_of(&after, "x.r2"),
        &plan_of(&before, "x.r2")
    ));
}

/// A reload keeps only plain proxy plans: a route with a mirror or a
/// traffic split gets its plan made again (the mirror's and the split's
/// options come from their instances), while the dispatch view and a plain
/// route's plan are the ones before when only a gateway-level header
/// changed.
#[tokio::test]
async fn changes_keep_plain_plans_and_the_view_but_not_mirrors_or_splits() {
    let (a, b) = (Upstream::start("a").await, Upstream::start("b").await);
    let spec = |served: &str| {
        format!(
            "gatefold: 1
gateway:
  policies:
    - response-headers: {{ set: {{ x-served-by: {served} }} }}
upstreams:
  one: {{ targets: [{{ url: {} }}] }}
  two: {{ targets: [{{ url: {} }}] }}
apis:
  x:
    routes:
      plain: {{ path: /plain, upstream: one }}
      copied: {{ path: /copied, upstream: one, policies: [{{ mirror: {{ upstream: two }} }}] }}
      split:
        path: /split
        policies:
          - traffic-split:
              to: [{{ upstream: one, weight: 1 }}, {{ upstream: two, weight: 0 }}]
",
            a.url(),
            b.url()
        )
    };
    let gw = gateway(&spec("first")).await;
    let before = gw.gw.shared().runtime.load_full();
    patch_to(&gw, &spec("second")).await;
    let after = gw.gw.shared().runtime.load_full();
    assert!(Arc::ptr_eq(&before.view, &after.view));
    assert!(Arc::ptr_eq(
        &plan_of(&before, "x.plain"),
        &plan_of(&after, "x.plain")
    ));
    for id in ["x.copied", "x.split"] {
        assert!(
            !Arc::ptr_eq(&plan_of(&before, id), &plan_of(&after, id)),
            "{id}"
        );
    }
    for path in ["/plain", "/copied", "/split"] {
        let r = gw.get(path).await;
        assert_eq!(r.header("x-upstream"), Some("a"), "{path}");
        assert_eq!(r.header("x-served-by"), Some("second"), "{path}");
    }
}

/// Fleet sync's compare-and-swap: `if-match` names the config the caller
/// saw; another one running is 412 with its hash and nothing changes. The
/// manifest header is recorded with a change and kept by a push without it.
#[tokio::test]
async fn admin_compare_and_swap_and_manifest() {
    let gw = gateway(&mock_spec("one")).await;
    let admin = gw.admin();
    let status = get(admin, "/status").await.json();
    let one = status["config_hash"].clone();
    let one = one.as_str().unwrap();
    assert_eq!(get(admin, "/manifest").await.status, 404);
    assert!(status["manifest"].is_null(), "{status}");
    let manifest = r#"{"hash":"x","action":"apply"}"#;
    let swap = |expect: &'static str| [("if-match", expect), ("gatefold-manifest", manifest)];
    // A stale expectation: refused, the running hash named, nothing changed.
    let r = send(
        admin,
        "PUT",
        "/config",
        &swap("sha256:stale"),
        Some(&mock_spec("two")),
    )
    .await;
    assert_eq!(r.status, 412, "{}", r.text());
    assert_eq!(r.json()["config_hash"], one);
    assert_eq!(gw.get("/").await.text(), "one");
    assert_eq!(get(admin, "/manifest").await.status, 404);
    // The right one: swapped, manifest recorded; it replaced none.
    let headers = [("if-match", one), ("gatefold-manifest", manifest)];
    let r = send(admin, "PUT", "/config", &headers, Some(&mock_spec("two"))).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json().get("replaced_manifest"),
        Some(&serde_json::Value::Null),
        "{}",
        r.text()
    );
    assert_eq!(gw.get("/").await.text(), "two");
    assert_eq!(get(admin, "/manifest").await.json()["action"], "apply");
    // The status names the manifest with the config it came with.
    let status = get(admin, "/status").await.json();
    assert_eq!(
        status["manifest"],
        serde_json::json!({"hash": "x", "action": "apply"})
    );
    assert_eq!(status["config_hash"], r.json()["config_hash"]);
    // A rollback expecting the old config is refused the same way.
    let r = send(admin, "POST", "/rollback", &[("if-match", one)], None).await;
    assert_eq!(r.status, 412);
    assert_eq!(gw.get("/").await.text(), "two");
    // A push by hand (no manifest) keeps the recorded manifest: drift. Its
    // answer names the manifest it found (what a fleet rollback restores).
    let r = put_config(admin, &mock_spec("three"), None).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json()["replaced_manifest"],
        serde_json::json!({"hash": "x", "action": "apply"})
    );
    assert_eq!(get(admin, "/manifest").await.json()["action"], "apply");
    // A manifest that is not a JSON object is refused before anything.
    let bad = [("gatefold-manifest", "[1]")];
    let r = send(admin, "PUT", "/config", &bad, Some(&mock_spec("four"))).await;
    assert_eq!(r.status, 400);
    assert_eq!(gw.get("/").await.text(), "three");
}

#[tokio::test]
async fn admin_token_is_required_when_set_and_beyond_loopback() {
    let gw = gateway_with(&mock_spec("one"), &[], |o| {
        o.admin_token = Some("t0ken".into())
    })
    .await;
    let admin = gw.admin();
    assert_eq!(get(admin, "/status").await.status, 401);
    assert_eq!(
        send(
            admin,
            "GET",
            "/status",
            &[("authorization", "Bearer wrong")],
            None
        )
        .await
        .status,
        401
    );
    assert_eq!(
        send(
            admin,
            "GET",
            "/status",
            &[("authorization", "Bearer t0ken")],
            None
        )
        .await
        .status,
        200
    );
    assert_eq!(put_config(admin, &mock_spec("x"), None).await.status, 401);
    assert_eq!(
        put_config(admin, &mock_spec("x"), Some("t0ken"))
            .await
            .status,
        200
    );
    assert_eq!(get(admin, "/healthz").await.status, 200);

    let mut opts = Options::new("127.0.0.1:0".parse().unwrap());
    opts.admin = Some("0.0.0.0:0".parse().unwrap());
    let Err(e) = Gateway::start(compile(&mock_spec("x")), opts).await else {
        panic!("an exposed admin API without a token must not start");
    };
    assert!(e.contains("GATEFOLD_ADMIN_TOKEN"), "{e}");
}

#[tokio::test]
async fn a_second_gateway_cannot_take_a_port_in_use() {
    let gw = gateway(&mock_spec("one")).await;
    let opts = Options::new(gw.addr);
    let Err(e) = Gateway::start(compile(&mock_spec("two")), opts).await else {
        panic!("two gateways must not share {}", gw.addr);
    };
    assert!(e.contains("cannot listen"), "{e}");
    assert_eq!(gw.get("/").await.text(), "one");
}

#[tokio::test]
async fn a_hot_swap_under_load_drops_no_request() {
    let up = Upstream::start("up").await;
    let spec = |tag: &str| {
        format!(
            "gatefold: 1
upstreams:
  up: {{ targets: [{{ url: {} }}] }}
apis:
  a:
    upstream: up
    policies: [{{ request-headers: {{ set: {{ x-config: {tag} }} }} }}]
    routes:
      r: {{ path: /* }}
",
            up.url()
        )
    };
    let gw = gateway(&spec("a")).await;
    let (a, b) = (compile(&spec("a")), compile(&spec("b")));
    // A slow request that starts on config `a` finishes on it.
    let addr = gw.addr;
    let slow =
        tokio::spawn(
            async move { send(addr, "GET", "/", &[("x-test-delay-ms", "300")], None).await },
        );
    eventually("the slow request is in flight", || async { up.hits() == 1 }).await;

    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let mut clients = Vec::new();
    for _ in 0..4 {
        let (stop, ok, failed) = (stop.clone(), ok.clone(), failed.clone());
        clients.push(tokio::spawn(async move {
            // Keep-alive connections, as a real client would.
            let client: hyper_util::client::legacy::Client<_, http_body_util::Empty<bytes::Bytes>> =
                hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                    .build_http();
            while !stop.load(Ordering::SeqCst) {
                let uri = format!("http://{addr}/load").parse().unwrap();
                match client.get(uri).await {
                    Ok(r) if r.status() == 200 => {
                        use http_body_util::BodyExt;
                        match r.into_body().collect().await {
                            Ok(_) => ok.fetch_add(1, Ordering::SeqCst),
                            Err(_) => failed.fetch_add(1, Ordering::SeqCst),
                        };
                    }
                    _ => {
                        failed.fetch_add(1, Ordering::SeqCst);
                    }
                }
            }
        }));
    }
    // Swap back and forth until at least 40 swaps and 100 answered requests
    // have happened together (however slow the machine is).
    let deadline = std::time::Instant::now() + EVENTUALLY_LIMIT;
    let mut swaps = 0;
    while swaps < 40 || ok.load(Ordering::SeqCst) < 100 {
        assert!(
            std::time::Instant::now() < deadline,
            "{swaps} swaps, {} requests answered, {} failed",
            ok.load(Ordering::SeqCst),
            failed.load(Ordering::SeqCst)
        );
        gw.gw
            .apply(if swaps % 2 == 0 { b.clone() } else { a.clone() })
            .unwrap();
        swaps += 1;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    gw.gw.apply(b.clone()).unwrap();
    let r = slow.await.unwrap();
    assert_eq!(r.upstream_header("x-config").as_deref(), Some("a"));
    stop.store(true, Ordering::SeqCst);
    for c in clients {
        c.await.unwrap();
    }
    assert_eq!(failed.load(Ordering::SeqCst), 0);
    assert_eq!(
        gw.get("/").await.upstream_header("x-config").as_deref(),
        Some("b")
    );
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("gatefold-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[tokio::test]
async fn watch_reloads_good_edits_and_keeps_the_last_good_config() {
    let dir = temp_dir("watch");
    let file = dir.join("gatefold.yaml");
    std::fs::write(&file, mock_spec("one")).unwrap();
    let src = Source {
        path: dir.clone(),
        interval: Duration::from_millis(20),
    };
    let gw = gateway_with(&mock_spec("one"), &[], |o| o.watch = Some(src)).await;
    assert_eq!(gw.get("/").await.text(), "one");
    std::fs::write(&file, mock_spec("two")).unwrap();
    eventually("the edit is served", || {
        let addr = gw.addr;
        async move { get(addr, "/").await.text() == "two" }
    })
    .await;
    std::fs::write(&file, "gatefold: 1\napis: [broken\n").unwrap();
    let admin = gw.admin();
    eventually("the broken edit is seen and rejected", || async move {
        let metrics = get(admin, "/metrics").await.text();
        metrics
            .lines()
            .find_map(|l| l.strip_prefix("gatefold_config_reloads_total{result=\"rejected\"} "))
            .and_then(|n| n.parse::<u64>().ok())
            .is_some_and(|n| n >= 1)
    })
    .await;
    assert_eq!(gw.get("/").await.text(), "two");
    // A second file joins the folder.
    std::fs::write(&file, mock_spec("three")).unwrap();
    std::fs::write(
        dir.join("more.yaml"),
        "gatefold: 1\napis:\n  b:\n    routes:\n      r: { path: /more, policies: [{ mock: { body: more } }] }\n",
    )
    .unwrap();
    eventually("the folder is served", || {
        let addr = gw.addr;
        async move {
            get(addr, "/more").await.text() == "more" && get(addr, "/").await.text() == "three"
        }
    })
    .await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn graceful_shutdown_drains_in_flight_requests() {
    let up = Upstream::start("up").await;
    let gw = gateway(&proxy_spec(&up, "")).await;
    let addr = gw.addr;
    let slow =
        tokio::spawn(
            async move { send(addr, "GET", "/", &[("x-test-delay-ms", "500")], None).await },
        );
    eventually("in flight", || async { up.hits() == 1 }).await;
    let log = gw.log.clone();
    gw.gw.shutdown().await;
    // Shutdown returned only after the request was answered (its access
    // log line is written when it completes), and the client got it whole.
    let lines = log.lock().unwrap().clone();
    assert_eq!(lines.len(), 1, "{lines:?}");
    let line: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(line["status"], 200);
    let r = slow.await.unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["upstream"], "up");
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "no longer accepting"
    );
}

#[tokio::test]
async fn access_log_has_one_json_line_per_request() {
    let up = Upstream::start("up").await;
    let spec = format!(
        "gatefold: 1
upstreams:
  up: {{ targets: [{{ url: {} }}] }}
consumers:
  acme: {{ credentials: {{ key: {{ env: K }} }} }}
apis:
  a:
    upstream: up
    policies: [{{ key-auth: {{}} }}]
    routes:
      r: {{ path: /* }}
",
        up.url()
    );
    let gw = gateway_with(&spec, &[("K", "k")], |_| {}).await;
    gw.send(
        "GET",
        "/x?y=1",
        &[("x-api-key", "k"), ("x-request-id", "req-1")],
        None,
    )
    .await;
    gw.get("/x").await;
    let lines = gw.log_lines();
    assert_eq!(lines.len(), 2);
    let l = &lines[0];
    assert_eq!(l["request_id"], "req-1");
    assert_eq!(l["route"], "a.r");
    assert_eq!(l["consumer"], "acme");
    assert_eq!(l["status"], 200);
    assert_eq!(l["upstream"], "up");
    assert_eq!(l["target"], up.url());
    assert_eq!(l["method"], "GET");
    assert_eq!(l["path"], "/x");
    assert_eq!(l["client"], "127.0.0.1");
    assert_eq!(l["time"], "2027-01-15T08:00:00.000Z");
    assert!(l["latency_ms"].as_f64().unwrap() >= 0.0);
    assert_eq!(lines[1]["status"], 401);
    assert_eq!(lines[1]["consumer"], json!(null));
}

/// Reads until the peer closes, returning what arrived; fails the test if
/// the gateway keeps the connection open for [`EVENTUALLY_LIMIT`].
async fn read_all(s: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let read = tokio::time::timeout(EVENTUALLY_LIMIT, s.read_to_end(&mut out)).await;
    assert!(
        read.is_ok(),
        "the gateway kept the connection open; got {:?}",
        String::from_utf8_lossy(&out)
    );
    String::from_utf8_lossy(&out).into_owned()
}

/// Client read timeouts for the tests of slow clients: short enough to
/// see, long enough that a loaded machine still reads a whole request.
fn short_client_timeouts(o: &mut Options) {
    o.header_read_timeout = Duration::from_millis(500);
    o.body_read_timeout = Duration::from_millis(500);
}

#[tokio::test]
async fn slow_clients_do_not_hold_the_gateway() {
    let gw = gateway_with(&mock_spec("ok"), &[], short_client_timeouts).await;
    // Headers trickling in, one byte every 50ms, never finishing: each
    // read is quick, so only a deadline on the whole head (500ms here)
    // cuts the client off, while other clients are served. The dripper
    // would go on for 20s; it must be cut off before that.
    let mut trickle = TcpStream::connect(gw.addr).await.unwrap();
    trickle
        .write_all(b"GET / HTTP/1.1\r\nhost: x\r\n")
        .await
        .unwrap();
    let dripper = tokio::spawn(async move {
        let deadline = std::time::Instant::now() + EVENTUALLY_LIMIT;
        while std::time::Instant::now() < deadline {
            if trickle.write_all(b"x").await.is_err() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    });
    for _ in 0..5 {
        assert_eq!(gw.get("/").await.text(), "ok");
    }
    assert!(
        dripper.await.unwrap(),
        "a client trickling its head was never cut off"
    );
    // A client that connects and sends nothing is closed too.
    let mut idle = TcpStream::connect(gw.addr).await.unwrap();
    let got = read_all(&mut idle).await;
    assert!(!got.contains("200"), "{got}");
}

#[tokio::test]
async fn a_client_that_stalls_mid_body_is_cut_off() {
    let up = Upstream::start("up").await;
    // Health settings make blame visible: one live failure would take the
    // only target out (and checks are too rare to bring it back).
    let spec = proxy_spec(&up, "").replace(
        "    targets: [",
        "    health: { path: /healthz, interval: 1h, unhealthy-after: 1 }\n    targets: [",
    );
    let gw = gateway_with(&spec, &[], short_client_timeouts).await;
    for head in [
        // Both streamed to the upstream as they arrive.
        "POST /x HTTP/1.1\r\nhost: h\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n",
        "POST /x HTTP/1.1\r\nhost: h\r\ncontent-length: 100\r\n\r\nhello",
    ] {
        let mut s = TcpStream::connect(gw.addr).await.unwrap();
        s.write_all(head.as_bytes()).await.unwrap();
        let got = read_all(&mut s).await;
        assert!(got.starts_with("HTTP/1.1 408"), "{head:?} -> {got:?}");
    }
    // Both reached the upstream (bodies stream); the target was not blamed
    // for the client's stall, so it is still in rotation.
    eventually("both streamed requests reached the upstream", || async {
        up.hits() == 2
    })
    .await;
    let metrics = get(gw.admin(), "/metrics").await.text();
    let gauge = format!(
        "gatefold_upstream_healthy{{upstream=\"up\",target=\"{}\"}} 1",
        up.url()
    );
    assert!(metrics.contains(&gauge), "{metrics}");
    assert_eq!(gw.get("/x").await.status, 200);
}

#[tokio::test]
async fn malformed_requests_and_oversized_heads_are_refused() {
    let gw = gateway(&mock_spec("ok")).await;
    for raw in [
        "GARBAGE\r\n\r\n".to_string(),
        "GET / HTTP/1.1\r\nhost: x\r\ncontent-length: abc\r\n\r\n".to_string(),
        "GET / HTTP/1.1\r\nbad header line\r\n\r\n".to_string(),
    ] {
        let mut s = TcpStream::connect(gw.addr).await.unwrap();
        s.write_all(raw.as_bytes()).await.unwrap();
        let got = read_all(&mut s).await;
        assert!(got.starts_with("HTTP/1.1 400"), "{raw:?} -> {got:?}");
    }
    let mut s = TcpStream::connect(gw.addr).await.unwrap();
    let big = format!(
        "GET / HTTP/1.1\r\nhost: x\r\nx-big: {}\r\n\r\n",
        "a".repeat(100 * 1024)
    );
    let _ = s.write_all(big.as_bytes()).await;
    let got = read_all(&mut s).await;
    assert!(got.starts_with("HTTP/1.1 431"), "{got:?}");
    // A path that is not origin-form.
    let mut s = TcpStream::connect(gw.addr).await.unwrap();
    s.write_all(b"OPTIONS * HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let got = read_all(&mut s).await;
    assert!(got.starts_with("HTTP/1.1 400"), "{got:?}");
    assert!(got.contains(r#"{"error":"bad request"}"#), "{got:?}");
    // Still serving.
    assert_eq!(gw.get("/").await.text(), "ok");
}
