//! Gateways the fleet tests run on loopback: the example spec, a free
//! port, plain HTTP requests, and an nginx prefix booted on a config
//! gatefold compiled but never applied (what runs before a first apply).

use super::{both, json, repo, LIMIT};
use gatefold_compiler::target::{Options, Target};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};

pub fn example() -> String {
    std::fs::read_to_string(repo().join("examples/fleet/spec/gatefold.yaml")).unwrap()
}

/// A loopback port free a moment ago (nginx's listen address is in its
/// config, so the port is chosen before nginx starts).
pub fn free_port() -> SocketAddr {
    gatefold_runtime::launch::free_addr().unwrap()
}

/// `GET path` with `host`: status and body.
pub fn get(addr: SocketAddr, host: &str, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(LIMIT)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out[9..12].parse().unwrap();
    let body = out.split_once("\r\n\r\n").map(|x| x.1).unwrap_or("");
    (status, body.to_string())
}

/// Polls `GET path` until its body holds `want` (a reload is asynchronous).
pub fn wait_for(addr: SocketAddr, path: &str, want: &str) -> String {
    let deadline = std::time::Instant::now() + LIMIT;
    loop {
        let (_, body) = get(addr, "localhost", path);
        if body.contains(want) || std::time::Instant::now() > deadline {
            return body;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// nginx serving `spec` from `prefix`, compiled by gatefold but never
/// applied by the fleet (no manifest): what runs before the first apply.
pub fn nginx_boot(
    prefix: &Path,
    spec: &str,
    listen: SocketAddr,
) -> gatefold_runtime::NginxInstance {
    let spec_path = prefix.with_extension("boot.yaml");
    std::fs::write(&spec_path, spec).unwrap();
    let compiled = gatefold_compiler::compile_path(&spec_path);
    let ir = compiled.ir.expect("the boot spec compiles");
    let out = gatefold_target_nginx::Nginx::default().emit(
        &ir,
        &Options {
            listen: Some(listen),
            ..Options::default()
        },
    );
    for f in &out.files {
        let at = prefix.join(f.path.as_str());
        std::fs::create_dir_all(at.parent().unwrap()).unwrap();
        std::fs::write(at, &f.bytes).unwrap();
    }
    let conf = std::fs::read_to_string(prefix.join("conf/nginx.conf")).unwrap();
    gatefold_runtime::Nginx::locate()
        .unwrap()
        .start(prefix, &conf, &[listen])
        .unwrap()
}

/// The files gatefold manages in the prefix (`conf/`, `lua/`), by path.
pub fn nginx_managed(prefix: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else {
                out.insert(p.clone(), std::fs::read(&p).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    for d in ["conf", "lua"] {
        walk(&prefix.join(d), &mut out);
    }
    out
}

/// `plan --format json` of a one-gateway fleet never applied there: exit
/// 2, the gateway has changes, its running config known by the hash of its
/// files only; the hash it should run.
pub fn never_applied_plan(out: &std::process::Output) -> String {
    assert_eq!(out.status.code(), Some(2), "{}", both(out));
    let plan = json(out);
    assert_eq!(plan["gateways"][0]["state"], "changes", "{plan}");
    assert!(
        plan["gateways"][0]["running-hash"]
            .as_str()
            .unwrap()
            .starts_with("files:"),
        "{plan}"
    );
    plan["gateways"][0]["desired-hash"]
        .as_str()
        .unwrap()
        .to_string()
}
