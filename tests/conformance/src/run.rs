//! Running one scenario on one target: compile, check, emit, launch on
//! free ports, replay, compare, stop.

use crate::client::{self, Response};
use crate::echo::{Echo, Got};
use crate::scenario::{
    host_key, Deviation, Expect, Placeholders, Request, Scenario, ScenarioFile, UpstreamExpect,
};
use gatefold_compiler::target::{check, check_features, Feature, Options, Support, Target};
use gatefold_runtime::launch::{free_addr, secret_files, Launch, Launched};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What a scenario did on a target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Every expectation held.
    Pass,
    /// The target's declared deviation held (what it approximates).
    Deviation(String),
    /// The target refused the spec at compile time (`target::check`).
    Refused(String),
    /// Something did not hold; what.
    Fail(Vec<String>),
}

impl Outcome {
    /// The matrix cell.
    pub fn cell(&self) -> String {
        match self {
            Outcome::Pass => "pass".into(),
            Outcome::Deviation(what) => format!("declared deviation ({what})"),
            Outcome::Refused(what) => format!("refused at compile ({what})"),
            Outcome::Fail(_) => "**FAIL**".into(),
        }
    }
}

/// What the scenarios run against: two echo upstreams (`{{echo}}`,
/// `{{echo2}}`) sharing one log, a closed port (`{{closed}}`), a scratch
/// directory. One per thread: scenarios on one `Env` run one at a time.
pub struct Env {
    a: Echo,
    b: Echo,
    closed: SocketAddr,
    log: Arc<Mutex<Vec<Got>>>,
    scratch: PathBuf,
    certs: crate::tls::Certs,
}

impl Env {
    pub fn new(scratch: PathBuf) -> std::io::Result<Env> {
        let log = Arc::new(Mutex::new(Vec::new()));
        let a = Echo::start("a", log.clone())?;
        let b = Echo::start("b", log.clone())?;
        // A port nothing listens on: bound, read, released.
        let closed = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
        let certs = crate::tls::Certs::make().map_err(std::io::Error::other)?;
        Ok(Env {
            a,
            b,
            closed,
            log,
            scratch,
            certs,
        })
    }

    pub fn placeholders(&self) -> Placeholders {
        let mut map = BTreeMap::new();
        for (name, addr) in [
            ("echo", self.a.addr),
            ("echo2", self.b.addr),
            ("closed", self.closed),
        ] {
            map.insert(name, format!("http://{addr}"));
            map.insert(host_key(name), addr.to_string());
        }
        Placeholders(map)
    }

