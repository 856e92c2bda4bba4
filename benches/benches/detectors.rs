//! The contact detectors' cost: the engine with the bench dictionaries (14k Chinese + 3k English
//! words) and every detector off, side by side with the same engine and all four detectors on
//! (`review`), on the bench corpora (`data/corpus/{en,zh,mixed}.txt`, one check per line), and
//! worst cases of 64 KiB (all digits and dots, all digits, digits with spaces, dotted labels, an IM
//! keyword before each piece of a run).
//!
//! Run: `cargo bench -p espresso-benches --bench detectors`. Besides criterion's figures it
//! prints the on-CPU median of alternating runs and the on/off throughput ratio per corpus.
#![allow(missing_docs)] // `criterion_group!` defines an undocumented public fn

use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use espresso_filter_core::{
    DetectorMode, Detectors, Dictionary, Level, ListSource, Options, Sources,
};

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data")
}

fn sources() -> Sources {
    let dir = data_dir();
    Sources::new()
        .list(ListSource::file(dir.join("dict/zh-sensitive.txt"), Level::Danger).category("zh"))
        .list(ListSource::file(
            dir.join("dict/en-profanity.tsv"),
            Level::Normal,
        ))
}

/// The median of `runs` wall times of `f` (the machine is shared: medians, not means).
fn median(runs: usize, mut f: impl FnMut() -> usize) -> Duration {
    let mut v: Vec<Duration> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            black_box(f());
            t.elapsed()
        })
        .collect();
    v.sort();
    v[runs / 2]
}

fn bench(c: &mut Criterion) {
    let sources = sources();
    let off = Dictionary::build(&sources, Options::default()).expect("dictionaries load");
    let on = Dictionary::build(
        &sources,
        Options::default().detectors(Detectors::new().all(DetectorMode::Review)),
    )
    .expect("dictionaries load");
    let mut summary = Vec::new();
    for name in ["en", "zh", "mixed"] {
        let text = std::fs::read_to_string(data_dir().join(format!("corpus/{name}.txt")))
            .expect("bench corpus (benches/data/corpus)");
        let lines: Vec<&str> = text.lines().collect();
        let bytes: usize = lines.iter().map(|l| l.len()).sum();
        let run = |d: &Dictionary| lines.iter().map(|l| d.check(l).hits.len()).sum::<usize>();
        let found = run(&on) - run(&off);
        // alternate off and on so drift on a shared machine hits both alike
        let (mut t_off, mut t_on) = (Vec::new(), Vec::new());
        for _ in 0..5 {
            t_off.push(median(1, || run(&off)));
            t_on.push(median(1, || run(&on)));
        }
        t_off.sort();
        t_on.sort();
        let mbps = |d: Duration| bytes as f64 / 1e6 / d.as_secs_f64();
        summary.push(format!(
            "{name}: off {:.1} MB/s, on {:.1} MB/s, on/off throughput {:.2}x ({found} detections \
             in {} lines)",
            mbps(t_off[2]),
            mbps(t_on[2]),
            t_off[2].as_secs_f64() / t_on[2].as_secs_f64(),
            lines.len()
        ));
        let mut g = c.benchmark_group(format!("detectors/{name}"));
        g.sample_size(10);
        g.throughput(Throughput::Bytes(bytes as u64));
        g.bench_function("off", |b| b.iter(|| run(black_box(&off))));
        g.bench_function("all-on", |b| b.iter(|| run(black_box(&on))));
        g.finish();
    }
    let worst: [(&str, String); 8] = [
        ("digits-and-dots", "1.".repeat(32 << 10)),
        ("digits", "1".repeat(64 << 10)),
        ("spaced-digits", "1 ".repeat(32 << 10)),
        ("dotted-labels", "ab.".repeat((64 << 10) / 3)),
        // every piece a phone candidate: one digit group of thousands of pieces
        ("dashed-digits", "1-".repeat(32 << 10)),
        ("bracketed-digits", "(1)".repeat((64 << 10) / 3)),
        (
            "mobiles-side-by-side",
            "13800138000 ".repeat((64 << 10) / 12),
        ),
        // an IM keyword before each piece of one long id-like run
        ("im-keyword-run", "vx-".repeat((64 << 10) / 3)),
    ];
    let mut g = c.benchmark_group("detectors/worst-64KiB");
    g.sample_size(10);
    for (name, text) in &worst {
        g.throughput(Throughput::Bytes(text.len() as u64));
        g.bench_function(format!("{name}/off"), |b| {
            b.iter(|| off.check(black_box(text)))
        });
        g.bench_function(format!("{name}/all-on"), |b| {
            b.iter(|| on.check(black_box(text)))
        });
        let t = median(11, || on.check(text).hits.len());
        let t0 = median(11, || off.check(text).hits.len());
        summary.push(format!(
            "64 KiB {name}: all on {:.2} ms, off {:.2} ms (median of 11)",
            t.as_secs_f64() * 1e3,
            t0.as_secs_f64() * 1e3
        ));
    }
    g.finish();
    println!("\ndetectors bench summary (wall time, medians of alternating runs):");
    for l in summary {
        println!("  {l}");
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
