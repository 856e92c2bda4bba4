//! Builds `filter-core/words/pinyin-english.txt`: the common English words that are also pinyin
//! (a syllable, or syllables joined: `he`, `made`, `china`). A pinyin spelling made only of
//! Latin letters does not match a text piece that is one of these words, so English text stays
//! clean when a Chinese list has pinyin on.
//!
//! Words: the even-numbered lines of `benches/data/corpus/en.txt` (the Brown corpus; the odd
//! lines are kept apart as the clean English of the evaluation), lower-cased, seen at least
//! three times. Syllables: every toneless reading the `pinyin` crate gives a CJK Unified
//! Ideograph (U+4E00–U+9FFF), `ü` written `u` and `v`.
//!
//! Run: `cargo run -p espresso-benches --example pinyin_english > filter-core/words/pinyin-english.txt`
#![allow(missing_docs)]

use std::collections::{BTreeMap, HashSet};

use pinyin::ToPinyinMulti;

fn main() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/corpus/en.txt");
    let text = std::fs::read_to_string(&dir).expect("benches/data/corpus/en.txt (see SOURCES.md)");
    let mut syllables: HashSet<String> = HashSet::new();
    for u in 0x4E00u32..=0x9FFF {
        let Some(multi) = char::from_u32(u).and_then(|c| c.to_pinyin_multi()) else {
            continue;
        };
        for p in multi {
            syllables.insert(p.plain().replace('ü', "u"));
            syllables.insert(p.plain().replace('ü', "v"));
        }
    }
    let longest = syllables.iter().map(String::len).max().unwrap_or(0);
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for line in text.lines().step_by(2) {
        for w in line.split(|c: char| !c.is_ascii_alphabetic()) {
            if !w.is_empty() {
                *counts.entry(w.to_ascii_lowercase()).or_default() += 1;
            }
        }
    }
    // can `w` be cut into syllables? (dynamic programming over prefixes)
    let segments = |w: &str| {
        let mut ok = vec![false; w.len() + 1];
        ok[0] = true;
        for end in 1..=w.len() {
            ok[end] = (end.saturating_sub(longest)..end)
                .any(|start| ok[start] && syllables.contains(&w[start..end]));
        }
        ok[w.len()]
    };
    println!(
        "# Common English words that are also pinyin (a syllable, or syllables joined), for the\n\
         # English-word rule of pinyin matching. Generated; do not edit. Rebuild with\n\
         # `cargo run -p espresso-benches --example pinyin_english > filter-core/words/pinyin-english.txt`\n\
         # (words seen 3+ times in the even lines of benches/data/corpus/en.txt, the Brown corpus;\n\
         # syllables from the `pinyin` crate)."
    );
    for (w, n) in counts {
        if n >= 3 && segments(&w) {
            println!("{w}");
        }
    }
}