    fn take_log(&self) -> Vec<Got> {
        std::mem::take(&mut *self.log.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// Whether `target` declares `(kind, field, value)` approximate, and its note.
pub fn declared_approximate(target: &dyn Target, d: &Deviation) -> Option<&'static str> {
    if let Some(f) = Feature::ALL.into_iter().find(|f| f.as_str() == d.kind) {
        // A route feature (`match`).
        return match target.feature(f) {
            Support::Approximate { note } if d.field.is_none() => Some(note),
            _ => None,
        };
    }
    let Some(kind) = gatefold_compiler::ir::PolicyKind::ALL
        .into_iter()
        .find(|k| k.as_str() == d.kind)
    else {
        // A part of the request model (`baseline.path`), not a policy.
        return target
            .request_model()
            .into_iter()
            .find(|m| m.part == d.kind && d.field.is_none())
            .and_then(|m| match m.support {
                Support::Approximate { note } => Some(note),
                _ => None,
            });
    };
    let support = match &d.field {
        None => target.support(kind),
        Some(field) => target
            .fields()
            .into_iter()
            .find(|f| f.kind == kind && f.field == field && f.value == d.value.as_deref())
            .map_or_else(|| target.support(kind), |f| f.support),
    };
    match support {
        Support::Approximate { note } => Some(note),
        _ => None,
    }
}

fn deviation_label(d: &Deviation) -> String {
    match (&d.field, &d.value) {
        (None, _) => format!("`{}`", d.kind),
        (Some(f), None) => format!("`{}` `{f}`", d.kind),
        (Some(f), Some(v)) => format!("`{}` `{f}: {v}`", d.kind),
    }
}

/// Runs `file` on `target`.
pub fn run(file: &ScenarioFile, target: &dyn Target, env: &Env) -> Outcome {
    let kind = target.kind();
    let scenario = match file.parse(&env.placeholders()) {
        Ok(s) => s,
        Err(e) => return Outcome::Fail(vec![e]),
    };
    let deviation = scenario.deviations.get(kind.as_str());
    if let Some(d) = deviation {
        if declared_approximate(target, d).is_none() {
            return Outcome::Fail(vec![format!(
                "the scenario declares a deviation of {kind} for {}, but {kind} does not declare it approximate (gatefold capabilities)",
                deviation_label(d)
            )]);
        }
    }
    let dir = env
        .scratch
        .join(kind.as_str())
        .join(file.id.replace('/', "--"));
    let _ = std::fs::remove_dir_all(&dir);
    let spec_dir = dir.join("spec");
    if let Err(e) = write_spec(&spec_dir, &scenario, &env.certs) {
        return Outcome::Fail(vec![e]);
    }
    let compiled = gatefold_compiler::compile_path(&spec_dir);
    let Some(ir) = &compiled.ir else {
        return Outcome::Fail(vec![format!(
            "the spec does not compile:\n{}",
            compiled.render()
        )]);
    };
    let addr = |what: &str| free_addr().map_err(|e| format!("a free port for {what}: {e}"));
    let (listen, listen_tls) = match (
        addr("listen"),
        scenario.tls.then(|| addr("tls")).transpose(),
    ) {
        (Ok(l), Ok(t)) => (l, t),
        (Err(e), _) | (_, Err(e)) => return Outcome::Fail(vec![e]),
    };
    let options = Options {
        strict: false,
        listen: Some(listen),
        listen_tls,
    };
    let gaps = check(target, ir, &options);
    let refused: Vec<String> = gaps
        .iter()
        .filter(|g| g.error)
        .map(|g| match g.field {
            Some(f) => format!("`{}` `{f}`", g.policy.kind),
            None => format!("`{}`", g.policy.kind),
        })
        .collect();
    let refused: Vec<String> = refused
        .into_iter()
        .chain(
            check_features(target, ir)
                .iter()
                .filter(|g| !matches!(g.support, Support::Approximate { .. }))
                .map(|g| format!("`{}`", g.feature)),
        )
        .chain(
            target
                .spec_diagnostics(ir)
                .iter()
                .filter(|d| d.severity == gatefold_compiler::diag::Severity::Error)
                .map(|d| format!("`{}`", d.code)),
        )
        .collect();
    if !refused.is_empty() {
        let mut refused = refused;
        refused.dedup();
        return Outcome::Refused(refused.join(", "));
    }
    // An advisory kind the target lacks compiles with a warning and is left
    // out: the scenario (about that kind) cannot hold, and the target says
    // so at compile time, so it counts as refused there (`--strict` makes
    // it an error).
    // Likewise what a target's own checks leave out with a warning (the
    // active health checks a Worker cannot run).
    let mut left_out: Vec<String> = gaps
        .iter()
        .filter(|g| g.support == Support::Unsupported)
        .map(|g| format!("`{}` left out", g.policy.kind))
        .chain(
            target
                .spec_diagnostics(ir)
                .iter()
                .filter(|d| d.severity == gatefold_compiler::diag::Severity::Warning)
                .map(|d| format!("`{}` left out", d.code)),
        )
        .collect();
    left_out.dedup();
    if !left_out.is_empty() {
        return Outcome::Refused(left_out.join(", "));
    }
    // A free port is found by binding and releasing it, so another process
    // can take it before the runtime binds it; then the start fails with
    // "Address already in use" (the OS's words in nginx's and Envoy's
    // logs) and the scenario starts again on fresh ports.
    let mut ports = (listen, listen_tls);
    let mut attempt = 0;
    let launched = loop {
        attempt += 1;
        let options = Options {
            listen: Some(ports.0),
            listen_tls: ports.1,
            ..options.clone()
        };
        let output = target.emit(ir, &options);
        let mut launch = Launch::new(kind, dir.join("work"), ports.0);
        launch.listen_tls = ports.1;
        launch.env = scenario.env.clone();
        if scenario.tls {
            // The private keys as variables too, for specs that read a key
            // with `{ env: GATEFOLD_TEST_TLS_KEY_A }` (or `_B`).
            for (name, _, key) in &env.certs.pairs {
                launch.env.insert(
                    format!("GATEFOLD_TEST_TLS_KEY_{}", name.to_ascii_uppercase()),
                    key.clone(),
                );
            }
        }
        launch.secret_files = secret_files(kind, ir);
        launch.workers = Some(1);
        match Launched::start(launch, &output) {
            Ok(l) => break l,
            Err(e) if attempt < 3 && e.to_string().contains("Address already in use") => {
                ports = match (
                    addr("listen"),
                    scenario.tls.then(|| addr("tls")).transpose(),
                ) {
                    (Ok(l), Ok(t)) => (l, t),
                    (Err(e), _) | (_, Err(e)) => return Outcome::Fail(vec![e]),
                };
            }
            Err(e) => return Outcome::Fail(vec![format!("the {kind} runtime did not start: {e}")]),
        }
    };
    let mut failures = Vec::new();
    for (i, request) in scenario.requests.iter().enumerate() {
        let expect = deviation
            .and_then(|d| d.expect.get(&i))
            .unwrap_or(&request.expect);
        if let Err(why) = replay(&launched, request, expect, env) {
            failures.push(format!(
                "request {i} ({} {}{}): {why}",
                request.method,
                request.path,
                request
                    .note
                    .as_deref()
                    .map(|n| format!(", {n}"))
                    .unwrap_or_default()
            ));
        }
    }
    let logs = launched.logs();
    if let Err(e) = launched.stop() {
        failures.push(format!("stopping: {e}"));
    }
    if !failures.is_empty() {
        failures.push(format!("logs: {}", logs.join(", ")));
        return Outcome::Fail(failures);
    }
    match deviation {
        Some(d) => Outcome::Deviation(deviation_label(d)),
        None => Outcome::Pass,
    }
}

fn write_spec(
    dir: &std::path::Path,
    scenario: &Scenario,
    certs: &crate::tls::Certs,
) -> Result<(), String> {
    let write = |rel: &str, text: &str| {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
        }
        std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))
    };
    write("gatefold.yaml", &scenario.spec)?;
    if scenario.tls {
        certs.write(dir)?;
    }
    for (rel, text) in &scenario.files {
        write(rel, text)?;
    }
    Ok(())
}

