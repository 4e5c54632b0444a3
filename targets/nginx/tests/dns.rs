//! Upstream host names on nginx: resolved per request, as the reference
//! gateway resolves them, so a name that does not resolve leaves nginx
//! starting and serving, and its routes answer 502 `bad gateway` as on the
//! reference gateway. nginx asks a DNS server of this test's own (a small
//! UDP responder on loopback), so what resolves does not depend on the
//! machine.

use crate::common;

use common::*;
use gatefold_compiler::diag::Severity;
use gatefold_compiler::ir::TargetKind;
use gatefold_compiler::target::{Options, Target};
use gatefold_runtime::launch::{Launch, Launched};
use gatefold_runtime::Nginx;
use gatefold_target_nginx::Nginx as NginxTarget;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A DNS server on 127.0.0.1 answering `A` questions for the names it
/// knows with their address and every other question with NXDOMAIN; it
/// keeps the names it was asked.
struct Dns {
    addr: SocketAddr,
    asked: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
}

impl Dns {
    fn start(known: &[(&str, Ipv4Addr)]) -> Dns {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let addr = socket.local_addr().unwrap();
        let asked = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let known: Vec<(String, Ipv4Addr)> =
            known.iter().map(|(n, a)| (n.to_string(), *a)).collect();
        let (seen, done) = (asked.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 512];
            while !done.load(Ordering::SeqCst) {
                let Ok((n, from)) = socket.recv_from(&mut buf) else {
                    continue;
                };
                if let Some((name, answer)) = answer(&buf[..n], &known) {
                    seen.lock().unwrap().push(name);
                    let _ = socket.send_to(&answer, from);
                }
            }
        });
        Dns { addr, asked, stop }
    }

    fn asked(&self) -> Vec<String> {
        self.asked.lock().unwrap().clone()
    }
}

impl Drop for Dns {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// The name a query asks and the answer to it (RFC 1035 4.1): the
/// question repeated, then one `A` record, or NXDOMAIN.
fn answer(query: &[u8], known: &[(String, Ipv4Addr)]) -> Option<(String, Vec<u8>)> {
    let mut at = 12;
    let mut labels = Vec::new();
    loop {
        let len = usize::from(*query.get(at)?);
        at += 1;
        if len == 0 {
            break;
        }
        labels.push(String::from_utf8_lossy(query.get(at..at + len)?).to_ascii_lowercase());
        at += len;
    }
    let qtype = u16::from_be_bytes([*query.get(at)?, *query.get(at + 1)?]);
    let question = query.get(12..at + 4)?;
    let name = labels.join(".");
    let found = known
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, a)| *a)
        .filter(|_| qtype == 1);
    let mut out = query[..2].to_vec(); // the query's id
    let rcode = if found.is_some() || known.iter().any(|(n, _)| *n == name) {
        0
    } else {
        3
    };
    out.extend([0x81, 0x80 | rcode]); // answer, recursion desired and available
    out.extend([0, 1, 0, u8::from(found.is_some()), 0, 0, 0, 0]);
    out.extend(question);
    if let Some(a) = found {
        // The name by pointer to the question, A, IN, TTL 1 s, 4 bytes.
        out.extend([0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 1, 0, 4]);
        out.extend(a.octets());
    }
    Some((name, out))
}

/// Compiles `ir` for a free port and starts nginx asking `dns`.
fn run_asking(ir: &gatefold_compiler::ir::ValidIr, dns: &Dns) -> Running {
    let addr = free_addr();
    let options = Options {
        listen: Some(addr),
        ..Options::default()
    };
    let output = emit(ir, &options);
    let dir = tempfile::tempdir().unwrap();
    write(&output, dir.path());
    let instance = Nginx::locate()
        .unwrap()
        .with_resolver(vec![dns.addr])
        .start(dir.path(), &conf(&output), &[addr])
        .unwrap_or_else(|e| panic!("nginx start: {e}\n{}", conf(&output)));
    Running {
        addr,
        instance: Some(instance),
        dir,
    }
}

