//! Fleet sync to a Cloudflare Worker, against `FakeCloudflareApi` (a
//! contract fake of the Workers API), driven by the CLI.

mod support;

use std::path::{Path, PathBuf};
use support::cloudflare::FakeCloudflareApi;
use support::{both, gatefold, json, repo, scratch, text};

const TOKEN: &str = "cf-api-token-93b7aa";
const ACCOUNT: &str = "acc0123456789";

fn fleet_file(dir: &Path, spec: &Path, gateways: &[(&str, String, &str)], rest: &str) -> PathBuf {
    let mut s = format!(
        "gatefold: 1\nfleet:\n  spec: {}\n  gateways:\n",
        spec.display()
    );
    for (name, api, script) in gateways {
        s.push_str(&format!(
            "    {name}: {{ provider: cloudflare, api: \"{api}\", account: {{ env: CF_ACCOUNT_ID }}, token: {{ env: CF_API_TOKEN }}, script: {script} }}\n"
        ));
    }
    s.push_str(rest);
    let path = dir.join("fleet.yaml");
    std::fs::write(&path, s).unwrap();
    path
}

fn run(args: &[&str]) -> std::process::Output {
    gatefold(
        args,
        &[("CF_API_TOKEN", TOKEN), ("CF_ACCOUNT_ID", ACCOUNT)],
        &[TOKEN],
    )
}

fn example() -> String {
    std::fs::read_to_string(repo().join("examples/fleet/spec/gatefold.yaml")).unwrap()
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
    assert!(uploaded.contains("name=\"metadata\""), "{uploaded}");
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
