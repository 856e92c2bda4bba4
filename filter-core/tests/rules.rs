//! Combination rules in word lists: `a&b` (every part), `a|b` (alternatives), `a~x` (exceptions
//! that veto the hits they overlap), the window, escapes and load errors — and a property test
//! that compares the engine's rule hits with a brute-force model of the documented semantics.

use std::collections::HashSet;
use std::num::NonZeroUsize;

use espresso_filter_core::{Engine, Hit, Level, ListData, ListSource, Options, Sources, Verdict};
use proptest::prelude::*;

fn engine(list: &str) -> Engine {
    engine_of(ListSource::inline(
        "rules.txt",
        list.to_string(),
        Level::Danger,
    ))
}

fn engine_of(list: ListSource) -> Engine {
    Engine::load(&Sources::new().list(list), Options::default()).expect("the list loads")
}

fn spans<'t>(text: &'t str, hits: &[Hit]) -> Vec<&'t str> {
    hits.iter().map(|h| &text[h.start..h.end]).collect()
}

fn window(n: usize) -> NonZeroUsize {
    NonZeroUsize::new(n).expect("non-zero")
}

#[test]
fn a_rule_fires_only_when_every_part_occurs() {
    let e = engine("色情&视频\tporn\n");
    assert_eq!(e.check("色情").verdict, Verdict::Pass);
    assert_eq!(e.check("视频网站").verdict, Verdict::Pass);
    let text = "看视频，很色情";
    let r = e.check(text);
    assert_eq!(r.verdict, Verdict::Block);
    assert_eq!(spans(text, &r.hits), ["视频", "色情"]);
    for h in &r.hits {
        assert_eq!(
            (h.word.as_str(), h.category.as_str(), h.level),
            ("色情&视频", "porn", Level::Danger)
        );
    }
    assert_eq!(r.masked, "看**，很**");
}

#[test]
fn every_occurrence_of_a_part_is_reported_and_masked() {
    let e = engine("色情&视频\n");
    let text = "色情视频，色情";
    let r = e.check(text);
    assert_eq!(spans(text, &r.hits), ["色情", "视频", "色情"]);
    assert_eq!(r.masked, "****，**");
}

#[test]
fn alternatives_count_inside_each_and_part() {
    let e = engine("buy|sell & cheap|discount\tads\n");
    for (text, fires) in [
        ("buy it cheap", true),
        ("we SELL at a discount", true),
        ("buy and sell", false),
        ("cheap discount", false),
        ("a cheap buyer", false), // whole words only, as for any word
    ] {
        assert_eq!(e.check(text).verdict == Verdict::Block, fires, "{text}");
    }
    assert_eq!(e.check("sell, sell, cheap").masked, "****, ****, *****");
}

#[test]
fn an_exception_vetoes_only_the_hits_it_overlaps() {
    let e = engine("赌博~禁止赌博\tgambling\n");
    assert_eq!(e.check("严格禁止赌博").verdict, Verdict::Pass);
    let text = "禁止赌博，但他天天赌博";
    let r = e.check(text);
    assert_eq!(r.verdict, Verdict::Block);
    assert_eq!(spans(text, &r.hits), ["赌博"]);
    assert_eq!(r.hits[0].start, text.rfind("赌博").unwrap());

    // unlike a veto of the whole text: Essex does not clear the sex chat
    let e = engine("sex~essex\n");
    let text = "free sex chat, based in Essex";
    let r = e.check(text);
    assert_eq!(spans(text, &r.hits), ["sex"]);
    assert_eq!(e.check("based in Essex").verdict, Verdict::Pass);
}

