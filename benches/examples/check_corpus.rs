//! Checks every line of a bench corpus once, with the contact detectors off or all on, and
//! optionally with the filter bench's 1,000 combination rules: the driver for counting the
//! engine's instructions under callgrind (BENCHMARKS.md, "Contact detectors" and "Filter engine
//! with 1,000 combination rules").
//!
//! ```text
//! cargo build --release -p espresso-benches --example check_corpus
//! valgrind --tool=callgrind target/release/examples/check_corpus zh on
//! ```
//!
//! A third argument adds rules: `rules` (a listed word and corpus words per rule) or
//! `corpus-rules` (every part a corpus word). To count the checks without the dictionary
//! build, collect only inside `check_lines`:
//!
//! ```text
//! valgrind --tool=callgrind --collect-atstart=no --toggle-collect='*check_lines*' \
//!     target/release/examples/check_corpus en off rules
//! ```
use espresso_filter_core::{
    DetectorMode, Detectors, Dictionary, Level, ListSource, Options, Sources,
};
use std::path::PathBuf;

#[path = "common/rules_lists.rs"]
mod rules_lists;

/// Which combination rules the dictionary gets.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Rules {
    None,
    /// `rules_lists(.., anchored = true)`
    Listed,
    /// `rules_lists(.., anchored = false)`
    Corpus,
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rules = match args.get(2).map(String::as_str) {
        None => Some(Rules::None),
        Some("rules") => Some(Rules::Listed),
        Some("corpus-rules") => Some(Rules::Corpus),
        Some(_) => None,
    };
    let (corpus, on, rules) = match (args.get(..2), rules) {
        (Some([corpus, mode]), Some(rules))
            if args.len() <= 3 && (mode == "on" || mode == "off") =>
        {
            (corpus, mode == "on", rules)
        }
        _ => {
            eprintln!("usage: check_corpus <en|zh|mixed> <on|off> [rules|corpus-rules]");
            std::process::exit(2);
        }
    };
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data");
    let read = |p: &str| {
        let path = dir.join(p);
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    };
    let mut sources = Sources::new()
        .list(ListSource::file(dir.join("dict/zh-sensitive.txt"), Level::Danger).category("zh"))
        .list(ListSource::file(
            dir.join("dict/en-profanity.tsv"),
            Level::Normal,
        ));
    if rules != Rules::None {
        // the bench's lists: drawn from every corpus and the listed words
        let corpora = ["en", "zh", "mixed"].map(|c| (c, read(&format!("corpus/{c}.txt"))));
        let (zh, en) = (read("dict/zh-sensitive.txt"), read("dict/en-profanity.tsv"));
        let words: Vec<String> = zh
            .lines()
            .chain(en.lines())
            .filter_map(|l| l.split('\t').next())
            .map(str::to_string)
            .collect();
        let lists = rules_lists::rules_lists(&corpora, &words, rules == Rules::Listed);
        sources = rules_lists::with_rules(&sources, lists);
    }
    let options = if on {
        Options::default().detectors(Detectors::new().all(DetectorMode::Review))
    } else {
        Options::default()
    };
    let dictionary = Dictionary::build(&sources, options).expect("the bench lists load");
    let text = read(&format!("corpus/{corpus}.txt"));
    let started = std::time::Instant::now();
    let (hits, digest) = check_lines(&dictionary, &text);
    eprintln!(
        "{corpus}, detectors {}, {} rules: {hits} hits (digest {digest:016x}) in {:?}",
        if on { "on" } else { "off" },
        dictionary.stats().rules,
        started.elapsed()
    );
}

/// The measured part: every line checked once; the hits and a digest of them (to compare the
/// answers of two builds).
#[inline(never)]
fn check_lines(dictionary: &Dictionary, text: &str) -> (usize, u64) {
    use std::hash::{Hash, Hasher};
    let mut digest = std::collections::hash_map::DefaultHasher::new();
    let mut hits = 0;
    for line in text.lines() {
        for h in dictionary.check(line).hits {
            (h.start, h.end, h.word, h.list).hash(&mut digest);
            hits += 1;
        }
    }
    (hits, digest.finish())
}
