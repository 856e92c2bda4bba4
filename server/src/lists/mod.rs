//! Lists made through the API: their model, validation, the file store, and the engine
//! rebuild that puts them next to the config file's lists.
//!
//! Every change is validated, written to the store, then the whole set (config lists and API
//! lists) is rebuilt on a blocking thread and swapped into the engine atomically: a check sees
//! the old lists or the new ones, never half, and the next request sees the change. Changes are
//! applied one at a time, in order.

pub(crate) mod ops;
mod routes;
mod store;

pub(crate) use routes::routes;

use espresso_filter_core::{Engine, Level, ListData, ListSource, LoadError, Options, Sources};
use prometheus::{IntCounterVec, Opts, Registry};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use store::{FileStore, StoreError};
use tokio::sync::Mutex;

/// Words one list holds at most.
pub(crate) const MAX_WORDS_PER_LIST: usize = 100_000;
/// Words one request adds or removes at most.
pub(crate) const MAX_WORDS_PER_CALL: usize = 10_000;
/// Characters a word holds at most.
pub(crate) const MAX_WORD_CHARS: usize = 100;
/// Characters a list name or a category holds at most.
pub(crate) const MAX_NAME_CHARS: usize = 64;
/// Characters a description holds at most.
pub(crate) const MAX_DESCRIPTION_CHARS: usize = 1024;
/// The changes `espresso_lists_changes_total{op}` counts.
pub(crate) const OPS: [&str; 5] = ["create", "update", "delete", "add_words", "remove_words"];

/// What a list does to the words it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Kind {
    /// Hits of its words count (at the word's level).
    Deny,
    /// Its words suppress the hits they overlap.
    Allow,
}

/// A word's own level and category, when it has them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct WordMeta {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) level: Option<Level>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) category: Option<String>,
}

/// A list made through the API (also its JSON in the store).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ApiList {
    pub(crate) name: String,
    pub(crate) description: String,
    /// The level of words without their own.
    pub(crate) level: Level,
    pub(crate) kind: Kind,
    /// Whether checks that name no lists use it (lists stored before the flag existed: yes).
    #[serde(default = "yes")]
    pub(crate) default: bool,
    /// Counts the list's changes, from 1.
    pub(crate) version: u64,
    pub(crate) words: BTreeMap<String, WordMeta>,
}

fn yes() -> bool {
    true
}

impl ApiList {
    pub(crate) fn new(name: String, description: String, level: Level, kind: Kind) -> Self {
        Self {
            name,
            description,
            level,
            kind,
            default: true,
            version: 1,
            words: BTreeMap::new(),
        }
    }

    /// The list in the word-list format, one source per level (allow lists: one allow list).
    fn add_to(&self, mut sources: Sources) -> Sources {
        let file = format!("{}.txt", self.name);
        let line = |word: &str, meta: &WordMeta| match &meta.category {
            Some(category) => format!("{word}\t{category}\n"),
            None => format!("{word}\n"),
        };
        if self.kind == Kind::Allow {
            let text: String = self.words.keys().map(|w| format!("{w}\n")).collect();
            return sources.allow(ListData::Inline {
                name: file,
                text: text.into(),
            });
        }
        for level in [Level::Danger, Level::Normal] {
            let text: String = self
                .words
                .iter()
                .filter(|(_, meta)| meta.level.unwrap_or(self.level) == level)
                .map(|(word, meta)| line(word, meta))
                .collect();
            if !text.is_empty() {
                let source = ListSource::inline(file.clone(), text, level)
                    .name(&self.name)
                    .by_default(self.default);
                sources = sources.list(source);
            }
        }
        sources
    }
}

/// Checks a list name: 1 to 64 of `A-Z a-z 0-9 _ -`.
pub(crate) fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty()
        || name.chars().count() > MAX_NAME_CHARS
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(format!(
            "list name {name:?}: expected 1 to {MAX_NAME_CHARS} letters, digits, '_' or '-'"
        ));
    }
    Ok(())
}

/// Checks a word (already trimmed): not empty, at most 100 characters, no control characters,
/// not starting with `#`.
pub(crate) fn check_word(word: &str) -> Result<(), String> {
    if word.is_empty() {
        return Err("a word is empty".into());
    }
    if word.chars().count() > MAX_WORD_CHARS {
        return Err(format!(
            "word {word:?} is longer than {MAX_WORD_CHARS} characters"
        ));
    }
    if word.chars().any(char::is_control) {
        return Err(format!("word {word:?} holds a control character"));
    }
    if word.starts_with('#') {
        return Err(format!("word {word:?} starts with '#'"));
    }
    Ok(())
}