#[test]
fn an_exception_that_vetoes_every_hit_of_one_part_stops_the_rule() {
    let e = engine("色情&视频~色情片\n");
    assert_eq!(e.check("色情片和视频").verdict, Verdict::Pass);
    assert_eq!(e.check("色情片和视频，色情").masked, "色情片和**，**");
    // alternatives in an exception, and several exceptions
    let e = engine("赌博~禁止赌博|反对赌博~赌博罪\n");
    assert_eq!(e.check("禁止赌博，反对赌博，赌博罪").verdict, Verdict::Pass);
    assert_eq!(e.check("反对赌博，去赌博").masked, "反对赌博，去**");
}

#[test]
fn a_window_limits_how_far_apart_the_parts_may_be() {
    let list = ListSource::inline("w.txt", "色情&视频\n", Level::Normal).rule_window(window(6));
    let e = engine_of(list);
    // 色情 to 视频 spans 6 characters: in
    assert_eq!(e.check("色情的好视频").verdict, Verdict::Review);
    // 7: out
    assert_eq!(e.check("色情的好的视频").verdict, Verdict::Pass);
    // a part far from every other part is not reported, one close to one is
    let text = "色情，一二三四五六七八九，色情视频";
    let r = e.check(text);
    assert_eq!(spans(text, &r.hits), ["色情", "视频"]);
    assert_eq!(r.hits[0].start, text.rfind("色情").unwrap());
    // the window counts the characters of the text as written, noise included
    assert_eq!(e.check("色情 * 视频").verdict, Verdict::Pass);
    assert_eq!(e.check("色情*视频").verdict, Verdict::Review);
}

#[test]
fn without_a_window_the_parts_may_be_anywhere() {
    let e = engine("色情&视频\n");
    let text = format!("色情{}视频", "好".repeat(5000));
    assert_eq!(e.check(&text).hits.len(), 2);
}

#[test]
fn parts_go_through_the_same_normalization_as_words() {
    let e = engine("色情&视频\nporn&video\n");
    // noise, traditional characters, full-width, case, leet, look-alike letters
    assert_eq!(e.check("色*情 視頻").hits.len(), 2);
    assert_eq!(e.check("ＰＯＲＮ and a VIDEO").hits.len(), 2);
    assert_eq!(e.check("p0rn v1deo").hits.len(), 2);
    assert_eq!(e.check("p o r n, vіdeo").hits.len(), 2);
    // and the same word boundaries
    assert_eq!(e.check("pornography videos").verdict, Verdict::Pass);
    // pinyin, for a list with pinyin on
    let list = ListSource::inline("zh.txt", "色情&视频\n", Level::Danger).pinyin(true);
    let e = engine_of(list);
    let text = "seqing 视频";
    assert_eq!(spans(text, &e.check(text).hits), ["seqing", "视频"]);
}

#[test]
fn rules_and_plain_words_share_one_list_and_one_result() {
    let e = engine("fuck\tprofanity\n色情&视频\tporn\nbuy&pills\tspam\n");
    let text = "fuck, buy 色情视频 pills";
    let r = e.check(text);
    assert_eq!(
        spans(text, &r.hits),
        ["fuck", "buy", "色情", "视频", "pills"]
    );
    let words: Vec<&str> = r.hits.iter().map(|h| h.word.as_str()).collect();
    assert_eq!(
        words,
        ["fuck", "buy&pills", "色情&视频", "色情&视频", "buy&pills"]
    );
    assert!(r.hits.windows(2).all(|w| w[0].end <= w[1].start));
    let json = serde_json::to_value(&r.hits[1]).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"word": "buy&pills", "level": "danger", "category": "spam",
            "list": "rules", "start": 6, "end": 9})
    );
}

#[test]
fn overlapping_hits_keep_the_longest_as_for_words() {
    // a plain word inside a rule's longer part: the part wins
    let e = engine("情\n色情&视频\n");
    let text = "色情视频";
    let r = e.check(text);
    assert_eq!(spans(text, &r.hits), ["色情", "视频"]);
    assert!(r.hits.iter().all(|h| h.word == "色情&视频"));
    // the same span as a word and as a rule part: the word is reported
    let e = engine("色情\n色情&视频\n");
    let r = e.check(text);
    assert_eq!(r.hits[0].word, "色情");
    assert_eq!(r.hits[1].word, "色情&视频");
}

