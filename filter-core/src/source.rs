//! Where word lists come from, and how a word-list file is parsed.

use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::Level;
use crate::rules::{self, RuleSpec};

/// The bytes of one word list: a file, or text held in memory (the built-in lists).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListData {
    /// A UTF-8 word-list file.
    File(PathBuf),
    /// Word-list text; `name` is used in errors and as the default category.
    Inline {
        /// A file-like name, e.g. `"danger.txt"`.
        name: String,
        /// The text, in the word-list format.
        text: Arc<str>,
    },
}

impl ListData {
    /// The name used in error messages.
    pub fn name(&self) -> String {
        match self {
            ListData::File(p) => p.display().to_string(),
            ListData::Inline { name, .. } => name.clone(),
        }
    }

    /// The file stem (`words/danger.txt` → `danger`), the default category.
    pub fn stem(&self) -> String {
        let p = match self {
            ListData::File(p) => p.as_path(),
            ListData::Inline { name, .. } => Path::new(name.as_str()),
        };
        p.file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    fn resolve(self, base: &Path) -> ListData {
        match self {
            ListData::File(p) if p.is_relative() => ListData::File(base.join(p)),
            other => other,
        }
    }
}

/// A list of blocked words with its level and (optional) default category.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListSource {
    /// Where the words are.
    pub data: ListData,
    /// The level of every word in the list.
    pub level: Level,
    /// The category of entries without their own; default: the list's file stem.
    pub category: Option<String>,
    /// Whether the list's Chinese words of two or more characters also match written in pinyin
    /// (`傻逼` as `shabi`, `sha bi`, `shǎ bī`, `sha3 bi1`, `傻bi`); default: off. See
    /// [`ListSource::pinyin`].
    pub pinyin: bool,
    /// The most characters the parts of each combination rule of the list may span; default
    /// (`None`): the whole text. See [`ListSource::rule_window`].
    pub rule_window: Option<NonZeroUsize>,
    /// The list's name, which hits carry ([`Hit::list`](crate::Hit::list)) and requests select
    /// lists by ([`FilterRequest::lists`](crate::FilterRequest::lists)); default: the file
    /// stem. Lists sharing a name are one list.
    pub name: Option<String>,
    /// Whether a check that names no lists uses this one (default: yes). See
    /// [`ListSource::by_default`].
    pub default: bool,
}

impl ListSource {
    /// A word-list file of `level`.
    pub fn file(path: impl Into<PathBuf>, level: Level) -> Self {
        ListSource {
            data: ListData::File(path.into()),
            level,
            category: None,
            pinyin: false,
            rule_window: None,
            name: None,
            default: true,
        }
    }

    /// In-memory word-list text of `level`.
    pub fn inline(name: impl Into<String>, text: impl Into<Arc<str>>, level: Level) -> Self {
        ListSource {
            data: ListData::Inline {
                name: name.into(),
                text: text.into(),
            },
            level,
            category: None,
            pinyin: false,
            rule_window: None,
            name: None,
            default: true,
        }
    }

    /// Sets the list's default category.
    pub fn category(mut self, category: impl Into<String>) -> Self {
        self.category = Some(category.into());
        self
    }

    /// Names the list (default: its file stem).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// The list's name: the one set with [`ListSource::name`], else the file stem.
    pub fn list_name(&self) -> String {
        self.name.clone().unwrap_or_else(|| self.data.stem())
    }

    /// Whether checks that name no lists use this list (default: yes). A list that is not used
    /// by default applies only to checks that name it.
    ///
    /// ```
    /// use espresso_filter_core::{Engine, Level, ListSource, Options, Sources, Verdict};
    ///
    /// let sources = Sources::new()
    ///     .list(ListSource::inline("base.txt", "idiot\n", Level::Danger))
    ///     .list(ListSource::inline("game.txt", "noob\n", Level::Normal).by_default(false));
    /// let engine = Engine::load(&sources, Options::default())?;
    /// assert_eq!(engine.check("noob").verdict, Verdict::Pass);
    /// let r = engine.check_lists("noob idiot", &["game"]).unwrap();
    /// assert_eq!(r.verdict, Verdict::Review);
    /// assert_eq!(r.hits[0].list, "game");
    /// assert!(engine.check_lists("noob", &["chat"]).is_err());
    /// # Ok::<(), espresso_filter_core::LoadError>(())
    /// ```
    pub fn by_default(mut self, yes: bool) -> Self {
        self.default = yes;
        self
    }

