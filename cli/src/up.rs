//! `gatefold up SPEC --target nginx|envoy|cloudflare|reference [--listen ADDR]
//! [--listen-tls ADDR] [--work DIR] [--watch]`: compiles SPEC for the
//! target into a work directory and runs the target's real runtime in the
//! foreground on loopback, through `gatefold-runtime`'s launcher (the one
//! the conformance suite uses), until Ctrl-C or SIGTERM; then it stops the
//! runtime and every process it started.
//!
//! Defaults: requests on `127.0.0.1:<gateway.listen>` (TLS on
//! `127.0.0.1:<gateway.tls.listen>` when the spec has `gateway.tls`); port
//! 0 picks a free port. The work directory defaults to
//! `$TMPDIR/gatefold-up-TARGET-PID` and is kept (logs) after the stop.
//! With `--watch`, a settled change of the spec (the rule `serve --watch`
//! uses) is compiled and reloaded: nginx `-t` then SIGHUP, workerd by restart, Envoy by atomic
//! rename, the reference gateway in process; a spec that does not compile
//! or a config the runtime refuses keeps the last good one serving.
//! Secrets are read from the environment by the runtime. An nginx config
//! that resolves upstream host names per request gets the machine's DNS
//! servers (from `/etc/resolv.conf`) in its prefix's `resolver.conf`,
//! written by the launcher before each start and reload.

use crate::targets;
use gatefold_compiler::diag::Diagnostics;
use gatefold_compiler::ir::{TargetKind, ValidIr};
use gatefold_compiler::target::{
    check, check_features, feature_diagnostics, gap_diagnostics, Options, Output, Target,
};
use gatefold_compiler::{compile_path, Compiled};
use gatefold_runtime::launch::{free_addr, secret_files, Launch, Launched, RUNNABLE};
use gatefold_target_reference::gateway::watch::{fingerprint, Settle, Source};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::Duration;

/// What `gatefold up` was told on its command line.
pub struct Settings {
    pub target: String,
    pub listen: Option<SocketAddr>,
    pub listen_tls: Option<SocketAddr>,
    pub work: Option<PathBuf>,
    pub watch: bool,
}

/// How often `--watch` looks at the spec (as `serve --watch`).
const WATCH_INTERVAL: Duration = Duration::from_millis(500);

pub fn run(spec: &Path, settings: Settings) -> ExitCode {
    match up(spec, settings) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("{message}");
            ExitCode::from(crate::USER_ERROR)
        }
    }
}

/// The one runnable target `name` names, or why not.
fn runnable(name: &str) -> Result<Box<dyn Target>, String> {
    if name == "all" {
        return Err(format!(
            "error: `gatefold up` runs one target; choose one of: {}",
            runnable_names()
        ));
    }
    let chosen = targets::select(name).map_err(|e| {
        format!("error[unknown-target]: {e}\n  = help: see `gatefold capabilities` for the targets")
    })?;
    let mut chosen = chosen.into_iter();
    let (Some(target), None) = (chosen.next(), chosen.next()) else {
        return Err(format!(
            "error: `gatefold up` runs one target; choose one of: {}",
            runnable_names()
        ));
    };
    if !RUNNABLE.contains(&target.kind()) {
        return Err(format!(
            "error: target `{}` has no local runtime to run; `gatefold up` runs: {}",
            target.kind(),
            runnable_names()
        ));
    }
    Ok(target)
}

fn runnable_names() -> String {
    RUNNABLE.map(TargetKind::as_str).join(", ")
}

/// Compiles `spec` for `target`: the IR and the output, or the rendered
/// diagnostics that stop it. Warnings are printed either way.
fn build(
    compiled: &Compiled,
    target: &dyn Target,
    options: &Options,
) -> Result<(ValidIr, Output), String> {
    let Some(ir) = &compiled.ir else {
        return Err(compiled.render());
    };
    let gaps = check(target, ir, options);
    let mut all: Diagnostics = compiled.diagnostics.clone();
    all.extend(gap_diagnostics(&gaps, ir));
    all.extend(feature_diagnostics(&check_features(target, ir), ir));
    all.extend(target.spec_diagnostics(ir));
    let text = all.render(&compiled.sources);
    if all.has_errors() {
        return Err(text);
    }
    if !text.is_empty() {
        eprint!("{text}");
    }
    Ok((ir.clone(), target.emit(ir, options)))
}

