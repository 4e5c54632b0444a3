//! Fleet sync when things go wrong, over real reference gateways
//! (`gatefold serve` processes on loopback) driven by the `gatefold`
//! binary: a gateway that is down, a config a gateway refuses, a verify
//! that fails after the switch, a switch that times out, a 500 after the
//! switch took, an operator's edit between plan and switch, and an apply
//! killed mid-wave. A fault sits between gatefold and a gateway as a small
//! forwarder (named as such) in front of the real admin API.
//!
//! Each test checks the end state the summary names against what every
//! gateway really serves: nothing half-written, a rollback byte for byte
//! (`GET /config` before and after), and no secret (the admin token, a
//! consumer key) in gatefold's output or the gateways' logs. The plain
//! cycle, a refusal in wave 2 with rollback, and the lock are in
//! `fleet.rs`; 500s on Kong and Cloudflare in their own files.

use crate::support;

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use support::http::{Request, Response, Server};
use support::reference::{forward, Gate, Gateway, Guard, TOKEN};
use support::{both, scratch, text, LIMIT};

/// The consumer key the new spec reads from the gateways' environment; it
/// must never be printed or logged either.
const KEY: &str = "consumer-key-0c9e3b";

const SECRETS: &[&str] = &[TOKEN, KEY];

/// What every gateway runs first: one route the new spec does not have.
const BOOT: &str = "gatefold: 1\napis:\n  boot:\n    routes:\n      up: { path: /up, policies: [ { mock: { status: 204 } } ] }\n";

/// The spec the fleet applies: a consumer whose key comes from the
/// gateway's environment (a gateway without `FLEET_KEY` refuses it).
const NEW: &str = "gatefold: 1\nconsumers:\n  acme:\n    credentials: { key: { env: FLEET_KEY } }\napis:\n  a:\n    routes:\n      r:\n        path: /r\n        policies: [ { key-auth: { in: header, name: x-api-key } }, { mock: { status: 200 } } ]\n";

/// A gateway's environment with the consumer key.
const WITH_KEY: &[(&str, &str)] = &[("FLEET_KEY", KEY)];

/// A scratch folder with the boot spec and the fleet's spec in it.
fn setup(name: &str) -> (PathBuf, PathBuf, PathBuf) {
    let dir = scratch(&format!("faults-{name}"));
    let boot = dir.join("boot.yaml");
    std::fs::write(&boot, BOOT).unwrap();
    let spec = dir.join("spec.yaml");
    std::fs::write(&spec, NEW).unwrap();
    (dir, boot, spec)
}

fn url(addr: SocketAddr) -> String {
    format!("http://{addr}")
}

/// A fleet file of reference gateways (name, admin URL), `rest` appended.
fn fleet_file(dir: &Path, spec: &Path, gateways: &[(&str, String)], rest: &str) -> String {
    let lines = gateways.iter().map(|(name, admin)| {
        format!(
            "{name}: {{ provider: reference, admin: \"{admin}\", token: {{ env: FLEET_TOKEN }} }}"
        )
    });
    let path = support::write_fleet(dir, spec, lines, rest);
    path.to_str().unwrap().to_string()
}

/// `gatefold ARGS` with the fleet's token; no secret in what it prints.
fn run(args: &[&str]) -> Output {
    support::gatefold(args, &[("FLEET_TOKEN", TOKEN)], SECRETS)
}

/// `gatefold ARGS` started in the background, output piped.
fn spawn(args: &[&str]) -> Guard {
    Guard(
        Command::new(env!("CARGO_BIN_EXE_gatefold"))
            .args(args)
            .env("FLEET_TOKEN", TOKEN)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    )
}

/// Waits for a background `gatefold` (bounded: it is killed past `LIMIT`
/// by its guard when the test fails) and checks its output for secrets.
fn finish(mut g: Guard) -> Output {
    let (tx, rx) = mpsc::channel();
    let child: Child = std::mem::replace(
        &mut g.0,
        Command::new("true").spawn().expect("a placeholder child"),
    );
    let pid = child.id();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = rx
        .recv_timeout(LIMIT * 2)
        .unwrap_or_else(|_| {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            panic!("gatefold {pid} did not finish")
        })
        .unwrap();
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    for s in SECRETS {
        assert!(!all.contains(s), "a secret leaked into the output:\n{all}");
    }
    out
}

