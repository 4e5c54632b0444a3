//! Fleet sync over real processes: reference gateways (`gatefold serve`)
//! started here on loopback ports they pick themselves, driven by
//! `gatefold plan | apply | drift | rollback` as a user runs them.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long a gateway may take to start, or anything to happen: generous,
/// for a loaded machine.
const LIMIT: Duration = Duration::from_secs(20);

/// The admin token the gateways require; it must never be printed.
const TOKEN: &str = "fleet-test-token-5f1c9e";

/// A child process killed (and reaped) when dropped.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// A reference gateway serving `spec`, with its admin API's address.
struct Gateway {
    _child: Guard,
    admin: SocketAddr,
}

impl Gateway {
    /// `gatefold serve spec` on free loopback ports, with `env` set.
    fn start(spec: &Path, env: &[(&str, &str)]) -> Gateway {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_gatefold"));
        cmd.args(["serve", spec.to_str().unwrap()])
            .args(["--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0"])
            .args(["--no-access-log", "--workers", "1"])
            .env("GATEFOLD_ADMIN_TOKEN", TOKEN)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = Guard(cmd.spawn().unwrap());
        let (tx, lines) = mpsc::channel();
        let stderr = child.0.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { return };
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + LIMIT;
        let mut seen = Vec::new();
        let admin = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = lines
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("gateway never said where its admin API is: {seen:?}"));
            if let Some(rest) = line.strip_prefix("gatefold: admin API on http://") {
                break rest.trim().parse().unwrap();
            }
            seen.push(line);
        };
        Gateway {
            _child: child,
            admin,
        }
    }

    /// `METHOD path` on the admin API with the token: status and body.
    fn admin(&self, method: &str, path: &str, body: &str) -> (u16, String) {
        let mut s = TcpStream::connect(self.admin).unwrap();
        s.set_read_timeout(Some(LIMIT)).unwrap();
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nhost: localhost\r\nauthorization: Bearer {TOKEN}\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        let status = out[9..12].parse().unwrap();
        let body = out
            .split_once("\r\n\r\n")
            .map_or("", |(_, b)| b)
            .to_string();
        (status, body)
    }

    /// The running config, byte for byte.
    fn config(&self) -> String {
        let (status, body) = self.admin("GET", "/config", "");
        assert_eq!(status, 200, "{body}");
        body
    }

    fn hash(&self) -> String {
        let (_, body) = self.admin("GET", "/status", "");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        v["config_hash"].as_str().unwrap().to_string()
    }
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gatefold-fleet-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `gatefold ARGS` with the fleet's token variable set.
fn gatefold(args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_gatefold"))
        .args(args)
        .env("FLEET_TOKEN", TOKEN)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(
        !all.contains(TOKEN),
        "the token leaked into the output:\n{all}"
    );
    out
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The spec every gateway starts on: one route none of the fleet's specs has.
const BOOT: &str = "gatefold: 1\napis:\n  boot:\n    routes:\n      up: { path: /up, policies: [ { mock: { status: 204 } } ] }\n";

/// A fleet file for `gateways` (name, admin, labels, written as YAML).
fn fleet_file(
    dir: &Path,
    spec: &Path,
    gateways: &[(&str, SocketAddr, &str)],
    rest: &str,
) -> PathBuf {
    let mut s = format!(
        "gatefold: 1\nfleet:\n  spec: {}\n  gateways:\n",
        spec.display()
    );
    for (name, admin, labels) in gateways {
        s.push_str(&format!(
            "    {name}: {{ provider: reference, admin: \"http://{admin}\", token: {{ env: FLEET_TOKEN }}, labels: {labels} }}\n"
        ));
    }
    s.push_str(rest);
    let path = dir.join("fleet.yaml");
    std::fs::write(&path, s).unwrap();
    path
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out.stdout)))
}

