//! Lists made through the API: their model, validation, the stores, and the engine rebuild
//! that puts them next to the config file's lists.
//!
//! Every change is validated, the whole set (config lists and API lists) is rebuilt on a
//! blocking thread, the change is written to the store, and the new engine is swapped in
//! atomically: a check sees the old lists or the new ones, never half, and the next request
//! sees the change. Changes are applied one at a time, in order. With the Redis store every
//! instance follows the store's changes ([`Lists::follow`]).

pub(crate) mod ops;
mod redis_store;
mod routes;
mod store;

pub(crate) use routes::routes;
pub(crate) use store::Store;

use espresso_filter_core::{Engine, Level, ListData, ListSource, LoadError, Options, Sources};
use prometheus::{IntCounter, IntCounterVec, Opts, Registry};
use redis_store::{RedisStoreError, Snapshot};
use serde::{Deserialize, Serialize};
use std::{
    collections::BTreeMap,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};
use store::StoreError;
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

    /// This list as the next version of `old`: one more than `old`'s when they differ, the
    /// same when nothing changed (a repeated call: nothing to store, build or reload).
    pub(crate) fn next_of(mut self, old: &ApiList) -> Self {
        self.version = old.version;
        if self != *old {
            self.version += 1;
        }
        self
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
            "list name {}: expected 1 to {MAX_NAME_CHARS} letters, digits, '_' or '-'",
            crate::quoted(name)
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
            "word {} is longer than {MAX_WORD_CHARS} characters",
            crate::quoted(word)
        ));
    }
    if word.chars().any(char::is_control) {
        return Err(format!(
            "word {} holds a control character",
            crate::quoted(word)
        ));
    }
    if word.starts_with('#') {
        return Err(format!("word {} starts with '#'", crate::quoted(word)));
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
            "category {}: expected 1 to {MAX_NAME_CHARS} characters, no control characters",
            crate::quoted(category)
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

impl From<RedisStoreError> for ChangeError {
    fn from(error: RedisStoreError) -> Self {
        match error {
            RedisStoreError::Unavailable { .. } | RedisStoreError::Busy { .. } => {
                Self::Unavailable(error.to_string())
            }
            RedisStoreError::Corrupt { .. } => Self::Build(error.to_string()),
        }
    }
}

/// Attempts at a change while other instances keep changing the shared set under it.
const MAX_ATTEMPTS: usize = 5;
/// How long the lists stay unchanged before an incremental set is compacted.
const COMPACT_AFTER: std::time::Duration = std::time::Duration::from_secs(1);

/// The API lists, the config's lists, and the engine serving both.
pub(crate) struct Lists {
    engine: Engine,
    state: Mutex<State>,
    store: Store,
    changes: IntCounterVec,
    /// Calls to the Redis store that failed.
    store_errors: IntCounter,
    /// Whether the Redis store answered its last call (an outage is logged once).
    store_up: AtomicBool,
}

struct State {
    /// The config file's lists (replaced on reload).
    config: Sources,
    /// 1 at start, one more for each reload that rebuilt the config's lists
    config_version: u64,
    api: BTreeMap<String, ApiList>,
    /// The Redis store's version `api` was read at; `None` before the first read (the file
    /// store has no version: always `Some(0)`).
    store_version: Option<u64>,
}

impl Lists {
    /// Loads the stored lists and builds the engine over `config` and them. A file store that
    /// cannot be read is an error; a Redis store that does not answer is a WARN, and the
    /// lists it holds are applied as soon as it does.
    pub(crate) async fn load(
        config: Sources,
        store: Store,
        options: espresso_filter_core::Options,
        registry: &Registry,
    ) -> Result<(Self, Engine), Box<dyn std::error::Error + Send + Sync>> {
        let (snapshot, up) = match &store {
            Store::File(file) => {
                let file = file.clone();
                let lists = tokio::task::spawn_blocking(move || file.load()).await??;
                (Some(Snapshot { version: 0, lists }), true)
            }
            Store::Redis(redis) => match redis.load().await {
                Ok(snapshot) => (Some(snapshot), true),
                Err(error @ RedisStoreError::Unavailable { .. }) => {
                    tracing::warn!(%error, "lists: the Redis store does not answer at start: serving the config file's lists only; the API lists are applied as soon as it answers (check [lists] redis_url / redis_cluster / redis_sentinel)");
                    (None, false)
                }
                Err(error) => return Err(error.into()),
            },
        };
        let store_version = snapshot.as_ref().map(|s| s.version);
        let api: BTreeMap<String, ApiList> = snapshot
            .map(|s| s.lists)
            .unwrap_or_default()
            .into_iter()
            .map(|list| (list.name.clone(), list))
            .collect();
        check_names(&config, api.values())?;
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
        let store_errors = IntCounter::new(
            "espresso_lists_store_errors_total",
            "Calls to the lists' Redis store that failed (no answer in time, or an error).",
        )?;
        registry.register(Box::new(store_errors.clone()))?;
        if !up {
            store_errors.inc();
        }
        let lists = Self {
            engine: engine.clone(),
            state: Mutex::new(State {
                config,
                config_version: 1,
                api,
                store_version,
            }),
            store,
            changes,
            store_errors,
            store_up: AtomicBool::new(up),
        };
        Ok((lists, engine))
    }

    /// With the Redis store: applies the changes other instances make, as their messages
    /// arrive and, as a safety net, whenever the store's version moved (read every
    /// half-second). Returns at once with the file store.
    pub(crate) async fn follow(self: Arc<Self>) {
        let Store::Redis(redis) = &self.store else {
            return;
        };
        let mut changes = redis.changes();
        let mut changes_open = true;
        let mut poll = tokio::time::interval(redis_store::POLL);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                message = changes.recv(), if changes_open => changes_open = message.is_some(),
                _ = poll.tick() => {}
            }
            self.sync().await;
        }
    }

    /// Applies the Redis store's set when its version is not the one applied.
    async fn sync(&self) {
        let Store::Redis(redis) = &self.store else {
            return;
        };
        let mut state = self.state.lock().await;
        let version = match redis.version().await {
            Ok(version) => version,
            Err(error) => return self.store_down(&error),
        };
        self.store_answers();
        if state.store_version == Some(version) {
            return;
        }
        if let Err(error) = self.apply_store(&mut state).await {
            tracing::error!(%error, "lists: the Redis store's lists could not be applied; keeping the lists applied last");
        }
    }

    /// Reads the Redis store's whole set and applies it.
    async fn apply_store(&self, state: &mut State) -> Result<(), ChangeError> {
        let Store::Redis(redis) = &self.store else {
            return Ok(());
        };
        let snapshot = redis.load().await.inspect_err(|e| self.store_down(e))?;
        if let Some(applied) = state.store_version
            && snapshot.version < applied
        {
            tracing::warn!(
                applied,
                stored = snapshot.version,
                lists = snapshot.lists.len(),
                "lists: the Redis store's version went back (it lost its data or was replaced): applying what it holds now"
            );
        }
        let api: BTreeMap<String, ApiList> = snapshot
            .lists
            .into_iter()
            .map(|list| (list.name.clone(), list))
            .collect();
        let built = self.build(&state.config, &api).await?;
        self.install(built);
        tracing::info!(
            version = snapshot.version,
            lists = api.len(),
            "lists: applied the Redis store's lists"
        );
        state.api = api;
        state.store_version = Some(snapshot.version);
        Ok(())
    }

    /// Swaps in a set from [`Lists::build`]; once no other change has followed it for
    /// [`COMPACT_AFTER`], folds its two automata into one on a blocking thread, so that checks
    /// pay for one scan again. A burst of changes thus builds small increments back to back and
    /// compacts once, after the last.
    fn install(&self, built: espresso_filter_core::Dictionary) {
        let compact = built.is_compact();
        self.engine.install(built);
        if compact {
            return;
        }
        let engine = self.engine.clone();
        let installed = engine.dictionary();
        tokio::spawn(async move {
            tokio::time::sleep(COMPACT_AFTER).await;
            if !Arc::ptr_eq(&engine.dictionary(), &installed) {
                return; // a later change compacts
            }
            drop(installed);
            let compacted = tokio::task::spawn_blocking(move || engine.compact()).await;
            if let Ok(Err(error)) = compacted {
                // the same patterns compiled once already: only memory could fail it
                tracing::warn!(%error, "lists: compacting the rebuilt lists failed; checks scan twice until the next change");
            }
        });
    }

    fn store_down(&self, error: &RedisStoreError) {
        if let RedisStoreError::Busy { .. } = error {
            return; // it answered: another change holds the lock
        }
        self.store_errors.inc();
        if self.store_up.swap(false, Ordering::Relaxed) {
            tracing::warn!(%error, "lists: the Redis store does not answer: changes are refused (503) and checks go on with the lists applied last");
        }
    }

    fn store_answers(&self) {
        if !self.store_up.swap(true, Ordering::Relaxed) {
            tracing::info!("lists: the Redis store answers again");
        }
    }

    /// Builds an engine over `config` and `api` on a blocking thread, incrementally: the
    /// current automaton keeps serving what did not change (see [`Lists::install`]).
    async fn build(
        &self,
        config: &Sources,
        api: &BTreeMap<String, ApiList>,
    ) -> Result<espresso_filter_core::Dictionary, ChangeError> {
        let sources = combined(config, api);
        let engine = self.engine.clone();
        tokio::task::spawn_blocking(move || engine.build_incremental(&sources))
            .await
            .map_err(|panic| ChangeError::Build(panic.to_string()))?
            .map_err(|e| ChangeError::Build(e.to_string()))
    }

    /// Checks `words` as entries of an API list of `kind` would be read, in one small build with
    /// the running options: a combination rule that does not parse, or a word that normalizes
    /// to nothing (only noise: it could never match), is `Err((index, why))`. A client's
    /// mistake, found before the change, rather than a failed rebuild after it.
    pub(crate) async fn check_words(
        &self,
        words: Vec<String>,
        kind: Kind,
    ) -> Result<(), (usize, String)> {
        let engine = self.engine.clone();
        tokio::task::spawn_blocking(move || {
            let text: String = words.iter().map(|w| format!("{w}\n")).collect();
            let name = "words".to_owned();
            let sources = match kind {
                Kind::Allow => Sources::new().allow(ListData::Inline {
                    name,
                    text: text.into(),
                }),
                Kind::Deny => Sources::new().list(ListSource::inline(name, text, Level::Danger)),
            };
            let dict = match engine.build(&sources) {
                Ok(dict) => dict,
                Err(LoadError::Parse { line, reason, .. }) => return Err((line - 1, reason)),
                Err(e) => return Err((0, e.to_string())),
            };
            match words
                .iter()
                .position(|w| dict.normalize(w).as_str().is_empty())
            {
                Some(i) => Err((
                    i,
                    format!(
                        "word {} is only noise (it normalizes to nothing), so it could never \
                         match",
                        crate::quoted(&words[i])
                    ),
                )),
                None => Ok(()),
            }
        })
        .await
        .unwrap_or_else(|panic| Err((0, panic.to_string())))
    }

    /// Replaces the config's lists (a reload) and rebuilds, keeping the API lists.
    pub(crate) async fn set_config(
        &self,
        config: Sources,
        options: Options,
    ) -> Result<u64, crate::BoxError> {
        let mut state = self.state.lock().await;
        check_names(&config, state.api.values())?;
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
    /// returned alongside. With the Redis store `change` runs again when another instance
    /// changed the set first (it then sees that change).
    pub(crate) async fn change<T>(
        &self,
        name: &str,
        change: impl FnMut(Option<&ApiList>) -> Result<(Option<ApiList>, T), T>,
    ) -> Result<Result<T, T>, ChangeError> {
        // Boxed: a change is rare, and its future, nested in a handler's, is deep enough to
        // overflow rustc's query depth when laid out inline.
        Box::pin(self.change_locked(name, change)).await
    }

    async fn change_locked<T>(
        &self,
        name: &str,
        mut change: impl FnMut(Option<&ApiList>) -> Result<(Option<ApiList>, T), T>,
    ) -> Result<Result<T, T>, ChangeError> {
        let mut state = self.state.lock().await;
        let Store::Redis(redis) = &self.store else {
            return self.change_in(&mut state, name, &mut change).await;
        };
        // Changes through different instances take turns; each starts from the latest set.
        let lock = redis.lock().await.inspect_err(|e| self.store_down(e))?;
        let changed = async {
            let version = redis.version().await.inspect_err(|e| self.store_down(e))?;
            if state.store_version != Some(version) {
                self.apply_store(&mut state).await?;
            }
            self.change_in(&mut state, name, &mut change).await
        }
        .await;
        redis.unlock(lock).await;
        changed
    }

    /// [`Lists::change`] with the state locked (and, with Redis, the change lock held).
    async fn change_in<T>(
        &self,
        state: &mut State,
        name: &str,
        change: &mut impl FnMut(Option<&ApiList>) -> Result<(Option<ApiList>, T), T>,
    ) -> Result<Result<T, T>, ChangeError> {
        for _ in 0..MAX_ATTEMPTS {
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
            // Build first, store second, swap last: a change that cannot be built is not
            // stored, and one that cannot be stored is not applied.
            let built = self.build(&state.config, &api).await?;
            match &self.store {
                Store::File(file) => {
                    let file = file.clone();
                    let name = name.to_owned();
                    tokio::task::spawn_blocking(move || match &new {
                        Some(list) => file.save(list),
                        None => file.delete(&name),
                    })
                    .await
                    .map_err(|panic| {
                        ChangeError::Build(format!("the store panicked: {panic}"))
                    })??;
                }
                Store::Redis(redis) => {
                    let base = state.store_version.unwrap_or(0);
                    match redis.write(base, name, new.as_ref()).await {
                        Ok(Some(version)) => {
                            self.store_answers();
                            state.store_version = Some(version);
                        }
                        Ok(None) => {
                            // another instance changed the set first (its lock expired under
                            // it, or ours did): take its change, then make this one again
                            self.apply_store(state).await?;
                            continue;
                        }
                        Err(error) => {
                            self.store_down(&error);
                            return Err(error.into());
                        }
                    }
                }
            }
            self.install(built);
            state.api = api;
            return Ok(Ok(answer));
        }
        Err(ChangeError::Unavailable(format!(
            "the shared lists changed under this change {MAX_ATTEMPTS} times in a row; retry"
        )))
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

/// A list of the config file that has the name of an API list: an error, at start-up and at a
/// reload (which then keeps the running config). Two lists of one name could not be told apart
/// in hits and in `"lists"`, and the API one could no longer be changed.
#[derive(Debug, thiserror::Error)]
#[error(
    "list {} is both a list of the config file and a list of the lists API: rename the file, \
     or remove the API list first (DELETE /v1/lists/{name})",
    crate::quoted(name)
)]
pub(crate) struct NameClash {
    name: String,
}

