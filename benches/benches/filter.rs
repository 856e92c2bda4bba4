//! Throughput of `espresso-filter-core` against its limit and named peers, in one run.
//!
//! Data: `benches/data/` (its `SOURCES.md` gives sources, licences and how `make_data.py`
//! rebuilds them): `corpus/{en,zh,mixed}.txt` and the dictionary `dict/zh-sensitive.txt` (14k
//! words, danger) + `dict/en-profanity.tsv` (`word<TAB>severity`, loaded as `word<TAB>category`,
//! normal). When a file is missing, generated data of the same shape is used instead (and the run
//! says so).
//!
//! Every case checks the corpus one line at a time (a line is a request: 100-170 bytes on
//! average), so per-call costs count. Cases, per corpus:
//! - `engine`: `Dictionary::check` with every normalization on (fold, case, width, t2s, noise,
//!   collapse), verification, masking and the response;
//! - `raw-ac-overlapping`: the same automaton (same keys, same kind) over the same lines already
//!   normalized, counting overlapping matches: the limit, as the engine needs every candidate;
//! - `raw-ac-leftmost`: the same keys with leftmost-longest non-overlapping search, for reference;
//! - `rustrict` (en only): `CensorStr::censor` per line, with rustrict's own dictionary;
//! - `regex-alternation`: one case-insensitive regex of every listed word, `replace_all` per line
//!   (how a filter built on regular expressions matches), on the first 256 KiB of each corpus.
//!
//! - `engine+1000-rules`: `Dictionary::check` with the same lists plus 1,000 combination rules
//!   (two lists of 500, one with a 40-character window; `D&v`, `D|D&v`, `D&v&v`, `D&v~v`): `D`
//!   a word of the bench dictionary (how rules are written: a listed word that counts only in
//!   some company), `v` a word or CJK bigram of the corpora of middling frequency (ranks 100 to
//!   20,000), so context parts match on most lines and the combination step runs. Its summary
//!   line gives the throughput ratio to `engine`, measured alternately in five rounds (median),
//!   and the same for a harsher list where every part is a `v`.
//!
//! `build/dictionary` times `Dictionary::build` of both lists (the base fold table is built once
//! per process and is warm; its cold cost is printed). Automaton memory is printed, and the
//! build time and resident memory with pinyin on for the Chinese list.
//!
//! The machine these run on is often shared, so the run ends with a summary measured in on-CPU
//! time of the bench thread (its CPU clock, `CLOCK_THREAD_CPUTIME_ID`): build time (and the part of
//! it that is aho-corasick's own construction), and MB/s of the engine, raw aho-corasick and
//! rustrict, with the ratios the goals are stated in.
//!
//! Run: `cargo bench -p espresso-benches --bench filter -- --warm-up-time 1 --measurement-time 3`
#![allow(missing_docs)] // `criterion_group!` defines an undocumented public fn

use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use espresso_filter_core::{Dictionary, Level, ListSource, Options, Sources};

#[path = "../examples/common/rules_lists.rs"]
mod rules_lists;
use rules_lists::{Rng, rules_lists, with_rules};

struct Data {
    generated: bool,
    corpora: Vec<(&'static str, String)>,
    sources: Sources,
    words: Vec<String>,
}

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data")
}

fn load_data() -> Data {
    let dir = data_dir();
    let read = |p: &str| std::fs::read_to_string(dir.join(p)).ok();
    if let (Some(en), Some(zh), Some(mixed), Some(zh_dict), Some(en_dict)) = (
        read("corpus/en.txt"),
        read("corpus/zh.txt"),
        read("corpus/mixed.txt"),
        read("dict/zh-sensitive.txt"),
        read("dict/en-profanity.tsv"),
    ) {
        let words = zh_dict
            .lines()
            .chain(en_dict.lines())
            .filter_map(|l| l.split('\t').next())
            .map(str::to_string)
            .collect();
        let sources = Sources::new()
            .list(ListSource::file(dir.join("dict/zh-sensitive.txt"), Level::Danger).category("zh"))
            .list(ListSource::file(
                dir.join("dict/en-profanity.tsv"),
                Level::Normal,
            ));
        return Data {
            generated: false,
            corpora: vec![("en", en), ("zh", zh), ("mixed", mixed)],
            sources,
            words,
        };
    }
    generated_data()
}

