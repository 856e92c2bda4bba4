//! The word-list file parser, through the public loading API, against the documented format.
//!
//! The input is the bytes of one word-list file (cut to 8 KiB). It is loaded as an inline list
//! when it is UTF-8 and from a file otherwise (inline lists are `str`), as a danger list and
//! as an allow list. Checked:
//! - no panic; loading succeeds exactly when the independent reference parser
//!   ([`espresso_fuzz::reference_word_list`]) accepts the bytes;
//! - a failure names the list and the first malformed line (`name:line: reason`);
//! - every parsed entry is compiled or counted as skipped, and loading twice gives the same
//!   version;
//! - each entry that normalizes to something is hit when it stands between spaces, and the hit
//!   names a listed entry with the list's level and the entry's (or the list's) category.
#![no_main]

use std::path::PathBuf;

use espresso_filter_core::{Engine, Level, ListData, ListSource, Options, Sources};
use espresso_fuzz::reference_word_list;
use libfuzzer_sys::fuzz_target;

const MAX_BYTES: usize = 8192;

fn list_data(bytes: &[u8]) -> ListData {
    match std::str::from_utf8(bytes) {
        Ok(text) => ListData::Inline {
            name: "words.txt".into(),
            text: text.into(),
        },
        Err(_) => {
            let path: PathBuf = std::env::temp_dir()
                .join(format!("espresso-fuzz-{}-words.txt", std::process::id()));
            std::fs::write(&path, bytes).expect("the temp dir is writable");
            ListData::File(path)
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let bytes = &data[..data.len().min(MAX_BYTES)];
    let reference = reference_word_list(bytes);
    let data = list_data(bytes);
    let name = data.name();
    let blocked = Sources::new().list(ListSource {
        data: data.clone(),
        level: Level::Danger,
        category: None,
        pinyin: false,
        rule_window: None,
        name: None,
        default: true,
    });
    let allowed = Sources::new().allow(data);

    let loaded = Engine::load(&blocked, Options::default());
    let loaded_allow = Engine::load(&allowed, Options::default());
    let entries = match (reference, loaded, loaded_allow) {
        // a rule whose part is only noise is an error of the build, which the reference
        // cannot see; it names a rule's line
        (Ok(entries), Err(err), _) if err.to_string().contains("is only noise") => {
            assert!(
                entries
                    .iter()
                    .any(|e| e.rule.is_some()
                        && err.to_string().starts_with(&format!("{name}:{}: ", e.line))),
                "{err}"
            );
            return;
        }
        // rules are for blocked-word lists: an allow list names its first rule
        (Ok(entries), Ok(_), Err(allow_err)) if entries.iter().any(|e| e.rule.is_some()) => {
            let first = entries.iter().find(|e| e.rule.is_some()).map(|e| e.line);
            let prefix = format!("{name}:{}: ", first.unwrap_or(0));
            assert!(
                allow_err.to_string().starts_with(&prefix),
                "{allow_err} (want {prefix}…)"
            );
            return;
        }
        (Ok(entries), Ok(engine), Ok(allow_engine)) => {
            assert!(entries.iter().all(|e| e.rule.is_none()));
            let stats = engine.dictionary().stats();
            assert_eq!(stats.words + stats.skipped, entries.len(), "{stats:?}");
            assert_eq!(stats.allowed, 0);
            let allow_stats = allow_engine.dictionary().stats();
            assert_eq!(allow_stats.allowed + allow_stats.skipped, entries.len());
            assert_eq!(allow_stats.words, 0);
            let again = Engine::load(&blocked, Options::default()).unwrap();
            assert_eq!(
                again.version(),
                engine.version(),
                "versions are content fingerprints"
            );
            (entries, engine)
        }
        (Err(line), Err(err), Err(allow_err)) => {
            let prefix = format!("{name}:{line}: ");
            assert!(
                err.to_string().starts_with(&prefix),
                "{err} (want {prefix}…)"
            );
            assert!(
                allow_err.to_string().starts_with(&prefix),
                "{allow_err} (want {prefix}…)"
            );
            return;
        }
        (reference, loaded, loaded_allow) => panic!(
            "reference {reference:?}, but loading gave {:?} / {:?}",
            loaded.map(|e| e.version()),
            loaded_allow.map(|e| e.version())
        ),
    };

    let (entries, engine) = entries;
    let dict = engine.dictionary();
    for entry in entries.iter().take(16) {
        if dict.normalize(&entry.word).as_str().is_empty() {
            continue;
        }
        let text = format!(" {} ", entry.word);
        let hits = engine.check(&text).hits;
        assert!(!hits.is_empty(), "entry {entry:?} not found in {text:?}");
        for hit in &hits {
            assert_eq!(hit.level, Level::Danger);
            assert!(
                entries.iter().any(|e| e.word == hit.word
                    && e.category.as_deref().unwrap_or("words") == hit.category),
                "hit {hit:?} names no entry"
            );
        }
    }
});
