//! `gatefold serve` as a user runs it: the quickstart spec on a free port,
//! a request, an access log line on stdout, SIGTERM, a clean exit.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn get(port: u16, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n"
    )
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

#[test]
#[cfg(unix)]
fn serve_answers_and_stops_on_sigterm() {
    let (port, admin) = (free_port(), free_port());
    let spec = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/quickstart");
    let mut child = Command::new(env!("CARGO_BIN_EXE_gatefold"))
        .args(["serve", spec, "--listen"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("--admin")
        .arg(format!("127.0.0.1:{admin}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let answer = loop {
        if let Some(a) = get(port, "/hello") {
            break a;
        }
        assert!(Instant::now() < deadline, "gatefold serve never answered");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        answer.ends_with(r#"{"message":"hello from gatefold"}"#),
        "{answer}"
    );
    let status = get(admin, "/status").unwrap();
    assert!(status.contains("\"config_hash\""), "{status}");

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let exit = child.wait().unwrap();
    assert!(exit.success(), "{exit:?}");
    // The access log line was flushed on the way out.
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let entry: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(entry["route"], "hello.hello");
    assert_eq!(entry["status"], 200);
}

#[test]
fn serve_refuses_a_broken_spec() {
    let dir = std::env::temp_dir().join(format!("gatefold-serve-broken-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("gatefold.yaml");
    std::fs::write(
        &file,
        "gatefold: 1\napis:\n  a:\n    routes:\n      r: { path: nope }\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_gatefold"))
        .args(["serve", file.to_str().unwrap(), "--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot be served"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
