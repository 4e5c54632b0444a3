//! The front end against a bare YAML parse of the same file.
//!
//! For 1k, 10k and 100k routes (synthetic specs, 50 routes per api, see
//! `gatefold_compiler::synth`), measured side by side in one run:
//!
//! * `serde_yaml`: `serde_yaml::from_str::<serde_yaml::Value>`, the baseline;
//! * `saphyr_events`: the YAML parser the compiler uses, events only;
//! * `yaml_loader`: the compiler's YAML loader (events to a tree with spans);
//! * `compile_str`: the whole front end: load, decode, resolve, validate,
//!   build the IR and its content hash.
//!
//! The goal is `compile_str` at most 3x `serde_yaml`, and time per route flat
//! from 1k to 100k. `docs/performance.md` has the numbers; after a run,
//! `compiler/benches/ratios.sh` prints the table from criterion's estimates.
//!
//! Run: `cargo bench -p gatefold-compiler --bench frontend`.

use criterion::{
    criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode, Throughput,
};
use gatefold_compiler::source::FileId;
use std::hint::black_box;
use std::time::Duration;

const ROUTES_PER_API: usize = 50;

fn frontend(c: &mut Criterion) {
    for (label, routes) in [("1k", 1_000), ("10k", 10_000), ("100k", 100_000)] {
        let text = gatefold_compiler::synth::spec(routes / ROUTES_PER_API, ROUTES_PER_API, 1);
        // Sanity: the spec is valid, so the whole pipeline runs.
        let compiled = gatefold_compiler::compile_str("synth.yaml", &text);
        assert_eq!(
            compiled.ir.as_ref().map(|ir| ir.routes.len()),
            Some(routes),
            "{}",
            compiled.render()
        );

        let mut group = c.benchmark_group(format!("frontend/{label}"));
        group.throughput(Throughput::Elements(routes as u64));
        group.sample_size(10);
        if routes >= 100_000 {
            // Seconds per iteration: one iteration per sample, no more.
            group.sampling_mode(SamplingMode::Flat);
            group.warm_up_time(Duration::from_secs(1));
            group.measurement_time(Duration::from_secs(10));
        } else {
            group.warm_up_time(Duration::from_secs(1));
            group.measurement_time(Duration::from_secs(5));
        }
        group.bench_function(BenchmarkId::new("serde_yaml", routes), |b| {
            b.iter(|| serde_yaml::from_str::<serde_yaml::Value>(black_box(&text)).unwrap())
        });
        group.bench_function(BenchmarkId::new("saphyr_events", routes), |b| {
            b.iter(|| {
                let mut parser = saphyr_parser::Parser::new_from_str(black_box(&text));
                let mut events = 0usize;
                while let Some(e) = parser.next_event() {
                    black_box(e.unwrap());
                    events += 1;
                }
                events
            })
        });
        group.bench_function(BenchmarkId::new("yaml_loader", routes), |b| {
            b.iter(|| gatefold_compiler::front::yaml::parse(FileId(0), black_box(&text)).unwrap())
        });
        group.bench_function(BenchmarkId::new("compile_str", routes), |b| {
            b.iter(|| gatefold_compiler::compile_str("synth.yaml", black_box(&text)))
        });
        group.finish();
    }
}

criterion_group!(benches, frontend);
criterion_main!(benches);
