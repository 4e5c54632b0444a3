//! Fleet sync to a real nginx on loopback: the test starts nginx on a
//! prefix directory with a config gatefold compiled but never applied
//! there, then drives `gatefold plan | apply | drift | rollback` as a user
//! runs them. nginx is stopped when the test ends (the runtime's instance
//! stops its process group on drop).

use crate::support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use support::gateways::{
    example, free_port, get, never_applied_plan, nginx_boot as boot, nginx_managed as managed,
    wait_for,
};
use support::{both, gatefold, json, scratch, text};

fn fleet_file(dir: &Path, spec: &Path, prefix: &Path, listen: SocketAddr) -> PathBuf {
    let gateway = format!(
        "nginx-1: {{ provider: nginx, config-dir: {}, listen: \"{listen}\" }}",
        prefix.display()
    );
    support::write_fleet(dir, spec, [gateway], "")
}

fn run(args: &[&str]) -> std::process::Output {
    gatefold(args, &[], &[])
}

/// Plan, apply and verify, no false changes, a spec change with its
/// semantic diff, a hand edit shown as drift, and a rollback that puts the
/// files back byte for byte, on a real nginx.
#[test]
fn nginx_plan_apply_drift_and_rollback() {
    let dir = scratch("nginx-cycle");
    let prefix = dir.join("nginx");
    let listen = free_port();
    let _nginx = boot(&prefix, &example().replace("[rex, tom]", "[boot]"), listen);
    let boot_files = managed(&prefix);
    let spec = dir.join("spec.yaml");
    std::fs::write(&spec, example()).unwrap();
    let fleet = fleet_file(&dir, &spec, &prefix, listen);
    let fleet = fleet.to_str().unwrap();

    // Never applied: changes, by the hash of its files.
    let first = never_applied_plan(&run(&["plan", fleet, "--format", "json"]));

    let out = run(&["apply", fleet, "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    // nginx serves the new config, and says which one it is, to loopback
    // clients asking with the reserved host name only.
    assert!(get(listen, "localhost", "/pets").1.contains("tom"));
    assert_eq!(
        get(listen, "gatefold-version.invalid", "/.gatefold/version"),
        (200, first.clone())
    );
    let (status, body) = get(listen, "localhost", "/.gatefold/version");
    assert_eq!(
        status, 404,
        "the version path is no route of the spec: {body}"
    );
    assert!(!body.contains("sha256"), "{body}");
    assert!(prefix.join(".gatefold/manifest.json").is_file());

    let out = run(&["plan", fleet]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    let out = run(&["drift", fleet]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));

    // A spec change: exit 2 with the route's semantic diff, then applied.
    let first_files = managed(&prefix);
    std::fs::write(&spec, example().replace("[rex, tom]", "[rex, tom, kit]")).unwrap();
    let out = run(&["plan", fleet]);
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    let plan = text(&out.stdout);
    assert!(plan.contains("pets.list") && plan.contains("kit"), "{plan}");
    assert!(!plan.contains("hello.hello"), "only pets changed:\n{plan}");
    let out = run(&["apply", fleet, "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    assert!(get(listen, "localhost", "/pets").1.contains("kit"));

    // A hand edit of the config dir: drift, and rollback refuses it.
    let conf = prefix.join("conf/nginx.conf");
    let applied = std::fs::read(&conf).unwrap();
    let mut edited = applied.clone();
    edited.extend_from_slice(b"# edited by hand\n");
    std::fs::write(&conf, &edited).unwrap();
    let out = run(&["drift", fleet, "--format", "json"]);
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    let report = json(&out);
    assert_eq!(report["gateways"][0]["state"], "drift", "{report}");
    let out = run(&["rollback", fleet, "--yes"]);
    assert_ne!(out.status.code(), Some(0), "{}", both(&out));
    assert_eq!(std::fs::read(&conf).unwrap(), edited);

    // Undo the edit, then roll back: the files of the first apply, byte
    // for byte, and nginx serves them again.
    std::fs::write(&conf, &applied).unwrap();
    let out = run(&["drift", fleet]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    let out = run(&["rollback", fleet, "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    assert_eq!(managed(&prefix), first_files, "not back byte for byte");
    let body = wait_for(listen, "/pets", "tom");
    assert!(!body.contains("kit"), "{body}");
    assert_eq!(
        get(listen, "gatefold-version.invalid", "/.gatefold/version").1,
        first
    );
    let out = run(&["plan", fleet]);
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    assert_ne!(managed(&prefix), boot_files);
}

/// A staged config that `nginx -t` refuses (a `native` buffer size that
/// only nginx checks against its other buffers): nothing is switched, the
/// old config keeps serving, and the output names the refusal.
#[test]
fn a_config_nginx_refuses_leaves_the_old_one_serving() {
    let dir = scratch("nginx-refused");
    let prefix = dir.join("nginx");
    let listen = free_port();
    let _nginx = boot(&prefix, &example(), listen);
    let spec = dir.join("spec.yaml");
    std::fs::write(&spec, example()).unwrap();
    let fleet = fleet_file(&dir, &spec, &prefix, listen);
    let fleet = fleet.to_str().unwrap();
    let out = run(&["apply", fleet, "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    let before = managed(&prefix);

    let spec_text = example().replace(
        "apis:\n",
        "upstreams:\n  busy:\n    targets:\n      - url: http://127.0.0.1:9\n\napis:\n  busy:\n    upstream: busy\n    routes:\n      all:\n        path: /busy\n        methods: [GET]\n        policies:\n          - native: { nginx: { directives: [\"proxy_busy_buffers_size 1m;\"] } }\n",
    );
    std::fs::write(&spec, spec_text).unwrap();
    let out = run(&["apply", fleet, "--yes"]);
    assert_ne!(out.status.code(), Some(0), "{}", both(&out));
    let all = both(&out);
    assert!(all.contains("nginx -t"), "{all}");
    assert!(all.contains("proxy_busy_buffers_size"), "{all}");
    assert_eq!(managed(&prefix), before, "a refused config changed files");
    assert!(get(listen, "localhost", "/pets").1.contains("tom"));
    let out = run(&["drift", fleet]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
}

/// A spec whose upstream is a host name that resolves nowhere applies
/// (nginx resolves it per request): the provider writes the prefix's
/// `resolver.conf` from this host's `/etc/resolv.conf`, outside the files
/// it manages (so drift sees none), and the other routes serve.
#[test]
fn a_host_name_upstream_applies_with_the_hosts_resolver() {
    let dir = scratch("nginx-resolver");
    let prefix = dir.join("nginx");
    let listen = free_port();
    let _nginx = boot(&prefix, &example(), listen);
    let spec = dir.join("spec.yaml");
    std::fs::write(
        &spec,
        example().replace(
            "apis:\n",
            "upstreams:\n  gone:\n    targets:\n      - url: http://gatefold-nowhere.invalid:80\n\napis:\n  gone:\n    upstream: gone\n    routes:\n      all: { path: /gone, methods: [GET] }\n",
        ),
    )
    .unwrap();
    let fleet = fleet_file(&dir, &spec, &prefix, listen);
    let fleet = fleet.to_str().unwrap();
    let out = run(&["apply", fleet, "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    let resolver = std::fs::read_to_string(prefix.join("resolver.conf")).unwrap();
    assert!(resolver.starts_with("resolver "), "{resolver}");
    // `/gone` is not asked: nginx would send its DNS query to this host's
    // server, off the machine (targets/nginx/tests/dns.rs answers it from
    // a DNS server on loopback instead).
    assert!(get(listen, "localhost", "/pets").1.contains("tom"));
    let out = run(&["drift", fleet]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
}

/// Rolling back the first apply puts back the config gatefold found (one
/// it never applied there) byte for byte, and returns only once nginx
/// serves it again: the rollback's verify waits for the version the
/// restored files declare, so the next request already sees it.
#[test]
fn rolling_back_the_first_apply_restores_the_config_found_there() {
    let dir = scratch("nginx-first-rollback");
    let prefix = dir.join("nginx");
    let listen = free_port();
    let _nginx = boot(&prefix, &example().replace("[rex, tom]", "[boot]"), listen);
    let boot_files = managed(&prefix);
    let spec = dir.join("spec.yaml");
    std::fs::write(&spec, example()).unwrap();
    let fleet = fleet_file(&dir, &spec, &prefix, listen);
    let fleet = fleet.to_str().unwrap();
    let out = run(&["apply", fleet, "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    assert!(get(listen, "localhost", "/pets").1.contains("tom"));

    let out = run(&["rollback", fleet, "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    assert_eq!(managed(&prefix), boot_files, "not back byte for byte");
    let body = get(listen, "localhost", "/pets").1;
    assert!(
        body.contains("boot"),
        "served before the reload took: {body}"
    );
    let out = run(&["drift", fleet]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
}
