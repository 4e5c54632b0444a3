//! One small spec per policy kind, served by real Envoy: what the client
//! gets and what the upstream received.

use crate::common;

use common::*;

fn spec(up: &Upstream, apis: &str) -> String {
    format!(
        r#"
gatefold: 1
gateway: {{ name: t, listen: 8080 }}
upstreams:
  up: {{ targets: [{{ url: "{}" }}] }}
  gone: {{ targets: [{{ url: "http://127.0.0.1:1" }}] }}
consumers:
  alice: {{ groups: [staff], credentials: {{ key: {{ env: POL_ALICE_KEY }}, basic: {{ user: alice, password: {{ env: POL_ALICE_PW }} }} }} }}
  bob: {{ groups: [guests], credentials: {{ key: {{ env: POL_BOB_KEY }} }} }}
apis:
{apis}
"#,
        up.url()
    )
}

fn secrets() {
    std::env::set_var("POL_ALICE_KEY", "alice-key");
    std::env::set_var("POL_ALICE_PW", "open sesame");
    std::env::set_var("POL_BOB_KEY", "bob-key");
}

#[test]
fn precedence_hosts_paths_and_methods() {
    let up = Upstream::start("up");
    let gw = serve(&spec(
        &up,
        r#"
  partner:
    hosts: [partner.example.com, "*.wild.example"]
    upstream: up
    routes:
      item: { path: "/items/{key}", methods: [GET], policies: [{ response-headers: { set: { x-route: partner } } }] }
  public:
    upstream: up
    routes:
      mine: { path: /items/mine, methods: [GET, PUT], policies: [{ response-headers: { set: { x-route: mine } } }] }
      item: { path: "/items/{id}", methods: [GET, POST], policies: [{ response-headers: { set: { x-route: item } } }] }
      files: { path: /items/*, methods: [GET], policies: [{ response-headers: { set: { x-route: files } } }] }
"#,
    ));
    let route = |host: &str, method: &str, path: &str| {
        let r = send(gw.addr, method, path, &[("host", host)], b"");
        (
            r.status,
            r.header("x-route").map(str::to_string),
            r.header("allow").map(str::to_string),
        )
    };
    let s = |x: &str| Some(x.to_string());
    // Exact beats template; template beats prefix.
    assert_eq!(
        route("a.test", "GET", "/items/mine"),
        (200, s("mine"), None)
    );
    assert_eq!(route("a.test", "GET", "/items/7"), (200, s("item"), None));
    assert_eq!(
        route("a.test", "GET", "/items/7/x"),
        (200, s("files"), None)
    );
    // The partner api is listed first: it wins on its hosts, any case and port.
    assert_eq!(
        route("partner.example.com", "GET", "/items/7"),
        (200, s("partner"), None)
    );
    assert_eq!(
        route("Partner.Example.com:8080", "GET", "/items/7"),
        (200, s("partner"), None)
    );
    assert_eq!(
        route("a.b.wild.example", "GET", "/items/7"),
        (200, s("partner"), None)
    );
    assert_eq!(
        route("wild.example", "GET", "/items/7"),
        (200, s("item"), None)
    );
    // ... but exact paths still beat it there, and other methods fall through.
    assert_eq!(
        route("partner.example.com", "GET", "/items/mine"),
        (200, s("mine"), None)
    );
    assert_eq!(
        route("partner.example.com", "POST", "/items/7"),
        (200, s("item"), None)
    );
    // 405 with the methods of every route taking the path.
    assert_eq!(
        route("a.test", "DELETE", "/items/7"),
        (405, None, s("GET, POST"))
    );
    assert_eq!(
        route("a.test", "DELETE", "/items/mine"),
        (405, None, s("GET, POST, PUT"))
    );
    assert_eq!(
        route("partner.example.com", "DELETE", "/items/7"),
        (405, None, s("GET, POST"))
    );
    assert_eq!(route("a.test", "GET", "/other").0, 404);
    // The query takes no part in matching and goes up unchanged.
    let r = send(gw.addr, "GET", "/items/7?a=1&b=%2F", &[], b"");
    assert_eq!(r.seen()["path"], "/items/7?a=1&b=%2F");
}

#[test]
fn authentication_acl_and_ip_filter() {
    secrets();
    let up = Upstream::start("up");
    let gw = serve(&spec(
        &up,
        r#"
  main:
    upstream: up
    routes:
      query-key: { path: /q, policies: [{ key-auth: { in: query, name: api_key } }] }
      basic: { path: /basic, policies: [{ basic-auth: { realm: staff } }, { acl: { allow: [staff] } }] }
      either: { path: /either, policies: [{ key-auth: {} }, { basic-auth: {} }, { acl: { deny: [guests] } }] }
      blocked: { path: /blocked, policies: [{ ip-filter: { deny: [127.0.0.0/8] } }] }
      allowed: { path: /allowed, policies: [{ ip-filter: { allow: [127.0.0.1] } }] }
      outside: { path: /outside, policies: [{ ip-filter: { allow: [10.0.0.0/8] } }] }
"#,
    ));
    // key in the query: removed from what goes up, the rest of the query kept.
    let r = get(gw.addr, "/q?x=1&api_key=alice-key&y=2", &[]);
    assert_eq!(r.seen()["path"], "/q?x=1&y=2");
    assert_eq!(get(gw.addr, "/q?api_key=wrong", &[]).status, 401);
    // basic: user and password from the environment, realm announced.
    let bad = get(gw.addr, "/basic", &[]);
    assert_eq!(bad.status, 401);
    assert_eq!(
        bad.header("www-authenticate"),
        Some(r#"Basic realm="staff""#)
    );
    assert_eq!(bad.header("content-type"), Some("application/json"));
    // "alice:open sesame"
    let good = get(
        gw.addr,
        "/basic",
        &[("authorization", "Basic YWxpY2U6b3BlbiBzZXNhbWU=")],
    );
    assert_eq!(good.status, 200);
    assert!(good.seen()["headers"].get("authorization").is_none());
    let wrong = get(
        gw.addr,
        "/basic",
        &[("authorization", "Basic YWxpY2U6b3Blbg==")],
    );
    assert_eq!(wrong.status, 401);
    // Any one method admits; acl deny refuses guests.
    assert_eq!(
        get(gw.addr, "/either", &[("x-api-key", "alice-key")]).status,
        200
    );
    assert_eq!(
        get(
            gw.addr,
            "/either",
            &[("authorization", "Basic YWxpY2U6b3BlbiBzZXNhbWU=")]
        )
        .status,
        200
    );
    let guest = get(gw.addr, "/either", &[("x-api-key", "bob-key")]);
    assert_eq!(guest.status, 403);
    assert_eq!(guest.text(), r#"{"error":"forbidden"}"#);
    // ip-filter: the TCP peer (127.0.0.1), never x-forwarded-for.
    let blocked = get(gw.addr, "/blocked", &[("x-forwarded-for", "10.1.1.1")]);
    assert_eq!(blocked.status, 403);
    assert_eq!(blocked.text(), r#"{"error":"forbidden"}"#);
    assert_eq!(blocked.header("content-type"), Some("application/json"));
    assert_eq!(get(gw.addr, "/allowed", &[]).status, 200);
    assert_eq!(
        get(gw.addr, "/outside", &[("x-forwarded-for", "10.1.1.1")]).status,
        403
    );
    assert_eq!(up.hits.load(std::sync::atomic::Ordering::SeqCst), 5);
}

#[test]
fn short_circuits_transforms_and_limits() {
    secrets();
    let up = Upstream::start("up");
    let gw = serve(&spec(
        &up,
        r#"
  main:
    upstream: up
    routes:
      mock: { path: /mock, policies: [{ mock: { status: 503, headers: { x-m: "1" }, body: "down\n" } }, { response-headers: { set: { x-r: "2" } } }] }
      forbidden-mock: { path: /fm, policies: [{ mock: { status: 403, json: { b: 1, a: [true] } } }] }
      redirect: { path: "/old/{id}", policies: [{ redirect: { to: "https://new.example/pets/{id}", status: 308 } }] }
      local: { path: /docs, policies: [{ redirect: { to: /manual } }] }
      queried: { path: /q, policies: [{ redirect: { to: "https://docs.example/find?lang=en#top" } }] }
      rewrite: { path: "/v1/items/{id}", policies: [{ rewrite: { path: "/items/{id}/detail" } }] }
      prefix: { path: /catalog/files/*, policies: [{ rewrite: { strip-prefix: /catalog/files, add-prefix: /static } }] }
      headers: { path: /h, policies: [{ request-headers: { set: { host: backend.example, x-a: "1" }, add: { x-b: "2" }, remove: [x-c] } }, { response-headers: { add: { x-d: "3" }, remove: [x-powered-by] } }] }
      small: { path: /small, policies: [{ request-size-limit: { max: 10B } }] }
      rate: { path: /rate, policies: [{ rate-limit: { requests: 2, per: 1h, key: global } }] }
      slow: { path: /slow, policies: [{ timeout: { read: 300ms } }] }
      dead: { path: /dead, upstream: gone }
"#,
    ));
    let m = get(gw.addr, "/mock", &[]);
    assert_eq!((m.status, m.text().as_str()), (503, "down\n"));
    assert_eq!(m.header("content-type"), Some("text/plain; charset=utf-8"));
    assert_eq!((m.header("x-m"), m.header("x-r")), (Some("1"), Some("2")));
    // A mock's own 403 keeps its body: gateway error bodies are matched
    // by what made the answer, not by status.
    let fm = get(gw.addr, "/fm", &[]);
    assert_eq!(
        (fm.status, fm.text().as_str()),
        (403, r#"{"a":[true],"b":1}"#)
    );
    let rd = get(gw.addr, "/old/42?x=1", &[]);
    assert_eq!(rd.status, 308);
    assert_eq!(
        rd.header("location"),
        Some("https://new.example/pets/42?x=1")
    );
    // A path on the request's host stays relative, as the spec wrote it
    // (Envoy's own route redirect would make it absolute).
    let local = get(gw.addr, "/docs?p=2", &[]);
    assert_eq!(local.status, 302);
    assert_eq!(local.header("location"), Some("/manual?p=2"));
    // To another host with its own query: the request's is appended, before
    // the fragment (Envoy's route redirect dropped it).
    let q = get(gw.addr, "/q?p=2", &[]);
    assert_eq!(
        q.header("location"),
        Some("https://docs.example/find?lang=en&p=2#top")
    );
    assert_eq!(
        get(gw.addr, "/v1/items/9?z=1", &[]).seen()["path"],
        "/items/9/detail?z=1"
    );
    assert_eq!(
        get(gw.addr, "/catalog/files/a.css", &[]).seen()["path"],
        "/static/a.css"
    );
    assert_eq!(
        get(gw.addr, "/catalog/files", &[]).seen()["path"],
        "/static"
    );
    assert_eq!(
        get(gw.addr, "/catalog/files/", &[]).seen()["path"],
        "/static/"
    );
    let h = get(gw.addr, "/h", &[("x-c", "gone"), ("x-b", "1")]);
    let seen = h.seen();
    assert_eq!(seen["headers"]["host"], "backend.example");
    assert_eq!(seen["headers"]["x-a"], "1");
    assert_eq!(seen["headers"]["x-b"], serde_json::json!(["1", "2"]));
    assert!(seen["headers"].get("x-c").is_none());
    assert_eq!(h.header("x-d"), Some("3"));
    assert_eq!(h.header("x-powered-by"), None);
    // Body limits: by content-length and by a chunked body's bytes.
    let big = send(gw.addr, "POST", "/small", &[], b"0123456789A");
    assert_eq!(
        (big.status, big.text().as_str()),
        (413, r#"{"error":"payload too large"}"#)
    );
    assert_eq!(
        send(gw.addr, "POST", "/small", &[], b"0123456789").status,
        200
    );
    let chunked = send(
        gw.addr,
        "POST",
        "/small",
        &[("transfer-encoding", "chunked")],
        b"6\r\n012345\r\n6\r\n6789AB\r\n0\r\n\r\n",
    );
    assert_eq!(chunked.status, 413);
    // Fixed window: two, then 429 with retry-after.
    assert_eq!(
        get(gw.addr, "/rate", &[]).header("x-ratelimit-remaining"),
        Some("1")
    );
    assert_eq!(get(gw.addr, "/rate", &[]).status, 200);
    let over = get(gw.addr, "/rate", &[]);
    assert_eq!(
        (over.status, over.text().as_str()),
        (429, r#"{"error":"too many requests"}"#)
    );
    let retry: u64 = over.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=3600).contains(&retry), "{retry}");
    // Upstream errors get the spec's statuses and bodies.
    let slow = get(gw.addr, "/slow", &[("x-test-delay-ms", "3000")]);
    assert_eq!(
        (slow.status, slow.text().as_str()),
        (504, r#"{"error":"upstream timeout"}"#)
    );
    let dead = get(gw.addr, "/dead", &[]);
    assert_eq!(
        (dead.status, dead.text().as_str()),
        (502, r#"{"error":"bad gateway"}"#)
    );
}

fn token(claims: serde_json::Value, alg: jsonwebtoken::Algorithm) -> String {
    let pem = include_bytes!("../../reference/tests/keys/rs256-private.pem");
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(pem).unwrap();
    jsonwebtoken::encode(&jsonwebtoken::Header::new(alg), &claims, &key).unwrap()
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn jwt_verifies_then_names_the_consumer() {
    secrets();
    // tests/keys/rs256-public.pem is the reference tests' key (the spec is
    // compiled in this crate's folder, and its files must be inside it).
    let up = Upstream::start("up");
    let gw = serve(&spec(
        &up,
        r#"
  main:
    upstream: up
    routes:
      jwt:
        path: /jwt
        policies:
          - jwt: { issuer: "https://auth.test/", audiences: [api], algorithms: [RS256], public-key: { file: tests/keys/rs256-public.pem }, claims-to-headers: { sub: x-user, n: x-n }, leeway: 30s }
          - acl: { allow: [staff] }
      either:
        path: /either
        policies:
          - key-auth: {}
          - jwt: { algorithms: [RS256], public-key: { file: tests/keys/rs256-public.pem } }
"#,
    ));
    let claims = |sub: &str, exp: u64| serde_json::json!({ "sub": sub, "iss": "https://auth.test/", "aud": "api", "exp": exp, "n": 7 });
    let bearer = |t: &str| format!("Bearer {t}");
    let good = token(claims("alice", now() + 600), jsonwebtoken::Algorithm::RS256);
    let r = get(
        gw.addr,
        "/jwt",
        &[("authorization", &bearer(&good)), ("x-user", "mallory")],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let seen = r.seen();
    // The token is forwarded; claim headers come from the token only.
    assert_eq!(seen["headers"]["authorization"], bearer(&good));
    assert_eq!(seen["headers"]["x-user"], "alice");
    assert_eq!(seen["headers"]["x-n"], "7");
    // A verified token naming a consumer outside the acl's groups: 403.
    let bob = token(claims("bob", now() + 600), jsonwebtoken::Algorithm::RS256);
    assert_eq!(
        get(gw.addr, "/jwt", &[("authorization", &bearer(&bob))]).status,
        403
    );
    // Expired beyond the leeway, wrong issuer, another algorithm, no token: 401.
    let expired = token(claims("alice", now() - 120), jsonwebtoken::Algorithm::RS256);
    let r = get(gw.addr, "/jwt", &[("authorization", &bearer(&expired))]);
    assert_eq!(
        (r.status, r.text().as_str()),
        (401, r#"{"error":"unauthorized"}"#)
    );
    let mut other = claims("alice", now() + 600);
    other["iss"] = "https://evil.test/".into();
    let other = token(other, jsonwebtoken::Algorithm::RS256);
    assert_eq!(
        get(gw.addr, "/jwt", &[("authorization", &bearer(&other))]).status,
        401
    );
    let rs384 = token(claims("alice", now() + 600), jsonwebtoken::Algorithm::RS384);
    assert_eq!(
        get(gw.addr, "/jwt", &[("authorization", &bearer(&rs384))]).status,
        401
    );
    assert_eq!(get(gw.addr, "/jwt", &[]).status, 401);
    // Only `authorization` carries a token, its scheme in any case: Envoy's
    // jwt_authn (which this target used before) also read a token from an
    // `access_token` query parameter and refused `bearer`.
    let r = get(gw.addr, &format!("/jwt?access_token={good}"), &[]);
    assert_eq!(r.status, 401);
    let lower = format!("bearer {good}");
    assert_eq!(
        get(gw.addr, "/jwt", &[("authorization", &lower)]).status,
        200
    );
    // Either method admits.
    assert_eq!(
        get(gw.addr, "/either", &[("x-api-key", "bob-key")]).status,
        200
    );
    let any = token(
        serde_json::json!({ "sub": "x", "exp": now() + 600 }),
        jsonwebtoken::Algorithm::RS256,
    );
    assert_eq!(
        get(gw.addr, "/either", &[("authorization", &bearer(&any))]).status,
        200
    );
    assert_eq!(
        get(gw.addr, "/either", &[("authorization", "Bearer nope")]).status,
        401
    );
}

/// A preflight goes to the route that would take the method it asks about:
/// answered by that route's `cors`, or (without one) routed as a plain
/// OPTIONS request; overlapping patterns get their own 405 allow sets.
#[test]
fn preflights_and_overlaps_follow_the_dispatch_view() {
    let up = Upstream::start("up");
    let gw = serve(&spec(
        &up,
        r#"
  main:
    upstream: up
    routes:
      plain: { path: /pets/new, methods: [GET] }
      kind: { path: "/{kind}/new", methods: [PUT] }
      open: { path: /pets/*, methods: [POST, OPTIONS], policies: [{ cors: { origins: ["*"] } }] }
"#,
    ));
    let preflight = |path: &str, asked: &str| {
        send(
            gw.addr,
            "OPTIONS",
            path,
            &[
                ("origin", "https://a.example"),
                ("access-control-request-method", asked),
            ],
            b"",
        )
    };
    // POST /pets/x goes to `open`, which has cors: answered here.
    let answered = preflight("/pets/x", "POST");
    assert_eq!(answered.status, 204);
    assert_eq!(answered.header("access-control-allow-origin"), Some("*"));
    assert_eq!(up.hits.load(std::sync::atomic::Ordering::SeqCst), 0);
    // GET /pets/new goes to `plain` (no cors): an ordinary OPTIONS, which
    // `open` takes and proxies.
    let ordinary = preflight("/pets/new", "GET");
    assert_eq!(ordinary.seen()["method"], "OPTIONS");
    // /pets/new is taken by all three patterns: its allow set is theirs.
    let r = send(gw.addr, "DELETE", "/pets/new", &[], b"");
    assert_eq!(
        (r.status, r.header("allow")),
        (405, Some("GET, POST, PUT, OPTIONS"))
    );
    let r = send(gw.addr, "DELETE", "/cats/new", &[], b"");
    assert_eq!((r.status, r.header("allow")), (405, Some("PUT")));
}

/// Response headers every route applies first are carried once by the
/// virtual host: still on proxied and mocked answers (with a route's own
/// headers), and taken off the gateway's 404 and 405, which no route's
/// policies reach.
#[test]
fn shared_response_headers_are_carried_once() {
    let up = Upstream::start("up");
    let yaml = spec(
        &up,
        r#"
  main:
    upstream: up
    policies: [{ response-headers: { set: { x-served-by: gatefold }, remove: [x-powered-by] } }]
    routes:
      all: { path: /p, methods: [GET] }
      any: { path: /q }
      mock: { path: /mock, policies: [{ mock: { status: 201, headers: { x-own: "1" }, body: m } }] }
"#,
    );
    let out = emit(
        &compile(&yaml),
        gatefold_target_envoy::Layout::Dynamic,
        &gatefold_compiler::target::Options::default(),
    );
    let lds = &out
        .files
        .iter()
        .find(|f| f.path.as_str() == gatefold_target_envoy::LDS)
        .unwrap()
        .bytes;
    let carried = String::from_utf8_lossy(lds).matches("x-served-by").count();
    // Once on the virtual host, plus a removal on the 405 entry and on the
    // 404 ending the list for paths of no bucket: never on a route entry.
    // A path a bucket (`/p`, `/q`, `/mock`) holds but no entry takes gets
    // Envoy's own no-route answer, mapped to the same 404 below.
    assert_eq!(carried, 3, "x-served-by in the listeners");
    let gw = serve(&yaml);
    let p = get(gw.addr, "/p", &[]);
    assert_eq!((p.status, p.header("x-served-by")), (200, Some("gatefold")));
    assert_eq!(
        get(gw.addr, "/q", &[]).header("x-served-by"),
        Some("gatefold")
    );
    let m = get(gw.addr, "/mock", &[]);
    assert_eq!(
        (m.status, m.header("x-own"), m.header("x-served-by")),
        (201, Some("1"), Some("gatefold"))
    );
    let none = get(gw.addr, "/nowhere", &[]);
    assert_eq!((none.status, none.header("x-served-by")), (404, None));
    for path in ["/p/deeper", "/mockery"] {
        let in_bucket = get(gw.addr, path, &[]);
        assert_eq!(
            (
                in_bucket.status,
                in_bucket.header("x-served-by"),
                in_bucket.header("content-type"),
                String::from_utf8_lossy(&in_bucket.body).into_owned()
            ),
            (
                404,
                None,
                Some("application/json"),
                r#"{"error":"no route"}"#.to_string()
            ),
            "{path}"
        );
    }
    let wrong = send(gw.addr, "DELETE", "/p", &[], b"");
    assert_eq!((wrong.status, wrong.header("x-served-by")), (405, None));
}

/// A raw upstream recording the head of every request it gets (a mirror's
/// copies), answering 200 with no body.
struct Recorder {
    addr: std::net::SocketAddr,
    heads: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Recorder {
    fn start() -> Recorder {
        use std::io::{BufRead, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let heads = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = heads.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                let seen = seen.clone();
                std::thread::spawn(move || {
                    let mut r = std::io::BufReader::new(conn.try_clone().unwrap());
                    loop {
                        let mut head = String::new();
                        let mut length = 0usize;
                        loop {
                            let mut line = String::new();
                            if r.read_line(&mut line).unwrap_or(0) == 0 {
                                return;
                            }
                            if let Some(v) =
                                line.to_ascii_lowercase().strip_prefix("content-length:")
                            {
                                length = v.trim().parse().unwrap_or(0);
                            }
                            if line == "\r\n" {
                                break;
                            }
                            head.push_str(&line);
                        }
                        let mut body = vec![0; length];
                        let _ = std::io::Read::read_exact(&mut r, &mut body);
                        head.push_str(&format!("body: {}\r\n", String::from_utf8_lossy(&body)));
                        seen.lock().unwrap().push(head);
                        let _ = conn.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n");
                    }
                });
            }
        });
        Recorder { addr, heads }
    }

    /// The heads seen once there are `n`, polled for up to 20 s.
    fn wait_for(&self, n: usize) -> Vec<String> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let heads = self.heads.lock().unwrap().clone();
            if heads.len() >= n || std::time::Instant::now() > deadline {
                return heads;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

#[test]
fn mirror_copies_the_request_and_ignores_the_answer() {
    let up = Upstream::start("up");
    let shadow = Recorder::start();
    let gw = serve(&format!(
        r#"
gatefold: 1
gateway: {{ name: t, listen: 8080 }}
upstreams:
  up: {{ targets: [{{ url: "{}" }}] }}
  shadow: {{ targets: [{{ url: "http://{}" }}] }}
apis:
  main:
    upstream: up
    routes:
      none: {{ path: /none, policies: [{{ mirror: {{ upstream: shadow, percent: 0 }} }}] }}
      copied: {{ path: /m, policies: [{{ mirror: {{ upstream: shadow, percent: 100 }} }}, {{ request-headers: {{ set: {{ x-a: "1" }} }} }}] }}
"#,
        up.url(),
        shadow.addr
    ));
    // 0 %: no copy (checked below: only the /m copy arrives).
    assert_eq!(get(gw.addr, "/none", &[]).status, 200);
    let r = send(gw.addr, "POST", "/m?x=1", &[], b"hello");
    // The client gets the main upstream's answer.
    assert_eq!(r.status, 200);
    assert_eq!(r.seen()["path"], "/m?x=1");
    let heads = shadow.wait_for(1);
    assert_eq!(heads.len(), 1, "{heads:?}");
    let head = heads[0].to_ascii_lowercase();
    // The copy is the request as it goes upstream: method, path and query,
    // the route's header changes, the body.
    assert!(head.starts_with("post /m?x=1 http/1.1\r\n"), "{head}");
    assert!(head.contains("\r\nx-a: 1\r\n"), "{head}");
    assert!(head.contains("\r\nbody: hello\r\n"), "{head}");
    // Declared (Support::Approximate): the client's host, not the mirror
    // target's.
    assert!(head.contains("\r\nhost: gw.test\r\n"), "{head}");
}
