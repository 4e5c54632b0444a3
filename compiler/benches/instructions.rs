//! A driver for instruction counts of the front end, for `valgrind
//! --tool=callgrind` (wall-clock benchmarks are noise on a shared machine).
//!
//! It builds one synthetic spec (`gatefold_compiler::synth`, 50 routes per
//! api) and runs one thing on it once: `serde_yaml` (the baseline parse to a
//! `serde_yaml::Value`), `yaml` (the compiler's YAML loader) or `compile`
//! (`compile_str`, the whole front end, result dropped inside the call). Each
//! runs in its own function, so `callgrind_annotate --inclusive=yes` gives its
//! total directly; the spec's generation is outside them.
//!
//! Build: `cargo bench -p gatefold-compiler --bench instructions --no-run`;
//! run: `valgrind --tool=callgrind BIN compile 10000`. `docs/performance.md`
//! has the method and the numbers.

use gatefold_compiler::source::FileId;
use std::hint::black_box;

const ROUTES_PER_API: usize = 50;

#[inline(never)]
fn run_serde_yaml(text: &str) {
    let value = serde_yaml::from_str::<serde_yaml::Value>(black_box(text)).unwrap();
    drop(black_box(value));
}

#[inline(never)]
fn run_yaml_loader(text: &str) {
    let doc = gatefold_compiler::front::yaml::parse(FileId(0), black_box(text)).unwrap();
    drop(black_box(doc));
}

#[inline(never)]
fn run_compile_str(text: &str) {
    let compiled = gatefold_compiler::compile_str("synth.yaml", black_box(text));
    assert!(compiled.ir.is_some(), "{}", compiled.render());
    drop(black_box(compiled));
}

fn main() {
    let mut args = std::env::args().skip(1).filter(|a| a != "--bench");
    let what = args.next().unwrap_or_else(|| "compile".to_owned());
    let routes: usize = args
        .next()
        .map(|n| n.parse().expect("routes: a number"))
        .unwrap_or(10_000);
    let text = gatefold_compiler::synth::spec(routes / ROUTES_PER_API, ROUTES_PER_API, 1);
    match what.as_str() {
        "serde_yaml" => run_serde_yaml(&text),
        "yaml" => run_yaml_loader(&text),
        "compile" => run_compile_str(&text),
        other => panic!("unknown: {other} (serde_yaml, yaml or compile)"),
    }
}