#[test]
fn allow_list_entries_suppress_rule_parts_too() {
    let sources = Sources::new()
        .list(ListSource::inline("r.txt", "dick&pic\n", Level::Danger))
        .allow(ListData::Inline {
            name: "allow.txt".into(),
            text: "moby dick\n".into(),
        });
    let e = Engine::load(&sources, Options::default()).unwrap();
    assert_eq!(e.check("a moby dick pic").verdict, Verdict::Pass);
    assert_eq!(e.check("dick pic").verdict, Verdict::Block);
}

#[test]
fn escaped_operators_list_words_that_contain_them() {
    let e = engine("AT\\&T\nrock \\& roll&live\nback\\\\slash\n");
    assert_eq!(spans("call AT&T", &e.check("call AT&T").hits), ["AT&T"]);
    assert_eq!(e.check("call AT&T").hits[0].word, "AT&T");
    let text = "rock & roll, live";
    let r = e.check(text);
    assert_eq!(spans(text, &r.hits), ["rock & roll", "live"]);
    // a line without operators is as written: its backslashes are the word's
    let text = "back\\\\slash";
    assert_eq!(e.check(text).hits[0].word, "back\\\\slash");
}

#[test]
fn invalid_rules_are_load_errors_naming_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    for (body, line, reason) in [
        ("ok\n色情&\n", 2, "empty part in a rule: nothing after `&`"),
        ("ok\n\n&a\n", 3, "nothing before `&`"),
        ("a||b\n", 1, "nothing between `|` and `|`"),
        ("a~b&c\n", 1, "`&` after `~`"),
        ("x\n😀&x\n", 2, "the rule part `😀` is only noise"),
    ] {
        let path = dir.path().join("bad.txt");
        std::fs::write(&path, body).unwrap();
        let err = Engine::load(
            &Sources::new().list(ListSource::file(&path, Level::Danger)),
            Options::default(),
        )
        .unwrap_err()
        .to_string();
        let want = format!("{}:{line}: ", path.display());
        assert!(err.starts_with(&want), "{body:?}: {err}");
        assert!(err.contains(reason), "{body:?}: {err}");
    }
}

#[test]
fn a_rule_in_an_allow_list_is_a_load_error() {
    let sources = Sources::new().allow(ListData::Inline {
        name: "allow.txt".into(),
        text: "fine\nmoby&dick\n".into(),
    });
    let err = Engine::load(&sources, Options::default()).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("allow.txt:2: a combination rule in an allow list"),
        "{err}"
    );
}

#[test]
fn a_bad_rule_on_reload_keeps_the_running_set() {
    let e = engine("色情&视频\n");
    let v = e.version();
    let bad = Sources::new().list(ListSource::inline("r.txt", "a&\n", Level::Danger));
    assert!(
        e.reload(&bad)
            .unwrap_err()
            .to_string()
            .starts_with("r.txt:1:")
    );
    assert_eq!(e.version(), v);
    assert_eq!(e.check("色情视频").verdict, Verdict::Block);
}

#[test]
fn the_version_and_stats_see_rules_and_windows() {
    let plain = ListSource::inline("r.txt", "x\n色情&视频\n", Level::Danger);
    let windowed = plain.clone().rule_window(window(5));
    let a = engine_of(plain.clone());
    let b = engine_of(windowed);
    assert_ne!(a.version(), b.version());
    assert_eq!(a.version(), engine_of(plain).version());
    let stats = a.dictionary().stats();
    assert_eq!((stats.words, stats.rules), (1, 1));
    assert!(a.dictionary().categories().contains(&(Level::Danger, "r")));
}

// === the brute-force model ===

/// The alphabet of the property test: CJK characters match anywhere, without word boundaries,
/// so with collapse off a part occurs exactly where its text does.
const ALPHABET: [char; 4] = ['甲', '乙', '丙', '丁'];

