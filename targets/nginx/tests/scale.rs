//! 10,000 routes (bench/gen_spec.py 10000): compile time and `nginx -t`.
//! Run: cargo test --release -p gatefold-target-nginx --test scale -- --ignored --nocapture

mod common;

use common::*;
use gatefold_compiler::target::{Options, Target};
use std::time::Instant;

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
    let out = gatefold_target_nginx::Nginx::default().emit(&ir, &Options::default());
    let emit = t.elapsed();
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
        "routes: front end {front:?}, nginx emit {emit:?} (model alone {model:?}; {bytes} bytes), nginx -t {check:?}"
    );
}