    /// Whether the list's Chinese words also match in Hanyu Pinyin (default: off).
    ///
    /// Every listed word of two or more characters gets the spellings that write some or all
    /// of its characters in toneless pinyin, with every reading of each character that the
    /// `pinyin` crate gives (heteronyms included). The text may join the syllables, space them,
    /// put noise between them, use any case, tone marks or tone numbers, and mix them with the
    /// word's own characters. Pinyin matches whole Latin words only, and a spelling that is
    /// all Latin letters never matches a common English word written alone (see
    /// [`crate::dict`], "Pinyin"). Single characters and initials (`sb`) are not derived: list
    /// them as words.
    ///
    /// ```
    /// use espresso_filter_core::{Engine, Level, ListSource, Options, Sources, Verdict};
    ///
    /// let list = ListSource::inline("zh.txt", "傻逼\n", Level::Danger).pinyin(true);
    /// let engine = Engine::load(&Sources::new().list(list), Options::default())?;
    /// for text in ["你个shabi", "SHA BI", "shǎ bī", "sha3bi1", "傻bi", "sha逼", "sha-bi"] {
    ///     assert_eq!(engine.check(text).verdict, Verdict::Block, "{text}");
    /// }
    /// // whole Latin words only
    /// assert_eq!(engine.check("Ushabi and shabix").verdict, Verdict::Pass);
    /// # Ok::<(), espresso_filter_core::LoadError>(())
    /// ```
    pub fn pinyin(mut self, yes: bool) -> Self {
        self.pinyin = yes;
        self
    }

    /// The window of the list's combination rules: a rule counts a part hit only where some
    /// stretch of at most `chars` characters of the text (as written, spaces and noise
    /// included) holds it and a hit of every other `&` part. Without a window (the default) the
    /// parts may be anywhere in the text.
    ///
    /// A list entry is a rule when its word holds `&` (all parts), `|` (alternatives) or `~`
    /// (exceptions that veto the hits they overlap); `\&`, `\|`, `\~`, `\\` are the
    /// characters themselves. See `docs/word-lists.md`, "Combination rules".
    ///
    /// ```
    /// use std::num::NonZeroUsize;
    /// use espresso_filter_core::{Engine, Level, ListSource, Options, Sources, Verdict};
    ///
    /// let text = "色情&视频\tporn\nbuy|sell&cheap|discount\n赌博~禁止赌博\n";
    /// let list = ListSource::inline("rules.txt", text, Level::Danger)
    ///     .rule_window(NonZeroUsize::new(12).unwrap());
    /// let engine = Engine::load(&Sources::new().list(list), Options::default())?;
    ///
    /// // every part, within 12 characters; one hit per part, the rule as the word
    /// let r = engine.check("免费色情视频");
    /// assert_eq!(r.masked, "免费****");
    /// assert_eq!(r.hits.len(), 2);
    /// assert_eq!((r.hits[0].word.as_str(), r.hits[0].category.as_str()), ("色情&视频", "porn"));
    /// assert_eq!(engine.check("色情").verdict, Verdict::Pass);
    /// assert_eq!(engine.check("色情，一二三四五六七八九十，视频").verdict, Verdict::Pass);
    ///
    /// // alternatives inside each part
    /// assert_eq!(engine.check("cheap, SELL!").masked, "*****, ****!");
    /// assert_eq!(engine.check("buy it").verdict, Verdict::Pass);
    ///
    /// // an exception vetoes only the hits it overlaps
    /// assert_eq!(engine.check("禁止赌博").verdict, Verdict::Pass);
    /// assert_eq!(engine.check("禁止赌博，他在赌博").masked, "禁止赌博，他在**");
    /// # Ok::<(), espresso_filter_core::LoadError>(())
    /// ```
    pub fn rule_window(mut self, chars: NonZeroUsize) -> Self {
        self.rule_window = Some(chars);
        self
    }
}

/// The full description of a dictionary set: blocked-word lists and allow lists.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Sources {
    /// Blocked-word lists.
    pub lists: Vec<ListSource>,
    /// Allow lists: an allowed entry suppresses every hit it overlaps.
    pub allow: Vec<ListData>,
}

/// The shipped default lists (`filter-core/words/`).
pub mod builtin {
    /// English and Chinese danger-level words.
    pub const DANGER: &str = include_str!("../words/danger.txt");
    /// English and Chinese normal-level words.
    pub const NORMAL: &str = include_str!("../words/normal.txt");
    /// Allowed words and phrases.
    pub const ALLOW: &str = include_str!("../words/allow.txt");
    /// Common English words that are also pinyin (a syllable, or syllables joined: `he`,
    /// `made`, `china`): an all-Latin pinyin spelling made only of these words counts only next
    /// to Chinese characters. Generated from the Brown corpus; one word a line, `#` comments.
    pub const PINYIN_ENGLISH: &str = include_str!("../words/pinyin-english.txt");
}

