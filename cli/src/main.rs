//! `gatefold`: validate, compile, explain, diff, list capabilities, serve
//! the reference gateway, run any runnable target (`up`), and keep a fleet
//! of gateways in step (`plan`, `apply`, `drift`, `rollback`).
//!
//! Exit codes: 0 ok, 1 user error (bad spec, failed check), 2 drift found,
//! greater than 2 internal error.

// Unsafe code only in `alloc` (one FFI call to tune the allocator).
#![deny(unsafe_code)]

mod alloc;
mod diff;
mod explain;
mod explain_tls;
mod fleet;
mod serve;
mod stdout;
mod targets;
mod up;

use clap::{Parser, Subcommand, ValueEnum};
use gatefold_compiler::diag::{Diagnostic, Diagnostics};
use gatefold_compiler::source::Sources;
use gatefold_compiler::target::{Options, MANIFEST_FILE};
use gatefold_compiler::{compile_path, Compiled};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "gatefold",
    version,
    about = "One policy language, every API gateway."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Copy, Clone, Default, PartialEq, Eq, ValueEnum)]
enum Format {
    #[default]
    Text,
    Json,
}

#[derive(Copy, Clone, Default, PartialEq, Eq, ValueEnum)]
enum MatrixFormat {
    #[default]
    Md,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Check a spec (file or folder); exit 1 with diagnostics when it is wrong.
    Validate {
        spec: PathBuf,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Compile a spec into a target's native configuration.
    Compile {
        spec: PathBuf,
        /// kong | nginx | envoy | cloudflare | reference | all
        #[arg(long)]
        target: String,
        /// Output folder (created if missing).
        #[arg(long)]
        out: PathBuf,
        /// Also fail on what a target only approximates or leaves out (security
        /// kinds a target cannot carry out exactly always fail).
        #[arg(long)]
        strict: bool,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Show each route's matcher and effective policy chain, with origins.
    Explain {
        spec: PathBuf,
        /// Only this route: API.ROUTE
        #[arg(long)]
        route: Option<String>,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// What a change to a spec does to the gateway: routes, policy
    /// instances, upstreams and consumers added, removed or changed, and
    /// precedence changes. Exit 0 when equal, 2 when different, 1 on a bad spec.
    Diff {
        /// The old spec (file or folder) or compiled `gatefold.ir.json`.
        old: PathBuf,
        /// The new spec (file or folder) or compiled `gatefold.ir.json`.
        new: PathBuf,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// The capability matrix: how each target carries out each policy kind.
    Capabilities {
        #[arg(long, value_enum, default_value_t)]
        format: MatrixFormat,
    },
    /// Compile a spec for a target and run the target's real runtime
    /// (nginx, Envoy, workerd for cloudflare, or the reference gateway) in the foreground on
    /// loopback, until Ctrl-C or SIGTERM.
    Up {
        spec: PathBuf,
        /// nginx | envoy | cloudflare | reference
        #[arg(long)]
        target: String,
        /// Where to serve requests (port 0: a free one) [default: 127.0.0.1:<gateway.listen>]
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
        /// Where to serve TLS, when the spec has `gateway.tls`
        /// [default: 127.0.0.1:<gateway.tls.listen>]
        #[arg(long)]
        listen_tls: Option<std::net::SocketAddr>,
        /// The work directory the compiled files, the runtime's state and
        /// its logs go to [default: $TMPDIR/gatefold-up-TARGET-PID]
        #[arg(long)]
        work: Option<PathBuf>,
        /// Reload when the spec changes (a broken edit, or a config the
        /// runtime refuses, keeps the last good config).
        #[arg(long)]
        watch: bool,
    },
    /// Per gateway of a fleet: in sync, or the semantic diff applying
    /// would make. Exit 0 in sync, 2 changes pending, 1 on an error.
    Plan {
        #[command(flatten)]
        args: FleetArgs,
        /// Also save the plan to this file, for `gatefold apply --plan`.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Apply the plan wave by wave (stage, check, switch, verify per
    /// gateway); on a failure roll back or halt per `rollout.on-failure`.
    Apply {
        #[command(flatten)]
        args: FleetArgs,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
        /// Apply this saved plan (`gatefold plan --out`), without asking:
        /// refused, touching nothing, when any gateway no longer runs what
        /// the plan saw or the fleet now wants something else there.
        #[arg(long)]
        plan: Option<PathBuf>,
    },
    /// Whether each gateway runs what gatefold last applied there.
    /// Exit 0 no drift, 2 drift, 1 when a gateway cannot be asked.
    Drift {
        #[command(flatten)]
        args: FleetArgs,
    },
    /// Back to the version applied before the last apply.
    Rollback {
        #[command(flatten)]
        args: FleetArgs,
        /// Only this gateway.
        #[arg(long)]
        gateway: Option<String>,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
    /// Run the reference gateway on a spec (or a compiled gatefold.ir.json).
    Serve {
        spec: PathBuf,
        /// Where to serve requests [default: 127.0.0.1:<gateway.listen>]
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
        /// Where to serve requests over TLS, when the spec has `gateway.tls`
        /// [default: 127.0.0.1:<gateway.tls.listen>]
        #[arg(long)]
        listen_tls: Option<std::net::SocketAddr>,
        /// Where to serve the admin API [default: 127.0.0.1:9901, or a free
        /// loopback port when 9901 is taken]
        #[arg(long)]
        admin: Option<std::net::SocketAddr>,
        /// Reload when the spec changes (a broken edit keeps the last good config).
        #[arg(long)]
        watch: bool,
        /// Do not write the JSON access log to stdout.
        #[arg(long)]
        no_access_log: bool,
        /// Worker threads serving requests [default: one per core]
        #[arg(long)]
        workers: Option<std::num::NonZeroUsize>,
        /// Client connections each worker serves at once; more wait in the
        /// listen queue until one closes
        #[arg(long, default_value_t = gatefold_target_reference::gateway::DEFAULT_MAX_CONNECTIONS_PER_WORKER)]
        max_connections: usize,
    },
}

/// Arguments every fleet command takes.
#[derive(clap::Args)]
struct FleetArgs {
    /// The fleet file (see docs/fleet.md).
    fleet: PathBuf,
    #[arg(long, value_enum, default_value_t)]
    format: Format,
    /// Seconds one request to a gateway may take.
    #[arg(long, default_value_t = 30)]
    timeout: u64,
}

impl FleetArgs {
    fn common(&self) -> fleet::Common {
        fleet::Common {
            format: self.format,
            timeout: self.timeout,
        }
    }
}

/// Exit code for a user error (bad spec, failed check).
const USER_ERROR: u8 = 1;
/// Exit code for an internal error (cannot write output, ...).
const INTERNAL_ERROR: u8 = 3;

fn main() -> ExitCode {
    alloc::without_huge_pages();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // `--help` and `--version` print and succeed. A command line
            // that does not parse is a user error (1), not clap's 2, which
            // here means "differences found" (`diff`, `plan`, `drift`).
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { USER_ERROR } else { 0 });
        }
    };
    if !matches!(cli.command, Command::Serve { .. } | Command::Up { .. }) {
        alloc::for_batch_run();
    }
    match cli.command {
        Command::Validate { spec, format } => validate(&spec, format),
        Command::Compile {
            spec,
            target,
            out,
            strict,
            format,
        } => compile(&spec, &target, &out, strict, format),
        Command::Explain {
            spec,
            route,
            format,
        } => explain::run(&spec, route.as_deref(), format),
        Command::Diff { old, new, format } => diff::run(&old, &new, format),
        Command::Plan { args, out } => fleet::plan(&args.fleet, out.as_deref(), &args.common()),
        Command::Apply { args, yes, plan } => {
            fleet::apply(&args.fleet, yes, plan.as_deref(), &args.common())
        }
        Command::Drift { args } => fleet::drift(&args.fleet, &args.common()),
        Command::Rollback { args, gateway, yes } => {
            fleet::rollback(&args.fleet, gateway.as_deref(), yes, &args.common())
        }
        Command::Capabilities { format } => {
            match format {
                MatrixFormat::Md => crate::stdout::out!("{}", targets::matrix_markdown()),
                MatrixFormat::Json => crate::stdout::outln!("{}", targets::matrix_json()),
            }
            ExitCode::SUCCESS
        }
        Command::Up {
            spec,
            target,
            listen,
            listen_tls,
            work,
            watch,
        } => up::run(
            &spec,
            up::Settings {
                target,
                listen,
                listen_tls,
                work,
                watch,
            },
        ),
        Command::Serve {
            spec,
            listen,
            listen_tls,
            admin,
            watch,
            no_access_log,
            workers,
            max_connections,
        } => serve::run(
            &spec,
            serve::Settings {
                listen,
                listen_tls,
                admin,
                watch,
                access_log: !no_access_log,
                workers: workers.map(std::num::NonZeroUsize::get),
                max_connections,
            },
        ),
    }
}

/// Prints diagnostics to stderr (text) or a JSON report to stdout.
fn report(compiled: &Compiled, extra: &Diagnostics, format: Format, ok_fields: serde_json::Value) {
    let mut all = compiled.diagnostics.clone();
    all.extend(extra.clone());
    match format {
        Format::Text => {
            let text = all.render(&compiled.sources);
            if !text.is_empty() {
                eprint!("{text}");
            }
        }
        Format::Json => {
            let mut out = serde_json::json!({
                "ok": !all.has_errors(),
                "diagnostics": all.to_json(&compiled.sources),
            });
            if let (Some(obj), Some(extra)) = (out.as_object_mut(), ok_fields.as_object()) {
                obj.extend(extra.clone());
            }
            crate::stdout::outln!("{}", serde_json::to_string_pretty(&out).expect("json"));
        }
    }
}

/// Reports an error that has no place in a spec (an unknown target or
/// route, an unwritable file): `error: ...` on stderr, or a JSON report on
/// stdout, shaped like the one for a bad spec.
fn report_global(format: Format, code: &'static str, message: String, help: &str) {
    match format {
        Format::Text => eprintln!("error[{code}]: {message}\n  = help: {help}"),
        Format::Json => {
            let mut all = Diagnostics::new();
            all.push(Diagnostic::global(code, message).with_help(help));
            let out = serde_json::json!({
                "ok": false,
                "diagnostics": all.to_json(&Sources::new()),
            });
            crate::stdout::outln!("{}", serde_json::to_string_pretty(&out).expect("json"));
        }
    }
}

fn validate(spec: &Path, format: Format) -> ExitCode {
    let compiled = compile_path(spec);
    let fields = match &compiled.ir {
        Some(ir) => serde_json::json!({ "hash": ir.hash, "routes": ir.routes.len() }),
        None => serde_json::json!({}),
    };
    report(&compiled, &Diagnostics::new(), format, fields);
    match &compiled.ir {
        Some(ir) => {
            if format == Format::Text {
                eprintln!("ok: {} route(s), hash {}", ir.routes.len(), ir.hash.short());
            }
            ExitCode::SUCCESS
        }
        None => {
            if format == Format::Text {
                eprintln!("{} error(s)", compiled.diagnostics.error_count());
            }
            ExitCode::from(USER_ERROR)
        }
    }
}

fn compile(spec: &Path, target: &str, out: &Path, strict: bool, format: Format) -> ExitCode {
    let chosen = match targets::select(target) {
        Ok(t) => t,
        Err(msg) => {
            report_global(
                format,
                "unknown-target",
                msg,
                "see `gatefold capabilities` for the targets",
            );
            return ExitCode::from(USER_ERROR);
        }
    };
    let compiled = compile_path(spec);
    let Some(ir) = &compiled.ir else {
        report(
            &compiled,
            &Diagnostics::new(),
            format,
            serde_json::json!({}),
        );
        return ExitCode::from(USER_ERROR);
    };
    let options = Options {
        strict,
        ..Options::default()
    };
    let nested = chosen.len() > 1;
    let mut extra = Diagnostics::new();
    let mut written = Vec::new();
    let mut outputs = Vec::new();
    // Every target is checked before any emits: a gap that is an error in
    // one target stops the whole compile (fail closed).
    for t in &chosen {
        let gaps = gatefold_compiler::target::check(t.as_ref(), ir, &options);
        extra.extend(gatefold_compiler::target::gap_diagnostics(&gaps, ir));
        let missing = gatefold_compiler::target::check_features(t.as_ref(), ir);
        extra.extend(gatefold_compiler::target::feature_diagnostics(&missing, ir));
        extra.extend(t.spec_diagnostics(ir));
    }
    if extra.has_errors() {
        report(&compiled, &extra, format, serde_json::json!({}));
        return ExitCode::from(USER_ERROR);
    }
    for t in &chosen {
        let output = t.emit(ir, &options);
        let dir = if nested {
            out.join(t.kind().as_str())
        } else {
            out.to_path_buf()
        };
        let manifest = serde_json::to_string_pretty(&output.manifest).expect("json") + "\n";
        let mut files: Vec<(String, Vec<u8>)> = output
            .files
            .into_iter()
            .map(|f| (f.path.to_string(), f.bytes))
            .collect();
        files.push((MANIFEST_FILE.to_string(), manifest.into_bytes()));
        outputs.push((dir, files));
    }
    for (dir, files) in outputs {
        for (rel, bytes) in files {
            let path = dir.join(rel);
            let result = path
                .parent()
                .map_or(Ok(()), std::fs::create_dir_all)
                .and_then(|_| std::fs::write(&path, &bytes));
            if let Err(e) = result {
                report_global(
                    format,
                    "unwritable-output",
                    format!("cannot write `{}`: {e}", path.display()),
                    "check that the output folder can be written",
                );
                return ExitCode::from(INTERNAL_ERROR);
            }
            written.push(path.display().to_string());
        }
    }
    report(
        &compiled,
        &extra,
        format,
        serde_json::json!({ "hash": ir.hash, "files": written }),
    );
    if format == Format::Text {
        for w in &written {
            eprintln!("wrote {w}");
        }
    }
    ExitCode::SUCCESS
}