/// Checks a category (already trimmed): 1 to 64 characters, no control characters.
pub(crate) fn check_category(category: &str) -> Result<(), String> {
    if category.is_empty()
        || category.chars().count() > MAX_NAME_CHARS
        || category.chars().any(char::is_control)
    {
        return Err(format!(
            "category {category:?}: expected 1 to {MAX_NAME_CHARS} characters, no control characters"
        ));
    }
    Ok(())
}

/// Why a change was not applied.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ChangeError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the lists could not be rebuilt: {0}")]
    Build(String),
    /// The shared store (Redis) did not answer: nothing was changed anywhere.
    #[error("the list store is unavailable: {0}")]
    Unavailable(String),
}

/// The API lists, the config's lists, and the engine serving both.
pub(crate) struct Lists {
    engine: Engine,
    state: Mutex<State>,
    store: FileStore,
    changes: IntCounterVec,
}

struct State {
    /// The config file's lists (replaced on reload).
    config: Sources,
    /// 1 at start, one more for each reload that rebuilt the config's lists
    config_version: u64,
    api: BTreeMap<String, ApiList>,
}

impl Lists {
    /// Loads the stored lists and builds the engine over `config` and them.
    pub(crate) fn load(
        config: Sources,
        dir: std::path::PathBuf,
        options: espresso_filter_core::Options,
        registry: &Registry,
    ) -> Result<(Self, Engine), Box<dyn std::error::Error + Send + Sync>> {
        let store = FileStore::new(dir);
        let api: BTreeMap<String, ApiList> = store
            .load()?
            .into_iter()
            .map(|list| (list.name.clone(), list))
            .collect();
        let engine = Engine::load(&combined(&config, &api), options)?;
        let changes = IntCounterVec::new(
            Opts::new(
                "espresso_lists_changes_total",
                "Changes applied to the lists through the API, by operation.",
            ),
            &["op"],
        )?;
        for op in OPS {
            changes.with_label_values(&[op]);
        }
        registry.register(Box::new(changes.clone()))?;
        let lists = Self {
            engine: engine.clone(),
            state: Mutex::new(State {
                config,
                config_version: 1,
                api,
            }),
            store,
            changes,
        };
        Ok((lists, engine))
    }

    /// Replaces the config's lists (a reload) and rebuilds, keeping the API lists.
    pub(crate) async fn set_config(
        &self,
        config: Sources,
        options: Options,
    ) -> Result<u64, LoadError> {
        let mut state = self.state.lock().await;
        let sources = combined(&config, &state.api);
        let engine = self.engine.clone();
        let version = tokio::task::spawn_blocking(move || engine.reload_with(&sources, options))
            .await
            .map_err(|panic| LoadError::Parse {
                name: "lists".into(),
                line: 0,
                reason: format!("the rebuild panicked: {panic}"),
            })??;
        state.config = config;
        state.config_version += 1;
        Ok(version)
    }

    /// A copy of the API list `name`.
    pub(crate) async fn get(&self, name: &str) -> Option<ApiList> {
        self.state.lock().await.api.get(name).cloned()
    }

    /// Every API list (name order).
    pub(crate) async fn all(&self) -> Vec<ApiList> {
        self.state.lock().await.api.values().cloned().collect()
    }

    /// Whether `name` is a list of the config file (read-only here).
    pub(crate) async fn is_config_list(&self, name: &str) -> bool {
        let state = self.state.lock().await;
        config_names(&state.config).any(|n| n == name)
    }

    /// The names of the config's lists, each once, with whether it is an allow list, and the
    /// version of the config's lists (one more after each reload that rebuilt them).
    pub(crate) async fn config_lists(&self) -> (Vec<(String, bool)>, u64) {
        let state = self.state.lock().await;
        let mut names: Vec<(String, bool)> = state
            .config
            .lists
            .iter()
            .map(|l| (l.list_name(), false))
            .chain(state.config.allow.iter().map(|a| (a.stem(), true)))
            .collect();
        names.dedup();
        (names, state.config_version)
    }

    /// Applies `change` to the list `name` (`None`: no such list) and, when it returns a new
    /// list (or `Ok(None)` to delete), stores it and rebuilds the engine. Returns what `change`
    /// returned alongside.
    pub(crate) async fn change<T>(
        &self,
        name: &str,
        change: impl FnOnce(Option<&ApiList>) -> Result<(Option<ApiList>, T), T>,
    ) -> Result<Result<T, T>, ChangeError> {
        let mut state = self.state.lock().await;
        let (new, answer) = match change(state.api.get(name)) {
            Ok(done) => done,
            Err(refused) => return Ok(Err(refused)),
        };
        let mut api = state.api.clone();
        match &new {
            Some(list) => {
                api.insert(name.to_owned(), list.clone());
            }
            None => {
                api.remove(name);
            }
        }
        // Build first, save second, swap last: a change that cannot be built is not stored,
        // and one that cannot be stored is not applied.
        let sources = combined(&state.config, &api);
        let engine = self.engine.clone();
        let built = tokio::task::spawn_blocking(move || engine.build(&sources))
            .await
            .map_err(|panic| ChangeError::Build(panic.to_string()))?
            .map_err(|e| ChangeError::Build(e.to_string()))?;
        let store = self.store.clone();
        let saved = new.clone();
        let name_owned = name.to_owned();
        tokio::task::spawn_blocking(move || match &saved {
            Some(list) => store.save(list),
            None => store.delete(&name_owned),
        })
        .await
        .map_err(|panic| ChangeError::Build(format!("the store panicked: {panic}")))??;
        self.engine.install(built);
        state.api = api;
        Ok(Ok(answer))
    }