fn up(spec: &Path, settings: Settings) -> Result<(), String> {
    let target = runnable(&settings.target)?;
    let kind = target.kind();
    let source = Source {
        path: spec.to_path_buf(),
        interval: WATCH_INTERVAL,
    };
    let seen = fingerprint(&source);
    let compiled = compile_path(spec);
    let Some(ir) = &compiled.ir else {
        return Err(format!(
            "{}error: `{}` cannot be run",
            compiled.render(),
            spec.display()
        ));
    };
    let loopback = |port: u16| SocketAddr::from(([127, 0, 0, 1], port));
    // nginx and Envoy are compiled with their address: a port 0 must be
    // chosen here. The reference gateway binds port 0 itself.
    let pick = |addr: SocketAddr| -> Result<SocketAddr, String> {
        if addr.port() == 0 && kind != TargetKind::Reference {
            let free = free_addr().map_err(|e| format!("error: {e}"))?;
            Ok(SocketAddr::new(addr.ip(), free.port()))
        } else {
            Ok(addr)
        }
    };
    let listen = pick(
        settings
            .listen
            .unwrap_or_else(|| loopback(ir.gateway.listen)),
    )?;
    let listen_tls = match settings
        .listen_tls
        .or_else(|| ir.gateway.tls.as_ref().map(|t| loopback(t.listen)))
    {
        Some(a) => Some(pick(a)?),
        None => None,
    };
    let options = Options {
        strict: false,
        listen: Some(listen),
        listen_tls,
    };
    let (ir, output) = build(&compiled, target.as_ref(), &options)
        .map_err(|d| format!("{d}error: `{}` cannot be run on {kind}", spec.display()))?;
    let work = settings.work.unwrap_or_else(|| {
        std::env::temp_dir().join(format!("gatefold-up-{kind}-{}", std::process::id()))
    });
    let mut launch = Launch::new(kind, &work, listen);
    launch.listen_tls = listen_tls;
    launch.secret_files = secret_files(kind, &ir);
    launch.access_log = kind == TargetKind::Reference;
    let stop = stop_signals()?;
    let mut running = Launched::start(launch, &output)
        .map_err(|e| format!("error: {kind} did not start: {e}"))?;
    eprintln!(
        "gatefold up: {kind} serving {} routes (config {}) on http://{}",
        ir.routes.len(),
        ir.hash.short(),
        running.listen()
    );
    if let Some(a) = running.listen_tls() {
        eprintln!("gatefold up: TLS on https://{a}");
    }
    eprintln!("gatefold up: work dir {}", work.display());
    eprintln!("gatefold up: logs: {}", running.logs().join(", "));
    if settings.watch {
        eprintln!(
            "gatefold up: watching {} (a change reloads; a broken one keeps the last good config)",
            spec.display()
        );
    }
    eprintln!("gatefold up: Ctrl-C or SIGTERM stops");
    let mut settle = Settle::new(&source);
    settle.done(seen);
    while let Err(mpsc::RecvTimeoutError::Timeout) = stop.recv_timeout(WATCH_INTERVAL) {
        if !settings.watch {
            continue;
        }
        let Some(now) = settle.look(&source) else {
            continue;
        };
        let compiled = compile_path(spec);
        if fingerprint(&source) != now {
            // Changed again while compiling: wait for it to settle.
            continue;
        }
        settle.done(now);
        match build(&compiled, target.as_ref(), &options) {
            Err(diagnostics) => eprintln!(
                "gatefold up: {} changed but does not compile; still serving the last good config:\n{diagnostics}",
                spec.display()
            ),
            Ok((ir, output)) => {
                running.set_secret_files(secret_files(kind, &ir));
                match running.reload(&output) {
                    Ok(()) => eprintln!("gatefold up: reloaded (config {})", ir.hash.short()),
                    Err(e) => eprintln!(
                        "gatefold up: {kind} refused the changed config; still serving the last good one:\n{e}"
                    ),
                }
            }
        }
    }
    eprintln!("gatefold up: stopping {kind}");
    running
        .stop()
        .map_err(|e| format!("error: stopping {kind}: {e}"))?;
    eprintln!("gatefold up: stopped");
    Ok(())
}

/// A channel that receives once on SIGTERM or Ctrl-C (a thread waits for
/// them; from then on they no longer kill the process, so the runtime is
/// always stopped first).
fn stop_signals() -> Result<mpsc::Receiver<()>, String> {
    let (tx, rx) = mpsc::channel();
    let (ready_tx, ready) = mpsc::channel();
    std::thread::Builder::new()
        .name("gatefold-up-signals".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = ready_tx.send(Err(e.to_string()));
                    return;
                }
            };
            rt.block_on(async move {
                use tokio::signal::unix::{signal, SignalKind};
                let term = signal(SignalKind::terminate());
                let int = signal(SignalKind::interrupt());
                let (mut term, mut int) = match (term, int) {
                    (Ok(t), Ok(i)) => (t, i),
                    (Err(e), _) | (_, Err(e)) => {
                        let _ = ready_tx.send(Err(e.to_string()));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(()));
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
                let _ = tx.send(());
            });
        })
        .map_err(|e| format!("error: cannot start the signal thread: {e}"))?;
    match ready.recv() {
        Ok(Ok(())) => Ok(rx),
        Ok(Err(e)) => Err(format!("error: cannot listen for signals: {e}")),
        Err(_) => Err("error: the signal thread ended".into()),
    }
}
