//! `gatefold up` as a user runs it, over real sockets: the reference target
//! on a free port, a reload on a settled change with `--watch`, a broken
//! edit that keeps the last good config, SIGTERM with a clean exit and
//! nothing listening after; and the errors for targets it cannot run.
//! Envoy: the petstore example answering as the reference does.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long anything may take: generous, for a loaded machine.
const LIMIT: Duration = Duration::from_secs(20);

/// A child stopped (and reaped) when dropped: a failed assertion leaves no
/// gateway running. SIGTERM first, so that `gatefold up` stops the runtime
/// it started (SIGKILL would leave nginx, Envoy or workerd behind); SIGKILL
/// when it has not exited within a few seconds.
struct Guard(Child);

impl Guard {
    /// Sends SIGTERM; whether it was delivered.
    fn terminate(&self) -> bool {
        Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status()
            .is_ok_and(|s| s.success())
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if !matches!(self.0.try_wait(), Ok(None)) {
            return;
        }
        self.terminate();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if !matches!(self.0.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A fresh spec folder holding `yaml`.
fn spec_dir(tag: &str, yaml: &str) -> PathBuf {
    let dir =
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("up-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("gatefold.yaml"), yaml).unwrap();
    dir
}

fn mock_spec(body: &str) -> String {
    format!(
        "gatefold: 1\napis:\n  main:\n    routes:\n      hello: {{ path: /hello, policies: [{{ mock: {{ body: {body} }} }}] }}\n"
    )
}

/// The body of `GET /hello` at `addr`, or `None` when nothing answers.
fn hello(addr: SocketAddr) -> Option<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(LIMIT)).ok()?;
    write!(
        s,
        "GET /hello HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n"
    )
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out.split_once("\r\n\r\n")?.1.to_string())
}

/// Polls `check` every 50 ms until it holds or [`LIMIT`] passes.
fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + LIMIT;
    while Instant::now() < deadline {
        if check() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out waiting for: {what}");
}

/// A running `gatefold up`: the process (killed when dropped), where it
/// says it listens, what it said up to "Ctrl-C", and its later stderr lines.
struct Up {
    child: Guard,
    listen: SocketAddr,
    said: String,
    lines: mpsc::Receiver<String>,
}

/// Starts `gatefold up DIR --target TARGET --listen LISTEN ARGS...` with
/// `env` added, and reads where it serves from its stderr.
fn up(dir: &Path, target: &str, listen: &str, args: &[&str], env: &[(&str, &str)]) -> Up {
    let child = Command::new(env!("CARGO_BIN_EXE_gatefold"))
        .arg("up")
        .arg(dir)
        .args(["--target", target, "--listen", listen])
        .args(args)
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = Guard(child);
    let (tx, lines) = mpsc::channel();
    let stderr = child.0.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let deadline = Instant::now() + LIMIT;
    let mut seen = Vec::new();
    let serving = format!("gatefold up: {target} serving ");
    let listen: SocketAddr = loop {
        let line = lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|_| panic!("gatefold up never said where it listens: {seen:?}"));
        let found = line
            .strip_prefix(serving.as_str())
            .and_then(|rest| rest.rsplit_once("http://"))
            .and_then(|(_, addr)| addr.trim().parse().ok());
        seen.push(line);
        if let Some(addr) = found {
            break addr;
        }
    };
    // Up to "Ctrl-C", which it always says last: waited for by the same
    // deadline, not by a gap between lines a loaded machine can stretch.
    let mut rest = Vec::new();
    loop {
        let line = lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|_| panic!("gatefold up never said how to stop it: {rest:?}"));
        let done = line.contains("Ctrl-C");
        rest.push(line);
        if done {
            break;
        }
    }
    Up {
        child,
        listen,
        said: rest.join("\n"),
        lines,
    }
}

/// Sends SIGTERM and waits for a clean exit.
fn stop(up: &mut Up) {
    assert!(up.child.terminate());
    let mut exit = None;
    eventually("gatefold up exits on SIGTERM", || {
        exit = up.child.0.try_wait().unwrap();
        exit.is_some()
    });
    assert!(exit.unwrap().success(), "{exit:?}");
}

