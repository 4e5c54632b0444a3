//! Fleet sync to a real Envoy on loopback (file-based dynamic config):
//! the test starts Envoy in a work directory with a config gatefold
//! compiled but never applied there, then drives `gatefold plan | apply |
//! drift | rollback` as a user runs them. Envoy is stopped when the test
//! ends (the runtime's instance stops its process group on drop).

use crate::support;

use gatefold_compiler::target::{Options, Target};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use support::gateways::{example, free_port, get, never_applied_plan, wait_for};
use support::{both, gatefold, json, repo, scratch, text};

/// The `version_info` of the listeners and clusters Envoy loaded (the
/// clusters' is empty when a spec has none, as the example), from
/// its admin API (`/config_dump`).
fn versions(work: &Path) -> (String, String) {
    let admin: SocketAddr = std::fs::read_to_string(work.join("admin.address"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let (status, body) = get(admin, "localhost", "/config_dump");
    assert_eq!(status, 200, "{body}");
    let body = dechunk(&body);
    let dump: serde_json::Value = serde_json::from_str(&body).unwrap();
    let of = |kind: &str| {
        dump["configs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["@type"].as_str().unwrap().ends_with(kind))
            .map(|c| c["version_info"].as_str().unwrap_or("").to_string())
            .unwrap_or_default()
    };
    (of("ListenersConfigDump"), of("ClustersConfigDump"))
}

/// A chunked HTTP/1.1 body, joined.
fn dechunk(body: &str) -> String {
    if body.trim_start().starts_with('{') {
        return body.to_string();
    }
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, after)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap();
        if n == 0 {
            break;
        }
        out.push_str(&after[..n]);
        rest = &after[n + 2..];
    }
    out
}

/// Envoy working in `work` on `spec`, compiled by gatefold but never
/// applied by the fleet (no manifest): what runs before the first apply.
fn boot(work: &Path, spec: &str, listen: SocketAddr) -> gatefold_runtime::EnvoyInstance {
    let spec_path = work.with_extension("boot.yaml");
    std::fs::write(&spec_path, spec).unwrap();
    let compiled = gatefold_compiler::compile_path(&spec_path);
    let ir = compiled.ir.expect("the boot spec compiles");
    let out = gatefold_target_envoy::Envoy::default().emit(
        &ir,
        &Options {
            listen: Some(listen),
            ..Options::default()
        },
    );
    let file = |p: &str| {
        let f = out.files.iter().find(|f| f.path.as_str() == p).unwrap();
        String::from_utf8(f.bytes.clone()).unwrap()
    };
    std::fs::create_dir_all(work).unwrap();
    let config = gatefold_runtime::EnvoyConfig {
        bootstrap: file("bootstrap.yaml"),
        lds: Some(file("dynamic/lds.json")),
        cds: Some(file("dynamic/cds.json")),
    };
    gatefold_runtime::Envoy::locate()
        .unwrap()
        .start(work, &config, &[listen])
        .unwrap()
}

/// The files gatefold manages in the work dir (`bootstrap.yaml`,
/// `dynamic/`), by path.
fn managed(work: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    for p in ["bootstrap.yaml", "dynamic/lds.json", "dynamic/cds.json"] {
        out.insert(work.join(p), std::fs::read(work.join(p)).unwrap());
    }
    out
}

fn fleet_file(dir: &Path, spec: &Path, work: &Path, listen: SocketAddr) -> PathBuf {
    let gateway = format!(
        "envoy-1: {{ provider: envoy, config-dir: {}, listen: \"{listen}\" }}",
        work.display()
    );
    support::write_fleet(dir, spec, [gateway], "")
}

fn run(args: &[&str]) -> std::process::Output {
    gatefold(args, &[], &[])
}

/// Plan, apply and verify, no false changes, a spec change with its
/// semantic diff, a hand edit shown as drift, and a rollback that puts the
/// files back byte for byte, on a real Envoy.
#[test]
fn envoy_plan_apply_drift_and_rollback() {
    let dir = scratch("envoy-cycle");
    let prefix = dir.join("envoy");
    let listen = free_port();
    let _envoy = boot(&prefix, &example().replace("[rex, tom]", "[boot]"), listen);
    let boot_files = managed(&prefix);
    let spec = dir.join("spec.yaml");
    std::fs::write(&spec, example()).unwrap();
    let fleet = fleet_file(&dir, &spec, &prefix, listen);
    let fleet = fleet.to_str().unwrap();

    // Never applied: changes, by the hash of its files.
    let first = never_applied_plan(&run(&["plan", fleet, "--format", "json"]));

    let out = run(&["apply", fleet, "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    // Envoy serves the new config and its admin API reports its hash.
    assert!(get(listen, "localhost", "/pets").1.contains("tom"));
    assert_eq!(versions(&prefix).0, first);
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
    let conf = prefix.join("bootstrap.yaml");
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
    // for byte, and Envoy serves them again.
    std::fs::write(&conf, &applied).unwrap();
    let out = run(&["drift", fleet]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    let out = run(&["rollback", fleet, "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    assert_eq!(managed(&prefix), first_files, "not back byte for byte");
    let body = wait_for(listen, "/pets", "tom");
    assert!(!body.contains("kit"), "{body}");
    assert_eq!(versions(&prefix).0, first);
    let out = run(&["plan", fleet]);
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    assert_ne!(managed(&prefix), boot_files);
}

/// A staged config that `envoy --mode validate` refuses (its TLS key is
/// read from an environment variable that is not set): nothing is
/// switched, the old config keeps serving, and the output names the
/// refusal.
#[test]
fn a_config_envoy_refuses_leaves_the_old_one_serving() {
    let dir = scratch("envoy-refused");
    let work = dir.join("envoy");
    let listen = free_port();
    let _envoy = boot(&work, &example(), listen);
    let spec = dir.join("spec.yaml");
    std::fs::write(&spec, example()).unwrap();
    let fleet = fleet_file(&dir, &spec, &work, listen);
    let fleet = fleet.to_str().unwrap();
    let out = run(&["apply", fleet, "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    let before = managed(&work);
    let version = versions(&work).0;

    std::fs::copy(
        repo().join("targets/reference/tests/keys/tls-server.pem"),
        dir.join("tls-server.pem"),
    )
    .unwrap();
    let unset = "GF_FLEET_ENVOY_TEST_KEY_NEVER_SET";
    std::fs::write(
        &spec,
        example().replace(
            "  listen: 8080\n",
            &format!("  listen: 8080\n  tls:\n    listen: 8443\n    certificates:\n      - {{ cert: {{ file: tls-server.pem }}, key: {{ env: {unset} }} }}\n"),
        ),
    )
    .unwrap();
    let out = run(&["apply", fleet, "--yes"]);
    assert_ne!(out.status.code(), Some(0), "{}", both(&out));
    let all = both(&out);
    assert!(all.contains("envoy --mode validate"), "{all}");
    assert!(all.contains(unset), "{all}");
    assert_eq!(managed(&work), before, "a refused config changed files");
    assert_eq!(versions(&work).0, version);
    assert!(get(listen, "localhost", "/pets").1.contains("tom"));
    let out = run(&["drift", fleet]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
}

/// A spec change that leaves the clusters as they are (here a mock's
/// body): Envoy keeps its clusters' version then (it records a CDS
/// version only when a cluster changes), and the apply still verifies
/// and serves the change; a change of the clusters moves their version.
#[test]
fn a_change_that_leaves_the_clusters_alone_is_applied_and_verified() {
    let dir = scratch("envoy-same-clusters");
    let work = dir.join("envoy");
    let listen = free_port();
    let spec_of = |word: &str, port: u16| {
        format!(
            "gatefold: 1\ngateway: {{ name: g, listen: 8080 }}\nupstreams:\n  u: {{ targets: [{{ url: \"http://127.0.0.1:{port}\" }}] }}\napis:\n  a:\n    upstream: u\n    routes:\n      proxied: {{ path: /p }}\n      word: {{ path: /w, policies: [{{ mock: {{ json: {{ word: {word} }} }} }}] }}\n"
        )
    };
    let _envoy = boot(&work, &spec_of("boot", 9), listen);
    let spec = dir.join("spec.yaml");
    std::fs::write(&spec, spec_of("one", 9)).unwrap();
    let fleet = fleet_file(&dir, &spec, &work, listen);
    let fleet = fleet.to_str().unwrap();
    let out = run(&["apply", fleet, "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    assert!(get(listen, "localhost", "/w").1.contains("one"));
    let (listeners, clusters) = versions(&work);
    assert!(clusters.starts_with("clusters:sha256:"), "{clusters}");

    std::fs::write(&spec, spec_of("two", 9)).unwrap();
    let out = run(&["apply", fleet, "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    assert!(get(listen, "localhost", "/w").1.contains("two"));
    let (after, same) = versions(&work);
    assert_ne!(after, listeners);
    assert_eq!(same, clusters, "no cluster changed");
    let out = run(&["drift", fleet]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));

    // Another upstream port: the clusters change, and so does their version.
    std::fs::write(&spec, spec_of("two", 10)).unwrap();
    let out = run(&["apply", fleet, "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    assert_ne!(versions(&work).1, clusters);
}
