//! Cost of the espresso-filter-stages cache stage on a hit, against checking again.
//!
//! One request is one line of `benches/data/corpus/mixed.txt` (or a generated line when the
//! file is missing), checked by the builtin engine. Cases:
//! - `engine`: `FilterService` alone, the work a cache hit saves;
//! - `cache-hit`: `Cache<FilterService>` answering from the local (moka) level: hash the content,
//!   look it up, clone the cached response;
//! - `cache-miss-local`: the same stack with a fresh line every time (hash, lookup, check,
//!   store), the cost of a cache that never hits.
//!
//! Each case runs the service's future on a current-thread Tokio runtime with `block_on`, the
//! same overhead in every case.
//!
//! Run: `cargo bench -p espresso-benches --bench filter_stages -- --warm-up-time 1 --measurement-time 3`
#![allow(missing_docs)] // `criterion_group!` defines an undocumented public fn

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use espresso_filter_core::{Engine, FilterRequest, FilterService};
use espresso_filter_stages::CacheLayer;
use tower::{Layer, Service};

fn lines() -> Vec<String> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/corpus/mixed.txt");
    let lines: Vec<String> = std::fs::read_to_string(&path)
        .map(|text| {
            text.lines()
                .filter(|l| !l.trim().is_empty())
                .take(1_000)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    if lines.is_empty() {
        eprintln!("{} absent: generated lines", path.display());
        return (0..1_000)
            .map(|i| format!("line {i}: some ordinary text, 你好世界, with a shit word in it"))
            .collect();
    }
    lines
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let engine = Engine::builtin();
    let lines = lines();
    let mut group = c.benchmark_group("filter_stages");

    let mut plain = FilterService::new(engine.clone());
    let mut i = 0;
    group.bench_function("engine", |b| {
        b.iter(|| {
            i = (i + 1) % lines.len();
            let request = FilterRequest::new(lines[i].clone());
            black_box(rt.block_on(plain.call(request)).unwrap())
        })
    });

    let mut cached = CacheLayer::new(engine.clone())
        .max_entries(100_000)
        .layer(FilterService::new(engine.clone()));
    for line in &lines {
        rt.block_on(cached.call(FilterRequest::new(line.clone())))
            .unwrap();
    }
    group.bench_function("cache-hit", |b| {
        b.iter(|| {
            i = (i + 1) % lines.len();
            let request = FilterRequest::new(lines[i].clone());
            black_box(rt.block_on(cached.call(request)).unwrap())
        })
    });

    let mut n = 0u64;
    group.bench_function("cache-miss-local", |b| {
        b.iter(|| {
            i = (i + 1) % lines.len();
            n += 1;
            let request = FilterRequest::new(format!("{n} {}", lines[i]));
            black_box(rt.block_on(cached.call(request)).unwrap())
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