    /// Counts an applied change in `espresso_lists_changes_total{op}`.
    pub(crate) fn count(&self, op: &'static str) {
        debug_assert!(OPS.contains(&op), "{op} missing from OPS");
        self.changes.with_label_values(&[op]).inc();
    }
}

/// The names of the config's lists.
fn config_names(config: &Sources) -> impl Iterator<Item = String> + '_ {
    config
        .lists
        .iter()
        .map(ListSource::list_name)
        .chain(config.allow.iter().map(ListData::stem))
}

/// The config's lists and the API lists, as one set of sources.
fn combined(config: &Sources, api: &BTreeMap<String, ApiList>) -> Sources {
    api.values()
        .fold(config.clone(), |sources, list| list.add_to(sources))
}

#[cfg(test)]
mod tests {
    use super::*;
    use espresso_filter_core::{Options, Verdict};

    #[test]
    fn names_words_and_categories_are_checked() {
        assert!(check_name("spam-2024_a").is_ok());
        for bad in ["", "a b", "a/b", "ä", &"x".repeat(65)] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        assert!(check_word("cheap pills").is_ok());
        for bad in ["", "a\tb", "a\nb", "#tag", &"x".repeat(101)] {
            assert!(check_word(bad).is_err(), "{bad:?}");
        }
        assert!(check_category("ads").is_ok());
        assert!(check_category("a\u{7}").is_err());
    }

    #[test]
    fn api_lists_join_the_config_lists_in_one_engine() {
        let config =
            Sources::new().list(ListSource::inline("danger.txt", "idiot\n", Level::Danger));
        let mut spam = ApiList::new("spam".into(), String::new(), Level::Normal, Kind::Deny);
        spam.words.insert("cheap pills".into(), WordMeta::default());
        spam.words.insert(
            "casino".into(),
            WordMeta {
                level: Some(Level::Danger),
                category: Some("gambling".into()),
            },
        );
        let mut ok = ApiList::new("ok".into(), String::new(), Level::Normal, Kind::Allow);
        ok.words.insert("idiot savant".into(), WordMeta::default());
        let api = BTreeMap::from([("spam".into(), spam), ("ok".into(), ok)]);
        let engine = Engine::load(&combined(&config, &api), Options::default()).unwrap();
        let r = engine.check("idiot, cheap pills, casino");
        assert_eq!(r.verdict, Verdict::Block);
        let hits: Vec<_> = r
            .hits
            .iter()
            .map(|h| (h.list.as_str(), h.level, h.category.as_str()))
            .collect();
        assert_eq!(
            hits,
            [
                ("danger", Level::Danger, "danger"),
                ("spam", Level::Normal, "spam"),
                ("spam", Level::Danger, "gambling"),
            ]
        );
        assert_eq!(engine.check("an idiot savant").verdict, Verdict::Pass);
    }

    #[tokio::test]
    async fn a_change_that_cannot_be_built_is_neither_stored_nor_applied() {
        let dir = tempfile::tempdir().unwrap();
        let words = dir.path().join("danger.txt");
        std::fs::write(&words, "idiot\n").unwrap();
        let config = Sources::new().list(ListSource::file(&words, Level::Danger));
        let store = dir.path().join("lists");
        let (lists, engine) =
            Lists::load(config, store.clone(), Options::default(), &Registry::new()).unwrap();
        let before = engine.version();
        // the config's file goes away: no set with it can be built now
        std::fs::remove_file(&words).unwrap();
        let result = lists
            .change("spam", |_| {
                let mut spam =
                    ApiList::new("spam".into(), String::new(), Level::Normal, Kind::Deny);
                spam.words.insert("cheap pills".into(), WordMeta::default());
                Ok::<_, ()>((Some(spam), ()))
            })
            .await;
        assert!(matches!(result, Err(ChangeError::Build(_))), "{result:?}");
        assert!(!store.join("spam.json").exists(), "the change was stored");
        assert!(lists.get("spam").await.is_none());
        assert_eq!(engine.version(), before);
        assert_eq!(engine.check("idiot").verdict, Verdict::Block);
    }
}