#[test]
#[cfg(unix)]
fn up_reference_serves_reloads_on_change_and_stops_on_sigterm() {
    let dir = spec_dir("reference", &mock_spec("one"));
    let work = dir.join("work");
    let work_arg = work.to_str().unwrap();
    let mut running = up(
        &dir,
        "reference",
        "127.0.0.1:0",
        &["--watch", "--work", work_arg],
        &[],
    );
    let (listen, said) = (running.listen, running.said.clone());
    let lines = &running.lines;
    assert!(
        said.contains(&format!("work dir {}", work.display())),
        "{said}"
    );
    assert!(said.contains("gatefold up: logs: "), "{said}");
    assert!(
        work.join("gatefold.ir.json").exists(),
        "compiled into the work dir"
    );
    assert_eq!(hello(listen).as_deref(), Some("one"));

    std::fs::write(dir.join("gatefold.yaml"), mock_spec("two")).unwrap();
    eventually("the changed spec is served", || {
        hello(listen).as_deref() == Some("two")
    });
    // A broken edit is reported and the last good config keeps serving.
    std::fs::write(dir.join("gatefold.yaml"), "gatefold: 1\napis: [\n").unwrap();
    eventually("the broken edit is reported", || {
        lines
            .try_iter()
            .any(|l| l.contains("does not compile; still serving the last good config"))
    });
    assert_eq!(hello(listen).as_deref(), Some("two"));

    stop(&mut running);
    assert!(hello(listen).is_none(), "nothing serves after the stop");
}

#[test]
fn up_refuses_targets_it_cannot_run_and_broken_specs() {
    let dir = spec_dir("refusals", &mock_spec("one"));
    let run = |target: &str| {
        Command::new(env!("CARGO_BIN_EXE_gatefold"))
            .arg("up")
            .arg(&dir)
            .args(["--target", target, "--listen", "127.0.0.1:0"])
            .output()
            .unwrap()
    };
    for (target, says) in [
        (
            "all",
            "`gatefold up` runs one target; choose one of: reference, nginx, envoy",
        ),
        ("nope", "`nope` is not a target"),
    ] {
        let out = run(target);
        assert_eq!(out.status.code(), Some(1), "{target}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{target}: {err}");
    }
    // A target this binary lacks: named, with what it has.
    let out = run("kong");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("target `kong` is not built yet; this gatefold has: nginx, envoy, reference")
            || err.contains("target `kong` has no local runtime to run"),
        "{err}"
    );

    std::fs::write(
        dir.join("gatefold.yaml"),
        "gatefold: 1\napis:\n  a:\n    routes:\n      r: { path: nope }\n",
    )
    .unwrap();
    let out = run("reference");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("gatefold.yaml:5:"), "placed: {err}");
    assert!(err.contains("cannot be run"), "{err}");
}

/// Status, the headers named in `keep` (lower case) and the body of the
/// answer to the raw request `head` (+ `body`) at `addr`.
fn ask(addr: SocketAddr, head: &str, body: &[u8], keep: &[&str]) -> (u16, Vec<String>, String) {
    let mut s = TcpStream::connect_timeout(&addr, LIMIT).unwrap();
    s.set_read_timeout(Some(LIMIT)).unwrap();
    write!(
        s,
        "{head}content-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    s.write_all(body).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    let text = String::from_utf8_lossy(&out);
    let (top, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = top.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let all: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let chunked = all
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    let mut headers: Vec<String> = all
        .into_iter()
        .filter(|(k, _)| keep.contains(&k.as_str()))
        .map(|(k, v)| format!("{k}: {v}"))
        .collect();
    headers.sort();
    // Gateways differ in framing (nginx chunks what the reference sends
    // with a length); compare the body itself.
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_string()
    };
    (status, headers, body)
}

/// The data of a chunked body.
fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, after)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || after.len() < n {
            break;
        }
        out.push_str(&after[..n]);
        rest = after[n..].strip_prefix("\r\n").unwrap_or(&after[n..]);
    }
    out
}

/// The petstore example and the keys its consumers read from the
/// environment, for the tests comparing a target with the reference.
fn petstore() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/petstore")
}

const PETSTORE_KEYS: [(&str, &str); 4] = [
    ("ACME_API_KEY", "acme-key"),
    ("GLOBEX_API_KEY", "globex-key"),
    ("GLOBEX_API_KEY_NEXT", "globex-next"),
    ("STAFF_API_KEY", "staff-key"),
];

/// A `--work` folder of its own for one test's `kind` of gateway.
fn work_dir(test: &str, kind: &str) -> String {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("{test}-{kind}-{}", std::process::id()))
        .to_str()
        .unwrap()
        .to_string()
}