impl Sources {
    /// An empty set.
    pub fn new() -> Self {
        Sources::default()
    }

    /// The shipped default lists (`danger.txt`, `normal.txt`, `allow.txt`, embedded).
    pub fn builtin() -> Self {
        Sources::new()
            .list(ListSource::inline(
                "danger.txt",
                builtin::DANGER,
                Level::Danger,
            ))
            .list(ListSource::inline(
                "normal.txt",
                builtin::NORMAL,
                Level::Normal,
            ))
            .allow(ListData::Inline {
                name: "allow.txt".into(),
                text: builtin::ALLOW.into(),
            })
    }

    /// Adds a blocked-word list.
    pub fn list(mut self, list: ListSource) -> Self {
        self.lists.push(list);
        self
    }

    /// Adds an allow list.
    pub fn allow(mut self, data: ListData) -> Self {
        self.allow.push(data);
        self
    }

    /// Adds an allow-list file.
    pub fn allow_file(self, path: impl Into<PathBuf>) -> Self {
        self.allow(ListData::File(path.into()))
    }

    /// Resolves relative file paths against `base` (e.g. the config file's folder).
    pub fn relative_to(mut self, base: &Path) -> Self {
        for l in &mut self.lists {
            l.data = l.data.clone().resolve(base);
        }
        self.allow = self.allow.into_iter().map(|d| d.resolve(base)).collect();
        self
    }
}

/// Why a dictionary set could not be loaded. The running set stays in place.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// A word-list file could not be read.
    #[error("cannot read word list {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A line of a word list is malformed.
    #[error("{name}:{line}: {reason}")]
    Parse {
        /// The file (or inline list) name.
        name: String,
        /// The 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// The automaton could not be built (e.g. too many or too long patterns).
    #[error("cannot build the word automaton: {0}")]
    Build(#[from] aho_corasick::BuildError),
    /// An option or a list source is invalid: a charset range that ends before it starts, an
    /// allowed domain that is no domain name, an empty list name or category. The message
    /// names the value and what to give instead.
    #[error("{0}")]
    Invalid(String),
}

/// An entry a build kept out, or kept other than its line says; the build goes on.
/// [`Dictionary::warnings`](crate::Dictionary::warnings) lists them, so that a caller can say
/// so (the demo server logs each as a WARN, and `--check-config` prints them).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LoadWarning {
    /// The entry is only noise under the options (e.g. emoji while emoji are noise): it
    /// normalizes to nothing and could never match, so it is left out.
    #[error(
        "{name}:{line}: `{word}` normalizes to nothing (every character of it is noise) and \
         never matches; remove it, or change the options that make its characters noise"
    )]
    Empty {
        /// The file (or inline list) name.
        name: String,
        /// The 1-based line number.
        line: usize,
        /// The entry as written.
        word: String,
    },
    /// The entry is already in its list with another category (after normalization, at the
    /// same level): hits report the category it had first.
    #[error(
        "{name}:{line}: `{word}` is already in list `{list}` as `{first}` with category \
         `{kept}`; its hits report `{kept}` (give both lines one category, or remove one)"
    )]
    Category {
        /// The file (or inline list) name.
        name: String,
        /// The 1-based line number.
        line: usize,
        /// The entry as written.
        word: String,
        /// The list holding both.
        list: String,
        /// The entry as written first.
        first: String,
        /// The category hits report.
        kept: String,
    },
}

/// One parsed entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    /// the word, or the rule as written
    pub(crate) word: String,
    /// set when the entry is a combination rule
    pub(crate) rule: Option<RuleSpec>,
    pub(crate) category: Option<String>,
    pub(crate) line: usize,
}

/// Reads the bytes of a list.
pub(crate) fn read(data: &ListData) -> Result<Vec<u8>, LoadError> {
    match data {
        ListData::File(p) => std::fs::read(p).map_err(|source| LoadError::Io {
            path: p.clone(),
            source,
        }),
        ListData::Inline { text, .. } => Ok(text.as_bytes().to_vec()),
    }
}

