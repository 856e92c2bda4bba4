//! Incremental builds: a set built on the current one's automaton answers exactly as a full
//! build of the same lists, before and after compaction.

use espresso_filter_core::{Engine, Level, ListSource, Options, Sources};
use proptest::prelude::*;

/// Config-like lists first, then API-like lists, as the server orders them.
fn sources(first: &[String], second: &[String], allowed: &[String]) -> Sources {
    let text = |words: &[String]| words.join("\n") + "\n";
    Sources::new()
        .list(ListSource::inline("base", text(first), Level::Danger))
        .list(ListSource::inline("base", "a&b\nab~cab\n", Level::Normal).category("rules"))
        .list(ListSource::inline("api", text(second), Level::Normal))
        .allow(ListSource::inline("allowed", text(allowed), Level::Normal).data)
}

fn word() -> impl Strategy<Value = String> {
    // a small alphabet with a space and a Chinese character, so words overlap and repeat
    proptest::string::string_regex("[abc 色]{1,4}[abc]").unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn an_incremental_build_answers_as_a_full_build(
        first in proptest::collection::vec(word(), 1..30),
        second in proptest::collection::vec(word(), 0..10),
        added in proptest::collection::vec(word(), 0..10),
        removed in 0usize..10,
        allowed in proptest::collection::vec(word(), 0..3),
        texts in proptest::collection::vec("[abc 色.]{0,24}", 1..8),
    ) {
        let engine = Engine::load(&sources(&first, &second, &allowed), Options::default()).unwrap();
        let mut next_second: Vec<String> = second.iter().skip(removed).cloned().collect();
        next_second.extend(added);
        let next = sources(&first, &next_second, &allowed);
        let full = Engine::load(&next, Options::default()).unwrap();
        let incremental = engine.build_incremental(&next).unwrap();
        prop_assert_eq!(incremental.version(), full.version());
        engine.install(incremental);
        for text in &texts {
            prop_assert_eq!(engine.check(text), full.check(text), "text {:?}", text);
        }
        engine.compact().unwrap();
        prop_assert_eq!(engine.dictionary().pending(), 0);
        for text in &texts {
            prop_assert_eq!(engine.check(text), full.check(text), "text {:?}", text);
        }
    }
}

#[test]
fn adding_words_compiles_only_them_and_compaction_keeps_the_answers() {
    let words: Vec<String> = (0..2_000).map(|i| format!("word{i:04}x")).collect();
    let base = sources(&words, &["zzz".into()], &[]);
    let engine = Engine::load(&base, Options::default()).unwrap();
    let added: Vec<String> = vec!["zzz".into(), "fresh".into(), "newer".into()];
    let next = engine
        .build_incremental(&sources(&words, &added, &[]))
        .unwrap();
    // every pattern before the API list's is the old automaton's; the new ones and what
    // follows them (the rules' four parts) are compiled
    assert_eq!(next.pending(), 2 + 4);
    engine.install(next);
    assert_eq!(engine.check("a fresh word0042x").hits.len(), 2);
    let version = engine.version();
    assert!(engine.compact().unwrap());
    assert!(!engine.compact().unwrap(), "nothing left to compact");
    assert_eq!(engine.version(), version);
    assert_eq!(engine.check("a fresh word0042x").hits.len(), 2);
}

#[test]
fn compaction_serves_the_newest_set() {
    let words: Vec<String> = (0..100).map(|i| format!("word{i:03}")).collect();
    let engine = Engine::load(&sources(&words, &[], &[]), Options::default()).unwrap();
    let older = engine
        .build_incremental(&sources(&words, &["cab".into()], &[]))
        .unwrap();
    assert!(older.compacted().is_some());
    engine.install(older);
    let newest = engine
        .build_incremental(&sources(&words, &["cab".into(), "ccc".into()], &[]))
        .unwrap();
    assert!(!newest.is_compact());
    let version = newest.version();
    engine.install(newest);
    assert!(engine.compact().unwrap());
    assert_eq!(engine.version(), version);
    assert!(engine.dictionary().compacted().is_none());
    assert_eq!(engine.check("ccc").hits[0].word, "ccc");
}