fn generated_data() -> Data {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    const EN: &[&str] = &[
        "the",
        "of",
        "and",
        "to",
        "a",
        "in",
        "that",
        "is",
        "was",
        "he",
        "for",
        "it",
        "with",
        "as",
        "his",
        "on",
        "be",
        "at",
        "by",
        "I",
        "this",
        "had",
        "not",
        "are",
        "but",
        "from",
        "or",
        "have",
        "an",
        "they",
        "which",
        "one",
        "you",
        "were",
        "her",
        "all",
        "she",
        "there",
        "would",
        "their",
        "we",
        "him",
        "been",
        "has",
        "when",
        "who",
        "will",
        "more",
        "no",
        "if",
        "classic",
        "assassin",
        "election",
        "committee",
        "jury",
        "county",
        "said",
        "Atlanta",
    ];
    let cjk = |rng: &mut Rng| char::from_u32(0x4E00 + rng.below(0x5000) as u32).unwrap_or('中');
    let mut en = String::new();
    while en.len() < 2_000_000 {
        let n = 8 + rng.below(20);
        let line: Vec<&str> = (0..n).map(|_| EN[rng.below(EN.len())]).collect();
        en.push_str(&line.join(" "));
        en.push_str(".\n");
    }
    let mut zh = String::new();
    while zh.len() < 1_500_000 {
        let n = 20 + rng.below(80);
        for i in 0..n {
            zh.push(cjk(&mut rng));
            if i % 12 == 11 {
                zh.push('，');
            }
        }
        zh.push_str("。\n");
    }
    let mut mixed = String::new();
    let (el, zl): (Vec<&str>, Vec<&str>) = (en.lines().collect(), zh.lines().collect());
    for i in 0..10_000 {
        mixed.push_str(if i % 2 == 0 {
            el[i % el.len()]
        } else {
            zl[i % zl.len()]
        });
        mixed.push('\n');
    }
    let mut zh_words = Vec::new();
    for _ in 0..14_000 {
        let n = 2 + rng.below(3);
        zh_words.push((0..n).map(|_| cjk(&mut rng)).collect::<String>());
    }
    let en_words: Vec<String> = (0..3_000)
        .map(|_| {
            let n = 3 + rng.below(6);
            (0..n)
                .map(|_| (b'a' + rng.below(26) as u8) as char)
                .collect()
        })
        .collect();
    let sources = Sources::new()
        .list(ListSource::inline(
            "zh-sensitive.txt",
            zh_words.join("\n"),
            Level::Danger,
        ))
        .list(ListSource::inline(
            "en-profanity.txt",
            en_words.join("\n"),
            Level::Normal,
        ));
    let words = zh_words.into_iter().chain(en_words).collect();
    Data {
        generated: true,
        corpora: vec![("en", en), ("zh", zh), ("mixed", mixed)],
        sources,
        words,
    }
}

/// On-CPU time of this thread (its CPU clock), so figures survive a busy machine; falls back to
/// wall time outside Unix.
fn cpu_now() -> Duration {
    // The thread's CPU clock: `/proc/thread-self/schedstat` moves only at scheduler ticks
    // (4 ms here), which made a 35-90 ms corpus's ratio move in steps of 0.04-0.08.
    #[cfg(unix)]
    {
        let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
        Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
    }
    #[cfg(not(unix))]
    {
        static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
        START.get_or_init(Instant::now).elapsed()
    }
}