/// `gatefold up examples/petstore --target envoy --listen 127.0.0.1:P`
/// serves on P and answers as `gatefold up --target reference` does, for
/// every answer the gateway makes itself (the example's upstreams,
/// 127.0.0.1:9001 and :9002, are not running here).
#[test]
#[cfg(unix)]
fn up_envoy_answers_petstore_as_the_reference_does() {
    let petstore = petstore();
    let keys = PETSTORE_KEYS;
    let work = |kind: &str| work_dir("up-petstore", kind);
    // A free port P, named on the command line as a user would.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let envoy_work = work("envoy");
    let mut envoy = up(
        &petstore,
        "envoy",
        &format!("127.0.0.1:{port}"),
        &["--work", &envoy_work],
        &keys,
    );
    assert_eq!(envoy.listen, SocketAddr::from(([127, 0, 0, 1], port)));
    let reference_work = work("reference");
    let mut reference = up(
        &petstore,
        "reference",
        "127.0.0.1:0",
        &["--work", &reference_work],
        &keys,
    );
    let host = "host: petstore.test\r\n";
    let big = vec![b'x'; 70 * 1024];
    let cases: [(&str, String, &[u8]); 9] = [
        ("no key", format!("GET /pets/ HTTP/1.1\r\n{host}"), b""),
        (
            "a wrong key",
            format!("GET /pets/42 HTTP/1.1\r\n{host}x-api-key: nope\r\n"),
            b"",
        ),
        (
            "acl: a customer deleting",
            format!("DELETE /pets/42 HTTP/1.1\r\n{host}x-api-key: acme-key\r\n"),
            b"",
        ),
        (
            "405 with allow",
            format!("PUT /pets/42 HTTP/1.1\r\n{host}x-api-key: acme-key\r\n"),
            b"",
        ),
        ("404", format!("GET /nowhere HTTP/1.1\r\n{host}"), b""),
        (
            "a CORS preflight",
            format!("OPTIONS /pets/ HTTP/1.1\r\n{host}origin: https://app.petstore.example\r\naccess-control-request-method: POST\r\n"),
            b"",
        ),
        (
            "a preflight from another origin",
            format!("OPTIONS /pets/ HTTP/1.1\r\n{host}origin: https://evil.example\r\naccess-control-request-method: POST\r\n"),
            b"",
        ),
        (
            "over the body limit",
            format!("POST /pets/ HTTP/1.1\r\n{host}x-api-key: acme-key\r\n"),
            &big,
        ),
        (
            "above the root",
            format!("GET /pets/../../etc HTTP/1.1\r\n{host}"),
            b"",
        ),
    ];
    let keep = [
        "content-type",
        "allow",
        "access-control-allow-origin",
        "access-control-allow-methods",
        "access-control-allow-headers",
        "access-control-allow-credentials",
        "access-control-max-age",
        "access-control-expose-headers",
    ];
    for (what, head, body) in &cases {
        let want = ask(reference.listen, head, body, &keep);
        assert!(
            (200..500).contains(&want.0),
            "{what}: the reference answered {want:?}"
        );
        let got = ask(envoy.listen, head, body, &keep);
        assert_eq!(got, want, "{what}: envoy (left) and the reference differ");
    }
    stop(&mut envoy);
    stop(&mut reference);
    assert!(
        hello(envoy.listen).is_none(),
        "nothing serves after the stop"
    );
}

/// `gatefold up examples/petstore --target nginx` answers as `--target
/// reference` does: refusals, routing, CORS, an unreachable upstream (the
/// example's targets do not run), each compared by status, body and the
/// headers a client reads.
#[test]
#[cfg(unix)]
fn up_nginx_answers_petstore_as_the_reference_does() {
    let spec = petstore();
    let env = PETSTORE_KEYS;
    let work = |kind: &str| work_dir("up-petstore-nginx-test", kind);
    let (nginx_work, reference_work) = (work("nginx"), work("reference"));
    let mut nginx = up(
        &spec,
        "nginx",
        "127.0.0.1:0",
        &["--work", &nginx_work],
        &env,
    );
    let mut reference = up(
        &spec,
        "reference",
        "127.0.0.1:0",
        &["--work", &reference_work],
        &env,
    );
    let compared = [
        "content-type",
        "allow",
        "www-authenticate",
        "access-control-allow-origin",
        "access-control-allow-methods",
        "access-control-allow-headers",
        "access-control-allow-credentials",
        "access-control-max-age",
        "access-control-expose-headers",
        "cache-control",
        "x-ratelimit-limit",
        "x-ratelimit-remaining",
        "server",
    ];
    let origin = "origin: https://app.petstore.example";
    let cases: &[(&str, &str, &[&str])] = &[
        ("GET", "/pets", &[]),
        ("GET", "/pets", &["x-api-key: wrong"]),
        ("GET", "/nothing", &[]),
        ("PUT", "/pets/1", &["x-api-key: acme-key"]),
        ("DELETE", "/pets/1", &["x-api-key: acme-key"]),
        ("GET", "/pets/1", &["x-api-key: acme-key", origin]),
        ("POST", "/pets", &["x-api-key: staff-key"]),
        (
            "OPTIONS",
            "/pets/1",
            &[origin, "access-control-request-method: DELETE"],
        ),
        ("GET", "/pets/x/../../..", &[]),
    ];
    for (method, path, headers) in cases {
        let mut head = format!("{method} {path} HTTP/1.1\r\nhost: localhost\r\n");
        for h in *headers {
            head.push_str(h);
            head.push_str("\r\n");
        }
        let a = ask(nginx.listen, &head, b"", &compared);
        let b = ask(reference.listen, &head, b"", &compared);
        assert_eq!(
            a, b,
            "{method} {path} {headers:?}: nginx (left) and the reference (right) differ"
        );
    }
    stop(&mut nginx);
    stop(&mut reference);
}