/// Sends `request` (again, until it holds or `until-secs` passes) and
/// checks the answer and what the upstreams received.
fn replay(
    launched: &Launched,
    request: &Request,
    expect: &Expect,
    env: &Env,
) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(request.until_secs.unwrap_or(0));
    loop {
        env.take_log();
        let result = send(launched, request, &env.certs).and_then(|response| {
            // A retried or slow upstream exchange may still be logging:
            // the response is complete, so the request that made it was
            // recorded before it was answered.
            let got = env.take_log();
            compare(expect, &response, &got)
        });
        match result {
            Ok(()) => return Ok(()),
            Err(e) if Instant::now() >= deadline => return Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

fn send(
    launched: &Launched,
    request: &Request,
    certs: &crate::tls::Certs,
) -> Result<Response, String> {
    match &request.sni {
        None => client::send(launched.listen(), request),
        Some(sni) => {
            let addr = launched
                .listen_tls()
                .ok_or("a TLS request, but the scenario has no `tls: true`")?;
            crate::tls::send(addr, sni, request, certs)
        }
    }
}

/// Every difference between `expect` and what happened.
pub fn compare(expect: &Expect, response: &Response, got: &[Got]) -> Result<(), String> {
    let mut bad = Vec::new();
    if response.status != expect.status {
        bad.push(format!(
            "status {} (want {})",
            response.status, expect.status
        ));
    }
    for (name, want) in &expect.headers {
        match response.header(name) {
            Some(v) if same_field(&v, want) => {}
            Some(v) => bad.push(format!("header {name}: {v:?} (want {want:?})")),
            None => bad.push(format!("no header {name} (want {want:?})")),
        }
    }
    for name in &expect.present {
        if response.header(name).is_none() {
            bad.push(format!("no header {name}"));
        }
    }
    for name in &expect.absent {
        if let Some(v) = response.header(name) {
            bad.push(format!("header {name}: {v:?} (want none)"));
        }
    }
    let body = String::from_utf8_lossy(&response.body);
    if let Some(want) = &expect.body {
        if &body != want {
            bad.push(format!("body {:?} (want {want:?})", clip(&body)));
        }
    }
    if let Some(want) = &expect.body_contains {
        if !body.contains(want.as_str()) {
            bad.push(format!(
                "body {:?} (want it to contain {want:?})",
                clip(&body)
            ));
        }
    }
    if let Some(n) = expect.body_size {
        if response.body.len() != n {
            bad.push(format!("body of {} bytes (want {n})", response.body.len()));
        }
    }
    match &expect.upstream {
        None => {}
        Some(UpstreamExpect::Word(_)) => {
            if let Some(g) = got.first() {
                bad.push(format!(
                    "the upstream received {} {} (want nothing)",
                    g.method, g.target
                ));
            }
        }
        Some(UpstreamExpect::Got(want)) => match got.last() {
            None => bad.push("the upstream received nothing".into()),
            Some(g) => {
                let mut check = |what: &str, have: &str, want: &Option<String>| {
                    if let Some(w) = want {
                        if have != w {
                            bad.push(format!("upstream {what} {have:?} (want {w:?})"));
                        }
                    }
                };
                check("echo", &g.echo, &want.echo);
                check("method", &g.method, &want.method);
                check("path", g.path(), &want.path);
                check("query", g.query(), &want.query);
                for (name, w) in &want.headers {
                    match g.header(name) {
                        Some(v) if same_field(&v, w) => {}
                        Some(v) => bad.push(format!("upstream header {name}: {v:?} (want {w:?})")),
                        None => bad.push(format!("upstream: no header {name} (want {w:?})")),
                    }
                }
                for name in &want.present {
                    if g.header(name).is_none() {
                        bad.push(format!("upstream: no header {name}"));
                    }
                }
                for name in &want.absent {
                    if let Some(v) = g.header(name) {
                        bad.push(format!("upstream header {name}: {v:?} (want none)"));
                    }
                }
                if let Some(n) = want.body_size {
                    if g.body_len != n {
                        bad.push(format!("upstream body of {} bytes (want {n})", g.body_len));
                    }
                }
                if let Some(n) = want.count {
                    if got.len() != n {
                        bad.push(format!("{} upstream requests (want {n})", got.len()));
                    }
                }
            }
        },
    }
    if bad.is_empty() {
        Ok(())
    } else {
        Err(bad.join("; "))
    }
}

/// Whether a header's values (repeated lines joined with `, `) are `want`:
/// exactly, or as the same comma-separated list, since a runtime may join
/// repeated lines itself with `,` (RFC 9110 5.3 makes the two the same).
fn same_field(have: &str, want: &str) -> bool {
    have == want
        || have
            .split(',')
            .map(str::trim)
            .eq(want.split(',').map(str::trim))
}

fn clip(s: &str) -> String {
    if s.len() > 200 {
        let mut end = 200;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}...", &s[..end])
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::same_field;

    #[test]
    fn repeated_header_lines_compare_as_lists() {
        assert!(same_field("accept,origin", "accept, origin"));
        assert!(same_field("a, b", "a, b"));
        assert!(!same_field("accept origin", "accept, origin"));
        assert!(!same_field("a,b,c", "a, b"));
    }
}
