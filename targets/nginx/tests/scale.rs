//! 10,000 routes (bench/gen_spec.py 10000): compile time and `nginx -t`.
//! Run: cargo test --release -p gatefold-target-nginx --test scale -- --ignored --nocapture

use crate::common;

use common::*;
use gatefold_compiler::target::{Options, Target};
use std::time::{Duration, Instant};

/// CPU time of this thread (from /proc, 10 ms ticks): unlike wall time it
/// hardly moves when other builds load the machine.
fn cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<u64> = after
        .split(' ')
        .skip(11)
        .take(2)
        .map(|x| x.parse().unwrap())
        .collect();
    Duration::from_millis((f[0] + f[1]) * 10)
}

#[test]
#[ignore = "a measurement: run in release"]
fn ten_thousand_routes() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let spec = std::process::Command::new("python3")
        .arg(format!("{root}/bench/gen_spec.py"))
        .arg(std::env::var("GF_ROUTES").unwrap_or_else(|_| "10000".into()))
        .output()
        .unwrap()
        .stdout;
    let spec = String::from_utf8(spec).unwrap();
    let t = Instant::now();
    let ir = compile(&spec);
    let front = t.elapsed();
    let t = Instant::now();
    gatefold_target_nginx::needs_lua(&ir);
    let model = t.elapsed();
    let t = Instant::now();
    let c = cpu();
    let out = gatefold_target_nginx::Nginx::default().emit(&ir, &Options::default());
    let emit = t.elapsed();
    let emit_cpu = cpu() - c;
    let bytes: usize = out.files.iter().map(|f| f.bytes.len()).sum();
    let dir = tempfile::tempdir().unwrap();
    write(&out, dir.path());
    let t = Instant::now();
    gatefold_runtime::Nginx::locate()
        .unwrap()
        .check(dir.path(), &conf(&out))
        .unwrap();
    let check = t.elapsed();
    println!(
        "routes: front end {front:?}, nginx emit {emit:?} wall, {emit_cpu:?} CPU (model alone {model:?}; {bytes} bytes), nginx -t {check:?}"
    );
}