#[derive(Clone, Debug)]
struct ModelRule {
    groups: Vec<Vec<String>>,
    exceptions: Vec<String>,
}

impl ModelRule {
    fn written(&self) -> String {
        let pos: Vec<String> = self.groups.iter().map(|g| g.join("|")).collect();
        let mut s = pos.join("&");
        for e in &self.exceptions {
            s.push('~');
            s.push_str(e);
        }
        s
    }
}

fn word() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(&ALPHABET[..]), 1..3)
        .prop_map(|v| v.into_iter().collect())
}

fn model_rule() -> impl Strategy<Value = ModelRule> {
    (
        prop::collection::vec(prop::collection::vec(word(), 1..3), 1..4),
        prop::collection::vec(
            prop::collection::vec(prop::sample::select(&ALPHABET[..]), 1..4)
                .prop_map(|v| v.into_iter().collect::<String>()),
            0..3,
        ),
    )
        .prop_map(|(groups, exceptions)| ModelRule { groups, exceptions })
}

/// Every occurrence of `needle` in `text`, overlapping ones included, in characters.
fn occurrences(text: &[char], needle: &str) -> Vec<(usize, usize)> {
    let n: Vec<char> = needle.chars().collect();
    (0..text.len())
        .filter(|&i| text[i..].starts_with(&n))
        .map(|i| (i, i + n.len()))
        .collect()
}

/// The candidates of one rule, as documented: exceptions veto the part hits they overlap;
/// every group needs a hit; with a window, a hit counts if it belongs to a choice of one hit
/// per group spanning at most `window` characters.
fn model_rule_hits(text: &[char], r: &ModelRule, window: Option<usize>) -> Vec<(usize, usize)> {
    let vetoes: Vec<(usize, usize)> = r
        .exceptions
        .iter()
        .flat_map(|e| occurrences(text, e))
        .collect();
    let groups: Vec<Vec<(usize, usize)>> = r
        .groups
        .iter()
        .map(|g| {
            g.iter()
                .flat_map(|p| occurrences(text, p))
                .filter(|&(s, e)| !vetoes.iter().any(|&(a, b)| a < e && s < b))
                .collect()
        })
        .collect();
    if groups.iter().any(Vec::is_empty) {
        return Vec::new();
    }
    let Some(n) = window else {
        return groups.concat();
    };
    // every choice of one hit per group
    let mut out = Vec::new();
    let mut choice = vec![0usize; groups.len()];
    loop {
        let picked: Vec<(usize, usize)> = choice.iter().zip(&groups).map(|(&i, g)| g[i]).collect();
        let lo = picked.iter().map(|h| h.0).min().unwrap();
        let hi = picked.iter().map(|h| h.1).max().unwrap();
        if hi - lo <= n {
            out.extend(picked);
        }
        let mut k = 0;
        loop {
            if k == groups.len() {
                return out;
            }
            choice[k] += 1;
            if choice[k] < groups[k].len() {
                break;
            }
            choice[k] = 0;
            k += 1;
        }
    }
}