/// The example fleet's spec and deploy rules on three gateways: plan,
/// apply, no false changes after reformatting, a change that reaches
/// exactly the gateways it affects, drift after a hand edit, rollback.
#[test]
fn plan_apply_drift_and_rollback_on_three_gateways() {
    let dir = scratch("cycle");
    let boot = dir.join("boot.yaml");
    std::fs::write(&boot, BOOT).unwrap();
    let spec = dir.join("spec.yaml");
    let example =
        std::fs::read_to_string(repo().join("examples/fleet/spec/gatefold.yaml")).unwrap();
    std::fs::write(&spec, &example).unwrap();
    let (a, b, c) = (
        Gateway::start(&boot, &[]),
        Gateway::start(&boot, &[]),
        Gateway::start(&boot, &[]),
    );
    let boot_hash = a.hash();
    let fleet = fleet_file(
        &dir,
        &spec,
        &[
            ("canary", a.admin, "{ region: eu }"),
            ("eu-1", b.admin, "{ region: eu }"),
            ("us-1", c.admin, "{ region: us }"),
        ],
        "  deploy:\n    - apis: [hello]\n    - apis: [pets]\n      to: { region: eu }\n  rollout:\n    waves: [[canary], [\"*\"]]\n",
    );
    let fleet = fleet.to_str().unwrap();

    // Every gateway runs the boot spec: all three have changes, and the
    // plan names them route by route (the semantic diff).
    let out = gatefold(&["plan", fleet, "--format", "json"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let plan = json(&out);
    let states: Vec<&str> = plan["gateways"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["changes", "changes", "changes"]);
    let us = &plan["gateways"][2];
    assert_eq!(us["gateway"], "us-1");
    let us_changes = us["changes"].to_string();
    assert!(
        us_changes.contains("hello.hello") && !us_changes.contains("pets.list"),
        "{us_changes}"
    );

    // Apply: canary first, then the rest; every gateway ends `applied`.
    let out = gatefold(&["apply", fleet, "--yes", "--format", "json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let summary = &lines.last().unwrap()["summary"];
    assert_eq!(summary["ok"], true, "{summary}");
    for g in summary["gateways"].as_array().unwrap() {
        assert_eq!(g["state"], "applied", "{summary}");
    }
    // The canary's wave finished before wave 2 started.
    let events: Vec<(u64, String, String)> = lines
        .iter()
        .filter_map(|l| {
            let e = l.get("event")?;
            Some((
                e["wave"].as_u64()?,
                e["gateway"].as_str()?.to_string(),
                e["step"].as_str()?.to_string(),
            ))
        })
        .collect();
    let canary_done = events
        .iter()
        .position(|e| e.1 == "canary" && e.2 == "done")
        .unwrap();
    let first_wave2 = events.iter().position(|e| e.0 == 2).unwrap();
    assert!(canary_done < first_wave2, "{events:?}");
    assert_ne!(a.hash(), boot_hash);
    // `pets` only on the eu gateways.
    assert!(a.config().contains("pets") && b.config().contains("pets"));
    assert!(!c.config().contains("\"pets"), "{}", c.config());

    // In sync now; and still after the spec is reformatted (other key
    // order, flow style, comments, quoting): no false changes.
    let out = gatefold(&["plan", fleet]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    std::fs::write(
        &spec,
        "# reformatted\ngatefold: 1\napis:\n  pets:\n    routes:\n      list: { policies: [ { mock: { json: { pets: [\"rex\", \"tom\"] } } } ], methods: [ GET ], path: \"/pets\" }\n  hello:\n    routes:\n      hello:\n        methods: [GET]\n        path: '/hello'\n        policies: [ { mock: { json: { message: \"hello from the fleet\" } } } ]\ngateway: { listen: 8080, name: fleet-demo }\n",
    )
    .unwrap();
    let out = gatefold(&["plan", fleet]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "a reformatted spec planned changes:\n{}",
        text(&out.stdout)
    );
    let out = gatefold(&["drift", fleet]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));

    // A change to `pets` reaches exactly the eu gateways.
    std::fs::write(&spec, example.replace("[rex, tom]", "[rex, tom, kit]")).unwrap();
    let out = gatefold(&["plan", fleet, "--format", "json"]);
    assert_eq!(out.status.code(), Some(2));
    let plan = json(&out);
    let states: Vec<&str> = plan["gateways"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["changes", "changes", "in-sync"]);
    let us_before = c.config();
    let out = gatefold(&["apply", fleet, "--yes"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert_eq!(c.config(), us_before, "us-1 was touched");
    assert!(a.config().contains("kit") && b.config().contains("kit"));

    // A hand edit on eu-1 (a push that is not gatefold's) is drift, shown
    // as what changed; the others have none.
    let edited = example.replace("hello from the fleet", "edited by hand");
    let (status, body) = b.admin("PUT", "/config", &edited);
    assert_eq!(status, 200, "{body}");
    let out = gatefold(&["drift", fleet, "--format", "json"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stdout));
    let report = json(&out);
    let states: Vec<&str> = report["gateways"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["no-drift", "drift", "no-drift"]);
    assert!(
        report["gateways"][1]["changes"]
            .to_string()
            .contains("hello.hello"),
        "{report}"
    );

    // Rollback of the canary: back to the version before its last apply.
    let before_last = {
        let out = gatefold(&["rollback", fleet, "--gateway", "canary", "--yes"]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        a.config()
    };
    assert!(
        !before_last.contains("kit") && before_last.contains("pets"),
        "{before_last}"
    );
    // The rollback is recorded: the canary shows no drift.
    let out = gatefold(&["drift", fleet, "--format", "json"]);
    assert_eq!(json(&out)["gateways"][0]["state"], "no-drift");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Wave 2 fails (one of its gateways refuses the config: a secret its
/// environment lacks), so every gateway this run changed, wave 1's
/// included, is put back byte for byte, and the summary names each one.
#[test]
fn a_failure_in_wave_2_rolls_back_wave_1() {
    let dir = scratch("rollback");
    let boot = dir.join("boot.yaml");
    std::fs::write(&boot, BOOT).unwrap();
    let spec = dir.join("spec.yaml");
    std::fs::write(
        &spec,
        "gatefold: 1\nconsumers:\n  acme:\n    credentials: { key: { env: FLEET_KEY } }\napis:\n  a:\n    routes:\n      r:\n        path: /r\n        policies: [ { key-auth: { in: header, name: x-api-key } }, { mock: { status: 200 } } ]\n",
    )
    .unwrap();
    let key = [("FLEET_KEY", "k-123")];
    let (a, b, c) = (
        Gateway::start(&boot, &key),
        Gateway::start(&boot, &key),
        // No FLEET_KEY: it refuses the new config.
        Gateway::start(&boot, &[]),
    );
    let before: Vec<String> = [&a, &b, &c].iter().map(|g| g.config()).collect();
    let fleet = fleet_file(
        &dir,
        &spec,
        &[
            ("a", a.admin, "{}"),
            ("b", b.admin, "{}"),
            ("c", c.admin, "{}"),
        ],
        "  rollout:\n    waves: [[a], [b, c]]\n    on-failure: rollback\n",
    );
    let out = gatefold(&["apply", fleet.to_str().unwrap(), "--yes"]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("a (wave 1): rolled back"), "{stdout}");
    assert!(stdout.contains("c (wave 2): FAILED"), "{stdout}");
    assert!(
        stdout.contains("FLEET_KEY"),
        "the reason is named: {stdout}"
    );
    // b ran in parallel with c: changed then put back, or never reached.
    assert!(
        stdout.contains("b (wave 2): rolled back") || stdout.contains("b (wave 2): FAILED"),
        "{stdout}"
    );
    let after: Vec<String> = [&a, &b, &c].iter().map(|g| g.config()).collect();
    assert_eq!(before, after, "a gateway was not put back byte for byte");
    // What the rollback recorded agrees with what runs: no drift.
    let out = gatefold(&["drift", fleet.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    let _ = std::fs::remove_dir_all(&dir);
}

/// A second apply while one runs is refused; an apply killed mid-way
/// leaves no lock behind.
#[test]
fn a_concurrent_apply_is_refused_and_a_killed_one_leaves_no_lock() {
    let dir = scratch("lock");
    let spec = dir.join("spec.yaml");
    std::fs::write(&spec, BOOT).unwrap();
    // A gateway that accepts connections and never answers: the first
    // apply waits on it, holding the lock.
    let stalled = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = stalled.local_addr().unwrap();
    let (tx, accepted) = mpsc::channel();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in stalled.incoming() {
            held.push(s);
            if tx.send(()).is_err() {
                return;
            }
        }
    });
    let fleet = fleet_file(&dir, &spec, &[("slow", addr, "{}")], "");
    let fleet = fleet.to_str().unwrap();
    let first = Command::new(env!("CARGO_BIN_EXE_gatefold"))
        .args(["apply", fleet, "--yes", "--timeout", "120"])
        .env("FLEET_TOKEN", TOKEN)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut first = Guard(first);
    // It reached the gateway, so it holds the lock (taken before the plan).
    accepted
        .recv_timeout(LIMIT)
        .expect("the first apply never reached the gateway");
    let out = gatefold(&["apply", fleet, "--yes"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("another gatefold apply or rollback is changing this fleet"),
        "{err}"
    );
    assert!(err.contains(&format!("pid {}", first.0.id())), "{err}");

    // Killed (no chance to clean up), the lock goes with it: the next
    // apply is not refused (it fails on the stalled gateway instead).
    first.0.kill().unwrap();
    first.0.wait().unwrap();
    let out = gatefold(&["apply", fleet, "--yes", "--timeout", "1"]);
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(!all.contains("another gatefold apply"), "{all}");
    assert!(all.contains("timed out"), "{all}");
    assert_eq!(out.status.code(), Some(1), "{all}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Mistakes in a fleet file are reported at their place with a fix.
#[test]
fn a_bad_fleet_file_fails_at_its_place() {
    let dir = scratch("bad");
    let spec = dir.join("spec.yaml");
    std::fs::write(&spec, BOOT).unwrap();
    let fleet = dir.join("fleet.yaml");
    std::fs::write(
        &fleet,
        format!(
            "gatefold: 1\nfleet:\n  spec: {}\n  gateways:\n    a: {{ provider: refrence, admin: \"http://127.0.0.1:1\" }}\n    b: {{ provider: reference, admin: \"http://127.0.0.1:2\", token: hunter2 }}\n  rollout:\n    waves: [[a, c]]\n",
            spec.display()
        ),
    )
    .unwrap();
    let out = gatefold(&["plan", fleet.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("fleet.yaml:5:20"), "{err}");
    assert!(err.contains("did you mean `reference`?"), "{err}");
    assert!(err.contains("token: { env: NAME }"), "{err}");
    assert!(err.contains("wave names gateway `c`"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
