//! Checks every line of a bench corpus once, with the contact detectors off or all on: the
//! driver for counting the engine's instructions under callgrind (BENCHMARKS.md, "Contact
//! detectors").
//!
//! ```text
//! cargo build --release -p espresso-benches --example check_corpus
//! valgrind --tool=callgrind target/release/examples/check_corpus zh on
//! ```
use espresso_filter_core::{
    DetectorMode, Detectors, Dictionary, Level, ListSource, Options, Sources,
};
use std::path::PathBuf;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (corpus, on) = match args.as_slice() {
        [corpus, mode] if mode == "on" || mode == "off" => (corpus, mode == "on"),
        _ => {
            eprintln!("usage: check_corpus <en|zh|mixed> <on|off>");
            std::process::exit(2);
        }
    };
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data");
    let sources = Sources::new()
        .list(ListSource::file(dir.join("dict/zh-sensitive.txt"), Level::Danger).category("zh"))
        .list(ListSource::file(
            dir.join("dict/en-profanity.tsv"),
            Level::Normal,
        ));
    let options = if on {
        Options::default().detectors(Detectors::new().all(DetectorMode::Review))
    } else {
        Options::default()
    };
    let dictionary = Dictionary::build(&sources, options).expect("the bench lists load");
    let path = dir.join(format!("corpus/{corpus}.txt"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let started = std::time::Instant::now();
    let hits: usize = text.lines().map(|l| dictionary.check(l).hits.len()).sum();
    eprintln!(
        "{corpus}, detectors {}: {hits} hits in {:?}",
        if on { "on" } else { "off" },
        started.elapsed()
    );
}
