//! The shipped `server/espresso.toml` is what the README and `docs/config.md` say it is: every
//! key of the config, each at its default (but the word lists, which it names), in a file the
//! server accepts. A key added to the server's table of keys and not to the example fails here.
//!
//! The table is `espresso_server::config::KEYS`, the one reload and `docs/config.md` follow, so
//! these tests read it rather than a copy.

use espresso_server::config::{Config, KEYS};
use std::{collections::BTreeSet, path::PathBuf};

fn example() -> (PathBuf, String) {
    let file = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("espresso.toml");
    let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{file:?}: {e}"));
    (file, text)
}

/// The dotted keys a config file names: each `key = ...` line, set or commented out
/// (`# key = ...`, for a key whose value has to be chosen), under its `[section]`, and each
/// table it opens (`[classifier.labels]`, `[[filter.lists]]`), which are keys of their own.
/// A line is read, not parsed as TOML, so that commented-out keys count.
fn keys_named(text: &str) -> BTreeSet<String> {
    let mut named = BTreeSet::new();
    let mut section = String::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            let header = line.split('#').next().unwrap_or_default().trim();
            section = header.trim_matches(['[', ']']).trim().to_owned();
            named.insert(section.clone());
            continue;
        }
        let line = line.strip_prefix('#').map_or(line, str::trim_start);
        let Some((key, _)) = line.split_once('=') else {
            continue;
        };
        let key = key.trim();
        // prose in a comment has spaces or punctuation before its `=`, a key has none
        if !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            named.insert(format!("{section}.{key}"));
        }
    }
    named
}

#[test]
fn keys_are_read_from_set_and_commented_lines_under_their_section() {
    let text = "# a comment = prose\n[a]   # note\nx = 1\n# y = \"<name>\"\n\
                [[a.list]]\npath = \"p\"\n[b.c]\nz=[]\n";
    let named: Vec<String> = keys_named(text).into_iter().collect();
    assert_eq!(
        named,
        ["a", "a.list", "a.list.path", "a.x", "a.y", "b.c", "b.c.z"]
    );
}

#[test]
fn every_key_of_the_config_is_in_the_example_file() {
    let named = keys_named(&example().1);
    let missing: Vec<&str> = KEYS
        .iter()
        .map(|(key, _)| *key)
        .filter(|key| !named.contains(*key))
        .collect();
    assert!(
        missing.is_empty(),
        "server/espresso.toml lacks {missing:?}: add each to its section at its default \
         (or as `# key = ...`), with a comment"
    );
}

#[test]
fn the_example_file_sets_every_key_to_its_default_but_the_word_lists() {
    let mut config = Config::parse(&example().1).unwrap();
    // the file names the built-in lists' files, which is what no lists at all means
    config.filter.allow.clear();
    config.filter.lists.clear();
    // so the example needs no other service: no Redis, no classifier
    assert_eq!(config, Config::default());
}

#[test]
fn the_example_file_passes_the_checks_of_check_config() {
    let (file, _) = example();
    let effective = espresso_server::check_config(&file).unwrap_or_else(|e| panic!("{e}"));
    // nothing set that the server would not read
    assert!(!effective.contains("# warning"), "{effective}");
    assert_eq!(
        Config::parse(&effective).unwrap(),
        Config::load(&file).unwrap()
    );
}