/// Collapse off: with it on, `甲甲` would also match `甲`, which the model does not know.
static MODEL_ENGINE: std::sync::LazyLock<Engine> = std::sync::LazyLock::new(|| {
    Engine::load(&Sources::new(), Options::default().collapse_repeats(false)).unwrap()
});

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// The engine's hits are exactly a maximal non-overlapping choice among the model's
    /// candidates: each hit is a candidate (span and word), and every candidate overlaps a hit.
    #[test]
    fn rule_hits_match_a_brute_force_model(
        rules in prop::collection::vec(model_rule(), 1..4),
        words in prop::collection::vec(word(), 0..2),
        window in prop::option::of(1usize..8),
        text in prop::collection::vec(prop::sample::select(&ALPHABET[..]), 0..14),
    ) {
        let mut list = String::new();
        for w in &words {
            list.push_str(w);
            list.push('\n');
        }
        for r in &rules {
            list.push_str(&r.written());
            list.push('\n');
        }
        let mut source = ListSource::inline("p.txt", list, Level::Danger);
        if let Some(n) = window {
            source = source.rule_window(NonZeroUsize::new(n).unwrap());
        }
        // one engine, reloaded: its options (and their tables) are built once
        let engine = &*MODEL_ENGINE;
        engine.reload(&Sources::new().list(source)).unwrap();
        let s: String = text.iter().collect();
        let byte = |c: usize| c * '甲'.len_utf8();
        let mut candidates: HashSet<(usize, usize, String)> = HashSet::new();
        for w in &words {
            for (a, b) in occurrences(&text, w) {
                candidates.insert((byte(a), byte(b), w.clone()));
            }
        }
        for r in &rules {
            // a "rule" of one part is a plain word: no window
            let plain = r.groups.len() == 1 && r.groups[0].len() == 1 && r.exceptions.is_empty();
            for (a, b) in model_rule_hits(&text, r, window.filter(|_| !plain)) {
                candidates.insert((byte(a), byte(b), r.written()));
            }
        }
        let r = engine.check(&s);
        for h in &r.hits {
            prop_assert!(
                candidates.contains(&(h.start, h.end, h.word.clone())),
                "hit {h:?} is not a candidate of the model: {candidates:?}"
            );
        }
        prop_assert!(r.hits.windows(2).all(|w| w[0].end <= w[1].start));
        for (a, b, w) in &candidates {
            prop_assert!(
                r.hits.iter().any(|h| h.start < *b && *a < h.end),
                "candidate {w} at {a}..{b} overlaps no hit: {:?}", r.hits
            );
        }
        prop_assert_eq!(r.verdict == Verdict::Block, !candidates.is_empty());
    }
}

#[test]
fn a_rule_fires_only_for_checks_that_use_its_list() {
    let sources = Sources::new()
        .list(ListSource::inline(
            "words.txt",
            "fuck\n".to_string(),
            Level::Danger,
        ))
        .list(
            ListSource::inline("spam.txt", "buy&pills\tspam\n".to_string(), Level::Normal)
                .by_default(false),
        );
    let e = Engine::load(&sources, Options::default()).expect("the lists load");
    let text = "buy pills, fuck";
    // by default the spam list is not used: its rule does not fire
    let words: Vec<String> = e.check(text).hits.into_iter().map(|h| h.word).collect();
    assert_eq!(words, ["fuck"]);
    // named, it fires and its hits name it
    let named = e.check_lists(text, &["spam"]).unwrap();
    let hits: Vec<(&str, &str)> = named
        .hits
        .iter()
        .map(|h| (h.word.as_str(), h.list.as_str()))
        .collect();
    assert_eq!(hits, [("buy&pills", "spam"), ("buy&pills", "spam")]);
}

#[test]
fn parts_keep_the_spans_of_the_text_as_written_when_its_copies_are_scanned_too() {
    // Parts found in the text as written are mapped to it only once a rule may fire, after the
    // leet and tone-number copies (`p1lls`, `shi4pin2`) have been scanned; noise, full-width
    // letters and the copies' own readings must not shift those spans.
    let e = engine_of(
        ListSource::inline(
            "rules.txt",
            "cheap&pills\n色情&视频\n".to_string(),
            Level::Danger,
        )
        .pinyin(true),
    );
    let text = "ｃｈｅａｐ p1lls, really c.h.e.a.p pills — 色 情 shi4pin2";
    let r = e.check(text);
    assert_eq!(
        spans(text, &r.hits),
        [
            "ｃｈｅａｐ",
            "p1lls",
            "c.h.e.a.p",
            "pills",
            "色 情",
            "shi4pin2"
        ]
    );
    assert_eq!(
        r.masked,
        "***** *****, really ********* ***** — *** ********"
    );
}
