//! What route conditions (`match`) add to matching a request, at 1,000
//! routes: the dispatch view's answer for one request, on a spec whose
//! route for that path has no conditions (`plain`) and on the same spec
//! where a route with two header conditions comes first on that path
//! (`two_headers`, once meeting both, once failing the second). Headers are
//! read from an `http::HeaderMap` as the reference gateway reads them.
//!
//! Goal (issue 7): a route with two header conditions adds under 100 ns.
//! `docs/performance.md` has the numbers.
//!
//! Run: `cargo bench -p gatefold-compiler --bench matching`.

use criterion::{criterion_group, criterion_main, Criterion};
use gatefold_compiler::dispatch::{Dispatch, DispatchView};
use gatefold_compiler::ir::{Method, ValidIr};
use std::hint::black_box;
use std::time::Duration;

const ROUTES_PER_API: usize = 50;

/// 1,000 synthetic routes, then one api on `/bench/items/*`: a plain
/// route, preceded (when `conditional`) by one with two header conditions.
fn spec(conditional: bool) -> ValidIr {
    let mut text = gatefold_compiler::synth::spec(1_000 / ROUTES_PER_API, ROUTES_PER_API, 1);
    let v2 = if conditional {
        "      v2:\n        path: /items/*\n        match: { headers: { x-version: \"2\", x-tenant: acme } }\n"
    } else {
        ""
    };
    // The synthetic spec ends with its apis (and defines `svc-0`), so a
    // new api can follow.
    text.push_str(&format!(
        "  bench:\n    base-path: /bench\n    upstream: svc-0\n    routes:\n{v2}      items:\n        path: /items/*\n"
    ));
    let compiled = gatefold_compiler::compile_str("bench.yaml", &text);
    match compiled.ir {
        Some(ir) => ir,
        None => panic!("{}", compiled.render()),
    }
}

fn request(version: &str) -> http::HeaderMap {
    let mut h = http::HeaderMap::new();
    for (k, v) in [
        ("host", "bench.example"),
        ("user-agent", "criterion"),
        ("accept", "*/*"),
        ("x-tenant", "acme"),
        ("x-version", version),
    ] {
        h.insert(k, v.parse().unwrap());
    }
    h
}

fn dispatch(ir: &ValidIr, view: &DispatchView, headers: &http::HeaderMap) -> Dispatch {
    let holds = |r: usize| {
        ir.routes[r]
            .matcher
            .conditions
            .holds(|n| headers.get(n).map(|v| v.as_bytes()), None)
    };
    view.dispatch_with(
        Some("bench.example"),
        black_box("/bench/items/42"),
        Some(Method::Get),
        holds,
    )
}

fn matching(c: &mut Criterion) {
    let plain = spec(false);
    let cond = spec(true);
    assert!(plain.routes.len() > 1_000 && cond.routes.len() > 1_000);
    let (plain_view, cond_view) = (DispatchView::new(&plain), DispatchView::new(&cond));
    let (meets, fails) = (request("2"), request("3"));
    let route = |ir: &ValidIr, d: Dispatch| match d {
        Dispatch::Route(r) => ir.routes[r].id.to_string(),
        other => format!("{other:?}"),
    };
    assert_eq!(
        route(&plain, dispatch(&plain, &plain_view, &meets)),
        "bench.items"
    );
    assert_eq!(
        route(&cond, dispatch(&cond, &cond_view, &meets)),
        "bench.v2"
    );
    assert_eq!(
        route(&cond, dispatch(&cond, &cond_view, &fails)),
        "bench.items"
    );

    let mut group = c.benchmark_group("matching/1k");
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(3));
    group.bench_function("plain", |b| {
        b.iter(|| dispatch(&plain, &plain_view, black_box(&meets)))
    });
    group.bench_function("two_headers_met", |b| {
        b.iter(|| dispatch(&cond, &cond_view, black_box(&meets)))
    });
    group.bench_function("two_headers_failed", |b| {
        b.iter(|| dispatch(&cond, &cond_view, black_box(&fails)))
    });
    group.finish();
}

criterion_group!(benches, matching);
criterion_main!(benches);
