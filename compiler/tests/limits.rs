//! What keeps a spec, mistaken or hostile, from costing unbounded time and
//! memory or from reading files outside its folder: the file size limit,
//! the node limit, folder compilation in linear time, and `file:`
//! references confined to the spec's folder ("Limits" in
//! `policy-spec/README.md`).

use gatefold_compiler::{compile_path_with, compile_str, Limits};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

/// A fresh folder under the system's temporary folder.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gatefold-limits-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn errors(c: &gatefold_compiler::Compiled) -> Vec<(&'static str, String)> {
    c.diagnostics
        .iter()
        .map(|d| (d.code, d.message.clone()))
        .collect()
}

/// Runs `f` on its own thread; fails if it takes longer than a bound far
/// above what it needs (so a loaded machine passes, a regression fails).
fn within<T: Send + 'static>(secs: u64, what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(Duration::from_secs(secs)) {
        Ok(v) => v,
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("{what} took longer than {secs} s"),
        Err(mpsc::RecvTimeoutError::Disconnected) => panic!("{what} panicked"),
    }
}

#[test]
fn the_default_file_limit_is_32_mib() {
    assert_eq!(Limits::default().max_file_bytes, 32 * 1024 * 1024);
}

#[test]
fn a_file_over_the_size_limit_is_refused_with_one_clear_error() {
    let dir = scratch("size");
    let spec = dir.join("big.yaml");
    // Valid YAML, but one byte over the limit set here.
    let mut text = String::from("gatefold: 1\n");
    while text.len() <= 4096 {
        text.push_str("# padding padding padding padding padding padding\n");
    }
    std::fs::write(&spec, &text).unwrap();
    let limits = Limits {
        max_file_bytes: 4096,
    };
    let c = compile_path_with(&spec, &limits);
    assert!(c.ir.is_none());
    let found = errors(&c);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].0, "spec-too-large");
    assert_eq!(
        found[0].1,
        format!(
            "`{}` is {} bytes; a spec file may be at most 4096 bytes",
            spec.display(),
            text.len()
        )
    );
    let help = c.diagnostics.iter().next().unwrap().help.clone().unwrap();
    assert!(help.contains("GATEFOLD_MAX_SPEC_SIZE"), "{help}");
    // Under a limit it fits, the same file compiles (to its own errors).
    let c = compile_path_with(&spec, &Limits::default());
    assert!(errors(&c).iter().all(|(code, _)| *code != "spec-too-large"));
}

#[test]
fn a_file_with_too_many_nodes_is_refused() {
    // 2,000,001 one-character items: about 4 MB, under the size limit.
    let n = 2_000_001;
    let mut text = String::with_capacity(2 * n + 20);
    text.push_str("gatefold: 1\nx: [");
    for _ in 1..n {
        text.push_str("1,");
    }
    text.push_str("1]\n");
    let found = within(60, "a 2M-node file", move || {
        let c = compile_str("nodes.yaml", &text);
        c.diagnostics.iter().map(|d| d.code).collect::<Vec<_>>()
    });
    assert_eq!(found, ["yaml-too-many-nodes"]);
}

/// The folder's names were indexed anew for every file: 10,000 files took
/// minutes. Compiling them is linear now, well under the bound.
#[test]
fn a_folder_of_10000_files_compiles_in_linear_time() {
    let dir = scratch("folder");
    std::fs::write(
        dir.join("00000-upstreams.yaml"),
        "gatefold: 1\nupstreams:\n  u: { targets: [{ url: \"http://127.0.0.1:9001\" }] }\n",
    )
    .unwrap();
    for i in 0..10_000 {
        std::fs::write(
            dir.join(format!("a{i:05}.yaml")),
            format!("gatefold: 1\napis:\n  a{i}:\n    upstream: u\n    routes:\n      r: {{ path: /p{i}, methods: [GET] }}\n"),
        )
        .unwrap();
    }
    let routes = within(30, "a folder of 10,000 files", move || {
        let c = compile_path_with(&dir, &Limits::default());
        let _ = std::fs::remove_dir_all(&dir);
        c.ir.map(|ir| ir.routes.len())
    });
    assert_eq!(routes, Some(10_000));
}

/// A `file:` reference outside the spec's folder is refused with one text,
/// whether or not the file exists: a spec sent to a running gateway
/// (`PUT /config`, compiled like `compile_str`, from the gateway's folder)
/// must not learn what exists outside.
#[test]
fn file_references_cannot_probe_outside_the_spec_folder() {
    let outside_existing = std::fs::canonicalize("Cargo.toml").unwrap();
    let cases = [
        "../Cargo.toml".to_string(),
        "../no-such-file.pub".to_string(),
        "../../../../../../../../etc/hostname".to_string(),
        outside_existing.display().to_string(),
        "/no/such/file.pub".to_string(),
        "keys/../../Cargo.toml".to_string(),
    ];
    for rel in &cases {
        let spec = format!(
            "gatefold: 1\nupstreams:\n  u: {{ targets: [{{ url: \"http://127.0.0.1:9\" }}] }}\napis:\n  a:\n    upstream: u\n    policies:\n      - jwt: {{ algorithms: [RS256], public-key: {{ file: \"{rel}\" }} }}\n    routes:\n      r: {{ path: /x }}\n"
        );
        let c = compile_str("config.yaml", &spec);
        assert_eq!(
            errors(&c),
            [(
                "file-outside-spec",
                format!("`{rel}` is not inside the spec's folder")
            )],
            "{rel}"
        );
    }
}

/// A symbolic link inside the folder that leads out of it is outside too,
/// whether its target exists or not; a missing file inside the folder is
/// reported as missing.
#[cfg(unix)]
#[test]
fn links_out_of_the_spec_folder_are_refused_alike() {
    let dir = scratch("links");
    let spec_dir = dir.join("spec");
    std::fs::create_dir_all(&spec_dir).unwrap();
    std::fs::write(dir.join("secret.pub"), "not a key").unwrap();
    std::os::unix::fs::symlink(dir.join("secret.pub"), spec_dir.join("there.pub")).unwrap();
    std::os::unix::fs::symlink(dir.join("gone.pub"), spec_dir.join("dangling.pub")).unwrap();
    std::os::unix::fs::symlink(&dir, spec_dir.join("up")).unwrap();
    let compile = |rel: &str| {
        std::fs::write(
            spec_dir.join("gatefold.yaml"),
            format!("gatefold: 1\nupstreams:\n  u: {{ targets: [{{ url: \"http://127.0.0.1:9\" }}] }}\napis:\n  a:\n    upstream: u\n    policies:\n      - jwt: {{ algorithms: [RS256], public-key: {{ file: {rel} }} }}\n    routes:\n      r: {{ path: /x }}\n"),
        )
        .unwrap();
        let c = compile_path_with(&spec_dir, &Limits::default());
        errors(&c)
            .into_iter()
            .map(|(code, _)| code)
            .collect::<Vec<_>>()
    };
    for rel in ["there.pub", "dangling.pub", "up/secret.pub", "up/gone.pub"] {
        assert_eq!(compile(rel), ["file-outside-spec"], "{rel}");
    }
    assert_eq!(compile("keys/missing.pub"), ["unreadable-file"]);
    let _ = std::fs::remove_dir_all(Path::new(&dir));
}