/// Parses word-list bytes: UTF-8, one entry per line, blank and `#` lines ignored, `word` or
/// `word<TAB>category`; a word with `&`, `|` or `~` is a combination rule (see [`rules`]).
pub(crate) fn parse(name: &str, bytes: &[u8]) -> Result<Vec<Entry>, LoadError> {
    let mut out = Vec::new();
    for (i, raw) in bytes.split(|&b| b == b'\n').enumerate() {
        let line = i + 1;
        let err = |reason: &str| LoadError::Parse {
            name: name.to_string(),
            line,
            reason: reason.to_string(),
        };
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let text = std::str::from_utf8(raw).map_err(|_| err("invalid UTF-8"))?;
        if text.contains('\r') {
            return Err(err(
                "a carriage return inside the line (lines end with LF or CRLF; a file whose \
                 lines end with CR alone reads as one line)",
            ));
        }
        // the byte order mark of the file, or of a file pasted onto the end of another
        let text = text.strip_prefix('\u{FEFF}').unwrap_or(text);
        let trimmed = text.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let mut parts = text.split('\t');
        let word = parts.next().unwrap_or("").trim();
        let category = parts.next().map(str::trim);
        if parts.next().is_some() {
            return Err(err(
                "more than one tab (expected `word` or `word<TAB>category`)",
            ));
        }
        if word.is_empty() {
            return Err(err("empty word before the tab"));
        }
        if category == Some("") {
            return Err(err("empty category after the tab"));
        }
        let (word, rule) = match rules::parse(word) {
            Ok(rules::Parsed::Word(w)) => (w, None),
            Ok(rules::Parsed::Rule(spec)) => (word.to_string(), Some(spec)),
            Err(reason) => return Err(err(&reason)),
        };
        out.push(Entry {
            word,
            rule,
            category: category.map(str::to_string),
            line,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lone_carriage_return_is_an_error_and_a_byte_order_mark_is_no_letter() {
        let err = parse("mac.txt", b"foo\rbar\r").unwrap_err();
        assert!(
            err.to_string().starts_with("mac.txt:1: a carriage return"),
            "{err}"
        );
        let e = parse("x.txt", "\u{FEFF}foo\n\u{FEFF}bar\n".as_bytes()).unwrap();
        assert_eq!(
            e.iter().map(|e| e.word.as_str()).collect::<Vec<_>>(),
            ["foo", "bar"]
        );
    }

    #[test]
    fn parses_the_format() {
        let e = parse(
            "x.txt",
            "\u{FEFF}# comment\n\nfoo\nbar\tinsult\r\n  baz  \n".as_bytes(),
        )
        .unwrap();
        assert_eq!(e.len(), 3);
        assert_eq!(e[0].word, "foo");
        assert_eq!(e[0].line, 3);
        assert_eq!(e[1].category.as_deref(), Some("insult"));
        assert_eq!(e[2].word, "baz");
    }

    #[test]
    fn errors_name_file_and_line() {
        let err = parse("w.txt", b"ok\na\tb\tc\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "w.txt:2: more than one tab (expected `word` or `word<TAB>category`)"
        );
        let err = parse("w.txt", b"ok\n\tcat\n").unwrap_err();
        assert!(err.to_string().starts_with("w.txt:2: empty word"), "{err}");
        let err = parse("w.txt", b"a\nb\t \n").unwrap_err();
        assert!(
            err.to_string().starts_with("w.txt:2: empty category"),
            "{err}"
        );
        let err = parse("w.txt", b"a\n\xFF\xFE\n").unwrap_err();
        assert_eq!(err.to_string(), "w.txt:2: invalid UTF-8");
    }

    #[test]
    fn rules_parse_and_bad_rules_name_file_and_line() {
        let e = parse(
            "r.txt",
            "plain\\word\nAT\\&T\n色情 & 视频\tporn\n".as_bytes(),
        )
        .unwrap();
        assert_eq!(
            (e[0].word.as_str(), e[0].rule.is_none()),
            ("plain\\word", true)
        );
        assert_eq!((e[1].word.as_str(), e[1].rule.is_none()), ("AT&T", true));
        assert_eq!(e[2].word, "色情 & 视频");
        assert_eq!(
            e[2].rule.as_ref().map(|r| r.groups.clone()),
            Some(vec![vec!["色情".to_string()], vec!["视频".to_string()]])
        );
        assert_eq!(e[2].category.as_deref(), Some("porn"));
        let err = parse("r.txt", "ok\n\na&&b\n".as_bytes()).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("r.txt:3: empty part in a rule: nothing between `&` and `&`"),
            "{err}"
        );
    }

    #[test]
    fn stems_and_relative_paths() {
        assert_eq!(ListData::File("a/b/danger.txt".into()).stem(), "danger");
        let s = Sources::new()
            .list(ListSource::file("w/d.txt", Level::Danger))
            .list(ListSource::file("/abs/n.txt", Level::Normal))
            .allow_file("a.txt")
            .relative_to(Path::new("/etc/espresso"));
        assert_eq!(
            s.lists[0].data,
            ListData::File("/etc/espresso/w/d.txt".into())
        );
        assert_eq!(s.lists[1].data, ListData::File("/abs/n.txt".into()));
        assert_eq!(s.allow[0], ListData::File("/etc/espresso/a.txt".into()));
    }
}
