//! `gatefold serve` with `gateway.tls`, as a user runs it: the tls example
//! (copied to a scratch folder, its certificate made there by its own
//! script with openssl) answered over HTTPS by curl trusting that
//! certificate (`--cacert`), over HTTP/1.1 and HTTP/2, and the plain
//! listener's 308. Ports are 0 and read back from the start-up lines.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long the gateway may take to start: generous, for a loaded machine.
const LIMIT: Duration = Duration::from_secs(20);

/// Kills (and reaps) the gateway when dropped.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// A scratch copy of examples/tls, removed on drop.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Each test its own copy (`tag`): tests run in parallel.
fn example_copy(tag: &str) -> Scratch {
    let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/tls");
    let to = std::env::temp_dir().join(format!("gatefold-serve-tls-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&to);
    std::fs::create_dir_all(&to).unwrap();
    for f in ["gatefold.yaml", "make-test-cert.sh"] {
        std::fs::copy(from.join(f), to.join(f)).unwrap();
    }
    // Through `bash`, not exec'd itself: a test forking in another thread
    // while this copy's file was still open for writing would hold it
    // open in the child, and exec would fail with "Text file busy".
    let made = Command::new("bash")
        .arg(to.join("make-test-cert.sh"))
        .status()
        .unwrap();
    assert!(made.success(), "make-test-cert.sh failed (needs openssl)");
    Scratch(to)
}

/// The address after `scheme://` in a start-up line that begins with `prefix`.
fn addr_after(line: &str, prefix: &str, scheme: &str) -> Option<SocketAddr> {
    let rest = line.strip_prefix(prefix)?;
    let marker = format!("{scheme}://");
    let at = rest.rfind(&marker)?;
    rest[at + marker.len()..].trim().parse().ok()
}

/// curl's output (`-w` appended), failing the test if curl fails.
fn curl(args: &[&str]) -> String {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "20"])
        .args(args)
        .output()
        .expect("curl is installed");
    assert!(
        out.status.success(),
        "curl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
#[cfg(unix)]
fn curl_trusts_the_served_certificate_over_h1_and_h2() {
    let dir = example_copy("curl");
    let child = Command::new(env!("CARGO_BIN_EXE_gatefold"))
        .args(["serve", dir.0.to_str().unwrap(), "--no-access-log"])
        .args(["--listen", "127.0.0.1:0", "--listen-tls", "127.0.0.1:0"])
        .args(["--admin", "127.0.0.1:0", "--workers", "1"])
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
    let (mut plain, mut tls) = (None, None);
    let mut seen = Vec::new();
    while plain.is_none() || tls.is_none() {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = lines
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("gatefold serve never said where it listens: {seen:?}"));
        plain = plain.or_else(|| addr_after(&line, "gatefold: serving ", "http"));
        tls = tls.or_else(|| addr_after(&line, "gatefold: serving TLS on ", "https"));
        seen.push(line);
    }
    let (plain, tls) = (plain.unwrap(), tls.unwrap());
    let cacert = dir.0.join("certs/api.pem");
    let cacert = cacert.to_str().unwrap();
    let resolve = format!("api.example.test:{}:127.0.0.1", tls.port());
    let url = format!("https://api.example.test:{}/hello", tls.port());

    // curl checks the chain against --cacert and the name against the
    // certificate: only the example's certificate, for that name, passes.
    for (flag, version) in [("--http1.1", "1.1"), ("--http2", "2")] {
        let out = curl(&[
            "--cacert",
            cacert,
            "--resolve",
            &resolve,
            flag,
            "-w",
            "\n%{http_code} %{http_version}",
            &url,
        ]);
        assert!(out.contains(r#"{"message":"hello over TLS"}"#), "{out}");
        assert!(out.ends_with(&format!("\n200 {version}")), "{flag}: {out}");
    }

    // redirect-http: the plain listener sends curl to https on tls.listen.
    let out = curl(&[
        "-o",
        "/dev/null",
        "-w",
        "%{http_code} %{redirect_url}",
        &format!("http://{plain}/hello?x=1"),
    ]);
    assert_eq!(out, "308 https://127.0.0.1:8443/hello?x=1");
}

/// `explain` says which certificate serves each host of a route over TLS,
/// and names a host no certificate covers.
#[test]
#[cfg(unix)]
fn explain_shows_the_certificate_of_each_host() {
    let dir = example_copy("explain");
    let spec = dir.0.join("gatefold.yaml");
    let text = std::fs::read_to_string(&spec).unwrap();
    let text = text.replace(
        "hosts: [localhost, api.example.test]",
        "hosts: [localhost, other.test]",
    );
    std::fs::write(&spec, text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_gatefold"))
        .args(["explain", dir.0.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("  over TLS (port 8443):\n"), "{text}");
    assert!(
        text.contains("    localhost: certificate #1 (localhost, api.example.test)\n"),
        "{text}"
    );
    assert!(
        text.contains("    other.test: no certificate covers it; clients get #1"),
        "{text}"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_gatefold"))
        .args(["explain", dir.0.to_str().unwrap(), "--format", "json"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v[0]["tls"]["hosts"][1],
        serde_json::json!({ "host": "other.test", "certificate": 1, "covered": false })
    );
}
