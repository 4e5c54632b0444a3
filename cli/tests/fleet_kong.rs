//! Fleet sync to DB-less Kong, against `FakeKongAdmin` (a contract fake of
//! Kong's Admin API; Kong cannot run here), driven by
//! `gatefold plan | apply | drift | rollback` as a user runs them.

use crate::support;

use std::path::{Path, PathBuf};
use support::gateways::example;
use support::kong::{kong_hash, FakeKongAdmin};
use support::{both, gatefold, json, scratch};

/// The Admin API token; it must never be printed.
const TOKEN: &str = "kong-admin-token-8d2e41";

/// A Kong config gatefold did not write (what runs before the first apply).
const BOOT: &str = r#"{"_format_version":"3.0","services":[{"name":"legacy","host":"legacy.internal","port":80,"protocol":"http"}]}"#;

/// A fleet file of Kong gateways (name, admin URL), `rest` appended.
fn fleet_file(dir: &Path, spec: &Path, gateways: &[(&str, String)], rest: &str) -> PathBuf {
    let lines = gateways.iter().map(|(name, admin)| {
        format!("{name}: {{ provider: kong, admin: \"{admin}\", token: {{ env: KONG_TOKEN }} }}")
    });
    support::write_fleet(dir, spec, lines, rest)
}

fn run(args: &[&str]) -> std::process::Output {
    gatefold(args, &[("KONG_TOKEN", TOKEN)], &[TOKEN])
}

/// Plan, apply, no false changes, a spec change with its semantic diff,
/// drift after a hand edit, and rollback, on one Kong.
#[test]
fn kong_plan_apply_drift_and_rollback() {
    let dir = scratch("kong-cycle");
    let spec = dir.join("spec.yaml");
    std::fs::write(&spec, example()).unwrap();
    let kong = FakeKongAdmin::start(BOOT, Some(TOKEN));
    let fleet = fleet_file(&dir, &spec, &[("kong-1", kong.url())], "");
    let fleet = fleet.to_str().unwrap();

    // Kong runs a config gatefold did not write: changes, shown by hash
    // only (Kong's config cannot be read back as a spec).
    let out = run(&["plan", fleet, "--format", "json"]);
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    let plan = json(&out);
    assert_eq!(plan["gateways"][0]["state"], "changes", "{plan}");
    assert_eq!(
        plan["gateways"][0]["running-hash"],
        format!("kong:md5:{}", kong_hash(BOOT))
    );

    let out = run(&["apply", fleet, "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    // Kong accepted it (the fake checks Kong's schema and tag rule), and
    // the manifest travels in the config, in the carrier key set.
    let applied = kong.config();
    assert!(applied.contains("gatefold-manifest"), "{applied}");
    assert!(applied.contains("\"routes\""), "{applied}");

    // In sync, no drift.
    let out = run(&["plan", fleet]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    let out = run(&["drift", fleet]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));

    // A change: exit 2 with the semantic diff (the IR rides with the config).
    std::fs::write(&spec, example().replace("[rex, tom]", "[rex, tom, kit]")).unwrap();
    let out = run(&["plan", fleet]);
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    let plan = support::text(&out.stdout);
    assert!(plan.contains("pets.list") && plan.contains("kit"), "{plan}");
    assert!(!plan.contains("hello.hello"), "only pets changed:\n{plan}");
    let out = run(&["apply", fleet, "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    assert!(kong.config().contains("kit"), "{}", kong.config());
    let out = run(&["plan", fleet]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));

    // A hand edit behind gatefold's back (the carrier kept): drift.
    let after_change = kong.config();
    let hand = after_change.replacen("\"strip_path\":false", "\"strip_path\":true", 1);
    assert_ne!(hand, after_change, "the edit changes something");
    kong.set_config(&hand);
    let out = run(&["drift", fleet, "--format", "json"]);
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    let report = json(&out);
    assert_eq!(report["gateways"][0]["state"], "drift", "{report}");
    // Rollback refuses a drifted gateway rather than overwrite the edit.
    let out = run(&["rollback", fleet, "--yes"]);
    assert_ne!(out.status.code(), Some(0), "{}", both(&out));
    assert_eq!(kong.config(), hand);

    // Put the change back, then roll back to the version before it.
    kong.set_config(&after_change);
    let out = run(&["drift", fleet]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    let out = run(&["rollback", fleet, "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    let out = run(&["plan", fleet]);
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    assert!(support::text(&out.stdout).contains("kit"), "{}", both(&out));
    let out = run(&["drift", fleet]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
}

/// A Kong answering 500 mid-wave: the other gateway of the wave, already
/// switched, is put back byte for byte; the failed one never changed.
#[test]
fn a_500_mid_wave_rolls_back_kong_byte_for_byte() {
    let dir = scratch("kong-500");
    let spec = dir.join("spec.yaml");
    std::fs::write(&spec, example()).unwrap();
    let (a, b) = (
        FakeKongAdmin::start(BOOT, Some(TOKEN)),
        FakeKongAdmin::start(BOOT, Some(TOKEN)),
    );
    let fleet = fleet_file(
        &dir,
        &spec,
        &[("kong-a", a.url()), ("kong-b", b.url())],
        "  rollout:\n    on-failure: rollback\n",
    );
    let fleet = fleet.to_str().unwrap();
    let out = run(&["apply", fleet, "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    let (a_before, b_before) = (a.config(), b.config());

    std::fs::write(&spec, example().replace("[rex, tom]", "[rex]")).unwrap();
    // Every attempt fails, retries included.
    b.fail_posts(100);
    let posts_before = a.posts();
    let out = run(&["apply", fleet, "--yes", "--format", "json"]);
    assert_ne!(out.status.code(), Some(0), "{}", both(&out));
    let lines: Vec<serde_json::Value> = support::text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let summary = &lines.last().unwrap()["summary"];
    let state = |g: &str| {
        summary["gateways"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["gateway"] == g)
            .unwrap()["state"]
            .clone()
    };
    assert_eq!(state("kong-b"), "failed", "{summary}");
    assert!(
        summary.to_string().contains("500"),
        "the failure names Kong's answer: {summary}"
    );
    // kong-a was switched (and then put back): two posts.
    assert_eq!(a.posts() - posts_before, 2, "{summary}");
    assert_eq!(state("kong-a"), "rolled-back", "{summary}");
    assert_eq!(a.config(), a_before, "kong-a is not back byte for byte");
    assert_eq!(b.config(), b_before);
}

/// A wrong token is a clear error naming the variable's role, never the
/// token; Kong refusing a config is reported as Kong said it.
#[test]
fn kong_refusals_are_named() {
    let dir = scratch("kong-refusals");
    let spec = dir.join("spec.yaml");
    std::fs::write(&spec, example()).unwrap();
    let kong = FakeKongAdmin::start(BOOT, Some("another-token-0000"));
    let fleet = fleet_file(&dir, &spec, &[("kong-1", kong.url())], "");
    let out = run(&["plan", fleet.to_str().unwrap()]);
    assert_ne!(out.status.code(), Some(0), "{}", both(&out));
    assert!(support::text(&out.stdout).contains("401"), "{}", both(&out));
    assert_eq!(kong.posts(), 0);
}