fn spec(echo: &Echo) -> String {
    let port = echo.addr.port();
    format!(
        r#"
gatefold: 1
upstreams:
  named: {{ targets: [{{ url: "http://backend.gatefold.test:{port}" }}] }}
  gone: {{ targets: [{{ url: "http://nowhere.invalid:80" }}] }}
  gone-tls: {{ targets: [{{ url: "https://nowhere.invalid" }}] }}
  local: {{ targets: [{{ url: "http://localhost:{port}" }}] }}
apis:
  main:
    upstream: named
    routes:
      named: {{ path: /named/*, methods: [GET] }}
      gone: {{ path: /gone, methods: [GET], upstream: gone }}
      gone-tls: {{ path: /gone-tls, methods: [GET], upstream: gone-tls }}
      local: {{ path: /local, methods: [GET], upstream: local }}
      split:
        path: /split
        methods: [GET]
        policies:
          - traffic-split:
              header-match: [{{ name: x-to, value: gone, upstream: gone }}]
              to: [{{ upstream: named, weight: 1 }}]
      hello: {{ path: /hello, policies: [{{ mock: {{ body: hi }} }}] }}
"#
    )
}

/// nginx starts although `nowhere.invalid` does not resolve, serves every
/// other route, reaches `backend.gatefold.test` by asking the DNS server
/// per request (host header and path as the spec says), reaches
/// `localhost` (which no DNS server is asked for), and answers the routes
/// of the name that does not resolve (plain, TLS, through a split) as the
/// reference gateway does: 502 `bad gateway`.
#[test]
fn names_resolve_per_request_and_one_that_does_not_answers_as_the_reference() {
    let echo = Echo::start();
    let dns = Dns::start(&[("backend.gatefold.test", Ipv4Addr::LOCALHOST)]);
    let ir = compile(&spec(&echo));
    let ng = run_asking(&ir, &dns);

    let r = get(ng.addr, "/hello", &[]);
    assert_eq!((r.status, r.body.as_str()), (200, "hi"), "{r:?}");

    let r = get(ng.addr, "/named/a/b?q=1", &[]);
    assert_eq!((r.status, r.body.as_str()), (200, "upstream"), "{r:?}");
    let seen = echo.last();
    assert_eq!(seen.target, "/named/a/b?q=1");
    assert_eq!(
        seen.header("host"),
        Some(format!("backend.gatefold.test:{}", echo.addr.port()).as_str())
    );
    assert!(
        dns.asked().iter().any(|n| n == "backend.gatefold.test"),
        "nginx asked the DNS server: {:?}",
        dns.asked()
    );

    let r = get(ng.addr, "/split", &[]);
    assert_eq!((r.status, r.body.as_str()), (200, "upstream"), "{r:?}");
    assert_eq!(echo.last().target, "/split");

    let before = echo.count();
    let r = get(ng.addr, "/local", &[]);
    assert_eq!((r.status, r.body.as_str()), (200, "upstream"), "{r:?}");
    assert_eq!(echo.count(), before + 1);
    assert!(
        !dns.asked().iter().any(|n| n == "localhost"),
        "localhost comes from /etc/hosts at start-up: {:?}",
        dns.asked()
    );

    // The reference gateway on the same spec, resolving as this machine
    // does (where `.invalid` never resolves, RFC 6761).
    let work = tempfile::tempdir().unwrap();
    let listen = free_addr();
    let output = gatefold_target_reference::Reference.emit(
        &ir,
        &Options {
            listen: Some(listen),
            ..Options::default()
        },
    );
    let reference = Launched::start(
        Launch::new(TargetKind::Reference, work.path(), listen),
        &output,
    )
    .unwrap();
    let cases: [(&str, &[(&str, &str)]); 4] = [
        ("/gone", &[]),
        ("/gone-tls", &[]),
        ("/split", &[("x-to", "gone")]),
        ("/hello", &[]),
    ];
    for (path, headers) in cases {
        let want = get(reference.listen(), path, headers);
        let got = get(ng.addr, path, headers);
        let seen = |r: &Resp| {
            (
                r.status,
                r.header("content-type").map(str::to_string),
                r.body.clone(),
            )
        };
        assert_eq!(seen(&got), seen(&want), "{path}: nginx (left), reference");
        if path != "/hello" {
            assert_eq!(
                (got.status, got.body.as_str()),
                (502, r#"{"error":"bad gateway"}"#),
                "{path}"
            );
        }
    }
    assert!(
        dns.asked().iter().any(|n| n == "nowhere.invalid"),
        "{:?}",
        dns.asked()
    );
    reference.stop().unwrap();
}

/// The compiled config names no DNS server (the machine's are written at
/// run time): it includes the prefix's `resolver.conf` exactly when an
/// upstream is reached by name per request, and has no `upstream` block
/// for such an upstream (nginx would resolve it at start-up).
#[test]
fn the_config_includes_the_resolver_file_only_for_names() {
    assert_eq!(
        gatefold_target_nginx::RESOLVER_FILE,
        gatefold_runtime::nginx::RESOLVER_FILE
    );
    let echo = Echo::start();
    let ir = compile(&spec(&echo));
    assert!(gatefold_target_nginx::resolves_names(&ir));
    let text = conf(&emit(&ir, &Options::default()));
    assert!(gatefold_runtime::nginx::includes_resolver(&text), "{text}");
    assert!(!text.lines().any(|l| l.trim().starts_with("resolver ")));
    for gone in ["gf_up_named", "gf_up_gone"] {
        assert!(!text.contains(gone), "{gone}: {text}");
    }
    assert!(text.contains("upstream gf_up_local {"), "{text}");
    assert!(text.contains("proxy_pass https://nowhere.invalid:443$gf_path"));
    assert!(text.contains("proxy_ssl_name \"nowhere.invalid\";"));
    // The same on another machine: only the spec decides the bytes.
    assert_eq!(text, conf(&emit(&ir, &Options::default())));
    // http-only mode includes it too, and its header says what to write.
    let http = conf(&emit_http_only(&ir));
    assert!(gatefold_runtime::nginx::includes_resolver(&http), "{http}");
    assert!(
        http.contains("write the prefix's\n# resolver.conf (`resolver ADDRESS;`"),
        "{http}"
    );

    let addresses = compile(&with_upstream(
        &mock_free_spec(),
        "http://127.0.0.1:9",
        &echo,
    ));
    assert!(!gatefold_target_nginx::resolves_names(&addresses));
    let text = conf(&emit(&addresses, &Options::default()));
    assert!(!gatefold_runtime::nginx::includes_resolver(&text));
    assert!(!text.contains("resolver"), "{text}");
    assert!(!conf(&emit_http_only(&addresses)).contains("resolver"));
}

fn mock_free_spec() -> String {
    "gatefold: 1\nupstreams:\n  a: { targets: [{ url: \"http://127.0.0.1:9\" }] }\n  l: { targets: [{ url: \"http://localhost:9\" }] }\napis:\n  main:\n    upstream: a\n    routes:\n      r: { path: /r }\n      l: { path: /l, upstream: l }\n".to_string()
}

/// http-only mode, included into a user's own `http` block as its header
/// says, passes `nginx -t` once the user wrote `resolver.conf` (and not
/// before: the include names the file nginx needs).
#[test]
fn http_only_mode_runs_with_the_resolver_file_the_user_writes() {
    let echo = Echo::start();
    let out = emit_http_only(&compile(&spec(&echo)));
    let dir = tempfile::tempdir().unwrap();
    write(&out, dir.path());
    let main = format!(
        "daemon off;\npid logs/nginx.pid;\nerror_log logs/error.log;\n{}\nevents {{}}\nhttp {{\n    include http.conf;\n}}\n",
        gatefold_target_nginx::LUA_MODULES
            .iter()
            .map(|m| format!("load_module {m};\n"))
            .collect::<String>()
    );
    let nginx = Nginx::locate().unwrap();
    let err = nginx.check(dir.path(), &main).unwrap_err().to_string();
    assert!(err.contains("resolver.conf"), "{err}");
    std::fs::write(dir.path().join("resolver.conf"), "resolver 127.0.0.1;\n").unwrap();
    nginx.check(dir.path(), &main).unwrap();
}

/// Without a DNS server to ask, a config that resolves names is not
/// started half-working: the check fails and says what to do.
#[test]
fn no_dns_server_is_a_clear_error() {
    let echo = Echo::start();
    let ir = compile(&spec(&echo));
    let output = emit(&ir, &Options::default());
    let dir = tempfile::tempdir().unwrap();
    write(&output, dir.path());
    let err = Nginx::locate()
        .unwrap()
        .with_resolver(Vec::new())
        .check(dir.path(), &conf(&output))
        .unwrap_err()
        .to_string();
    assert!(err.contains("names no DNS server"), "{err}");
    assert!(err.contains("nameserver ADDRESS"), "{err}");
    assert!(!dir.path().join("resolver.conf").exists());
}

/// An upstream with several targets, one a name, keeps its `upstream`
/// block (its balance and weights are nginx's) and so nginx's start-up
/// resolution: a warning says so at the upstream.
#[test]
fn several_targets_with_a_name_are_resolved_at_start_and_warned() {
    let ir = compile(
        "gatefold: 1\nupstreams:\n  pool:\n    targets:\n      - { url: \"http://127.0.0.1:9\", weight: 3 }\n      - { url: \"http://pool.example\" }\napis:\n  main:\n    upstream: pool\n    routes:\n      r: { path: /r }\n",
    );
    let diags = NginxTarget::default().spec_diagnostics(&ir);
    let all: Vec<_> = diags.iter().collect();
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(all[0].severity, Severity::Warning);
    assert_eq!(all[0].code, "upstream-resolved-at-start");
    assert!(all[0].message.contains("`pool`"), "{}", all[0].message);
    let text = conf(&emit(&ir, &Options::default()));
    assert!(
        text.contains("server \"pool.example:80\" weight=1"),
        "{text}"
    );
    assert!(text.contains("server \"127.0.0.1:9\" weight=3"), "{text}");
    assert!(!gatefold_runtime::nginx::includes_resolver(&text));
}
