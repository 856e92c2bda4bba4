//! The combination rules of the filter bench (`benches/filter.rs`, "engine+1000-rules"),
//! shared with the `check_corpus` example so that callgrind counts the same lists.

use std::collections::HashMap;
use std::num::NonZeroUsize;

use espresso_filter_core::{Level, ListSource, Sources};

/// A small deterministic generator (xorshift): the rules, and the bench's fallback data.
pub(crate) struct Rng(pub(crate) u64);
impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// 1,000 combination rules over the corpora's vocabulary: two word-list texts of 500 rules
/// (the second is loaded with a window). Parts are lowercase English words of 4+ letters and
/// CJK bigrams, ranked by frequency in the corpora, drawn from ranks 100 to 20,000.
pub(crate) fn rules_lists(
    corpora: &[(&'static str, String)],
    dictionary: &[String],
    anchored: bool,
) -> [String; 2] {
    let mut freq: HashMap<String, usize> = HashMap::new();
    for (_, text) in corpora {
        for token in text.split(|c: char| !c.is_alphanumeric()) {
            let cjk: Vec<char> = token.chars().filter(|c| *c as u32 >= 0x4E00).collect();
            if cjk.len() >= 2 {
                for w in cjk.windows(2) {
                    *freq.entry(w.iter().collect()).or_default() += 1;
                }
            } else if token.len() >= 4 && token.chars().all(|c| c.is_ascii_alphabetic()) {
                *freq.entry(token.to_ascii_lowercase()).or_default() += 1;
            }
        }
    }
    let mut vocab: Vec<(String, usize)> = freq.into_iter().collect();
    vocab.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let vocab: Vec<String> = vocab
        .into_iter()
        .skip(100)
        .take(19_900)
        .map(|(w, _)| w)
        .collect();
    // listed words without the rule syntax's characters, and not only noise (an emoji)
    let listed: Vec<&String> = dictionary
        .iter()
        .filter(|w| !w.contains(['&', '|', '~', '\\']) && w.chars().any(char::is_alphanumeric))
        .collect();
    let mut rng = Rng(0x2545_F491_4F6C_DD1D);
    let mut lists = [String::new(), String::new()];
    for i in 0..1_000 {
        let (a, b) = (rng.next() as usize, rng.next() as usize);
        let d = |k: usize| {
            if anchored {
                listed[k % listed.len()].clone()
            } else {
                vocab[k % vocab.len()].clone()
            }
        };
        let mut v = || vocab[rng.below(vocab.len())].clone();
        let rule = match i % 20 {
            0..=9 => format!("{}&{}", d(a), v()),
            10..=13 => format!("{}|{}&{}", d(a), d(b), v()),
            14..=16 => format!("{}&{}&{}", d(a), v(), v()),
            _ => format!("{}&{}~{}", d(a), v(), v()),
        };
        lists[i % 2].push_str(&rule);
        lists[i % 2].push_str("\tcombination\n");
    }
    lists
}

/// `sources` plus the two rule lists, the second with a 40-character window.
pub(crate) fn with_rules(sources: &Sources, [a, b]: [String; 2]) -> Sources {
    sources
        .clone()
        .list(ListSource::inline("rules.txt", a, Level::Normal))
        .list(
            ListSource::inline("rules-window.txt", b, Level::Normal)
                .rule_window(NonZeroUsize::new(40).expect("non-zero")),
        )
}
