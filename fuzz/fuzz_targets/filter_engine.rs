//! The filter engine on fuzzed word lists, options and text.
//!
//! Input layout (readable seeds, see the corpus):
//! - byte 0: options. bit 0: repeat collapse off; bit 1: `Charset::common()`; bits 2-3: noise
//!   set (default, none, default without whitespace, only `#*`); bits 4-5: mask characters;
//!   bit 6: pinyin on for both lists.
//! - byte 1: which listed word to insert between spaces; bytes 2-3: where (u16, little endian).
//! - the rest, as UTF-8 (lossy), split on NUL: danger list, normal list, allow list, text.
//!
//! Lists are cut to 16 lines of words and categories of at most 16 chars, the text to 4 KiB.
//!
//! Checked for the text as given, the text with a listed word inserted, and the text split by a
//! hard separator:
//! - no panic; the same answer twice (thread-local scratch buffers are reused);
//! - hits sorted, disjoint, `start < end`, on char boundaries of the original text;
//! - verdict is the maximum over the hits' levels;
//! - every hit names a listed entry with its level and category;
//! - the hit's original slice normalizes exactly as its word does, unless it is a leet or
//!   tone-number reading (a digit or leet symbol in it) or a pinyin spelling;
//! - the masked text is the text with one mask char per hit char (the level's mask), and with
//!   characters outside the charset removed;
//! - a listed word (that normalizes to something) inserted between two spaces is hit, unless
//!   an allow list is loaded (and except the known misses of `known_collapse_start_miss`);
//! - hits before `"\n,\n"` do not depend on what follows it (when `,` is neither noise nor in
//!   any entry).
#![no_main]

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::OnceLock;

use espresso_filter_core::{
    Charset, Engine, Level, ListData, ListSource, NoiseSet, Options, Sources, Verdict,
};
use espresso_fuzz::{RefEntry, first_chars, reference_word_list, truncate_to};
use libfuzzer_sys::fuzz_target;

const MAX_LINES: usize = 16;
const MAX_CHARS: usize = 16;
const MAX_TEXT: usize = 4096;

fn options(flags: u8) -> (Options, NoiseSet) {
    let noise = match (flags >> 2) & 3 {
        0 => NoiseSet::default(),
        1 => NoiseSet::none(),
        2 => NoiseSet::default().whitespace(false),
        _ => NoiseSet::none().chars("#*"),
    };
    let (danger, normal) = match (flags >> 4) & 3 {
        0 => ('*', '*'),
        1 => ('#', '~'),
        2 => ('█', '*'),
        _ => ('x', 'ß'),
    };
    let options = Options::default()
        .collapse_repeats(flags & 1 == 0)
        .charset((flags & 2 != 0).then(Charset::common))
        .noise(noise.clone())
        .mask(Level::Danger, danger)
        .mask(Level::Normal, normal);
    (options, noise)
}

thread_local! {
    /// One engine per options byte: a reload with unchanged options reuses the engine's
    /// normalization table, which is the costly part of a build.
    static ENGINES: RefCell<HashMap<u8, Engine>> = RefCell::new(HashMap::new());
}

/// A word list in the documented format, cut to the bounds: at most 16 entries of at most
/// 16-char words and categories.
fn bounded_list(raw: &str) -> String {
    let mut out = String::new();
    for line in raw.split('\n').take(MAX_LINES) {
        let mut parts = line.split('\t');
        let word = parts.next().unwrap_or("");
        let word = first_chars(word.strip_prefix('\u{FEFF}').unwrap_or(word), MAX_CHARS).trim();
        let category = first_chars(parts.next().unwrap_or(""), MAX_CHARS).trim();
        if word.is_empty() || word.starts_with('#') {
            continue;
        }
        // words only: a word holding a rule operator is escaped (rules are the `word_list`
        // target's and the property tests' concern)
        if word.contains(['&', '|', '~']) {
            for c in word.chars() {
                if "&|~\\".contains(c) {
                    out.push('\\');
                }
                out.push(c);
            }
        } else {
            out.push_str(word);
        }
        if !category.is_empty() {
            out.push('\t');
            out.push_str(category);
        }
        out.push('\n');
    }
    out
}

