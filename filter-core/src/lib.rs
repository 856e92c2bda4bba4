//! The sensitive-text filter engine of espresso.
//!
//! Text is normalized in one pass — compatibility folding (full-width, styled and circled
//! letters, number styles), case folding, accent stripping, look-alike letters of other scripts
//! (UTS #39 confusables), traditional → simplified Chinese, noise characters
//! (spaces, `* . _ | - @ ·`, zero-width characters, emoji) skipped, repeated characters
//! collapsed — while keeping a map back to the original byte offsets. An Aho-Corasick automaton
//! over all listed words scans the normalized text; candidates are checked against the
//! original text for word boundaries and deliberate spacing (see [`dict`] for the exact rules),
//! allow-list entries suppress what they overlap, and among overlapping hits a danger-level one
//! wins, then the longest. Leetspeak (`sh1t`, `ｓｈ１ｔ`, `s h 1 t`, `sh¡t`) and pinyin tone
//! numbers are read from same-length copies of the text, so offsets never move; lists may opt
//! in to pinyin ([`ListSource::pinyin`]).
//!
//! ```
//! use espresso_filter_core::{Engine, Level, Verdict};
//!
//! let engine = Engine::builtin();
//!
//! // evasions are caught, and offsets point into the original text
//! let text = "you ＦＵＣＫ, what the f*u c.k, fuuuuck";
//! let r = engine.check(text);
//! assert_eq!(r.verdict, Verdict::Block);
//! assert_eq!(r.hits.len(), 3);
//! assert_eq!(&text[r.hits[0].start..r.hits[0].end], "ＦＵＣＫ");
//! assert_eq!(&text[r.hits[1].start..r.hits[1].end], "f*u c.k");
//! assert_eq!(r.hits[1].level, Level::Danger);
//! assert_eq!(r.masked, "you ****, what the *******, *******");
//!
//! // whole words only: no Scunthorpe problem, and word gaps never glue words together
//! assert_eq!(engine.check("a classic cocktail in Scunthorpe; the pen is blue").verdict, Verdict::Pass);
//!
//! // Chinese matches anywhere, in either script, through noise
//! let r = engine.check("你這個傻*逼");
//! assert_eq!(r.verdict, Verdict::Block);
//! assert_eq!(r.masked, "你這個***");
//!
//! // leetspeak inside mixed words, look-alike letters of other scripts (Unicode confusables)
//! let text = "sh1t, $hit, b4stard, fυϲk, ⓕⓤⓒⓚ";
//! let r = engine.check(text);
//! assert_eq!(r.hits.len(), 5);
//! assert_eq!(r.masked, "****, ****, *******, ****, ****");
//! // ...but numbers, prices and versions stay numbers, and Russian stays Russian
//! assert_eq!(engine.check("5h1ft at 10am for $5.55, v1.2, the 1960s").verdict, Verdict::Pass);
//! assert_eq!(engine.check("Но это не так").verdict, Verdict::Pass);
//! ```
//!
//! Word lists, options and reloads:
//!
//! ```
//! use espresso_filter_core::{Engine, ListSource, Level, Options, Sources, Verdict};
//!
//! let sources = Sources::new()
//!     .list(ListSource::inline("spam.txt", "cheap pills\nviagra\tads\n", Level::Normal));
//! let engine = Engine::load(&sources, Options::default().mask(Level::Normal, '#'))?;
//! let r = engine.check("Buy CHEAP   pills!");
//! assert_eq!(r.verdict, Verdict::Review);
//! assert_eq!(r.hits[0].category, "spam"); // the list's stem
//! assert_eq!(r.masked, "Buy #############!");
//!
//! // a bad list keeps the running set and says where the problem is
//! let v = engine.version();
//! let bad = Sources::new().list(ListSource::inline("bad.txt", "ok\nx\ty\tz\n", Level::Danger));
//! let err = engine.reload(&bad).unwrap_err();
//! assert!(err.to_string().starts_with("bad.txt:2:"));
//! assert_eq!(engine.version(), v);
//! # Ok::<(), espresso_filter_core::LoadError>(())
//! ```
//!
//! Combination rules in word lists (`&` all parts, `|` alternatives, `~` exceptions that veto
//! only what they overlap; see [`ListSource::rule_window`]):
//!
//! ```
//! use espresso_filter_core::{Engine, ListSource, Level, Options, Sources, Verdict};
//!
//! let list = "色情&视频\tporn\n赌博~禁止赌博\nsex~essex\n";
//! let sources = Sources::new().list(ListSource::inline("rules.txt", list, Level::Danger));
//! let engine = Engine::load(&sources, Options::default())?;
//! assert_eq!(engine.check("视频").verdict, Verdict::Pass);
//! let r = engine.check("色*情視頻");
//! assert_eq!((r.hits.len(), r.hits[0].word.as_str(), r.masked.as_str()), (2, "色情&视频", "*****"));
//! assert_eq!(engine.check("禁止赌博").verdict, Verdict::Pass);
//! assert_eq!(engine.check("free sex chat, based in Essex").masked, "free *** chat, based in Essex");
//! # Ok::<(), espresso_filter_core::LoadError>(())
//! ```
//!
//! The engine is local and synchronous: this crate has no network client, no async runtime and
//! no metrics registry. The remote stages that go in front of [`FilterService`] — the verdict
//! cache (optionally shared in Redis), the gRPC TextClassifier client with its circuit breakers
//! and Prometheus metrics, and the classifier's proto — are in `espresso-filter-stages`
//! (formerly this crate's `stages` module; `espresso_filter_core::stages::X` is now
//! `espresso_filter_stages::X`).
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod detect;
pub mod dict;
mod engine;
mod fold;
mod leet;
mod matcher;
mod normalize;
mod options;
mod pinyin;
mod rules;
mod service;
mod source;
#[cfg(test)]
mod testing;
mod types;

pub use detect::{DetectorMode, Detectors, IM_KEYWORDS, ImKind};
pub use dict::{DictStats, Dictionary, UnknownList};
pub use engine::Engine;
pub use normalize::Normalized;
pub use options::{Charset, DEFAULT_NOISE_CHARS, NoiseSet, Options};
pub use service::FilterService;
pub use source::{ListData, ListSource, LoadError, LoadWarning, Sources, builtin};
pub use types::{FilterRequest, FilterResponse, Hit, Level, Verdict};

// The README is the crate page on crates.io; its example runs as a doctest so it stays true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