/// `gatefold up examples/kitchen-sink --target nginx` starts although its
/// `reporting` upstream, `reports.internal.example`, resolves nowhere (nginx
/// resolves it per request, from the `resolver.conf` `up` writes), and
/// serves kitchen-sink's routes as `--target reference` does.
#[test]
#[cfg(unix)]
fn up_nginx_serves_kitchen_sink_with_an_unresolvable_upstream() {
    let work = work_dir("up-kitchen-sink", "nginx");
    kitchen_sink_serves_as_on_the_reference("nginx", &work, || {
        let resolver = std::fs::read_to_string(Path::new(&work).join("resolver.conf")).unwrap();
        assert!(resolver.starts_with("resolver "), "{resolver}");
    });
}

/// `gatefold up examples/kitchen-sink --target cloudflare` runs the whole
/// example in workerd (with warnings for what a Worker approximates or
/// leaves out) and serves its routes as `--target reference` does.
#[test]
#[cfg(unix)]
fn up_cloudflare_serves_kitchen_sink() {
    let work = work_dir("up-kitchen-sink", "cloudflare");
    kitchen_sink_serves_as_on_the_reference("cloudflare", &work, || {
        assert!(Path::new(&work).join("worker.js").exists());
    });
}

/// `gatefold up examples/kitchen-sink --target envoy` serves its routes as
/// `--target reference` does (Envoy resolves `reports.internal.example`
/// when a request needs it).
#[test]
#[cfg(unix)]
fn up_envoy_serves_kitchen_sink() {
    let work = work_dir("up-kitchen-sink", "envoy");
    kitchen_sink_serves_as_on_the_reference("envoy", &work, || {
        assert!(Path::new(&work).join("envoy.log").exists());
    });
}

/// Runs kitchen-sink with `up` on `target` (work dir `work`, checked by
/// `started`) and on the reference, and compares their answers to a
/// request of each kind of route: a mock, a scripted route to an upstream
/// that resolves nowhere, an authenticated route, a refusal, a 404.
fn kitchen_sink_serves_as_on_the_reference(target: &str, work: &str, started: impl FnOnce()) {
    let spec = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/kitchen-sink");
    // The reference gateway loads only with every consumer's secret set.
    let env = [
        ("ALICE_API_KEY", "alice-key"),
        ("ALICE_PASSWORD", "alice-pass"),
        ("BOB_API_KEY", "bob-key"),
        ("BOB_API_KEY_NEXT", "bob-next"),
        ("CAROL_PASSWORD", "carol-pass"),
        // Envoy resolves `reports.internal.example` at start: ask a
        // loopback port where nothing answers, never a DNS server off the
        // machine (nginx and the reference resolve only for a request to
        // that route, which no case sends).
        ("GATEFOLD_DNS", "127.0.0.1:9"),
    ];
    let reference_work = work_dir("up-kitchen-sink", &format!("reference-for-{target}"));
    let mut running = up(&spec, target, "127.0.0.1:0", &["--work", work], &env);
    started();
    let mut reference = up(
        &spec,
        "reference",
        "127.0.0.1:0",
        &["--work", &reference_work],
        &env,
    );
    let compared = ["content-type", "x-brew", "www-authenticate"];
    let cases: &[(&str, &[&str])] = &[
        ("/healthz", &["host: localhost"]),
        ("/reports/daily?tenant=acme", &["host: reports.example.com"]),
        (
            "/catalog/teapot",
            &["host: api.example.com", "x-api-key: alice-key"],
        ),
        ("/catalog/teapot", &["host: api.example.com"]),
        ("/nowhere", &["host: localhost"]),
    ];
    for (path, headers) in cases {
        let mut head = format!("GET {path} HTTP/1.1\r\n");
        for h in *headers {
            head.push_str(h);
            head.push_str("\r\n");
        }
        let a = ask(running.listen, &head, b"", &compared);
        let b = ask(reference.listen, &head, b"", &compared);
        assert_eq!(
            a, b,
            "{path} {headers:?}: {target} (left) and the reference (right) differ"
        );
    }
    let teapot =
        "GET /catalog/teapot HTTP/1.1\r\nhost: api.example.com\r\nx-api-key: alice-key\r\n";
    assert_eq!(ask(running.listen, teapot, b"", &[]).0, 418);
    stop(&mut running);
    stop(&mut reference);
    assert!(
        hello(running.listen).is_none(),
        "nothing serves after the stop"
    );
}