struct Listed {
    /// (word, level, category) of every blocked entry
    entries: Vec<(String, Level, String)>,
    /// every entry's word, allow-list entries included
    all_words: Vec<String>,
}

fn listed(danger: &[RefEntry], normal: &[RefEntry], allow: &[RefEntry]) -> Listed {
    let mut entries = Vec::new();
    for (list, level, stem) in [
        (danger, Level::Danger, "danger"),
        (normal, Level::Normal, "normal"),
    ] {
        for e in list {
            let category = e.category.clone().unwrap_or_else(|| stem.to_owned());
            entries.push((e.word.clone(), level, category));
        }
    }
    let all_words = danger
        .iter()
        .chain(normal)
        .chain(allow)
        .map(|e| e.word.clone())
        .collect();
    Listed { entries, all_words }
}

fn check_text(
    engine: &Engine,
    options: &Options,
    charset: bool,
    pinyin: bool,
    listed: &Listed,
    text: &str,
) {
    let dict = engine.dictionary();
    let r = engine.check(text);
    assert_eq!(engine.check(text), r, "a second check answered differently");
    assert_eq!(dict.find(text), r.hits, "find and check disagree");

    let mut at = 0;
    for h in &r.hits {
        assert!(
            h.start < h.end && h.end <= text.len(),
            "hit out of bounds: {h:?}"
        );
        assert!(
            text.is_char_boundary(h.start) && text.is_char_boundary(h.end),
            "hit not on char boundaries: {h:?}"
        );
        assert!(h.start >= at, "hits unsorted or overlapping: {:?}", r.hits);
        at = h.end;
        assert!(
            listed
                .entries
                .iter()
                .any(|(w, l, c)| *w == h.word && *l == h.level && *c == h.category),
            "hit names no listed entry: {h:?}"
        );
        let slice = &text[h.start..h.end];
        // leet and tone-number readings (a digit or leet symbol in the hit) and pinyin
        // spellings (Latin letters for a Chinese word) are other readings of the text
        let other_reading = slice
            .bytes()
            .any(|b| b.is_ascii_digit() || b"$@!|+(<#".contains(&b))
            || (pinyin && slice.bytes().any(|b| b.is_ascii_alphabetic()));
        if !other_reading {
            assert_eq!(
                dict.normalize(slice).as_str(),
                dict.normalize(&h.word).as_str(),
                "hit {h:?} ({slice:?}) does not normalize like its word"
            );
        }
    }

    let want = r
        .hits
        .iter()
        .map(|h| match h.level {
            Level::Danger => Verdict::Block,
            Level::Normal => Verdict::Review,
        })
        .max()
        .unwrap_or(Verdict::Pass);
    assert_eq!(r.verdict, want, "verdict does not follow the hits");

    let charset = charset.then(Charset::common);
    let kept = |c: char| charset.as_ref().is_none_or(|cs| cs.contains(c));
    let mut masked = String::new();
    let mut at = 0;
    for h in &r.hits {
        masked.extend(text[at..h.start].chars().filter(|&c| kept(c)));
        let mask = options.mask_for(h.level);
        masked.extend(
            text[h.start..h.end]
                .chars()
                .filter(|&c| kept(c))
                .map(|_| mask),
        );
        at = h.end;
    }
    masked.extend(text[at..].chars().filter(|&c| kept(c)));
    assert_eq!(r.masked, masked, "masked text");
    if charset.is_none() {
        assert_eq!(r.masked.chars().count(), text.chars().count());
    }
}

/// The known miss (RELIABILITY.md, "Fuzzing"): with repeat collapse on, a one-run entry (`kkk`)
/// repeated in consecutive words before a word starting with its character is hit only once
/// (`kkk kkk  kkkx`), since the engine returns one range per automaton match. The other misses
/// this target found (`kek kkk`, `fu u`, `ﬁ ix`, `chapter Ⅻ idiot`) are fixed and checked.
///
/// Skipped here so the target keeps looking for other problems; `artifacts-kept/filter_engine/`
/// holds its reproducer, which fails again with `ESPRESSO_FUZZ_STRICT=1` in the environment.
fn known_collapse_start_miss(engine: &Engine, flags: u8, word: &str, before: &str) -> bool {
    static STRICT: OnceLock<bool> = OnceLock::new();
    if *STRICT.get_or_init(|| std::env::var_os("ESPRESSO_FUZZ_STRICT").is_some_and(|v| v == "1")) {
        return false;
    }
    let collapse = flags & 1 == 0;
    let dict = engine.dictionary();
    let normalized = dict.normalize(word);
    let Some(first) = normalized.as_str().chars().next() else {
        return false;
    };
    if !collapse
        || !dict
            .normalize(&format!("{before} "))
            .as_str()
            .ends_with(first)
    {
        return false;
    }
    // A one-run entry repeated in consecutive words before a word starting with its char is
    // hit once (`kkk kkk  kkkx`): the one miss left after the engine's fix of the others.
    normalized.as_str().chars().count() == 1
}

