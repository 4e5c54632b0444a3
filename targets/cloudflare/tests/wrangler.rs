//! `wrangler deploy --dry-run` accepts the output, offline: wrangler reads
//! `wrangler.toml`, bundles `worker.js` with esbuild and lists the bindings
//! without calling Cloudflare. Any diagnostic it prints about the
//! configuration fails the test (a missing Durable Object migration, an
//! unknown field), except the one it prints for every `[secrets]` table
//! ("experimental"; the field is documented since March 2026).
//!
//! wrangler comes from `scripts/install-runtimes.sh` (npm, pinned, into
//! `.tools/bin/wrangler`, as the test command installs it), or
//! `GATEFOLD_WRANGLER`, or `PATH`. It runs with a scratch `HOME`, no
//! Cloudflare credentials, metrics, error reports and the update check off,
//! and npm's registry pointed at a closed loopback port, so that nothing
//! leaves the machine.

use gatefold_compiler::target::{Options, Target};
use gatefold_target_cloudflare::{Cloudflare, WORKER, WRANGLER};
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gatefold-wrangler-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The Cloudflare output of `spec` written into a fresh directory.
fn emit(name: &str, spec: &str) -> PathBuf {
    let c = gatefold_compiler::compile_str("spec.yaml", spec);
    let Some(ir) = c.ir.clone() else {
        panic!("the spec compiles:\n{}", c.render());
    };
    let out = Cloudflare.emit(&ir, &Options::default());
    let dir = scratch(name);
    for f in &out.files {
        std::fs::write(dir.join(f.path.as_str()), &f.bytes).unwrap();
    }
    dir
}

/// What `wrangler deploy --dry-run` said about the output in `dir`: its
/// whole output when it accepted it without a diagnostic about the
/// configuration, otherwise why not.
fn dry_run(dir: &Path) -> Result<String, String> {
    let home = dir.join("home");
    let outdir = dir.join("bundle");
    std::fs::create_dir_all(&home).unwrap();
    let out = Command::new(crate::tool("wrangler", "GATEFOLD_WRANGLER"))
        .args(["deploy", "--dry-run", "--outdir"])
        .arg(&outdir)
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", &home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("WRANGLER_LOG_PATH", home.join("logs"))
        .env("WRANGLER_SEND_METRICS", "false")
        .env("WRANGLER_SEND_ERROR_REPORTS", "false")
        // The banner asks the npm registry for a newer wrangler; so do
        // some warnings: hidden, and the registry a closed loopback port.
        .env("WRANGLER_HIDE_BANNER", "true")
        .env("npm_config_registry", "http://127.0.0.1:9/")
        .env("CI", "true")
        .env("NO_COLOR", "1")
        .env("FORCE_COLOR", "0")
        .output()
        .expect("wrangler runs (Node.js is a test dependency of this target)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if !out.status.success() {
        return Err(format!("wrangler exited {}:\n{text}", out.status));
    }
    if !text.contains("--dry-run: exiting now") {
        return Err(format!("wrangler did not finish its dry run:\n{text}"));
    }
    // wrangler lists each configuration diagnostic as "    - ...".
    let diagnostics: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("    - "))
        .filter(|l| !l.contains("\"secrets\" fields are experimental"))
        .collect();
    if !diagnostics.is_empty() {
        return Err(format!(
            "wrangler has diagnostics about the configuration:\n{}\n\nwhole output:\n{text}",
            diagnostics.join("\n")
        ));
    }
    if !outdir.join(WORKER).is_file() {
        return Err(format!(
            "no bundled {WORKER} in {}:\n{text}",
            outdir.display()
        ));
    }
    Ok(text)
}

