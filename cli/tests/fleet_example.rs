//! `examples/fleet/` end to end, as its README walks a newcomer through
//! it: three reference gateways (`gatefold serve`), an nginx and an Envoy
//! (`gatefold up`), all started on the quickstart, then `plan`, `apply`,
//! `drift` and `rollback` with the example's own fleet file (only its
//! addresses and folders replaced by this test's). A Kong and a Cloudflare
//! Worker are added to it the way a user adds them, pointed at the
//! contract fakes (neither runs here).

use crate::support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Instant;
use support::cloudflare::FakeCloudflareApi;
use support::kong::FakeKongAdmin;
use support::reference::Guard;
use support::{both, gatefold, json, repo, scratch, LIMIT};

const KONG_TOKEN: &str = "example-kong-token-51c9";
const CF_TOKEN: &str = "example-cf-token-8e02";
const CF_ACCOUNT: &str = "0123456789abcdef0123456789abcdef";
/// What the Kong runs before the fleet's first apply.
const KONG_BOOT: &str = r#"{"_format_version":"3.0","services":[{"name":"legacy","host":"legacy.internal","port":80,"protocol":"http"}]}"#;

/// `gatefold ARGS` as the fleet commands run here: the fakes' tokens set,
/// and neither may appear in what it prints.
fn run(args: &[&str]) -> std::process::Output {
    gatefold(
        args,
        &[
            ("KONG_TOKEN", KONG_TOKEN),
            ("CF_API_TOKEN", CF_TOKEN),
            ("CF_ACCOUNT_ID", CF_ACCOUNT),
        ],
        &[KONG_TOKEN, CF_TOKEN],
    )
}

/// `gatefold ARGS...` in the background until the line `ready` says it
/// serves; gives the process and the line.
fn start(args: &[&str], ready: &str) -> (Guard, String) {
    let mut child = Guard(
        Command::new(env!("CARGO_BIN_EXE_gatefold"))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let (tx, lines) = mpsc::channel();
    let stderr = child.0.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            // Read to the end: a gateway whose stderr is closed loses its
            // lines (serve_stderr.rs), which is not what this test is about.
            let Ok(line) = line else { return };
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + LIMIT * 3;
    let mut seen = Vec::new();
    loop {
        let line = lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|_| panic!("`gatefold {args:?}` never said {ready:?}: {seen:?}"));
        if line.contains(ready) {
            return (child, line);
        }
        seen.push(line);
    }
}

/// A reference gateway on the quickstart, as the README starts one; gives
/// its admin API's address.
fn serve(quickstart: &Path) -> (Guard, SocketAddr) {
    let (child, line) = start(
        &[
            "serve",
            quickstart.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--admin",
            "127.0.0.1:0",
            "--workers",
            "1",
        ],
        "admin API on http://",
    );
    let admin = line
        .rsplit_once("http://")
        .unwrap()
        .1
        .trim()
        .parse()
        .unwrap();
    (child, admin)
}

/// A running `gatefold up`: stopped with SIGTERM when dropped, so that it
/// stops its nginx or Envoy too (a SIGKILL would leave them running).
struct Up(Guard);