fn floor_boundary(s: &str, mut i: usize) -> usize {
    i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    let flags = data[0];
    let pick = data[1] as usize;
    let position = u16::from_le_bytes([data[2], data[3]]) as usize;
    let rest = String::from_utf8_lossy(&data[4..]);
    let mut sections = rest.splitn(4, '\0');
    let danger = bounded_list(sections.next().unwrap_or(""));
    let normal = bounded_list(sections.next().unwrap_or(""));
    let allow = bounded_list(sections.next().unwrap_or(""));
    let text = truncate_to(sections.next().unwrap_or(""), MAX_TEXT);

    let parse =
        |list: &str| reference_word_list(list.as_bytes()).expect("bounded lists are well-formed");
    let (ref_danger, ref_normal, ref_allow) = (parse(&danger), parse(&normal), parse(&allow));
    let listed = listed(&ref_danger, &ref_normal, &ref_allow);
    let pinyin = flags & 0x40 != 0;

    let sources = Sources::new()
        .list(ListSource::inline("danger.txt", danger.as_str(), Level::Danger).pinyin(pinyin))
        .list(ListSource::inline("normal.txt", normal.as_str(), Level::Normal).pinyin(pinyin))
        .allow(ListData::Inline {
            name: "allow.txt".into(),
            text: allow.as_str().into(),
        });
    let (options, noise) = options(flags);
    let charset = flags & 2 != 0;
    let engine = ENGINES.with(|engines| {
        engines
            .borrow_mut()
            .entry(flags & 0x3F)
            .or_insert_with(|| Engine::load(&Sources::new(), options.clone()).unwrap())
            .clone()
    });
    engine
        .reload(&sources)
        .expect("well-formed bounded lists always load");
    let dict = engine.dictionary();
    let stats = dict.stats();
    assert_eq!(
        stats.words + stats.allowed + stats.skipped,
        listed.all_words.len(),
        "every entry is either compiled or counted as skipped: {stats:?}"
    );

    check_text(&engine, &options, charset, pinyin, &listed, text);

    // A listed word between two spaces is found.
    if stats.allowed == 0 && !listed.entries.is_empty() {
        let word = &listed.entries[pick % listed.entries.len()].0;
        let at = floor_boundary(text, position);
        let with_word = format!("{} {word} {}", &text[..at], &text[at..]);
        check_text(&engine, &options, charset, pinyin, &listed, &with_word);
        if !dict.normalize(word).as_str().is_empty()
            && !known_collapse_start_miss(&engine, flags, word, &text[..at])
        {
            let (start, end) = (at + 1, at + 1 + word.len());
            let hits = engine.check(&with_word).hits;
            assert!(
                hits.iter().any(|h| h.start < end && h.end > start),
                "listed word {word:?} inserted at {at} not found in {with_word:?}: {hits:?}"
            );
        }
    }

    // Hits are local: a hard separator isolates the text before it.
    let separator_is_hard = !noise.contains(',')
        && listed.all_words.iter().all(|w| {
            let n = dict.normalize(w);
            !n.as_str().contains(',') && !n.as_str().contains('\n')
        });
    if separator_is_hard {
        let at = floor_boundary(text, position);
        let (a, b) = text.split_at(at);
        let joined = format!("{a}\n,\n{b}");
        let alone = engine.check(a).hits;
        let in_a: Vec<_> = engine
            .check(&joined)
            .hits
            .into_iter()
            .filter(|h| h.end <= a.len())
            .collect();
        assert_eq!(
            in_a, alone,
            "hits before a hard separator depend on what follows"
        );
    }
});
