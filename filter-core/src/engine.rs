//! The engine: the current dictionary set behind an atomic pointer.

use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::dict::{Dictionary, UnknownList};
use crate::normalize::Table;
use crate::options::Options;
use crate::source::{LoadError, Sources};
use crate::types::FilterResponse;

/// The filter engine: cheap to clone (one `Arc`), safe to share between threads.
///
/// Checks read the current [`Dictionary`] without locking. [`Engine::reload`] builds a new set
/// on the calling thread (call it from `spawn_blocking` or a config-watcher thread, never on a
/// request path) and swaps it in atomically; checks already running finish on the old set. If
/// loading fails, the running set stays and the error says which file and line.
#[derive(Clone, Debug)]
pub struct Engine {
    current: Arc<ArcSwap<Dictionary>>,
}

impl Engine {
    /// An engine serving `dictionary`.
    pub fn new(dictionary: Dictionary) -> Self {
        Engine {
            current: Arc::new(ArcSwap::from_pointee(dictionary)),
        }
    }

    /// An engine with the shipped default lists and default options.
    pub fn builtin() -> Self {
        Engine::new(Dictionary::builtin())
    }

    /// Loads `sources` with `options`.
    pub fn load(sources: &Sources, options: Options) -> Result<Self, LoadError> {
        Ok(Engine::new(Dictionary::build(sources, options)?))
    }

    /// Checks `text` against the current set.
    pub fn check(&self, text: &str) -> FilterResponse {
        self.current.load().check(text)
    }

    /// [`Engine::check`] of a text the caller gives away (see [`Dictionary::check_owned`]).
    pub(crate) fn check_owned(&self, text: String) -> FilterResponse {
        self.current.load().check_owned(text)
    }

    /// Checks `text` against the blocked lists named `lists` (allow lists always apply); an
    /// unknown name is an error. See [`Dictionary::check_lists`].
    pub fn check_lists<S: AsRef<str>>(
        &self,
        text: &str,
        lists: &[S],
    ) -> Result<FilterResponse, UnknownList> {
        self.current.load().check_lists(text, lists)
    }

    /// A snapshot of the current set (stays valid across reloads).
    pub fn dictionary(&self) -> Arc<Dictionary> {
        self.current.load_full()
    }

    /// The version of the current set (see [`Dictionary::version`]).
    pub fn version(&self) -> u64 {
        self.current.load().version()
    }

    /// Builds `sources` with the current options and swaps the result in; returns the new
    /// version. On error nothing changes.
    pub fn reload(&self, sources: &Sources) -> Result<u64, LoadError> {
        Ok(self.install(self.build(sources)?))
    }

    /// Like [`Engine::reload`] with new options.
    pub fn reload_with(&self, sources: &Sources, options: Options) -> Result<u64, LoadError> {
        Ok(self.install(self.build_with(sources, options)?))
    }

    /// Builds `sources` with the current options (and the current fold table) without swapping
    /// the result in: [`Engine::install`] it once what must come first (saving the change, say)
    /// has succeeded.
    pub fn build(&self, sources: &Sources) -> Result<Dictionary, LoadError> {
        let options = self.current.load().options().clone();
        self.build_with(sources, options)
    }

    /// Like [`Engine::build`], but incremental: the current set's automaton serves the patterns
    /// the two sets have alike, from the first up to the first that differs, so adding words at
    /// the end of the lists compiles only them, and a change elsewhere compiles what follows it
    /// (later lists included). When fewer than half the patterns are alike it is a full build
    /// ([`Dictionary::is_compact`]). The result answers exactly as a full build would, with a
    /// second automaton per check until [`Engine::compact`] folds the two into one; call that
    /// off the request path once the result is installed.
    ///
    /// ```
    /// use espresso_filter_core::{Engine, Level, ListSource, Options, Sources};
    ///
    /// let lists = |words: &str| {
    ///     Sources::new().list(ListSource::inline("ads", words, Level::Danger))
    /// };
    /// let engine = Engine::load(&lists("spam\n"), Options::default())?;
    /// let next = engine.build_incremental(&lists("spam\nscam\n"))?;
    /// assert_eq!(next.pending(), 1); // one new pattern beside the old automaton
    /// engine.install(next);
    /// assert_eq!(engine.check("a scam").hits[0].word, "scam");
    /// assert!(engine.compact()?);
    /// assert_eq!(engine.dictionary().pending(), 0);
    /// assert_eq!(engine.check("a scam").hits[0].word, "scam");
    /// # Ok::<(), espresso_filter_core::LoadError>(())
    /// ```
    pub fn build_incremental(&self, sources: &Sources) -> Result<Dictionary, LoadError> {
        let current = self.current.load_full();
        Dictionary::build_with_table(sources, current.table().clone(), Some(&current))
    }

    /// Gives the current set one automaton if it was built incrementally, and swaps that in
    /// unless another set was installed meanwhile. Returns whether it swapped. Takes a full
    /// build's automaton time: call it where a reload would run, never on a request path.
    pub fn compact(&self) -> Result<bool, LoadError> {
        let current = self.current.load_full();
        let Some(compacted) = current.compacted() else {
            return Ok(false);
        };
        let before = self
            .current
            .compare_and_swap(&current, Arc::new(compacted?));
        Ok(Arc::ptr_eq(&before, &current))
    }

    fn build_with(&self, sources: &Sources, options: Options) -> Result<Dictionary, LoadError> {
        let current = self.current.load_full();
        let table = if current.options() == &options {
            current.table().clone()
        } else {
            Arc::new(Table::new(&options))
        };
        Dictionary::build_with_table(sources, table, None)
    }

    /// Swaps in a dictionary built elsewhere; returns its version.
    pub fn install(&self, dictionary: Dictionary) -> u64 {
        let v = dictionary.version();
        self.current.store(Arc::new(dictionary));
        v
    }
}