/// `gatefold up SPEC --target cloudflare --watch` runs the Worker in
/// workerd on the asked port, serves a changed spec after restarting it,
/// and leaves nothing serving after SIGTERM.
#[test]
#[cfg(unix)]
fn up_cloudflare_serves_in_workerd_reloads_and_stops() {
    let dir = spec_dir("cloudflare", &mock_spec("one"));
    let work = dir.join("work");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut running = up(
        &dir,
        "cloudflare",
        &format!("127.0.0.1:{port}"),
        &["--watch", "--work", work.to_str().unwrap()],
        &[],
    );
    let listen = running.listen;
    assert_eq!(listen, SocketAddr::from(([127, 0, 0, 1], port)));
    assert!(work.join("worker.js").exists() && work.join("config.capnp").exists());
    assert_eq!(hello(listen).as_deref(), Some("one"));
    std::fs::write(dir.join("gatefold.yaml"), mock_spec("two")).unwrap();
    eventually("the changed spec is served", || {
        hello(listen).as_deref() == Some("two")
    });
    stop(&mut running);
    assert!(hello(listen).is_none(), "nothing serves after the stop");
}

/// The Worker's rate limit under concurrent requests in workerd: each gets
/// a count of its own from the counting object, so of 40 at once against a
/// limit of 10, exactly 10 pass, with `remaining` 9 down to 0, once each.
#[test]
#[cfg(unix)]
fn up_cloudflare_counts_concurrent_requests_exactly() {
    let spec = "gatefold: 1\napis:\n  main:\n    policies: [{ rate-limit: { requests: 10, per: 1m } }]\n    routes:\n      hello: { path: /hello, policies: [{ mock: { body: ok } }] }\n";
    let dir = spec_dir("cloudflare-limit", spec);
    let work = dir.join("work");
    let mut running = up(
        &dir,
        "cloudflare",
        "127.0.0.1:0",
        &["--work", work.to_str().unwrap()],
        &[],
    );
    let listen = running.listen;
    let start = std::sync::Arc::new(std::sync::Barrier::new(40));
    let askers: Vec<_> = (0..40)
        .map(|_| {
            let start = start.clone();
            std::thread::spawn(move || {
                start.wait();
                ask(
                    listen,
                    "GET /hello HTTP/1.1\r\nhost: localhost\r\n",
                    b"",
                    &["x-ratelimit-remaining"],
                )
            })
        })
        .collect();
    let answers: Vec<(u16, Vec<String>, String)> =
        askers.into_iter().map(|a| a.join().unwrap()).collect();
    let passed: Vec<&(u16, Vec<String>, String)> = answers
        .iter()
        .filter(|(status, _, _)| *status == 200)
        .collect();
    let refused = answers
        .iter()
        .filter(|(status, _, _)| *status == 429)
        .count();
    assert_eq!((passed.len(), refused), (10, 30), "{answers:?}");
    let mut remaining: Vec<String> = passed.iter().map(|(_, h, _)| h.join(",")).collect();
    remaining.sort();
    let expected: Vec<String> = (0..10)
        .map(|n| format!("x-ratelimit-remaining: {n}"))
        .collect();
    assert_eq!(remaining, expected, "{answers:?}");
    stop(&mut running);
}

/// Without workerd, `up --target cloudflare` says where it looked and how
/// to install it.
#[test]
#[cfg(unix)]
fn up_cloudflare_without_workerd_names_the_install_command() {
    let dir = spec_dir("cloudflare-missing", &mock_spec("one"));
    let out = Command::new(env!("CARGO_BIN_EXE_gatefold"))
        .arg("up")
        .arg(&dir)
        .args(["--target", "cloudflare", "--listen", "127.0.0.1:0"])
        .env("GATEFOLD_WORKERD", dir.join("no-such-workerd"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("workerd not found")
            && err.contains("GATEFOLD_WORKERD=")
            && err.contains("scripts/install-runtimes.sh"),
        "{err}"
    );
}
