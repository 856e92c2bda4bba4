//! Property tests: the fuzz suite (a `cargo fuzz` target needs nightly, which CI lacks).
//!
//! Inputs mix ASCII, listed words, noise, full-width and styled letters, CJK in both scripts,
//! emoji, combining marks and invisible characters, so the generator reaches the interesting
//! paths (expansions, collapse, boundaries) far more often than uniform random strings would.

use espresso_filter_core::{Engine, ListSource, Options, Sources, Verdict};

/// The built-in lists with pinyin on for both.
fn pinyin_sources() -> Sources {
    let mut s = Sources::builtin();
    s.lists = s
        .lists
        .into_iter()
        .map(|l| l.pinyin(true))
        .collect::<Vec<ListSource>>();
    s
}
use proptest::prelude::*;
use std::sync::LazyLock;

fn piece() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z ]{0,8}",
        Just("fuck".to_string()),
        Just("ass".to_string()),
        Just("傻逼".to_string()),
        Just("操你媽".to_string()),
        Just("ＦＵＣＫ".to_string()),
        Just("𝐟𝐮𝐜𝐤".to_string()),
        Just("ﬁ⑩ß".to_string()),
        Just("😀❤️\u{200B}\u{0334}".to_string()),
        Just("sh1t $hit @$$ b4stard".to_string()),
        Just("sha bi shǎ3 傻bi".to_string()),
        Just("fυϲk ѕһіt но ❶🅰🇦".to_string()),
        "[0-9$!@|+#(<a-z]{1,6}",
        // signs read as letters, full-width leet, and words spelled out a char at a time
        "[a-z¡¢¥§µμßø€０-９ａ-ｚ＠＄！（]{1,6}",
        "([a-z0-9$!€ｓ１][ .*·]){2,5}",
        Just("sh¡t fu¢k ßitch r€tard ｓｈ１ｔ s h 1 t fuck™ fuck🇺🇸".to_string()),
        "[*._|@·\\- ]{1,3}",
        "[傻逼國家你好]{1,4}",
        any::<char>().prop_map(|c| c.to_string()),
        ".{0,4}",
    ]
}

fn text() -> impl Strategy<Value = String> {
    prop::collection::vec(piece(), 0..12).prop_map(|v| v.concat())
}

/// Built once: building in every case would dominate the run time.
static ENGINES: LazyLock<Vec<Engine>> = LazyLock::new(|| {
    vec![
        Engine::builtin(),
        Engine::load(
            &Sources::builtin(),
            Options::default().collapse_repeats(false),
        )
        .unwrap(),
        Engine::load(&pinyin_sources(), Options::default()).unwrap(),
    ]
});

fn engines() -> &'static [Engine] {
    &ENGINES
}

fn builtin() -> &'static Engine {
    &ENGINES[0]
}

/// A case `hits_are_local` once found: a symbol-only leet token (`@|`) before a hard separator
/// was read together with a leet token after it, and found `ass` from the `@`.
#[test]
fn a_leet_window_never_reaches_past_a_hard_separator() {
    let e = builtin();
    let (a, b) = ("@|*ass", "sh1t $hit @$$ b4stard");
    let alone = e.check(a).hits;
    let joined = e.check(&format!("{a}\n,\n{b}")).hits;
    assert_eq!(alone.len(), 1, "{alone:?}");
    let in_a: Vec<_> = joined.into_iter().filter(|h| h.end <= a.len()).collect();
    assert_eq!(in_a, alone);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    /// No panic, hits on char boundaries, sorted and disjoint, verdict consistent.
    #[test]
    fn hits_are_well_formed(s in text()) {
        for e in engines() {
            let r = e.check(&s);
            let mut at = 0;
            for h in &r.hits {
                prop_assert!(h.start < h.end && h.end <= s.len());
                prop_assert!(s.is_char_boundary(h.start) && s.is_char_boundary(h.end));
                prop_assert!(h.start >= at, "overlap or unsorted: {:?}", r.hits);
                at = h.end;
            }
            let want = r.hits.iter().map(|h| match h.level {
                espresso_filter_core::Level::Danger => Verdict::Block,
                espresso_filter_core::Level::Normal => Verdict::Review,
            }).max().unwrap_or(Verdict::Pass);
            prop_assert_eq!(r.verdict, want);
        }
    }

    /// Masking keeps every char outside hits and the char count of the whole text.
    #[test]
    fn masking_keeps_text_outside_hits(s in text()) {
        let r = builtin().check(&s);
        prop_assert_eq!(r.masked.chars().count(), s.chars().count());
        let mut want = String::new();
        let mut at = 0;
        for h in &r.hits {
            want.push_str(&s[at..h.start]);
            want.extend(std::iter::repeat_n('*', s[h.start..h.end].chars().count()));
            at = h.end;
        }
        want.push_str(&s[at..]);
        prop_assert_eq!(r.masked, want);
    }

    /// The offset map: every normalized char maps to a non-empty range on original char
    /// boundaries, and ranges never go backwards.
    #[test]
    fn offset_map_is_monotone_and_on_boundaries(s in text()) {
        let n = builtin().dictionary().normalize(&s);
        let mut last = 0;
        for (i, c) in n.as_str().char_indices() {
            let r = n.original_range(&s, i..i + c.len_utf8());
            prop_assert!(r.start < r.end, "{:?} -> {:?}", c, r);
            prop_assert!(s.is_char_boundary(r.start) && s.is_char_boundary(r.end));
            prop_assert!(r.start >= last);
            last = r.start;
        }
    }

    /// Hits do not depend on what surrounds the text after a hard separator.
    #[test]
    fn hits_are_local(a in text(), b in text()) {
        let e = builtin();
        let ra = e.check(&a);
        let joined = format!("{a}\n,\n{b}");
        let rj = e.check(&joined);
        let in_a: Vec<_> = rj.hits.iter().filter(|h| h.end <= a.len()).cloned().collect();
        // repeats of a hit's last char may not cross "\n,\n"; the comma is not noise
        prop_assert_eq!(in_a, ra.hits);
    }

    /// Every listed word is found when inserted between spaces.
    #[test]
    fn listed_words_are_found(idx in 0usize..40, pre in "[a-z]{0,5}", post in "[a-z]{0,5}") {
        let words: Vec<&str> = espresso_filter_core::builtin::DANGER
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
            .map(|l| l.split('\t').next().unwrap())
            .collect();
        let w = words[idx % words.len()];
        let s = format!("{pre} {w} {post}");
        let r = builtin().check(&s);
        prop_assert_eq!(r.verdict, Verdict::Block, "{}", s);
    }
}
