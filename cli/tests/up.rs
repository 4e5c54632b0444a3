//! `gatefold up` as a user runs it, over real sockets: the reference target
//! on a free port, a reload on a settled change with `--watch`, a broken
//! edit that keeps the last good config, SIGTERM with a clean exit and
//! nothing listening after; and the errors for targets it cannot run.
//! (nginx and Envoy runs are added here once their targets are built in.)

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long anything may take: generous, for a loaded machine.
const LIMIT: Duration = Duration::from_secs(20);

/// A child killed (and reaped) when dropped: a failed assertion leaves no
/// gateway running.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
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

/// A running `gatefold up`: the child, where it serves, its stderr lines
/// after the one saying so.
struct Up {
    child: Guard,
    listen: SocketAddr,
    lines: mpsc::Receiver<String>,
}

/// Starts `gatefold up SPEC --target TARGET --listen 127.0.0.1:0 EXTRA...`
/// with `env` added, and waits until it says where it serves.
fn start_up(spec: &Path, target: &str, extra: &[&str], env: &[(&str, &str)]) -> Up {
    let child = Command::new(env!("CARGO_BIN_EXE_gatefold"))
        .arg("up")
        .arg(spec)
        .args(["--target", target, "--listen", "127.0.0.1:0"])
        .args(extra)
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
    let listen: SocketAddr = loop {
        let line = lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|_| panic!("gatefold up never said where it listens: {seen:?}"));
        let found = line
            .strip_prefix(&format!("gatefold up: {target} serving "))
            .and_then(|rest| rest.rsplit_once("http://"))
            .and_then(|(_, addr)| addr.trim().parse().ok());
        seen.push(line);
        if let Some(addr) = found {
            break addr;
        }
    };
    Up {
        child,
        listen,
        lines,
    }
}

#[test]
#[cfg(unix)]
fn up_reference_serves_reloads_on_change_and_stops_on_sigterm() {
    let dir = spec_dir("reference", &mock_spec("one"));
    let work = dir.join("work");
    let work_arg = work.to_str().unwrap();
    let Up {
        mut child,
        listen,
        lines,
    } = start_up(&dir, "reference", &["--watch", "--work", work_arg], &[]);
    let mut rest = Vec::new();
    while let Ok(line) = lines.recv_timeout(Duration::from_secs(2)) {
        let done = line.contains("Ctrl-C");
        rest.push(line);
        if done {
            break;
        }
    }
    let said = rest.join("\n");
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

    let killed = Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let mut exit = None;
    eventually("gatefold up exits on SIGTERM", || {
        exit = child.0.try_wait().unwrap();
        exit.is_some()
    });
    assert!(exit.unwrap().success(), "{exit:?}");
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

/// One exchange over a fresh connection: status, headers (names lower
/// case), body (chunked bodies decoded).
fn exchange(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[&str],
) -> (u16, Vec<(String, String)>, String) {
    let mut s = TcpStream::connect_timeout(&addr, LIMIT).unwrap();
    s.set_read_timeout(Some(LIMIT)).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n");
    for h in headers {
        req.push_str(h);
        req.push_str("\r\n");
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, mut body) = text.split_once("\r\n\r\n").unwrap();
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap()[9..12].parse().unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut decoded = String::new();
    if headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"))
    {
        while let Some((size, rest)) = body.split_once("\r\n") {
            let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            if n == 0 {
                break;
            }
            decoded.push_str(&rest[..n]);
            body = &rest[n + 2..];
        }
    } else {
        decoded = body.to_string();
    }
    (status, headers, decoded)
}

/// `gatefold up examples/petstore --target nginx` answers as `--target
/// reference` does: refusals, routing, CORS, an unreachable upstream (the
/// example's targets do not run), each compared by status, body and the
/// headers a client reads.
#[test]
#[cfg(unix)]
fn up_nginx_answers_petstore_as_the_reference_does() {
    let spec = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/petstore");
    let env = [
        ("ACME_API_KEY", "acme-key"),
        ("GLOBEX_API_KEY", "globex-key"),
        ("GLOBEX_API_KEY_NEXT", "globex-next"),
        ("STAFF_API_KEY", "staff-key"),
    ];
    let nginx = start_up(&spec, "nginx", &[], &env);
    let reference = start_up(&spec, "reference", &[], &env);
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
        (
            "POST",
            "/pets",
            &["x-api-key: staff-key", "content-length: 0"],
        ),
        (
            "OPTIONS",
            "/pets/1",
            &[origin, "access-control-request-method: DELETE"],
        ),
        ("GET", "/pets/x/../../..", &[]),
    ];
    for (method, path, headers) in cases {
        let a = exchange(nginx.listen, method, path, headers);
        let b = exchange(reference.listen, method, path, headers);
        let pick = |h: &[(String, String)]| -> Vec<(String, String)> {
            let mut v: Vec<_> = h
                .iter()
                .filter(|(k, _)| compared.contains(&k.as_str()))
                .cloned()
                .collect();
            v.sort();
            v
        };
        assert_eq!(
            (a.0, pick(&a.1), &a.2),
            (b.0, pick(&b.1), &b.2),
            "{method} {path} {headers:?}: nginx (left) and the reference (right) differ"
        );
    }
}
