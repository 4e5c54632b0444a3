//! `gatefold plan --out FILE` then `gatefold apply --plan FILE`, over real
//! reference gateways: the saved plan is applied as saved, and refused,
//! touching no gateway, when one no longer runs what the plan saw or the
//! spec now wants something else.

use crate::support;

use std::path::Path;
use std::process::Output;
use support::reference::{Gateway, TOKEN};
use support::{both, scratch};

const BOOT: &str = "gatefold: 1\napis:\n  boot:\n    routes:\n      up: { path: /up, policies: [ { mock: { status: 204 } } ] }\n";
const ONE: &str = "gatefold: 1\napis:\n  a:\n    routes:\n      r: { path: /r, policies: [ { mock: { status: 200 } } ] }\n";
const TWO: &str = "gatefold: 1\napis:\n  a:\n    routes:\n      r: { path: /r, policies: [ { mock: { status: 201 } } ] }\n";
/// What an operator pushes by hand, between the plan and the apply.
const HAND: &str = "gatefold: 1\napis:\n  a:\n    routes:\n      r: { path: /r, policies: [ { mock: { status: 202 } } ] }\n";

fn run(args: &[&str]) -> Output {
    support::gatefold(args, &[("FLEET_TOKEN", TOKEN)], &[TOKEN])
}

fn fleet_file(dir: &Path, spec: &Path, gateways: &[(&str, &Gateway)]) -> String {
    let lines = gateways.iter().map(|(name, g)| {
        format!(
            "{name}: {{ provider: reference, admin: \"http://{}\", token: {{ env: FLEET_TOKEN }} }}",
            g.admin
        )
    });
    let path = support::write_fleet(dir, spec, lines, "");
    path.to_str().unwrap().to_string()
}

/// The hash a spec compiles to, as `gatefold validate` reports it.
fn hash_of(dir: &Path, spec: &str) -> String {
    let path = dir.join("hash-of.yaml");
    std::fs::write(&path, spec).unwrap();
    let out = run(&["validate", path.to_str().unwrap(), "--format", "json"]);
    support::json(&out)["hash"].as_str().unwrap().to_string()
}

#[test]
fn a_saved_plan_applies_as_saved_and_is_refused_once_a_gateway_or_the_spec_changed() {
    let dir = scratch("saved-plan");
    let boot = dir.join("boot.yaml");
    std::fs::write(&boot, BOOT).unwrap();
    let spec = dir.join("spec.yaml");
    std::fs::write(&spec, ONE).unwrap();
    let (a, b) = (Gateway::start(&boot, &[]), Gateway::start(&boot, &[]));
    let boot_hash = a.hash();
    let fleet = fleet_file(&dir, &spec, &[("a", &a), ("b", &b)]);
    let saved = dir.join("plan.json");
    let saved = saved.to_str().unwrap();

    // Saved, then applied as saved: no --yes needed, both gateways change.
    let out = run(&["plan", &fleet, "--out", saved]);
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    let out = run(&["apply", &fleet, "--plan", saved]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    let one = hash_of(&dir, ONE);
    assert_eq!((a.hash(), b.hash()), (one.clone(), one.clone()));

    // The same file again: the gateways no longer run what it saw (boot),
    // so it is refused, naming both.
    let out = run(&["apply", &fleet, "--plan", saved]);
    assert_eq!(out.status.code(), Some(1), "{}", both(&out));
    let said = both(&out);
    assert!(
        said.contains("plan-changed")
            && said.contains("gateway `a` changed since the saved plan")
            && said.contains("gateway `b` changed since the saved plan"),
        "{said}"
    );

    // A new plan towards TWO; then an operator edits b by hand. The apply
    // is refused and touches neither gateway: a stays on ONE (it was not
    // edited, but the reviewed plan is applied whole or not at all), b
    // keeps the edit.
    std::fs::write(&spec, TWO).unwrap();
    let out = run(&["plan", &fleet, "--out", saved]);
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    let (status, body) = b.admin("PUT", "/config", HAND);
    assert_eq!(status, 200, "{body}");
    let hand = b.hash();
    let out = run(&["apply", &fleet, "--plan", saved]);
    assert_eq!(out.status.code(), Some(1), "{}", both(&out));
    let said = both(&out);
    assert!(
        said.contains("gateway `b` changed since the saved plan") && !said.contains("gateway `a`"),
        "{said}"
    );
    assert_eq!((a.hash(), b.hash()), (one.clone(), hand.clone()));

    // Planned again (b's edit seen), but the spec changes before the apply:
    // refused, as that is not the plan that was reviewed.
    let out = run(&["plan", &fleet, "--out", saved]);
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    std::fs::write(&spec, ONE).unwrap();
    let out = run(&["apply", &fleet, "--plan", saved]);
    assert_eq!(out.status.code(), Some(1), "{}", both(&out));
    assert!(
        both(&out).contains("the spec or the fleet file changed since"),
        "{}",
        both(&out)
    );
    assert_eq!((a.hash(), b.hash()), (one, hand));
    assert_ne!(boot_hash, a.hash());

    // Not a saved plan: refused before anything is read.
    std::fs::write(saved, "{}").unwrap();
    let out = run(&["apply", &fleet, "--plan", saved]);
    assert_eq!(out.status.code(), Some(1), "{}", both(&out));
    assert!(both(&out).contains("bad-saved-plan"), "{}", both(&out));
}