/// The summary of `apply --format json` (its last line).
fn summary(out: &Output) -> serde_json::Value {
    let stdout = text(&out.stdout);
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str::<serde_json::Value>(last)
        .ok()
        .and_then(|v| v.get("summary").cloned())
        .unwrap_or_else(|| panic!("no summary:\n{}", both(out)))
}

/// One gateway's end state in a summary, and its detail (or failure).
fn end(summary: &serde_json::Value, gateway: &str) -> (String, String) {
    let g = summary["gateways"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["gateway"] == gateway)
        .unwrap_or_else(|| panic!("{gateway} is not in the summary: {summary}"));
    let why = [&g["detail"], &g["failure"]]
        .iter()
        .filter_map(|v| v.as_str())
        .collect::<Vec<_>>()
        .join("; ");
    (g["state"].as_str().unwrap().to_string(), why)
}

/// The hash the fleet wants on `gateway`, from `plan --format json`.
fn desired_hash(fleet: &str, gateway: &str) -> String {
    let out = run(&["plan", fleet, "--format", "json"]);
    let plan: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", both(&out)));
    plan["gateways"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["gateway"] == gateway)
        .and_then(|g| g["desired-hash"].as_str())
        .unwrap_or_else(|| panic!("no desired hash for {gateway}: {plan}"))
        .to_string()
}

/// No secret in any gateway's log.
fn logs_clean(gateways: &[&Gateway]) {
    for g in gateways {
        let log = g.log();
        for s in SECRETS {
            assert!(!log.contains(s), "a secret is in a gateway's log:\n{log}");
        }
    }
}