impl Drop for Up {
    fn drop(&mut self) {
        let child = &mut self.0 .0;
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + LIMIT;
        while Instant::now() < deadline {
            if !matches!(child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
}

/// `gatefold up` on the quickstart for `target` in `work`, as the README
/// starts nginx and Envoy.
fn up(quickstart: &Path, target: &str, listen: SocketAddr, work: &Path) -> Up {
    Up(start(
        &[
            "up",
            quickstart.to_str().unwrap(),
            "--target",
            target,
            "--listen",
            &listen.to_string(),
            "--work",
            work.to_str().unwrap(),
        ],
        "Ctrl-C",
    )
    .0)
}

/// `GET path`: status and body.
fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(LIMIT)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let out = String::from_utf8_lossy(&out).into_owned();
    let status = out.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = out.split_once("\r\n\r\n").map(|x| x.1).unwrap_or("");
    (status, body.to_string())
}

/// Polls `GET path` until its body holds `want` (nginx reloads and Envoy
/// picks up renamed files asynchronously).
fn eventually_serves(addr: SocketAddr, path: &str, want: &str) {
    let deadline = Instant::now() + LIMIT;
    loop {
        let (_, body) = get(addr, path);
        if body.contains(want) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{addr}{path} never served {want:?}: {body}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// `text` with `from` replaced by `to`; `from` must be there (the test
/// notices when the example changes under it).
fn swap(text: String, from: &str, to: &str) -> String {
    assert!(text.contains(from), "the example fleet file names {from:?}");
    text.replace(from, to)
}

/// The state of every gateway in a `plan --format json`, by name.
fn states(plan: &serde_json::Value) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = plan["gateways"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["gateway"].as_str().unwrap().to_string(),
                g["state"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

fn named(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = pairs
        .iter()
        .map(|(g, s)| (g.to_string(), s.to_string()))
        .collect();
    out.sort();
    out
}

#[test]
fn the_example_fleet_plans_applies_detects_drift_and_rolls_back() {
    let dir = scratch("fleet-example");
    let quickstart = repo().join("examples/quickstart");
    let spec = dir.join("spec");
    std::fs::create_dir_all(&spec).unwrap();
    let example =
        std::fs::read_to_string(repo().join("examples/fleet/spec/gatefold.yaml")).unwrap();
    std::fs::write(spec.join("gatefold.yaml"), &example).unwrap();

    // The README's servers, each on ports of this test.
    let (_canary, canary) = serve(&quickstart);
    let (_eu1, eu1) = serve(&quickstart);
    let (_us1, us1) = serve(&quickstart);
    let nginx_listen = gatefold_runtime::launch::free_addr().unwrap();
    let nginx_dir = dir.join("nginx");
    let _nginx = up(&quickstart, "nginx", nginx_listen, &nginx_dir);
    let envoy_listen = gatefold_runtime::launch::free_addr().unwrap();
    let envoy_dir = dir.join("envoy");
    let _envoy = up(&quickstart, "envoy", envoy_listen, &envoy_dir);
    let kong = FakeKongAdmin::start(KONG_BOOT, Some(KONG_TOKEN));
    let cf = FakeCloudflareApi::start(CF_ACCOUNT, CF_TOKEN);

    // The example's fleet file with these addresses, plus Kong (eu) and
    // a Cloudflare Worker (us).
    let mut fleet = std::fs::read_to_string(repo().join("examples/fleet/fleet.yaml")).unwrap();
    fleet = swap(fleet, "spec: ./spec", &format!("spec: {}", spec.display()));
    for (port, admin) in [(9911, canary), (9912, eu1), (9913, us1)] {
        fleet = swap(
            fleet,
            &format!("http://127.0.0.1:{port}"),
            &format!("http://{admin}"),
        );
    }
    fleet = swap(
        fleet,
        "/tmp/gatefold-fleet/nginx",
        nginx_dir.to_str().unwrap(),
    );
    fleet = swap(fleet, "127.0.0.1:8184", &nginx_listen.to_string());
    fleet = swap(
        fleet,
        "/tmp/gatefold-fleet/envoy",
        envoy_dir.to_str().unwrap(),
    );
    fleet = swap(fleet, "127.0.0.1:8185", &envoy_listen.to_string());
    fleet = swap(
        fleet,
        "  deploy:",
        &format!(
            "    kong-1: {{ provider: kong, admin: \"{}\", token: {{ env: KONG_TOKEN }}, labels: {{ region: eu }} }}\n    \
             edge: {{ provider: cloudflare, api: \"{}\", account: {{ env: CF_ACCOUNT_ID }}, token: {{ env: CF_API_TOKEN }}, script: fleet-edge, labels: {{ region: us }} }}\n  deploy:",
            kong.url(),
            cf.url()
        ),
    );
    let fleet_path = dir.join("fleet.yaml");
    std::fs::write(&fleet_path, &fleet).unwrap();
    let fleet = fleet_path.to_str().unwrap();
    let all = [
        "canary", "edge", "envoy-1", "eu-1", "kong-1", "nginx-1", "us-1",
    ];

    // plan: exit 2, every gateway has changes pending.
    let out = run(&["plan", fleet, "--format", "json"]);
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    let pairs: Vec<(&str, &str)> = all.iter().map(|g| (*g, "changes")).collect();
    assert_eq!(states(&json(&out)), named(&pairs));

    // apply: canary, then the rest; then in sync, no drift.
    let out = run(&["apply", fleet, "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    let out = run(&["plan", fleet]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    let out = run(&["drift", fleet]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    // nginx (eu) serves pets; Envoy (us) serves hello and not pets.
    eventually_serves(nginx_listen, "/pets", "tom");
    eventually_serves(envoy_listen, "/hello", "hello from the fleet");
    assert_eq!(get(envoy_listen, "/pets").0, 404);
    assert!(kong.config().contains("tom"), "{}", kong.config());

    // A spec change to `pets`: only the eu gateways have changes.
    std::fs::write(
        spec.join("gatefold.yaml"),
        example.replace("[rex, tom]", "[rex, tom, kit]"),
    )
    .unwrap();
    let out = run(&["plan", fleet, "--format", "json"]);
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    let eu = ["canary", "eu-1", "kong-1", "nginx-1"];
    let pairs: Vec<(&str, &str)> = all
        .iter()
        .map(|g| (*g, if eu.contains(g) { "changes" } else { "in-sync" }))
        .collect();
    assert_eq!(states(&json(&out)), named(&pairs));
    let nginx_before = std::fs::read(nginx_dir.join("conf/nginx.conf")).unwrap();
    let edge_before = cf.script("fleet-edge").unwrap();
    let out = run(&["apply", fleet, "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    eventually_serves(nginx_listen, "/pets", "kit");
    assert_eq!(
        cf.script("fleet-edge").unwrap(),
        edge_before,
        "a gateway the change does not affect is not written"
    );
    let out = run(&["plan", fleet]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));

    // A hand edit of nginx's config: drift on nginx-1 only.
    let conf = nginx_dir.join("conf/nginx.conf");
    let applied = std::fs::read(&conf).unwrap();
    let mut edited = applied.clone();
    edited.extend_from_slice(b"# edited\n");
    std::fs::write(&conf, &edited).unwrap();
    let out = run(&["drift", fleet, "--format", "json"]);
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    let report = json(&out);
    let drifted: Vec<&str> = report["gateways"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| g["state"] == "drift")
        .map(|g| g["gateway"].as_str().unwrap())
        .collect();
    assert_eq!(drifted, ["nginx-1"], "{report}");

    // Undo the edit, then roll nginx-1 back: the files before the last
    // apply, byte for byte, served again.
    std::fs::write(&conf, &applied).unwrap();
    let out = run(&["rollback", fleet, "--gateway", "nginx-1", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    assert_eq!(std::fs::read(&conf).unwrap(), nginx_before);
    eventually_serves(nginx_listen, "/pets", "tom");
    assert!(!get(nginx_listen, "/pets").1.contains("kit"));
    // Only nginx-1 went back: it alone now differs from the spec.
    let out = run(&["plan", fleet, "--format", "json"]);
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    let pairs: Vec<(&str, &str)> = all
        .iter()
        .map(|g| {
            (
                *g,
                if *g == "nginx-1" {
                    "changes"
                } else {
                    "in-sync"
                },
            )
        })
        .collect();
    assert_eq!(states(&json(&out)), named(&pairs));
}
