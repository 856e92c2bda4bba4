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

    fn build_with(&self, sources: &Sources, options: Options) -> Result<Dictionary, LoadError> {
        let current = self.current.load_full();
        let table = if current.options() == &options {
            current.table().clone()
        } else {
            Arc::new(Table::new(&options))
        };
        Dictionary::build_with_table(sources, table)
    }

    /// Swaps in a dictionary built elsewhere; returns its version.
    pub fn install(&self, dictionary: Dictionary) -> u64 {
        let v = dictionary.version();
        self.current.store(Arc::new(dictionary));
        v
    }
}