/// A gateway that is down when the apply starts: the plan already cannot
/// read it, so the apply changes nothing anywhere (starting would only
/// roll wave 1 forward and back) and says so per gateway.
#[test]
fn a_gateway_that_is_down_stops_the_apply_before_anything_changes() {
    let (dir, boot, spec) = setup("down");
    let a = Gateway::start(&boot, WITH_KEY);
    let before = a.config();
    // A loopback port nothing listens on: bound, read back, let go.
    let down = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let fleet = fleet_file(
        &dir,
        &spec,
        &[("a", url(a.admin)), ("down", url(down))],
        "  rollout:\n    waves: [[a], [down]]\n",
    );

    let out = run(&["plan", &fleet]);
    assert_eq!(out.status.code(), Some(1), "{}", both(&out));
    assert!(
        text(&out.stdout).contains("down (reference): cannot tell: unreachable"),
        "{}",
        both(&out)
    );

    let out = run(&["apply", &fleet, "--yes", "--format", "json"]);
    assert_eq!(out.status.code(), Some(1), "{}", both(&out));
    let summary = summary(&out);
    let (state, why) = end(&summary, "down");
    assert_eq!(state, "failed", "{summary}");
    assert!(why.contains("unreachable"), "{summary}");
    assert_eq!(end(&summary, "a").0, "skipped", "{summary}");
    // Never touched: the same bytes, and no manifest written.
    assert_eq!(a.config(), before);
    assert_eq!(a.admin("GET", "/manifest", "").0, 404);
    logs_clean(&[&a]);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A gateway refusing the config at its check (its environment lacks the
/// consumer's key) with `on-failure: halt`: the finished wave stays on the
/// new config, the refusing gateway keeps its old one byte for byte, the
/// wave after it is never reached; each named so in the summary.
#[test]
fn a_refused_config_with_halt_keeps_finished_waves_and_touches_nothing_after() {
    let (dir, boot, spec) = setup("halt");
    let a = Gateway::start(&boot, WITH_KEY);
    let b = Gateway::start(&boot, &[]);
    let c = Gateway::start(&boot, WITH_KEY);
    let (b_before, c_before) = (b.config(), c.config());
    let fleet = fleet_file(
        &dir,
        &spec,
        &[
            ("a", url(a.admin)),
            ("b", url(b.admin)),
            ("c", url(c.admin)),
        ],
        "  rollout:\n    waves: [[a], [b], [c]]\n    on-failure: halt\n",
    );
    let new = desired_hash(&fleet, "a");

    let out = run(&["apply", &fleet, "--yes", "--format", "json"]);
    assert_eq!(out.status.code(), Some(1), "{}", both(&out));
    let summary = summary(&out);
    assert_eq!(
        end(&summary, "a"),
        ("left-changed".into(), "on-failure: halt".into())
    );
    let (state, why) = end(&summary, "b");
    assert_eq!(state, "failed", "{summary}");
    assert!(
        why.contains("refused the config") && why.contains("FLEET_KEY"),
        "{summary}"
    );
    assert_eq!(end(&summary, "c").0, "skipped", "{summary}");
    assert_eq!(a.hash(), new);
    assert_eq!(b.config(), b_before, "b was half-written");
    assert_eq!(c.config(), c_before, "c was touched");
    // What a runs is what its manifest says: no drift anywhere.
    let out = run(&["drift", &fleet]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    logs_clean(&[&a, &b, &c]);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A gateway that takes the config but then says it serves the old one (a
/// forwarder answers `GET /status` with the old hash until a rollback),
/// with `on-failure: halt`: verify fails after b's switch, so b, in no
/// known state, is rolled back byte for byte; the finished wave 1 stays on
/// the new config; the summary says which is which and why.
#[test]
fn a_verify_failing_after_the_switch_rolls_that_gateway_back_even_on_halt() {
    let (dir, boot, spec) = setup("verify");
    let a = Gateway::start(&boot, WITH_KEY);
    let b = Gateway::start(&boot, WITH_KEY);
    let b_before = b.config();
    let old = b.hash();
    let lying = Arc::new(AtomicBool::new(false));
    let (real, lies) = (b.admin, lying.clone());
    let front = Server::start(move |req: &Request| {
        if req.method == "GET" && req.path == "/status" && lies.load(Ordering::SeqCst) {
            return Some(Response::json(
                200,
                &serde_json::json!({ "config_hash": old }),
            ));
        }
        let r = forward(real, req);
        if r.status == 200 {
            if req.is_switch() {
                lies.store(true, Ordering::SeqCst);
            } else if (req.method.as_str(), req.path.as_str()) == ("POST", "/rollback") {
                lies.store(false, Ordering::SeqCst);
            }
        }
        Some(r)
    });
    let fleet = fleet_file(
        &dir,
        &spec,
        &[("a", url(a.admin)), ("b", front.url())],
        "  rollout:\n    waves: [[a], [b]]\n    on-failure: halt\n",
    );
    let new = desired_hash(&fleet, "a");

    let out = run(&["apply", &fleet, "--yes", "--format", "json"]);
    assert_eq!(out.status.code(), Some(1), "{}", both(&out));
    let summary = summary(&out);
    let (state, why) = end(&summary, "b");
    assert_eq!(state, "rolled-back", "{summary}");
    assert!(why.contains("verify failed"), "{summary}");
    assert!(!lying.load(Ordering::SeqCst), "b was never rolled back");
    assert_eq!(b.config(), b_before, "b is not back byte for byte");
    assert_eq!(end(&summary, "a").0, "left-changed", "{summary}");
    assert_eq!(a.hash(), new);
    let out = run(&["drift", &fleet]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    logs_clean(&[&a, &b]);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A switch whose answer never comes (a forwarder passes `PUT /config` on,
/// so the gateway takes it, and then never answers): it may have taken, so
/// after the timeouts it is rolled back, byte for byte.
#[test]
fn a_switch_that_times_out_after_taking_is_rolled_back() {
    let (dir, boot, spec) = setup("timeout");
    let a = Gateway::start(&boot, WITH_KEY);
    let b = Gateway::start(&boot, WITH_KEY);
    let (a_before, b_before) = (a.config(), b.config());
    let real = b.admin;
    let front = Server::start(move |req: &Request| {
        let r = forward(real, req);
        // Hold the answer to every switch (retries included).
        (!req.is_switch()).then_some(r)
    });
    let fleet = fleet_file(&dir, &spec, &[("a", url(a.admin)), ("b", front.url())], "");
    let out = run(&[
        "apply",
        &fleet,
        "--yes",
        "--format",
        "json",
        "--timeout",
        "2",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", both(&out));
    let summary = summary(&out);
    let (state, why) = end(&summary, "b");
    assert_eq!(state, "rolled-back", "{summary}");
    assert!(why.contains("timed out"), "{summary}");
    assert_eq!(end(&summary, "a").0, "rolled-back", "{summary}");
    assert_eq!(a.config(), a_before, "a is not back byte for byte");
    assert_eq!(b.config(), b_before, "b is not back byte for byte");
    logs_clean(&[&a, &b]);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A change goes to a reference gateway as its changes from what the plan
/// saw there (`PATCH /config`); a gateway that does not take them (one from
/// before `PATCH`, answering 405, or one that cannot make the config from
/// them, 422) gets the whole config. All end on the new config, with no
/// drift.
#[test]
fn changes_go_as_changes_and_whole_to_a_gateway_without_patch() {
    let (dir, boot, spec) = setup("changes");
    let a = Gateway::start(&boot, WITH_KEY);
    let b = Gateway::start(&boot, WITH_KEY);
    let c = Gateway::start(&boot, WITH_KEY);
    // `refuse`: what the gateway answers a `PATCH` with instead of taking it.
    let switches = |real: SocketAddr, refuse: Option<u16>| {
        let seen = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
        let kept = seen.clone();
        let front = Server::start(move |req: &Request| {
            if req.is_switch() {
                kept.lock().unwrap().push(req.method.clone());
                if let Some(status) = refuse.filter(|_| req.method == "PATCH") {
                    return Some(Response::json(
                        status,
                        &serde_json::json!({ "ok": false, "errors": ["not taken"] }),
                    ));
                }
            }
            Some(forward(real, req))
        });
        (front, seen)
    };
    let (front_a, seen_a) = switches(a.admin, None);
    let (front_b, seen_b) = switches(b.admin, Some(405));
    let (front_c, seen_c) = switches(c.admin, Some(422));
    let fleet = fleet_file(
        &dir,
        &spec,
        &[
            ("a", front_a.url()),
            ("b", front_b.url()),
            ("c", front_c.url()),
        ],
        "",
    );
    let new = desired_hash(&fleet, "a");
    let out = run(&["apply", &fleet, "--yes", "--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    assert_eq!(a.hash(), new);
    assert_eq!(b.hash(), new);
    assert_eq!(c.hash(), new);
    assert_eq!(*seen_a.lock().unwrap(), ["PATCH"]);
    assert_eq!(*seen_b.lock().unwrap(), ["PATCH", "PUT"]);
    assert_eq!(*seen_c.lock().unwrap(), ["PATCH", "PUT"]);
    let out = run(&["drift", &fleet]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    logs_clean(&[&a, &b, &c]);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A 500 answered after the gateway took the config (a forwarder passes
/// every switch on and answers 500 whatever the gateway said): gatefold
/// cannot take the 500 as "nothing changed"; it finds the gateway on the
/// new config and rolls it back, byte for byte, with its wave-mate.
#[test]
fn a_500_after_the_switch_took_is_rolled_back_not_left_on_the_new_config() {
    let (dir, boot, spec) = setup("500");
    let a = Gateway::start(&boot, WITH_KEY);
    let b = Gateway::start(&boot, WITH_KEY);
    let (a_before, b_before) = (a.config(), b.config());
    let real = b.admin;
    let front = Server::start(move |req: &Request| {
        let r = forward(real, req);
        if req.is_switch() {
            return Some(Response::json(
                500,
                &serde_json::json!({ "ok": false, "errors": ["the proxy in front failed"] }),
            ));
        }
        Some(r)
    });
    let fleet = fleet_file(&dir, &spec, &[("a", url(a.admin)), ("b", front.url())], "");
    let out = run(&["apply", &fleet, "--yes", "--format", "json"]);
    assert_eq!(out.status.code(), Some(1), "{}", both(&out));
    let summary = summary(&out);
    let (state, why) = end(&summary, "b");
    assert!(why.contains("500"), "{summary}");
    assert_eq!(state, "rolled-back", "{summary}");
    assert_eq!(b.config(), b_before, "b was left on the new config");
    assert_eq!(end(&summary, "a").0, "rolled-back", "{summary}");
    assert_eq!(a.config(), a_before, "a is not back byte for byte");
    logs_clean(&[&a, &b]);
    let _ = std::fs::remove_dir_all(&dir);
}

/// An operator pushes to gateway b by hand after the apply planned (while
/// wave 1's switch is held by a forwarder): b's compare-and-swap refuses,
/// the operator's config stays byte for byte, wave 1 is rolled back.
#[test]
fn an_edit_between_plan_and_switch_is_refused_and_kept() {
    let (dir, boot, spec) = setup("cas");
    let a = Gateway::start(&boot, WITH_KEY);
    let b = Gateway::start(&boot, WITH_KEY);
    let a_before = a.config();
    let gate = Arc::new(Gate::default());
    let (seen, switching) = mpsc::channel();
    let (real, held) = (a.admin, gate.clone());
    let seen = std::sync::Mutex::new(seen);
    let front = Server::start(move |req: &Request| {
        if req.is_switch() {
            let _ = seen.lock().unwrap().send(());
            held.wait();
        }
        Some(forward(real, req))
    });
    let fleet = fleet_file(
        &dir,
        &spec,
        &[("a", front.url()), ("b", url(b.admin))],
        "  rollout:\n    waves: [[a], [b]]\n",
    );
    let apply = spawn(&["apply", &fleet, "--yes", "--format", "json"]);
    // The plan has read both gateways once wave 1 switches.
    switching
        .recv_timeout(LIMIT)
        .expect("the apply never reached wave 1's switch");
    let (status, body) = b.admin(
        "PUT",
        "/config",
        "gatefold: 1\napis:\n  hand:\n    routes:\n      h: { path: /h, policies: [ { mock: { status: 202 } } ] }\n",
    );
    assert_eq!(status, 200, "{body}");
    let edited = b.config();
    gate.open();
    let out = finish(apply);
    assert_eq!(out.status.code(), Some(1), "{}", both(&out));
    let summary = summary(&out);
    let (state, why) = end(&summary, "b");
    assert_eq!(state, "failed", "{summary}");
    assert!(why.contains("changed since the plan"), "{summary}");
    assert_eq!(end(&summary, "a").0, "rolled-back", "{summary}");
    assert_eq!(b.config(), edited, "the operator's edit was overwritten");
    assert_eq!(a.config(), a_before, "a is not back byte for byte");
    logs_clean(&[&a, &b]);
    let _ = std::fs::remove_dir_all(&dir);
}

/// `gatefold apply` SIGKILLed mid-wave, just after gateway b took the
/// config and before its answer came back: every gateway runs the old
/// config or the new one, never a mix; the dead apply's lock does not
/// block the next one, which converges every gateway on the new config
/// with manifests that agree (no drift).
#[test]
fn a_killed_apply_leaves_whole_configs_and_the_next_apply_converges() {
    let (dir, boot, spec) = setup("kill");
    let a = Gateway::start(&boot, WITH_KEY);
    let b = Gateway::start(&boot, WITH_KEY);
    let c = Gateway::start(&boot, WITH_KEY);
    let old = a.hash();
    let stall = Arc::new(AtomicBool::new(true));
    let (took, switched) = mpsc::channel();
    let took = std::sync::Mutex::new(took);
    let (real, stalling) = (b.admin, stall.clone());
    let front = Server::start(move |req: &Request| {
        let r = forward(real, req);
        if req.is_switch() && stalling.load(Ordering::SeqCst) {
            let _ = took.lock().unwrap().send(r.status);
            return None;
        }
        Some(r)
    });
    let fleet = fleet_file(
        &dir,
        &spec,
        &[("a", url(a.admin)), ("b", front.url()), ("c", url(c.admin))],
        "  rollout:\n    waves: [[a], [b, c]]\n",
    );
    let new = desired_hash(&fleet, "a");

    let mut apply = spawn(&["apply", &fleet, "--yes", "--timeout", "60"]);
    let status = switched
        .recv_timeout(LIMIT)
        .expect("the apply never reached b's switch");
    assert_eq!(status, 200, "b did not take the config");
    let pid = apply.0.id();
    apply.0.kill().unwrap();
    apply.0.wait().unwrap();

    // Whole configs only: wave 1 and b are on the new one; c either.
    assert_eq!(a.hash(), new);
    assert_eq!(b.hash(), new);
    let c_hash = c.hash();
    assert!(c_hash == new || c_hash == old, "c runs {c_hash}");
    let lock = dir.join(".fleet.yaml.lock");
    let holder = std::fs::read_to_string(&lock).unwrap();
    assert_eq!(holder.trim(), format!("pid {pid}"), "the dead apply's lock");

    stall.store(false, Ordering::SeqCst);
    let out = run(&["apply", &fleet, "--yes", "--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    let summary = summary(&out);
    for g in ["a", "b", "c"] {
        let (state, _) = end(&summary, g);
        assert!(state == "in-sync" || state == "applied", "{summary}");
    }
    assert_eq!(end(&summary, "a").0, "in-sync", "{summary}");
    assert_eq!(end(&summary, "b").0, "in-sync", "{summary}");
    let config = a.config();
    assert_eq!(b.config(), config);
    assert_eq!(c.config(), config);
    assert_eq!(c.hash(), new);
    let out = run(&["drift", &fleet]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    logs_clean(&[&a, &b, &c]);
    let _ = std::fs::remove_dir_all(&dir);
}