/// examples/petstore as written: key-auth with four secret bindings, a
/// rate limit (the Durable Object), acl, cors, header transforms and a
/// size limit. Its upstream health checks are left out, with a warning
/// (a Worker runs only while it serves: use Cloudflare Load Balancing).
fn petstore() -> String {
    let text = std::fs::read_to_string(repo().join("examples/petstore/gatefold.yaml")).unwrap();
    let c = gatefold_compiler::compile_str("spec.yaml", &text);
    let diags = Cloudflare.spec_diagnostics(c.ir.as_ref().expect("petstore compiles"));
    assert!(!diags.has_errors(), "health checks are advisory");
    let warned: Vec<_> = diags.iter().map(|d| d.message.clone()).collect();
    assert!(
        warned.len() == 1
            && warned[0].contains("leaves out the active health checks of upstream `pets`"),
        "{warned:?}"
    );
    text
}

#[test]
fn wrangler_accepts_the_petstore_with_its_durable_object_and_secrets() {
    let dir = emit("petstore", &petstore());
    let toml = std::fs::read_to_string(dir.join(WRANGLER)).unwrap();
    assert!(toml.contains("[[migrations]]"), "{toml}");
    assert!(toml.contains("\"ACME_API_KEY\""), "{toml}");
    let said = dry_run(&dir).unwrap_or_else(|e| panic!("{e}"));
    // The rate limits' Durable Object is bound as the Worker reads it.
    assert!(
        said.contains("env.GATEFOLD_RATE_LIMIT (GatefoldRateLimit)"),
        "{said}"
    );
}

/// A spec with neither secrets nor rate limits: the minimal wrangler.toml
/// (no `[secrets]`, no Durable Object) is accepted too, and the gateway
/// name becomes a valid Worker name.
#[test]
fn wrangler_accepts_a_spec_without_bindings() {
    let dir = emit(
        "plain",
        r#"
gatefold: 1
gateway: { name: "Edge_Gateway-1" }
upstreams:
  web: { targets: [{ url: "http://127.0.0.1:9001" }] }
apis:
  site:
    base-path: /
    upstream: web
    routes:
      home: { path: /, methods: [GET] }
      ping: { path: /ping, policies: [{ mock: { status: 200, body: pong } }] }
"#,
    );
    let said = dry_run(&dir).unwrap_or_else(|e| panic!("{e}"));
    assert!(!said.contains("Durable Object"), "{said}");
}

/// The check itself can fail: without the Durable Object's migration
/// (which the first deploy of a class needs) wrangler's diagnostic fails it.
#[test]
fn a_durable_object_without_its_migration_is_refused() {
    let dir = emit("no-migration", &petstore());
    let toml = std::fs::read_to_string(dir.join(WRANGLER)).unwrap();
    let start = toml.find("[[migrations]]").expect("a migration");
    let end = start + toml[start..].find("\n\n").expect("a blank line after");
    std::fs::write(
        dir.join(WRANGLER),
        format!("{}{}", &toml[..start], &toml[end..]),
    )
    .unwrap();
    let err = dry_run(&dir).expect_err("refused");
    assert!(err.contains("no `migrations`"), "{err}");
}

/// `cache` and `mirror`: the Worker uses `caches.default` and
/// `ctx.waitUntil` only (no binding to declare); the workerd cache service
/// written beside it is for local runs and stays out of the bundle.
#[test]
fn wrangler_accepts_a_spec_with_cache_and_mirror() {
    let dir = emit(
        "cache-mirror",
        r#"
gatefold: 1
upstreams:
  web: { targets: [{ url: "http://127.0.0.1:9001" }] }
  shadow: { targets: [{ url: "http://127.0.0.1:9002" }] }
apis:
  site:
    upstream: web
    policies:
      - cache: { ttl: 30s, vary: [accept-language] }
      - mirror: { upstream: shadow, percent: 10 }
    routes:
      all: { path: /* }
"#,
    );
    assert!(dir
        .join(gatefold_target_cloudflare::CACHE_SERVICE)
        .is_file());
    dry_run(&dir).unwrap_or_else(|e| panic!("{e}"));
    let bundle = std::fs::read_to_string(dir.join("bundle").join(WORKER)).unwrap();
    assert!(bundle.contains("caches.default"), "the Cache API is used");
    assert!(
        !bundle.contains("cf-cache-namespace"),
        "no cache service in the bundle"
    );
}