impl NameClash {
    /// `error`, when it is a [`NameClash`], as an error of the config `file` at the line that
    /// names the list; any other error as it is.
    pub(crate) fn in_config(error: crate::BoxError, file: &std::path::Path) -> crate::BoxError {
        match error.downcast::<NameClash>() {
            Ok(clash) => Box::new(crate::config::ConfigError::at_list(
                file,
                &clash.name,
                clash.to_string(),
            )),
            Err(error) => error,
        }
    }
}

fn check_names<'a>(
    config: &Sources,
    mut api: impl Iterator<Item = &'a ApiList>,
) -> Result<(), NameClash> {
    match api.find(|list| config_names(config).any(|name| name == list.name)) {
        Some(list) => Err(NameClash {
            name: list.name.clone(),
        }),
        None => Ok(()),
    }
}

/// What a start-up checks of the stored API lists, for `--check-config`: the file store reads
/// (each list parses) and no list clashes with one of the config file. The Redis store is not
/// contacted: at start-up one that does not answer is a WARN, not an error.
pub(crate) fn check_stored(
    config: &Sources,
    lists: &crate::config::ListsConfig,
) -> Result<(), crate::BoxError> {
    match Store::from_config(lists)? {
        Store::File(file) => Ok(check_names(config, file.load()?.iter())?),
        Store::Redis(_) => Ok(()),
    }
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

    #[tokio::test(start_paused = true)]
    async fn changes_apply_incrementally_and_compact_after_a_quiet_second() {
        let dir = tempfile::tempdir().unwrap();
        let words: String = (0..200).map(|i| format!("word{i}x\n")).collect();
        let config = Sources::new().list(ListSource::inline("danger.txt", words, Level::Danger));
        let (lists, engine) = Lists::load(
            config,
            Store::File(store::FileStore::new(dir.path().join("lists"))),
            Options::default(),
            &Registry::new(),
        )
        .await
        .unwrap();
        let add = |word: &'static str| {
            move |current: Option<&ApiList>| {
                let mut spam = current.cloned().unwrap_or_else(|| {
                    ApiList::new("spam".into(), String::new(), Level::Normal, Kind::Deny)
                });
                spam.words.insert(word.into(), WordMeta::default());
                Ok::<_, ()>((Some(spam), ()))
            }
        };
        lists.change("spam", add("casino")).await.unwrap().unwrap();
        assert!(
            !engine.dictionary().is_compact(),
            "the config's words were compiled again"
        );
        assert_eq!(engine.check("casino").verdict, Verdict::Review);
        tokio::time::sleep(COMPACT_AFTER / 2).await;
        // a second change within the second: the first set is never compacted on its own
        lists.change("spam", add("lottery")).await.unwrap().unwrap();
        tokio::time::sleep(COMPACT_AFTER * 3 / 4).await;
        assert!(!engine.dictionary().is_compact());
        let version = engine.version();
        tokio::time::sleep(COMPACT_AFTER / 2).await;
        // the compaction runs on a blocking thread, outside the paused clock
        for _ in 0..500 {
            if engine.dictionary().is_compact() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
            tokio::task::yield_now().await;
        }
        assert!(
            engine.dictionary().is_compact(),
            "not compacted after a quiet second"
        );
        assert_eq!(engine.version(), version);
        assert_eq!(engine.check("casino and lottery").hits.len(), 2);
        assert_eq!(engine.check("word7x").verdict, Verdict::Block);
    }

    #[tokio::test]
    async fn a_change_that_cannot_be_built_is_neither_stored_nor_applied() {
        let dir = tempfile::tempdir().unwrap();
        let words = dir.path().join("danger.txt");
        std::fs::write(&words, "idiot\n").unwrap();
        let config = Sources::new().list(ListSource::file(&words, Level::Danger));
        let store_dir = dir.path().join("lists");
        let (lists, engine) = Lists::load(
            config,
            Store::File(store::FileStore::new(store_dir.clone())),
            Options::default(),
            &Registry::new(),
        )
        .await
        .unwrap();
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
        assert!(
            !store_dir.join("spam.json").exists(),
            "the change was stored"
        );
        assert!(lists.get("spam").await.is_none());
        assert_eq!(engine.version(), before);
        assert_eq!(engine.check("idiot").verdict, Verdict::Block);
    }

    #[tokio::test]
    async fn a_config_list_named_as_an_api_list_is_refused_at_start_up_at_reload_and_by_the_check()
    {
        let dir = tempfile::tempdir().unwrap();
        let store = store::FileStore::new(dir.path().join("lists"));
        let mut spam = ApiList::new("spam".into(), String::new(), Level::Normal, Kind::Deny);
        spam.words.insert("casino".into(), WordMeta::default());
        store.save(&spam).unwrap();
        let plain =
            || Sources::new().list(ListSource::inline("danger.txt", "idiot\n", Level::Danger));
        let clashing = || plain().list(ListSource::inline("spam.txt", "lottery\n", Level::Danger));
        let registry = Registry::new();
        let load = |config| {
            Lists::load(
                config,
                Store::File(store.clone()),
                Options::default(),
                &registry,
            )
        };

        let error = load(clashing())
            .await
            .err()
            .expect("refused at start-up")
            .to_string();
        assert!(error.contains("\"spam\" is both"), "{error}");
        let config = crate::config::ListsConfig {
            dir: dir.path().join("lists"),
            ..Default::default()
        };
        let error = check_stored(&clashing(), &config).unwrap_err().to_string();
        assert!(error.contains("\"spam\" is both"), "{error}");
        check_stored(&plain(), &config).unwrap();

        let (lists, engine) = load(plain()).await.unwrap();
        let error = lists
            .set_config(clashing(), Options::default())
            .await
            .unwrap_err();
        assert!(
            error.to_string().contains("DELETE /v1/lists/spam"),
            "{error}"
        );
        // the running lists stay
        assert_eq!(engine.check("casino").verdict, Verdict::Review);
        assert_eq!(engine.check("lottery").verdict, Verdict::Pass);

        // an operator's config: the error names its file, the line and the key
        std::fs::write(dir.path().join("danger.txt"), "idiot\n").unwrap();
        std::fs::write(dir.path().join("spam.txt"), "lottery\n").unwrap();
        let file = dir.path().join("espresso.toml");
        let written = |text: &str| {
            std::fs::write(&file, text).unwrap();
            crate::check_config(&file).unwrap_err().to_string()
        };
        let error = written(
            "[[filter.lists]]\npath = \"danger.txt\"\nlevel = \"danger\"\n\
             [[filter.lists]]\npath = \"spam.txt\"\nlevel = \"normal\"\n",
        );
        assert!(
            error.contains("espresso.toml, line 5, key `filter.lists.path`: list \"spam\" is both"),
            "{error}"
        );
        let error = written(
            "[filter]\nallow = [\n  'danger.txt',\n  'spam.txt',\n]\n\
             [[filter.lists]]\npath = \"danger.txt\"\nlevel = \"danger\"\n",
        );
        assert!(
            error.contains("espresso.toml, line 4, key `filter.allow`: list \"spam\" is both"),
            "{error}"
        );
        // a category that happens to be the list's name is not the line that names its file
        let error = written(
            "[[filter.lists]]\npath = \"danger.txt\"\nlevel = \"danger\"\ncategory = \"spam\"\n\
             [[filter.lists]]\npath = \"spam.txt\"\nlevel = \"normal\"\n",
        );
        assert!(
            error.contains("espresso.toml, line 6, key `filter.lists.path`: list \"spam\" is both"),
            "{error}"
        );
    }
}
