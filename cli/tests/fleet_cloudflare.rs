//! Fleet sync to a Cloudflare Worker, against `FakeCloudflareApi` (a
//! contract fake of the Workers API), driven by the CLI.

use crate::support;

use std::path::{Path, PathBuf};
use support::cloudflare::FakeCloudflareApi;
use support::gateways::example;
use support::{both, gatefold, json, scratch, text};

const TOKEN: &str = "cf-api-token-93b7aa";
const ACCOUNT: &str = "acc0123456789";

fn fleet_file(dir: &Path, spec: &Path, gateways: &[(&str, String, &str)], rest: &str) -> PathBuf {
    let lines = gateways.iter().map(|(name, api, script)| {
        format!("{name}: {{ provider: cloudflare, api: \"{api}\", account: {{ env: CF_ACCOUNT_ID }}, token: {{ env: CF_API_TOKEN }}, script: {script} }}")
    });
    support::write_fleet(dir, spec, lines, rest)
}

fn run(args: &[&str]) -> std::process::Output {
    gatefold(
        args,
        &[("CF_API_TOKEN", TOKEN), ("CF_ACCOUNT_ID", ACCOUNT)],
        &[TOKEN],
    )
}

/// Plan, apply (a 429 and a 500 retried), in sync, a change with its
/// semantic diff, drift after another tool's upload, rollback.
#[test]
fn cloudflare_plan_apply_drift_and_rollback() {
    let dir = scratch("cf-cycle");
    let spec = dir.join("spec.yaml");
    std::fs::write(&spec, example()).unwrap();
    let cf = FakeCloudflareApi::start(ACCOUNT, TOKEN);
    let fleet = fleet_file(&dir, &spec, &[("edge", cf.url(), "pets-edge")], "");
    let fleet = fleet.to_str().unwrap();

    let out = run(&["plan", fleet, "--format", "json"]);
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    assert_eq!(json(&out)["gateways"][0]["running-hash"], "cloudflare:none");

    // Cloudflare answers 429, then 500: both retried with backoff.
    cf.fail_uploads(&[429, 500]);
    let out = run(&["apply", fleet, "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    assert_eq!(cf.uploads(), 3);
    let uploaded = text(&cf.script("pets-edge").unwrap());
    // The modules as downloaded, then the settings the metadata set.
    assert!(uploaded.contains("\"compatibility_date\""), "{uploaded}");
    assert!(uploaded.contains("gatefold-manifest.json"), "{uploaded}");

    let out = run(&["plan", fleet]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    let out = run(&["drift", fleet]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));

    std::fs::write(&spec, example().replace("[rex, tom]", "[rex, tom, kit]")).unwrap();
    let out = run(&["plan", fleet]);
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    let plan = text(&out.stdout);
    assert!(plan.contains("pets.list") && plan.contains("kit"), "{plan}");
    let out = run(&["apply", fleet, "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    let out = run(&["plan", fleet]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));

    // Another tool uploads a changed worker.js: drift; rollback refuses.
    let applied = cf.script("pets-edge").unwrap();
    cf.hand_edit("pets-edge", "kit", "kat");
    let out = run(&["drift", fleet, "--format", "json"]);
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    assert_eq!(json(&out)["gateways"][0]["state"], "drift");
    let out = run(&["rollback", fleet, "--yes"]);
    assert_ne!(out.status.code(), Some(0), "{}", both(&out));

    cf.hand_edit("pets-edge", "kat", "kit");
    assert_eq!(cf.script("pets-edge").unwrap(), applied);
    let out = run(&["rollback", fleet, "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    let out = run(&["plan", fleet]);
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    assert!(text(&out.stdout).contains("kit"), "{}", both(&out));
}

/// A 500 on every attempt for one Worker of the wave: the other one is
/// put back byte for byte.
#[test]
fn a_500_mid_wave_rolls_back_the_other_worker_byte_for_byte() {
    let dir = scratch("cf-500");
    let spec = dir.join("spec.yaml");
    std::fs::write(&spec, example()).unwrap();
    let (a, b) = (
        FakeCloudflareApi::start(ACCOUNT, TOKEN),
        FakeCloudflareApi::start(ACCOUNT, TOKEN),
    );
    let fleet = fleet_file(
        &dir,
        &spec,
        &[("edge-a", a.url(), "edge"), ("edge-b", b.url(), "edge")],
        "",
    );
    let fleet = fleet.to_str().unwrap();
    let out = run(&["apply", fleet, "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    let (a_before, b_before) = (a.script("edge").unwrap(), b.script("edge").unwrap());

    std::fs::write(&spec, example().replace("[rex, tom]", "[rex]")).unwrap();
    b.fail_uploads(&[500; 10]);
    let out = run(&["apply", fleet, "--yes"]);
    assert_ne!(out.status.code(), Some(0), "{}", both(&out));
    let summary = text(&out.stdout);
    assert!(summary.contains("edge-b (wave 1): FAILED"), "{summary}");
    assert!(
        summary.contains("edge-a (wave 1): rolled back"),
        "{summary}"
    );
    assert_eq!(
        a.script("edge").unwrap(),
        a_before,
        "edge-a not back byte for byte"
    );
    assert_eq!(b.script("edge").unwrap(), b_before);
}

const KEY: &str = "pets-key-5d1f0c77e2";

/// A spec with a secret binding and a rate limit (the Durable Object).
fn guarded(limit: bool) -> String {
    let rate = if limit {
        "      - rate-limit: { requests: 10, per: 1m, key: consumer }\n"
    } else {
        ""
    };
    format!(
        r#"gatefold: 1
gateway: {{ name: pets }}
upstreams:
  pets: {{ targets: [{{ url: "http://127.0.0.1:9001" }}] }}
consumers:
  acme: {{ credentials: {{ key: {{ env: PETS_KEY }} }} }}
apis:
  pets:
    base-path: /pets
    upstream: pets
    policies:
      - key-auth: {{ in: header, name: x-api-key }}
{rate}    routes:
      list: {{ path: /, methods: [GET] }}
"#
    )
}

/// Secrets are set from the environment through the secrets endpoint (and
/// never printed); the Durable Object class is created by a migration on
/// the first upload, not again on the next, and deleted when the rate
/// limits go; a missing secret refuses the apply before any upload.
#[test]
fn secrets_from_the_environment_and_durable_object_migrations() {
    let dir = scratch("cf-secrets");
    let spec = dir.join("spec.yaml");
    std::fs::write(&spec, guarded(true)).unwrap();
    let cf = FakeCloudflareApi::start(ACCOUNT, TOKEN);
    let fleet = fleet_file(&dir, &spec, &[("edge", cf.url(), "pets")], "");
    let fleet = fleet.to_str().unwrap();
    let with_key = |args: &[&str]| {
        gatefold(
            args,
            &[
                ("CF_API_TOKEN", TOKEN),
                ("CF_ACCOUNT_ID", ACCOUNT),
                ("PETS_KEY", KEY),
            ],
            &[TOKEN, KEY],
        )
    };

    // Without PETS_KEY in the environment: refused, nothing uploaded.
    let out = run(&["apply", fleet, "--yes"]);
    assert_ne!(out.status.code(), Some(0), "{}", both(&out));
    assert!(both(&out).contains("PETS_KEY"), "{}", both(&out));
    assert_eq!(cf.uploads(), 0);
    assert!(cf.script("pets").is_none());

    let out = with_key(&["apply", fleet, "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    assert_eq!(cf.secret("pets", "PETS_KEY").as_deref(), Some(KEY));
    assert_eq!(
        cf.migrations("pets"),
        (Some("v1".into()), vec!["GatefoldRateLimit".into()])
    );
    // The settings (what drift and rollback read) never hold the value.
    assert!(!text(&cf.script("pets").unwrap()).contains(KEY));

    // A change that keeps the class: no second migration (the fake refuses
    // one: precondition 10079, or the class existing, 10074).
    std::fs::write(&spec, guarded(true).replace("10,", "20,")).unwrap();
    let out = with_key(&["apply", fleet, "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    assert_eq!(cf.migrations("pets").0.as_deref(), Some("v1"));

    // Rate limits gone: the class is deleted by the next tag.
    std::fs::write(&spec, guarded(false)).unwrap();
    let out = with_key(&["apply", fleet, "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    assert_eq!(cf.migrations("pets"), (Some("v2".into()), vec![]));
    let out = with_key(&["plan", fleet]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));

    // Rollback brings the rate limit back: the class is made again.
    let out = with_key(&["rollback", fleet, "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    assert_eq!(
        cf.migrations("pets"),
        (Some("v3".into()), vec!["GatefoldRateLimit".into()])
    );
    assert_eq!(cf.secret("pets", "PETS_KEY").as_deref(), Some(KEY));
}