/// Resident memory of this process (Linux `/proc/self/statm`), 0 elsewhere.
fn rss_bytes() -> usize {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<usize>().ok())
        .map_or(0, |pages| pages * 4096)
}

/// Median on-CPU time of `runs` runs of `f`.
fn cpu_median(runs: usize, mut f: impl FnMut() -> usize) -> Duration {
    let mut v: Vec<Duration> = (0..runs)
        .map(|_| {
            let t = cpu_now();
            black_box(f());
            cpu_now() - t
        })
        .collect();
    v.sort();
    v[runs / 2]
}

fn bench(c: &mut Criterion) {
    let data = load_data();
    if data.generated {
        println!(
            "filter bench: {} not found, using GENERATED data (figures are not comparable)",
            data_dir().display()
        );
    } else {
        println!("filter bench: data from {}", data_dir().display());
    }

    let t = Instant::now();
    let dict = Dictionary::build(&data.sources, Options::default()).expect("dictionary builds");
    let cold = t.elapsed();
    let with_rules = |anchored: bool| {
        let sources = with_rules(
            &data.sources,
            rules_lists(&data.corpora, &data.words, anchored),
        );
        Dictionary::build(&sources, Options::default()).expect("dictionary builds")
    };
    let rules_dict = with_rules(true);
    let harsh_dict = with_rules(false);
    println!(
        "filter bench: with rules: {} words + {} rules, automaton {:.2} MiB",
        rules_dict.stats().words,
        rules_dict.stats().rules,
        rules_dict.stats().automaton_bytes as f64 / (1 << 20) as f64,
    );
    let stats = dict.stats();
    // The automaton as the raw baselines see it: the engine's own keys.
    let keys: Vec<String> = data
        .words
        .iter()
        .map(|w| dict.normalize(w).as_str().to_string())
        .filter(|k| !k.is_empty())
        .collect();
    let ac_overlap = AhoCorasick::builder()
        .match_kind(MatchKind::Standard)
        .kind(Some(AhoCorasickKind::ContiguousNFA))
        .build(&keys)
        .expect("automaton builds");
    let ac_leftmost = AhoCorasick::builder()
        .match_kind(MatchKind::LeftmostLongest)
        .build(&keys)
        .expect("automaton builds");
    println!(
        "filter bench: {} words + {} allowed ({} skipped); first build {:.1} ms (includes the \
         one-time base fold + t2s tables); automaton {:.2} MiB ({:?}); raw leftmost automaton \
         {:.2} MiB ({:?})",
        stats.words,
        stats.allowed,
        stats.skipped,
        cold.as_secs_f64() * 1e3,
        stats.automaton_bytes as f64 / (1 << 20) as f64,
        ac_overlap.kind(),
        ac_leftmost.memory_usage() as f64 / (1 << 20) as f64,
        ac_leftmost.kind(),
    );

    let mut g = c.benchmark_group("build");
    g.sample_size(10);
    g.bench_function("dictionary", |b| {
        b.iter(|| {
            Dictionary::build(black_box(&data.sources), Options::default()).map(|d| d.version())
        })
    });
    g.finish();
    let build_cpu = cpu_median(11, || {
        Dictionary::build(&data.sources, Options::default()).map_or(0, |d| d.stats().words)
    });
    let ac_only_cpu = cpu_median(11, || {
        AhoCorasick::builder()
            .match_kind(MatchKind::Standard)
            .kind(Some(AhoCorasickKind::ContiguousNFA))
            .build(&keys)
            .map_or(0, |a| a.patterns_len())
    });
    // pinyin on for the Chinese list: build time and automaton memory
    let pinyin_sources = Sources {
        lists: data
            .sources
            .lists
            .iter()
            .cloned()
            .map(|l| {
                let zh = l.category.as_deref() == Some("zh") || l.data.name().contains("zh");
                l.pinyin(zh)
            })
            .collect(),
        allow: data.sources.allow.clone(),
    };
    // resident memory growth while it is built and held (the build's temporaries included;
    // a build without pinyin reuses pages freed earlier, so its growth says nothing)
    let rss_before = rss_bytes();
    let pinyin_dict =
        Dictionary::build(&pinyin_sources, Options::default()).expect("dictionary builds");
    let pinyin_rss = rss_bytes().saturating_sub(rss_before);
    let pinyin_stats = pinyin_dict.stats();
    drop(pinyin_dict);
    let pinyin_cpu = cpu_median(5, || {
        Dictionary::build(&pinyin_sources, Options::default()).map_or(0, |d| d.stats().words)
    });
    let mut summary = vec![format!(
        "build of {} words: {:.1} ms on-CPU (median of 11), of which aho-corasick alone on the \
         same keys: {:.1} ms; automaton {:.2} MiB",
        stats.words,
        build_cpu.as_secs_f64() * 1e3,
        ac_only_cpu.as_secs_f64() * 1e3,
        stats.automaton_bytes as f64 / (1 << 20) as f64,
    )];
    summary.push(format!(
        "build with pinyin on for the Chinese list: {:.1} ms on-CPU (median of 5), {} words + \
         {} pinyin spellings, automaton {:.2} MiB; resident memory grew {:.1} MiB building it",
        pinyin_cpu.as_secs_f64() * 1e3,
        pinyin_stats.words,
        pinyin_stats.pinyin,
        pinyin_stats.automaton_bytes as f64 / (1 << 20) as f64,
        pinyin_rss as f64 / (1 << 20) as f64,
    ));

    // Regex alternation of every word (case-insensitive), as a regexp-based filter matches.
    let mut sorted: Vec<&String> = data.words.iter().collect();
    sorted.sort_by_key(|w| std::cmp::Reverse(w.len()));
    let pattern = sorted
        .iter()
        .map(|w| regex::escape(w))
        .collect::<Vec<_>>()
        .join("|");
    let t = Instant::now();
    let re = regex::RegexBuilder::new(&pattern)
        .case_insensitive(true)
        .size_limit(1 << 30)
        .dfa_size_limit(1 << 30)
        .build()
        .expect("regex builds");
    println!(
        "filter bench: regex alternation of {} words built in {:.1} ms",
        sorted.len(),
        t.elapsed().as_secs_f64() * 1e3
    );

    for (name, text) in &data.corpora {
        let lines: Vec<&str> = text.lines().collect();
        let bytes: usize = lines.iter().map(|l| l.len()).sum();
        let normalized: Vec<String> = lines
            .iter()
            .map(|l| dict.normalize(l).as_str().to_string())
            .collect();
        let nbytes: usize = normalized.iter().map(String::len).sum();
        let hits: usize = lines.iter().map(|l| dict.find(l).len()).sum();
        let rule_hits: usize = lines
            .iter()
            .map(|l| {
                rules_dict
                    .find(l)
                    .iter()
                    .filter(|h| h.category == "combination")
                    .count()
            })
            .sum();
        let raw: usize = normalized
            .iter()
            .map(|l| ac_overlap.find_overlapping_iter(l.as_str()).count())
            .sum();
        println!(
            "filter bench: {name}: {} lines, {:.2} MB ({:.2} MB normalized), {hits} hits, {raw} \
             raw candidates; with rules, {rule_hits} hits of rules",
            lines.len(),
            bytes as f64 / 1e6,
            nbytes as f64 / 1e6
        );

        let mbps = |d: Duration, b: usize| b as f64 / 1e6 / d.as_secs_f64();
        let engine_cpu = cpu_median(5, || lines.iter().map(|l| dict.check(l).hits.len()).sum());
        let raw_cpu = cpu_median(5, || {
            normalized
                .iter()
                .map(|l| ac_overlap.find_overlapping_iter(l.as_str()).count())
                .sum()
        });
        let mut line = format!(
            "{name}: engine {:.1} MB/s, raw aho-corasick {:.1} MB/s (engine/raw {:.2}x)",
            mbps(engine_cpu, bytes),
            mbps(raw_cpu, bytes),
            raw_cpu.as_secs_f64() / engine_cpu.as_secs_f64()
        );
        if *name == "en" {
            use rustrict::CensorStr;
            let rr = cpu_median(3, || lines.iter().map(|l| l.censor().len()).sum());
            line += &format!(
                ", rustrict {:.2} MB/s (engine/rustrict {:.1}x)",
                mbps(rr, bytes),
                rr.as_secs_f64() / engine_cpu.as_secs_f64()
            );
        }
        summary.push(line);
        // the same lists plus 1,000 rules, alternating with the plain lists (five rounds)
        for (label, ruled_dict) in [
            ("1,000 rules", &rules_dict),
            ("1,000 rules of corpus words only", &harsh_dict),
        ] {
            let mut ratios: Vec<f64> = (0..5)
                .map(|_| {
                    let plain =
                        cpu_median(1, || lines.iter().map(|l| dict.check(l).hits.len()).sum());
                    let ruled = cpu_median(1, || {
                        lines.iter().map(|l| ruled_dict.check(l).hits.len()).sum()
                    });
                    plain.as_secs_f64() / ruled.as_secs_f64()
                })
                .collect();
            ratios.sort_by(f64::total_cmp);
            summary.push(format!(
                "{name}: engine with {label} / engine without: {:.3}x throughput (median of 5 \
                 alternating rounds; rounds {:.3}..{:.3})",
                ratios[2], ratios[0], ratios[4]
            ));
        }

        let mut g = c.benchmark_group(format!("filter/{name}"));
        g.sample_size(10);
        g.throughput(Throughput::Bytes(bytes as u64));
        g.bench_function("engine", |b| {
            b.iter(|| {
                let mut n = 0usize;
                for l in &lines {
                    n += dict.check(black_box(l)).hits.len();
                }
                n
            })
        });
        g.bench_function("engine+1000-rules", |b| {
            b.iter(|| {
                let mut n = 0usize;
                for l in &lines {
                    n += rules_dict.check(black_box(l)).hits.len();
                }
                n
            })
        });
        g.bench_function("raw-ac-overlapping", |b| {
            b.iter(|| {
                let mut n = 0usize;
                for l in &normalized {
                    n += ac_overlap
                        .find_overlapping_iter(black_box(l.as_str()))
                        .count();
                }
                n
            })
        });
        g.bench_function("raw-ac-leftmost", |b| {
            b.iter(|| {
                let mut n = 0usize;
                for l in &normalized {
                    n += ac_leftmost.find_iter(black_box(l.as_str())).count();
                }
                n
            })
        });
        if *name == "en" {
            g.bench_function("rustrict", |b| {
                use rustrict::CensorStr;
                b.iter(|| {
                    let mut n = 0usize;
                    for l in &lines {
                        n += black_box(*l).censor().len();
                    }
                    n
                })
            });
        }
        g.finish();

        // regex on a sample: the first 256 KiB of lines
        let mut sample = Vec::new();
        let mut sbytes = 0usize;
        for l in &lines {
            if sbytes >= 256 << 10 {
                break;
            }
            sbytes += l.len();
            sample.push(*l);
        }
        let mut g = c.benchmark_group(format!("filter/{name}"));
        g.sample_size(10);
        g.throughput(Throughput::Bytes(sbytes as u64));
        g.bench_with_input(
            BenchmarkId::new("regex-alternation", "256KiB"),
            &sample,
            |b, sample| {
                b.iter(|| {
                    let mut n = 0usize;
                    for l in sample {
                        n += re.replace_all(black_box(l), "*").len();
                    }
                    n
                })
            },
        );
        g.finish();
    }
    println!("\nfilter bench summary (on-CPU time of this thread, median):");
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
