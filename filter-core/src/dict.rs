//! A compiled dictionary set: the automaton, the entries, and the matching rules.
//!
//! # Matching rules
//!
//! The automaton runs over the normalized text (noise removed, repeats collapsed), so it yields
//! *candidates*. Each candidate is then checked against the original text:
//!
//! 1. **Exact shape.** The original slice is folded again without collapse. Its characters must
//!    be the entry's, and with collapse on every run must be at least as long as the entry's run
//!    (`fuuuck` matches `fuck`; `as` never matches `ass`). Trailing repeats are included in the hit.
//! 2. **Word boundaries.** An entry that starts (ends) with a word character — a letter or digit
//!    of a script written with spaces, e.g. Latin — only matches where the original character
//!    before (after) the hit is not one (invisible characters are looked through). So `classic`,
//!    `assassin`, `Scunthorpe`, `cocktail` and `therapist` do not hit `ass`, `cunt`, `cock` or
//!    `rapist`. CJK (and Thai, Lao, Khmer, Myanmar) characters match anywhere.
//! 3. **Gaps between words.** Noise between two characters of an entry is fine, except that
//!    whitespace between two word characters, where the entry itself has none, is accepted only
//!    as evidence of deliberate spacing: either every space-separated piece of the hit is a
//!    single letter (`f u c k`, `s h i t`), or the hit also contains visible non-space noise
//!    (`f*u c.k`, `f.u c k`). So ordinary word gaps never glue words into a hit: `pen is`,
//!    `an al`, `as s`, `a SS` pass. Whitespace in an entry (`fuck you`, `A 片`) allows
//!    whitespace there.
//! 4. **Traditional characters as listed.** An entry written with a traditional character
//!    (`撚`) matches only that character, not the simplified one it folds to (`捻`, ordinary in
//!    `纸捻`); an entry in simplified characters matches both spellings.
//! 5. **Look-alike letters, whole script.** A hit of a Latin entry made only of letters of
//!    another script (`ѕһіt`, all Cyrillic) does not count when the nearest letter before or
//!    after it is of such a script too: Russian `но` is not `ho`.
//!
//! # More readings of the text
//!
//! Besides the text as written, two same-length copies are scanned where they exist, and their
//! hits verified with the same rules (offsets are the original's):
//!
//! - **Leet** (see the word-list docs for the table): digits and symbols inside a token that
//!   mixes letters with them (`sh1t`, `$hit`) read as letters, once with `1 ! |` as `i` and, if
//!   any was read, once as `l`. A leet hit must read at least one replaced byte and hold a letter
//!   (or be an all-symbol form of three or more, `@$$`). Numbers, prices, times, versions and
//!   numbers with a unit or ordinal suffix are never read.
//! - **Tone numbers** (only when some list has pinyin): a digit 0–5 right after a letter is read
//!   as invisible noise (`sha3bi1`), for pinyin spellings only.
//!
//! # Pinyin
//!
//! A list with [`ListSource::pinyin`](crate::ListSource::pinyin) adds spellings of its Chinese
//! words (syllables separated by a space, so the text may join or space them). A spelling takes
//! no repeated letters (`momma` is not `mo ma`), and a hit of an all-Latin spelling whose every
//! word is in [`builtin::PINYIN_ENGLISH`](crate::builtin::PINYIN_ENGLISH) (`made`, `ben dan`)
//! counts only next to a CJK character.
//!
//! Then allow-list hits suppress every blocked hit they overlap, combination rules turn their
//! parts' hits into hits of the rule (see `docs/word-lists.md`, "Combination rules"), and among
//! overlapping blocked hits a danger-level one wins over a normal one (so the verdict is `Block`
//! whenever a danger-level entry is hit), then the longest entry, then the leftmost, then the
//! longer span, then a word over a rule.

use std::borrow::Cow;
use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::ops::Range;
use std::sync::Arc;

use crate::fold::Folded;
use crate::matcher::Matcher;
use crate::normalize::{MAX_WINDOW, Normalized, Table, Unit};
use crate::options::{Options, is_invisible};
use crate::rules::{PartHit, RuleHit, RuleOrigin, Rules, RulesBuilder};
use crate::source::{self, LoadError, LoadWarning, Sources};
use crate::types::{FilterResponse, Hit, Level, Verdict};

/// 64-bit FNV-1a, stable across processes and releases (the version must be shareable).
pub(crate) struct Fnv(u64);

impl Fnv {
    fn new() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
    pub(crate) fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= b as u64;
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    pub(crate) fn write_str(&mut self, s: &str) {
        self.write(s.as_bytes());
        self.write(&[0xFF]);
    }
}

/// Counts of a compiled dictionary set.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DictStats {
    /// Distinct blocked entries in the automaton.
    pub words: usize,
    /// Distinct allow-list entries in the automaton.
    pub allowed: usize,
    /// Entries dropped because they normalize to nothing (e.g. an emoji-only entry while emoji
    /// are noise) or repeat another entry.
    pub skipped: usize,
    /// Pinyin spellings of Chinese words added for lists with pinyin on (not in `words`).
    pub pinyin: usize,
    /// Heap bytes of the automaton (aho-corasick's `memory_usage`).
    pub automaton_bytes: usize,
    /// Combination rules (entries with `&`, `|` or `~`; not in `words`).
    pub rules: usize,
}

/// A pattern's unit: a character and how often it repeats (1 unless collapse is on).
/// Equality and hash leave `exact` out: an entry that differs from another only by a
/// traditional character as listed is the narrower of the two, and is merged into it.
#[derive(Clone, Copy, Debug)]
struct PUnit {
    c: char,
    count: u16,
    /// the entry had noise (e.g. a space) right before this unit
    gap: bool,
    /// the entry had noise inside this run (`cheap pills`: the `pp` run)
    inner_gap: bool,
    /// a traditional character of the entry, which the text must have as written (`撚` is not
    /// found in `纸捻`, although both fold to `捻`); `'\0'` for any character folding to `c`
    exact: char,
}

impl PartialEq for PUnit {
    fn eq(&self, o: &Self) -> bool {
        (self.c, self.count, self.gap, self.inner_gap) == (o.c, o.count, o.gap, o.inner_gap)
    }
}

impl Eq for PUnit {}

impl std::hash::Hash for PUnit {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(
            ((self.c as u64) << 32)
                | ((self.count as u64) << 2)
                | ((self.gap as u64) << 1)
                | self.inner_gap as u64,
        );
    }
}

/// A fast word-at-a-time hasher for the build's dedupe map (the keys are the operator's own
/// lists, so no DoS resistance is needed).
#[derive(Default)]
struct WordHasher(u64);

impl Hasher for WordHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut w = [0u8; 8];
            w[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(w));
        }
    }
    fn write_u64(&mut self, w: u64) {
        self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}

#[derive(Debug)]
struct Pattern {
    word: Box<str>,
    /// `None` for allow-list entries
    level: Option<Level>,
    category: Arc<str>,
    units: Box<[PUnit]>,
    start_word: bool,
    end_word: bool,
    /// normalized length in chars (overlap priority)
    len: usize,
    /// a pinyin spelling of a listed Chinese word (see "Pinyin" in the module docs)
    pinyin: bool,
    /// made of Latin letters only (the whole-script rule and the English-word rule apply)
    latin: bool,
    /// some unit must be a traditional character as listed (`PUnit::exact`)
    traditional: bool,
    /// some unit repeats (a count above 1: `ass`, `butt`)
    repeats: bool,
    /// a part of combination rules (its id), or `NO_PART`
    part: u32,
    /// the index of the entry's list in `Dictionary::lists`
    list: u32,
}

const NO_PART: u32 = u32::MAX;

/// The automaton's patterns as bytes, one after another.
#[derive(Debug, Default)]
struct Keys {
    bytes: Vec<u8>,
    ends: Vec<usize>,
}

impl Keys {
    fn push(&mut self, key: &[u8]) {
        self.bytes.extend_from_slice(key);
        self.ends.push(self.bytes.len());
    }

    fn len(&self) -> usize {
        self.ends.len()
    }

    fn get(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.bytes[start..self.ends[i]]
    }

    fn iter(&self, range: Range<usize>) -> impl Iterator<Item = &[u8]> + Clone {
        range.map(|i| self.get(i))
    }

    /// How many patterns from the first on `self` and `other[..limit]` have alike.
    fn common_prefix(&self, other: &Keys, limit: usize) -> usize {
        let n = self.len().min(limit);
        (0..n).find(|&i| self.get(i) != other.get(i)).unwrap_or(n)
    }
}

/// The automaton of `keys` (a contiguous NFA: the fastest search; the noncontiguous kind if
/// that cannot hold them).
fn automaton<'a>(keys: impl Iterator<Item = &'a [u8]>) -> Result<Matcher, LoadError> {
    Ok(Matcher::build(keys)?)
}
/// `Cand::pat` of a rule's hit: this bit and the rule's index
const RULE_BIT: u32 = 1 << 31;

/// A list of a dictionary set, by name.
#[derive(Debug)]
struct ListInfo {
    name: Arc<str>,
    /// entries (words and rules) listed in it, before deduplication
    entries: usize,
    /// used by checks that name no lists
    default: bool,
    /// an allow list (always applies)
    allow: bool,
}

/// A check named a list the dictionary set does not have.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown list {0:?}")]
pub struct UnknownList(pub String);

/// A compiled, immutable dictionary set. Build one with [`Dictionary::build`]; an
/// [`Engine`](crate::Engine) holds the current one and swaps it atomically.
#[derive(Clone)]
pub struct Dictionary {
    /// the automaton of `keys[..live]` (an incremental build's base may know more patterns,
    /// stale ones, whose matches are ignored)
    ac: Matcher,
    live: usize,
    /// an incremental build: the automaton of `keys[live..]`, pattern ids counted from `live`
    delta: Option<Matcher>,
    /// what the automata match, pattern by pattern (an incremental build compares them)
    keys: Arc<Keys>,
    pats: Arc<[Pattern]>,
    table: Arc<Table>,
    version: u64,
    stats: DictStats,
    warnings: Arc<[LoadWarning]>,
    /// some entry has a Latin letter: leet readings are tried
    leet: bool,
    /// some entry is a pinyin spelling: tone numbers are read as noise too
    pinyin: bool,
    rules: Arc<Rules>,
    /// the patterns from this index on are rule parts (added after every word)
    first_part: usize,
    /// the part id of pattern `first_part + i`
    part_of: Arc<[u32]>,
    /// the lists, blocked and allowed, in the order of the sources
    lists: Arc<[ListInfo]>,
    /// the lists a check that names none uses, as a bit set; `None`: every list
    defaults: Option<Box<[u64]>>,
}

impl std::fmt::Debug for Dictionary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dictionary")
            .field("version", &self.version)
            .field("stats", &self.stats)
            .field("options", self.options())
            .finish_non_exhaustive()
    }
}

/// A bit set of `len` bits from `values`.
fn bits(len: usize, values: impl IntoIterator<Item = bool>) -> Box<[u64]> {
    let mut set = vec![0u64; len.div_ceil(64)];
    for (i, on) in values.into_iter().enumerate() {
        if on {
            set[i / 64] |= 1 << (i % 64);
        }
    }
    set.into()
}

/// A verified candidate.
#[derive(Clone, Copy, Debug)]
struct Cand {
    start: usize,
    end: usize,
    /// a pattern, or `RULE_BIT` and a rule
    pat: u32,
    /// normalized length of what hit (overlap priority)
    len: u32,
    level: Level,
}

/// Reusable buffers of one check.
#[derive(Default)]
struct Scratch {
    norm: Normalized,
    seq: Vec<Folded1>,
    cands: Vec<Cand>,
    allow: Vec<(usize, usize)>,
    /// a same-length copy of the text (leet reading, tone numbers)
    copy: Vec<u8>,
    /// the copies' normalization when `norm` must keep the text's: rule parts' matches in the
    /// text are mapped to it only after the copies are scanned, if at all
    norm_copy: Normalized,
    parts: Vec<PartHit>,
    /// rule parts' automaton matches in the text as written (normalized offsets), mapped and
    /// verified only if a rule may fire
    raw_parts: Vec<RawPart>,
    rule_hits: Vec<RuleHit>,
    rules: crate::rules::Scratch,
    /// the blocked lists this check uses, a bit per list index (when `selecting`)
    selected: Vec<u64>,
    /// only the lists in `selected` count
    selecting: bool,
}

/// A rule part's automaton match in the normalized text as written.
#[derive(Clone, Copy, Debug)]
struct RawPart {
    start: u32,
    end: u32,
    pat: u32,
}

/// Which reading of the text a scan looks at.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Pass {
    /// the text as written
    Plain,
    /// a leet copy: only hits that read a replaced byte count
    Leet,
    /// the tone-number copy: only pinyin spellings count
    Tone,
}

/// One folded char of a candidate, with the gap before it and its original char's range.
#[derive(Clone, Copy, Debug)]
struct Folded1 {
    c: char,
    gap: u8,
    start: usize,
    end: usize,
}

/// What adding an entry's pattern did.
enum Added {
    New,
    /// it normalizes to nothing: no pattern
    Empty,
    /// the same pattern was there: merged into it
    Merged,
    /// merged, but the pattern keeps the category (and word) it had first
    Recategorized {
        first: String,
        kept: String,
    },
}

const GAP_WS: u8 = 1;
const GAP_VISIBLE: u8 = 2;

impl Dictionary {
    /// Reads and compiles `sources` with `options`.
    pub fn build(sources: &Sources, options: Options) -> Result<Dictionary, LoadError> {
        static DEFAULT_TABLE: std::sync::OnceLock<Arc<Table>> = std::sync::OnceLock::new();
        let table = if options == Options::default() {
            DEFAULT_TABLE
                .get_or_init(|| Arc::new(Table::new(&options)))
                .clone()
        } else {
            Arc::new(Table::new(&options))
        };
        Dictionary::build_with_table(sources, table, None)
    }

    /// The shipped default lists with default options.
    pub fn builtin() -> Dictionary {
        Dictionary::build(&Sources::builtin(), Options::default())
            .expect("the built-in word lists are valid (tested)")
    }

    /// A dictionary with no words (every check passes but the detectors'); fails only when
    /// `options` are invalid ([`LoadError::Invalid`]).
    pub fn empty(options: Options) -> Result<Dictionary, LoadError> {
        Dictionary::build(&Sources::new(), options)
    }

    /// Compiles `sources` with `table`. With a `base` built with the same table, its automaton
    /// serves the patterns the two have alike from the first on, and only the rest get a new,
    /// small automaton: an incremental build, which answers exactly as a full one would and
    /// takes a fraction of its time. [`Dictionary::compacted`] makes it one automaton again.
    pub(crate) fn build_with_table(
        sources: &Sources,
        table: Arc<Table>,
        base: Option<&Dictionary>,
    ) -> Result<Dictionary, LoadError> {
        if let Some(why) = crate::options::invalid(table.options()) {
            return Err(LoadError::Invalid(why));
        }
        for list in &sources.lists {
            let (name, data) = (list.list_name(), list.data.name());
            if name.is_empty() {
                return Err(LoadError::Invalid(format!(
                    "list {data:?} has an empty name (name it with ListSource::name)"
                )));
            }
            if list.category.as_deref() == Some("") {
                return Err(LoadError::Invalid(format!(
                    "list {name:?} has an empty category (give one, or none for the file stem)"
                )));
            }
        }
        let mut h = Fnv::new();
        table.options().fingerprint(&mut h);
        let mut pats: Vec<Pattern> = Vec::new();
        let mut keys = Keys::default();
        // (entry, level (None: allow), category, pinyin spellings wanted, list index)
        type Listed = (source::Entry, Option<Level>, Arc<str>, bool, u32);
        let mut all: Vec<Listed> = Vec::new();
        // (index in `all` of a source's first entry, its name), for warnings
        let mut names: Vec<(usize, String)> = Vec::new();
        let mut categories: HashMap<String, Arc<str>> = HashMap::new();
        let mut rules = RulesBuilder::default();
        let mut lists: Vec<ListInfo> = Vec::new();
        // lists sharing a name are one list; an allow list's name is its file stem
        let mut list_index = |name: String, default: bool, allow: bool| -> u32 {
            match lists
                .iter()
                .position(|l| *l.name == *name && l.allow == allow)
            {
                Some(i) => {
                    lists[i].default |= default;
                    i as u32
                }
                None => {
                    lists.push(ListInfo {
                        name: name.into(),
                        entries: 0,
                        default,
                        allow,
                    });
                    (lists.len() - 1) as u32
                }
            }
        };
        // (list index, entries read) per source, added to the lists once they are all known
        let mut counted: Vec<(u32, usize)> = Vec::new();
        for list in &sources.lists {
            let index = list_index(list.list_name(), list.default, false);
            let name = list.data.name();
            let entries = source::parse(&name, &source::read(&list.data)?)?;
            counted.push((index, entries.len()));
            names.push((all.len(), name.clone()));
            let default_cat: Arc<str> = list
                .category
                .clone()
                .unwrap_or_else(|| list.data.stem())
                .into();
            for e in entries {
                let cat = match &e.category {
                    Some(c) => match categories.get(c.as_str()) {
                        Some(a) => Arc::clone(a),
                        None => {
                            let a: Arc<str> = Arc::from(c.as_str());
                            categories.insert(c.clone(), a.clone());
                            a
                        }
                    },
                    None => default_cat.clone(),
                };
                if let Some(spec) = &e.rule {
                    h.write_str(list.level.as_str());
                    h.write_str(&cat);
                    h.write_str(&e.word);
                    h.write_str(&format!("{:?} {}", list.rule_window, list.pinyin));
                    rules.add(
                        spec,
                        RuleOrigin {
                            word: &e.word,
                            level: list.level,
                            category: cat,
                            window: list.rule_window,
                            pinyin: list.pinyin,
                            list: &name,
                            line: e.line,
                            list_index: index,
                        },
                    );
                    continue;
                }
                all.push((e, Some(list.level), cat, list.pinyin, index));
            }
        }
        for data in &sources.allow {
            let index = list_index(data.stem(), true, true);
            let name = data.name();
            let entries = source::parse(&name, &source::read(data)?)?;
            counted.push((index, entries.len()));
            names.push((all.len(), name.clone()));
            let cat: Arc<str> = Arc::from("allow");
            for e in entries {
                if e.rule.is_some() {
                    return Err(LoadError::Parse {
                        name,
                        line: e.line,
                        reason: "a combination rule in an allow list (allow lists take plain \
                                 entries; write `\\&`, `\\|`, `\\~` for the characters)"
                            .into(),
                    });
                }
                all.push((e, None, cat.clone(), false, index));
            }
        }
        // dedupe: hash of (units, allow) -> index; a hash collision between different
        // entries only costs a duplicate pattern, never a wrong answer
        let mut seen: HashMap<u64, usize, BuildHasherDefault<WordHasher>> = HashMap::default();
        seen.reserve(all.len());
        pats.reserve(all.len());
        keys.ends.reserve(all.len());
        let mut stats = DictStats::default();
        let mut add = |spelling: &str,
                       word: &str,
                       level: Option<Level>,
                       category: &Arc<str>,
                       pinyin: bool,
                       list: u32,
                       stats: &mut DictStats,
                       part: u32|
         -> Added {
            let Some((units, key)) = shape(&table, spelling) else {
                stats.skipped += usize::from(!pinyin);
                return Added::Empty;
            };
            let mut wh = WordHasher::default();
            std::hash::Hash::hash(&units, &mut wh);
            // a blocked entry is one per list (a check may use either list); allowed entries
            // and rule parts apply to every check, so one is enough
            let list_key = if level.is_some() { list } else { u32::MAX };
            wh.write_u64(u64::from(level.is_none()) | (u64::from(list_key) << 1));
            wh.write_u64(u64::from(part));
            let hash = wh.finish();
            match seen.entry(hash) {
                Entry::Occupied(o)
                    if *pats[*o.get()].units == *units
                        && pats[*o.get()].level.is_none() == level.is_none()
                        && pats[*o.get()].part == part
                        && (level.is_none() || pats[*o.get()].list == list) =>
                {
                    let i = *o.get();
                    stats.skipped += usize::from(!pinyin);
                    // the wider of the two (a simplified spelling finds the traditional too)
                    if units.iter().all(|u| u.exact == '\0') {
                        pats[i].units = units.into();
                        pats[i].traditional = false;
                    }
                    // danger beats normal for the same word
                    if level > pats[i].level {
                        pats[i].level = level;
                        pats[i].category = category.clone();
                        pats[i].word = word.into();
                    }
                    // (a listed entry's; spellings and rule parts say nothing)
                    if !pinyin && part == NO_PART && *pats[i].category != **category {
                        return Added::Recategorized {
                            first: pats[i].word.to_string(),
                            kept: pats[i].category.to_string(),
                        };
                    }
                    return Added::Merged;
                }
                Entry::Occupied(_) => {}
                Entry::Vacant(v) => {
                    v.insert(pats.len());
                }
            }
            let first = units.first().map(|u| u.c);
            let last = units.last().map(|u| u.c);
            pats.push(Pattern {
                word: word.into(),
                level,
                category: category.clone(),
                len: units.iter().map(|u| u.count as usize).sum(),
                start_word: first.is_some_and(is_word_char),
                end_word: last.is_some_and(is_word_char),
                pinyin,
                latin: units.iter().all(|u| u.c.is_ascii_alphabetic()),
                traditional: units.iter().any(|u| u.exact != '\0'),
                repeats: units.iter().any(|u| u.count > 1),
                units: units.into(),
                part,
                list,
            });
            keys.push(&key);
            Added::New
        };
        for list in &lists {
            h.write_str(&list.name);
            h.write_str(match (list.allow, list.default) {
                (true, _) => "allow",
                (false, true) => "default",
                (false, false) => "named",
            });
        }
        let mut warnings = Vec::new();
        for (at, (e, level, cat, pinyin, list)) in all.iter().enumerate() {
            h.write_str(level.map_or("allow", |l| l.as_str()));
            h.write_str(cat);
            h.write_str(&e.word);
            h.write_str(if *pinyin { "pinyin" } else { "" });
            h.write(&list.to_le_bytes());
            // the source of entry `at`: the last to start at or before it
            let name = || {
                names[names.partition_point(|&(start, _)| start <= at) - 1]
                    .1
                    .clone()
            };
            let (line, word) = (e.line, &e.word);
            match add(word, word, *level, cat, false, *list, &mut stats, NO_PART) {
                Added::New | Added::Merged => {}
                Added::Empty => warnings.push(LoadWarning::Empty {
                    name: name(),
                    line,
                    word: word.clone(),
                }),
                Added::Recategorized { first, kept } => warnings.push(LoadWarning::Category {
                    name: name(),
                    line,
                    word: word.clone(),
                    list: lists[*list as usize].name.to_string(),
                    first,
                    kept,
                }),
            }
        }
        // pinyin spellings after every listed entry, so a listed Latin word never turns into a
        // spelling (with the English-word rule) by coming second
        for (e, level, cat, _, list) in all.iter().filter(|a| a.3) {
            for spelling in crate::pinyin::spellings(&e.word) {
                add(
                    &spelling, &e.word, *level, cat, true, *list, &mut stats, NO_PART,
                );
            }
        }
        // the parts of combination rules: patterns of their own, as words of their lists
        let no_category: Arc<str> = Arc::from("");
        for (id, part) in rules.parts().iter().enumerate() {
            if shape(&table, &part.text).is_none() {
                return Err(LoadError::Parse {
                    name: part.list.clone(),
                    line: part.line,
                    reason: format!(
                        "the rule part `{}` is only noise (it normalizes to nothing)",
                        part.text
                    ),
                });
            }
            let id = id as u32;
            add(
                &part.text,
                &part.text,
                None,
                &no_category,
                false,
                u32::MAX,
                &mut stats,
                id,
            );
            if part.pinyin {
                for spelling in crate::pinyin::spellings(&part.text) {
                    add(
                        &spelling,
                        &part.text,
                        None,
                        &no_category,
                        true,
                        u32::MAX,
                        &mut stats,
                        id,
                    );
                }
            }
        }
        let first_part = pats
            .iter()
            .position(|p| p.part != NO_PART)
            .unwrap_or(pats.len());
        debug_assert!(pats[first_part..].iter().all(|p| p.part != NO_PART));
        let part_of: Arc<[u32]> = pats[first_part..].iter().map(|p| p.part).collect();
        let rules = rules.finish();
        // the detectors' table, once per fold table, here rather than in the first check
        table.plain();
        let n = keys.len();
        // an incremental build pays when most of the patterns are the base's, in its order
        let alike = base
            .filter(|b| Arc::ptr_eq(&b.table, &table))
            .map(|b| (b, keys.common_prefix(&b.keys, b.live)))
            .filter(|&(_, alike)| alike > 0 && n - alike <= n / 2);
        let (ac, live, delta) = match alike {
            Some((base, alike)) => {
                let delta = (alike < n)
                    .then(|| automaton(keys.iter(alike..n)))
                    .transpose()?;
                (base.ac.clone(), alike, delta)
            }
            None => (automaton(keys.iter(0..n))?, n, None),
        };
        // distinct entries: a blocked entry in two lists is a pattern per list (for checks that
        // name lists) and one word
        let distinct = |keep: fn(&Pattern) -> bool| {
            pats.iter()
                .filter(|p| p.part == NO_PART && keep(p))
                .map(|p| &*p.units)
                .collect::<HashSet<_, BuildHasherDefault<WordHasher>>>()
                .len()
        };
        stats.words = distinct(|p| p.level.is_some() && !p.pinyin);
        stats.allowed = distinct(|p| p.level.is_none() && !p.pinyin);
        stats.pinyin = distinct(|p| p.pinyin);
        stats.rules = rules.len();
        stats.automaton_bytes = ac.memory_usage() + delta.as_ref().map_or(0, |d| d.memory_usage());
        let leet = pats
            .iter()
            .any(|p| p.units.iter().any(|u| u.c.is_ascii_alphabetic()));
        for (index, n) in counted {
            lists[index as usize].entries += n;
        }
        let defaults = lists
            .iter()
            .any(|l| !l.default)
            .then(|| bits(lists.len(), lists.iter().map(|l| l.default)));
        Ok(Dictionary {
            ac,
            live,
            delta,
            keys: Arc::new(keys),
            table,
            version: h.0,
            stats,
            warnings: warnings.into(),
            leet,
            pinyin: pats.iter().any(|p| p.pinyin),
            pats: pats.into(),
            rules: Arc::new(rules),
            first_part,
            part_of,
            lists: lists.into(),
            defaults,
        })
    }

    /// The same set with one automaton, if this one was built incrementally (`None` if it
    /// already has one). Takes a full build's automaton time and no parsing; answers, version
    /// and stats (but for `automaton_bytes`) stay the same.
    pub fn compacted(&self) -> Option<Result<Dictionary, LoadError>> {
        if self.is_compact() {
            return None;
        }
        Some(automaton(self.keys.iter(0..self.keys.len())).map(|ac| {
            let mut compact = self.clone();
            compact.stats.automaton_bytes = ac.memory_usage();
            compact.ac = ac;
            compact.live = self.keys.len();
            compact.delta = None;
            compact
        }))
    }

    /// Whether the set has one automaton that knows only its own patterns (a full build, or a
    /// [compacted](Dictionary::compacted) one).
    pub fn is_compact(&self) -> bool {
        self.delta.is_none() && self.live == self.ac.patterns_len()
    }

    /// Patterns matched by an incremental build's second automaton (0 for a full build or once
    /// [compacted](Dictionary::compacted)).
    pub fn pending(&self) -> usize {
        self.keys.len() - self.live
    }

    /// A fingerprint of the lists' contents and the options (equal inputs give equal versions,
    /// across processes), for caches keyed on the dictionary set.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// What the build left out, or kept other than a line says, in the order of the lines:
    /// empty when every entry is in as written. The set is in use either way.
    ///
    /// ```
    /// use espresso_filter_core::{Dictionary, Level, ListSource, LoadWarning, Options, Sources};
    ///
    /// let list = ListSource::inline("abuse", "idiot\n🙂🙂\nIDIOT\tinsult\n", Level::Danger);
    /// let dict = Dictionary::build(&Sources::new().list(list), Options::default())?;
    /// let warnings = dict.warnings();
    /// assert!(matches!(&warnings[0], LoadWarning::Empty { line: 2, .. }));
    /// assert!(matches!(&warnings[1], LoadWarning::Category { line: 3, kept, .. } if kept == "abuse"));
    /// assert_eq!(
    ///     warnings[1].to_string(),
    ///     "abuse:3: `IDIOT` is already in list `abuse` as `idiot` with category `abuse`; its \
    ///      hits report `abuse` (give both lines one category, or remove one)"
    /// );
    /// assert_eq!(dict.check("you IDIOT").hits[0].category, "abuse");
    /// # Ok::<(), espresso_filter_core::LoadError>(())
    /// ```
    pub fn warnings(&self) -> &[LoadWarning] {
        &self.warnings
    }

    /// Counts and automaton memory.
    pub fn stats(&self) -> DictStats {
        self.stats
    }

    /// The level and category of every blocked word (and of every running detector), each pair
    /// once, in order: the label values a hit can carry, for metrics exported at 0 before the
    /// first hit.
    ///
    /// ```
    /// use espresso_filter_core::{Dictionary, Level};
    ///
    /// let dictionary = Dictionary::builtin();
    /// let pairs = dictionary.categories();
    /// assert!(!pairs.is_empty());
    /// assert!(pairs.windows(2).all(|w| w[0] < w[1]));
    /// assert!(pairs.iter().any(|(level, _)| *level == Level::Danger));
    /// ```
    pub fn categories(&self) -> Vec<(Level, &str)> {
        let pairs: std::collections::BTreeSet<(Level, &str)> = self
            .pats
            .iter()
            .filter_map(|p| Some((p.level?, &*p.category)))
            .chain(self.rules.categories())
            .chain(self.options().detectors.categories())
            .collect();
        pairs.into_iter().collect()
    }

    /// The options this set was compiled with.
    pub fn options(&self) -> &Options {
        self.table.options()
    }

    pub(crate) fn table(&self) -> &Arc<Table> {
        &self.table
    }

    /// Normalizes `text` as matching sees it (with the offset map). Inputs over 128 MiB are
    /// matched in windows of that size; this returns the first window.
    pub fn normalize(&self, text: &str) -> Normalized {
        let mut n = Normalized::default();
        let end = window_end(text, 0);
        self.table.normalize_into(&text[..end], &mut n);
        n
    }

    /// The names of the lists, each once, in the order of the sources: `(name, used by
    /// default, allow list)`.
    pub fn lists(&self) -> impl Iterator<Item = (&str, bool, bool)> {
        self.lists.iter().map(|l| (&*l.name, l.default, l.allow))
    }

    /// The entries (words and rules, as read from its sources) of the list `name`, blocked or
    /// allowed; `None` if the set has no such list.
    pub fn list_entries(&self, name: &str) -> Option<usize> {
        let counts = self.lists.iter().filter(|l| *l.name == *name);
        counts.fold(None, |sum, l| Some(sum.unwrap_or(0) + l.entries))
    }

    /// Whether the set has a list (blocked or allowed) called `name`.
    pub fn has_list(&self, name: &str) -> bool {
        self.lists.iter().any(|l| *l.name == *name)
    }

    /// The bit set of the blocked lists named `names`; allow lists may be named (they always
    /// apply). With `strict` off, unknown names are left out instead of refused.
    fn selection<S: AsRef<str>>(
        &self,
        names: &[S],
        strict: bool,
    ) -> Result<Box<[u64]>, UnknownList> {
        let mut wanted = vec![false; self.lists.len()];
        for name in names {
            let name = name.as_ref();
            let mut known = false;
            for (i, l) in self.lists.iter().enumerate() {
                if *l.name == *name {
                    known = true;
                    wanted[i] = !l.allow;
                }
            }
            if !known && strict {
                return Err(UnknownList(name.to_owned()));
            }
        }
        Ok(bits(self.lists.len(), wanted))
    }

    /// Checks `text`: verdict, hits and masked text. Uses the lists used by default (see
    /// [`ListSource::by_default`](crate::ListSource::by_default)).
    ///
    /// A text over 128 MiB is matched in windows of 128 MiB (each on a char boundary), one
    /// after the other: a hit, a combination rule's parts or an allowed phrase across the edge
    /// of two windows are not seen together. Check texts of that size in pieces cut where no
    /// hit can span (between messages or documents).
    pub fn check(&self, text: &str) -> FilterResponse {
        self.check_selected(Cow::Borrowed(text), self.defaults.as_deref())
    }

    /// [`Dictionary::check`] of a text the caller gives away: with nothing to mask, the text
    /// itself is the masked text, neither allocated nor copied again.
    pub(crate) fn check_owned(&self, text: String) -> FilterResponse {
        self.check_selected(Cow::Owned(text), self.defaults.as_deref())
    }

    /// Checks `text` against the blocked lists named `lists` only (allow lists always apply);
    /// an unknown name is an error.
    pub fn check_lists<S: AsRef<str>>(
        &self,
        text: &str,
        lists: &[S],
    ) -> Result<FilterResponse, UnknownList> {
        let selected = self.selection(lists, true)?;
        Ok(self.check_selected(Cow::Borrowed(text), Some(&selected)))
    }

    /// Like [`Dictionary::check_lists`], leaving unknown names out (for callers that checked
    /// the names against an earlier set, from which a list may since have been removed).
    pub fn check_known_lists<S: AsRef<str>>(&self, text: &str, lists: &[S]) -> FilterResponse {
        self.check_known_lists_cow(Cow::Borrowed(text), lists)
    }

    /// [`Dictionary::check_known_lists`] of a text the caller gives away (see
    /// [`Dictionary::check_owned`]).
    pub(crate) fn check_known_lists_owned<S: AsRef<str>>(
        &self,
        text: String,
        lists: &[S],
    ) -> FilterResponse {
        self.check_known_lists_cow(Cow::Owned(text), lists)
    }

    fn check_known_lists_cow<S: AsRef<str>>(
        &self,
        text: Cow<'_, str>,
        lists: &[S],
    ) -> FilterResponse {
        let selected = self
            .selection(lists, false)
            .expect("a lenient selection never fails");
        self.check_selected(text, Some(&selected))
    }

    fn check_selected(&self, text: Cow<'_, str>, selected: Option<&[u64]>) -> FilterResponse {
        let hits = self.find_selected(&text, selected);
        let verdict = hits
            .iter()
            .fold(Verdict::Pass, |v, h| v.max(h.level.verdict()));
        let masked = if hits.is_empty() && self.table.options().charset.is_none() {
            text.into_owned()
        } else {
            self.mask(&text, &hits)
        };
        FilterResponse {
            request_id: None,
            verdict,
            masked,
            hits,
            degraded: false,
        }
    }

    /// The hits in `text` of the lists used by default, sorted by start, never overlapping.
    pub fn find(&self, text: &str) -> Vec<Hit> {
        self.find_selected(text, self.defaults.as_deref())
    }

    fn find_selected(&self, text: &str, selected: Option<&[u64]>) -> Vec<Hit> {
        thread_local! {
            static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::default();
        }
        let mut hits = Vec::new();
        let mut run = |s: &mut Scratch| {
            s.selecting = selected.is_some();
            s.selected.clear();
            s.selected.extend_from_slice(selected.unwrap_or_default());
            let mut at = 0;
            while at < text.len() {
                let end = window_end(text, at);
                self.find_window(&text[at..end], at, s, &mut hits);
                at = end;
            }
            // do not keep a huge buffer alive after one huge input
            if s.norm.text.capacity() > 1 << 20 {
                *s = Scratch::default();
            }
        };
        SCRATCH.with(|cell| match cell.try_borrow_mut() {
            Ok(mut s) => run(&mut s),
            Err(_) => run(&mut Scratch::default()),
        });
        crate::detect::run(&self.table, text, &mut hits);
        hits
    }

    fn find_window(&self, text: &str, offset: usize, s: &mut Scratch, hits: &mut Vec<Hit>) {
        if self.pats.is_empty() {
            return;
        }
        s.cands.clear();
        s.allow.clear();
        s.parts.clear();
        s.raw_parts.clear();
        self.scan(text, text, 0..text.len(), Pass::Plain, s);
        // the copies are normalized into the other buffer: this one maps `raw_parts` later
        let keep = !s.raw_parts.is_empty();
        if keep {
            std::mem::swap(&mut s.norm, &mut s.norm_copy);
        }
        let mut copy = std::mem::take(&mut s.copy);
        if self.leet {
            for amb in [b'i', b'l'] {
                let (windows, ambiguous) = crate::leet::leet_copy(
                    text,
                    amb,
                    &mut copy,
                    |c| self.is_hard(c),
                    |c| self.table.skips(c),
                );
                if !windows.is_empty()
                    && let Ok(view) = std::str::from_utf8(&copy)
                {
                    for w in windows {
                        self.scan(text, view, w, Pass::Leet, s);
                    }
                }
                if !ambiguous {
                    break;
                }
            }
        }
        if self.pinyin
            && crate::leet::tone_copy(text, &mut copy)
            && let Ok(view) = std::str::from_utf8(&copy)
        {
            self.scan(text, view, 0..view.len(), Pass::Tone, s);
        }
        s.copy = copy;
        if keep {
            std::mem::swap(&mut s.norm, &mut s.norm_copy);
            self.verify_parts(text, s);
        }
        if s.cands.is_empty() && s.parts.is_empty() {
            return;
        }
        // allow spans: sorted and merged
        s.allow.sort_unstable();
        let mut merged: Vec<(usize, usize)> = Vec::with_capacity(s.allow.len());
        for &(a, b) in &s.allow {
            match merged.last_mut() {
                Some(last) if a < last.1 => last.1 = last.1.max(b),
                _ => merged.push((a, b)),
            }
        }
        let overlaps_allow = |a: usize, b: usize| {
            let i = merged.partition_point(|&(x, _)| x < b);
            i > 0 && merged[i - 1].1 > a
        };
        s.cands.retain(|c| !overlaps_allow(c.start, c.end));
        if !s.parts.is_empty() {
            s.parts.retain(|h| !overlaps_allow(h.start, h.end));
            s.rule_hits.clear();
            self.rules
                .combine(text, &mut s.parts, &mut s.rules, &mut s.rule_hits);
            // a rule of a list this check does not use fires for nobody
            let (selecting, selected) = (s.selecting, &s.selected);
            let used =
                |list: u32| !selecting || selected[list as usize / 64] & (1 << (list % 64)) != 0;
            let rules = &self.rules;
            s.cands.extend(
                s.rule_hits
                    .iter()
                    .filter(|h| used(rules.rule(h.rule).list))
                    .map(|h| Cand {
                        start: h.start,
                        end: h.end,
                        pat: RULE_BIT | h.rule,
                        len: h.len,
                        level: self.rules.rule(h.rule).level,
                    }),
            );
        }
        // danger first: a danger-level entry hit blocks, whatever longer normal entry overlaps it
        s.cands.sort_unstable_by(|x, y| {
            y.level
                .cmp(&x.level)
                .then(y.len.cmp(&x.len))
                .then(x.start.cmp(&y.start))
                .then((y.end - y.start).cmp(&(x.end - x.start)))
                .then(x.pat.cmp(&y.pat))
        });
        let mut chosen: BTreeMap<usize, Cand> = BTreeMap::new();
        for c in s.cands.iter() {
            if c.start >= c.end {
                continue;
            }
            let clash = chosen
                .range(..c.end)
                .next_back()
                .is_some_and(|(_, o)| o.end > c.start);
            if !clash {
                chosen.insert(c.start, *c);
            }
        }
        for c in chosen.into_values() {
            let (word, category, list) = if c.pat & RULE_BIT != 0 {
                let r = self.rules.rule(c.pat & !RULE_BIT);
                (&r.word, &r.category, r.list)
            } else {
                let p = &self.pats[c.pat as usize];
                (&p.word, &p.category, p.list)
            };
            hits.push(Hit {
                word: word.to_string(),
                level: c.level,
                category: category.to_string(),
                list: self.lists[list as usize].name.to_string(),
                start: c.start + offset,
                end: c.end + offset,
            });
        }
    }

    /// Verifies the rule parts' matches that may matter: those of rules whose every `&` group
    /// has a match (most part matches, of rules that cannot fire, are never verified).
    fn verify_parts(&self, text: &str, s: &mut Scratch) {
        let part = |r: &RawPart| self.part_of[r.pat as usize - self.first_part];
        let part_ids = s.raw_parts.iter().map(part);
        self.rules
            .gate(part_ids.chain(s.parts.iter().map(|h| h.part)), &mut s.rules);
        if !self.rules.any_live(&s.rules) {
            return;
        }
        for r in &s.raw_parts {
            if !self.rules.needed(part(r), &s.rules) {
                continue;
            }
            let p = &self.pats[r.pat as usize];
            let os = s.norm.orig_start(text, r.start as usize);
            let oe = s.norm.orig_end(text, r.end as usize);
            if self.quickly_rejected(text, os, oe, p) {
                continue;
            }
            if let Some((start, end)) = self.verify(text, text, os, oe, p, &mut s.seq)
                && (!p.latin || self.latin_hit_stands(text, start, end, p))
            {
                s.parts.push(PartHit {
                    start,
                    end,
                    part: p.part,
                    len: p.len as u32,
                });
            }
        }
    }

    /// Whether no hit can span `c`: it is neither a letter, a digit, whitespace nor noise.
    fn is_hard(&self, c: char) -> bool {
        !c.is_alphanumeric() && !c.is_whitespace() && !self.table.skips(c)
    }

    /// Scans `view[range]` (the text itself or a same-length copy of it) and adds the verified
    /// candidates and allowed spans to `s`.
    fn scan(&self, text: &str, view: &str, range: Range<usize>, pass: Pass, s: &mut Scratch) {
        let base = range.start;
        let window = &view[range];
        self.table.normalize_into(window, &mut s.norm);
        let (live, norm) = (self.live, s.norm.as_bytes());
        let mut seg = 0; // the segment of the last match's end (`orig_range_near`)
        // One match `ms..me` (normalized bytes) of pattern `pat`, as each automaton's search
        // reaches it.
        let mut each = |ms: usize, me: usize, pat: usize| {
            if pat >= self.first_part && pass == Pass::Plain {
                s.raw_parts.push(RawPart {
                    start: ms as u32,
                    end: me as u32,
                    pat: pat as u32,
                });
                return;
            }
            let p = &self.pats[pat];
            if pass == Pass::Tone && !p.pinyin {
                return;
            }
            if s.selecting
                && p.level.is_some()
                && s.selected[p.list as usize / 64] & (1 << (p.list % 64)) == 0
            {
                return;
            }
            let (os, oe) = s.norm.orig_range_near(window, ms, me, &mut seg);
            let (os, oe) = (base + os, base + oe);
            if self.quickly_rejected(view, os, oe, p) {
                return;
            }
            let Some((start, end)) = self.verify(view, text, os, oe, p, &mut s.seq) else {
                return;
            };
            // a leet hit reads a replaced byte, and holds a letter unless it is a known
            // all-symbol form of three or more (`@$$`)
            if pass == Pass::Leet
                && (view.as_bytes()[start..end] == text.as_bytes()[start..end]
                    || (end - start < 3 && !text[start..end].chars().any(char::is_alphabetic)))
            {
                return;
            }
            if p.latin && !self.latin_hit_stands(text, start, end, p) {
                return;
            }
            // the tone number of a pinyin spelling's last syllable (`sha3 bi1`) is part of the
            // hit, highlighted and masked with it, as those inside it are
            let end = if pass == Pass::Tone
                && view.as_bytes().get(end) == Some(&0)
                && text.as_bytes()[end].is_ascii_digit()
            {
                end + 1
            } else {
                end
            };
            // the marks on the hit's last character are part of it (`fuck\u{301}`, a keycap's
            // `\u{FE0F}\u{20E3}`): a span never ends inside a character as the reader sees it
            let end = end + marks_after(&text[end..]);
            // an entry of digits is a number: not read across a decimal point or a thousands
            // separator (`$14.88` is no `1488`)
            if p.units.iter().all(|u| u.c.is_ascii_digit()) && text[start..end].contains(['.', ','])
            {
                return;
            }
            if p.part != NO_PART {
                s.parts.push(PartHit {
                    start,
                    end,
                    part: p.part,
                    len: p.len as u32,
                });
            } else if let Some(level) = p.level {
                s.cands.push(Cand {
                    start,
                    end,
                    pat: pat as u32,
                    len: p.len as u32,
                    level,
                });
            } else {
                s.allow.push((start, end));
            }
        };
        self.ac.each_match(norm, |start, end, pat| {
            if pat < live {
                each(start, end, pat);
            }
        });
        if let Some(delta) = &self.delta {
            delta.each_match(norm, |start, end, pat| each(start, end, pat + live));
        }
    }

    /// The whole-script and English-word rules for an entry of Latin letters hit at
    /// `text[start..end]` (see the module docs).
    fn latin_hit_stands(&self, text: &str, start: usize, end: usize, p: &Pattern) -> bool {
        let hit = &text[start..end];
        if hit.is_ascii() {
            // a pinyin spelling that reads as English words stands only next to Chinese text
            return !p.pinyin
                || !crate::pinyin::english_words(hit)
                || text[..start]
                    .trim_end()
                    .chars()
                    .next_back()
                    .is_some_and(is_unspaced_script)
                || text[end..]
                    .trim_start()
                    .chars()
                    .next()
                    .is_some_and(is_unspaced_script);
        }
        // letters of another script only (`ѕһіt`): not where the text around is in that script
        let mut latin = false;
        let mut foreign = false;
        for c in hit.chars() {
            match letter_script(c) {
                LetterScript::Latin => latin = true,
                LetterScript::Foreign => foreign = true,
                LetterScript::Other => {}
            }
        }
        // (an entry listed in another script, `но`, is matched as written)
        if foreign && !latin && p.word.is_ascii() {
            let before = text[..start]
                .chars()
                .rev()
                .map(letter_script)
                .find(|s| *s != LetterScript::Other);
            let after = text[end..]
                .chars()
                .map(letter_script)
                .find(|s| *s != LetterScript::Other);
            if before == Some(LetterScript::Foreign) || after == Some(LetterScript::Foreign) {
                return false;
            }
        }
        true
    }

    /// Whether the candidate `text[os..oe]` of `p` is one `verify` would reject, told without
    /// folding it again: inside an ASCII word where `p` needs a word boundary, or a plain word
    /// where `p` has a repeated unit.
    #[inline(always)]
    fn quickly_rejected(&self, text: &str, os: usize, oe: usize, p: &Pattern) -> bool {
        (p.start_word && ascii_word_before(&self.table, text, os))
            || (p.end_word && ascii_word_after(&self.table, text, oe))
            || (self.table.options().collapse_repeats && self.too_short_a_run(text, os, oe, p))
    }

    /// A match read from one ASCII char per unit, its last char not repeated after it (past
    /// noise too), has every run one char long, so an entry with a repeated unit (`ass`,
    /// `butt`) cannot stand there. Most candidates past the word checks in English text are
    /// such plain words (`as`, `but`). With collapse on only.
    #[inline]
    fn too_short_a_run(&self, text: &str, os: usize, oe: usize, p: &Pattern) -> bool {
        if !p.repeats || oe <= os || oe - os != p.units.len() || !text[os..oe].is_ascii() {
            return false;
        }
        let b = text.as_bytes();
        let last = self.table.ascii_fold(b[oe - 1]);
        next_kept(&self.table, b, oe).is_some_and(|next| next != Some(last))
    }

    /// Checks a candidate against the original text (see the module docs); returns its
    /// original byte range.
    fn verify(
        &self,
        text: &str,
        original: &str,
        os: usize,
        oe: usize,
        p: &Pattern,
        seq: &mut Vec<Folded1>,
    ) -> Option<(usize, usize)> {
        let collapse = self.table.options().collapse_repeats;
        if os >= oe {
            return None;
        }
        // fold the original slice again, without collapse, noting gaps and positions
        seq.clear();
        let mut scratch = Folded::new();
        let mut gap = 0u8;
        for (i, c) in text[os..oe].char_indices() {
            let (start, end) = (os + i, os + i + c.len_utf8());
            match self.table.unit(c, &mut scratch) {
                Unit::Skip => gap |= gap_kind(c),
                Unit::One(f) => {
                    seq.push(Folded1 {
                        c: f,
                        gap,
                        start,
                        end,
                    });
                    gap = 0;
                }
                Unit::Many(fs) => {
                    for &f in fs {
                        seq.push(Folded1 {
                            c: f,
                            gap,
                            start,
                            end,
                        });
                        gap = 0;
                    }
                }
            }
        }
        let base = seq.len();
        let last = seq.last()?.c;
        if !collapse {
            return self.accept(text, original, p, seq, false);
        }
        // With collapse, a run of the first char may have started in the previous word
        // ("this shit") and the last char may repeat into the next one ("shit this"): try the
        // run's possible starts and ends (a few at most: whole-run, and at gaps).
        let mut gap = 0u8;
        for (i, c) in text[oe..].char_indices() {
            let (start, end) = (oe + i, oe + i + c.len_utf8());
            let more = match self.table.unit(c, &mut scratch) {
                Unit::Skip => {
                    gap |= gap_kind(c);
                    continue;
                }
                Unit::One(f) => usize::from(f == last),
                Unit::Many(fs) if fs.iter().all(|&f| f == last) => fs.len(),
                Unit::Many(_) => 0,
            };
            if more == 0 {
                break;
            }
            for _ in 0..more {
                seq.push(Folded1 {
                    c: last,
                    gap,
                    start,
                    end,
                });
                gap = 0;
            }
        }
        // The entry may start later than the match: inside a run of its first char that began
        // in the previous word (`this shit`), after a word whose last char collapse merged with
        // the entry's first (`kek kkk`, `fu u`: the entry lies wholly past the match), or after
        // a char that folds to several ending in it (`ﬁ ix`). Try the starts at gaps.
        let want = p.units[0].c;
        let mut starts = [0usize; 3];
        let mut n_starts = 1;
        for (j, x) in seq.iter().enumerate().skip(1) {
            if x.c != want {
                // the other folded chars of the match's first original char (`ﬁ` → `f`, `i`)
                if x.start == seq[0].start {
                    continue;
                }
                break;
            }
            if x.gap != 0 {
                starts[n_starts.min(2)] = j;
                n_starts = (n_starts + 1).min(3);
            }
        }
        // ...and the entry may end before the run of its last char does: at the run's end, or
        // at any gap inside it (`a s s sure`: the run `sss` ends in the next word), longest
        // first
        let mut ends = [0usize; 5];
        let mut n_ends = 0;
        for j in (base..=seq.len()).rev() {
            if (j == seq.len() || j == base || seq[j].gap != 0) && n_ends < ends.len() {
                ends[n_ends] = j;
                n_ends += 1;
            }
        }
        for &j0 in &starts[..n_starts] {
            for &j1 in &ends[..n_ends] {
                if j1 > j0
                    && let Some(r) = self.accept(text, original, p, &seq[j0..j1], true)
                {
                    return Some(r);
                }
            }
        }
        None
    }

    /// Shape, gap and boundary rules on the folded chars of a candidate.
    fn accept(
        &self,
        text: &str,
        original: &str,
        p: &Pattern,
        seq: &[Folded1],
        collapse: bool,
    ) -> Option<(usize, usize)> {
        let mut k = 0usize; // pattern unit
        let mut count = 0u16; // length of the current run in the text
        let mut unexplained = false;
        let mut visible = false;
        let mut piece = 0usize;
        let mut widest = 0usize;
        for (j, x) in seq.iter().enumerate() {
            let (c, g) = (x.c, if j == 0 { 0 } else { x.gap });
            let prev = if j > 0 { Some(seq[j - 1].c) } else { None };
            if g & GAP_VISIBLE != 0 {
                visible = true;
            }
            let new_run = !collapse || prev != Some(c);
            if p.traditional {
                let unit = if new_run {
                    p.units.get(k + usize::from(j > 0))
                } else {
                    p.units.get(k)
                };
                if let Some(u) = unit
                    && u.exact != '\0'
                    && !text[x.start..].starts_with(u.exact)
                {
                    return None;
                }
            }
            let explained;
            if new_run {
                if j > 0 {
                    if count < p.units[k].count {
                        return None;
                    }
                    k += 1;
                }
                let u = p.units.get(k)?;
                if u.c != c {
                    return None;
                }
                count = 1;
                explained = u.gap;
            } else {
                count = count.saturating_add(1);
                explained = p.units[k].inner_gap;
            }
            if g & GAP_WS != 0 && !explained && prev.is_some_and(is_word_char) && is_word_char(c) {
                unexplained = true;
                widest = widest.max(piece);
                piece = 0;
            }
            // a piece's width in chars of the text (a char folding to several counts once): a
            // run of one letter is no single letter (`a SS`, `kk kk` are words)
            if piece == 0 || x.start != seq[j - 1].start {
                piece += 1;
            }
        }
        if k + 1 != p.units.len() || count < p.units[k].count {
            return None;
        }
        // pinyin spellings take no repeated letters (`momma` is not `mo ma`)
        if p.pinyin && collapse && !exact_counts(p, seq) {
            return None;
        }
        widest = widest.max(piece);
        if unexplained && !visible && widest > 1 {
            return None;
        }
        // a hit is of regional indicators or of none: a flag is a word of its own (`🇰🇾s`)
        let flag = |x: &Folded1| {
            text.as_bytes().get(x.start) == Some(&0xF0)
                && text[x.start..]
                    .chars()
                    .next()
                    .is_some_and(is_regional_indicator)
        };
        if seq.iter().any(flag) && !seq.iter().all(flag) {
            return None;
        }
        let (mut os, mut oe) = (seq.first()?.start, seq.last()?.end);
        // a sign read as a letter is the letter and NUL bytes in a leet copy (`¡` is `i\0`):
        // the hit spans the whole char of the original, and its word checks look past it
        // (`Høj` is no `ho`)
        while !original.is_char_boundary(os) {
            os -= 1;
        }
        while !original.is_char_boundary(oe) {
            oe += 1;
        }
        if p.start_word && self.word_before(text, os) {
            return None;
        }
        if p.end_word && self.word_after(text, oe) {
            return None;
        }
        Some((os, oe))
    }

    /// Whether the nearest visible char before `at` is a word character.
    fn word_before(&self, text: &str, at: usize) -> bool {
        let mut scratch = Folded::new();
        for c in text[..at].chars().rev() {
            if is_invisible(c) {
                if parts_words(c) {
                    return false;
                }
                continue;
            }
            // (a regional indicator is four bytes opening with 0xF0)
            let edge_is_flag = text.as_bytes().get(at) == Some(&0xF0)
                && first_visible(&text[at..]).is_some_and(is_regional_indicator);
            if is_regional_indicator(c) != edge_is_flag {
                return false;
            }
            return match self.table.unit(c, &mut scratch) {
                Unit::Skip => false,
                Unit::One(f) => is_word_char(f),
                Unit::Many(fs) => fs.last().is_some_and(|&f| is_word_char(f)),
            };
        }
        false
    }

    /// Whether the nearest visible char at or after `at` is a word character.
    fn word_after(&self, text: &str, at: usize) -> bool {
        let mut scratch = Folded::new();
        for c in text[at..].chars() {
            if is_invisible(c) {
                if parts_words(c) {
                    return false;
                }
                continue;
            }
            let edge_is_flag = text.as_bytes()[..at].last().is_some_and(|&b| b >= 0x80)
                && last_visible(&text[..at]).is_some_and(is_regional_indicator);
            if is_regional_indicator(c) != edge_is_flag {
                return false;
            }
            return match self.table.unit(c, &mut scratch) {
                Unit::Skip => false,
                Unit::One(f) => is_word_char(f),
                Unit::Many(fs) => fs.first().is_some_and(|&f| is_word_char(f)),
            };
        }
        false
    }

    /// The masked text: hits replaced by one mask char per original char; with a charset,
    /// characters outside it removed.
    fn mask(&self, text: &str, hits: &[Hit]) -> String {
        let opts = self.table.options();
        let mut out = String::with_capacity(text.len());
        let mut at = 0;
        let keep = |out: &mut String, s: &str| {
            if opts.charset.is_some() {
                out.extend(s.chars().filter(|&c| !opts.outside_charset(c)));
            } else {
                out.push_str(s);
            }
        };
        for h in hits {
            keep(&mut out, &text[at..h.start]);
            let m = opts.mask_for(h.level);
            for c in text[h.start..h.end].chars() {
                if !opts.outside_charset(c) {
                    out.push(m);
                }
            }
            at = h.end;
        }
        keep(&mut out, &text[at..]);
        out
    }
}

/// The end of the window starting at `at`: at most MAX_WINDOW bytes, on a char boundary.
fn window_end(text: &str, at: usize) -> usize {
    let mut end = (at + MAX_WINDOW).min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    end
}

/// Fast rejection (most candidates in English text are inside a longer word): the char before
/// `os` is an ASCII letter or digit, and, with collapse, the run of the candidate's first char
/// (ASCII) ends before any copy of it after a gap, so no later start inside the run exists
/// (`all`, `ship it`; not `s shit`). `false` means "check fully".
#[inline]
fn ascii_word_before(table: &Table, text: &str, os: usize) -> bool {
    let b = text.as_bytes();
    if os == 0 || os >= b.len() || !b[os - 1].is_ascii_alphanumeric() {
        return false;
    }
    if !table.options().collapse_repeats {
        return true;
    }
    // a candidate starts at a kept char; anything else is checked fully
    let Some(c) = kept_ascii(table, b, os) else {
        return false;
    };
    // past the run's gap-free copies, a copy is one after a gap
    next_kept(table, b, run_end(table, b, os, c)).is_some_and(|next| next != Some(c))
}

/// Fast rejection at the end: the char at `oe` is an ASCII letter or digit and, with collapse,
/// the run of the candidate's last char (ASCII) that goes on from `oe` has no gap and is
/// followed by a letter or digit, so no trailing repeat can move the end past a word's end.
#[inline]
fn ascii_word_after(table: &Table, text: &str, oe: usize) -> bool {
    let b = text.as_bytes();
    if oe == 0 || oe >= b.len() || !b[oe].is_ascii_alphanumeric() {
        return false;
    }
    if !table.options().collapse_repeats {
        return true;
    }
    let Some(c) = kept_ascii(table, b, oe - 1) else {
        return false;
    };
    b.get(run_end(table, b, oe - 1, c))
        .is_some_and(u8::is_ascii_alphanumeric)
}

/// The fold of `b[at]` when it is an ASCII char that is kept (not skipped).
#[inline]
fn kept_ascii(table: &Table, b: &[u8], at: usize) -> Option<u8> {
    let c = *b.get(at).filter(|c| c.is_ascii())?;
    Some(table.ascii_fold(c)).filter(|&f| f != 0)
}

/// Just past the run of copies of `b[at]` (ASCII chars folding to its fold `c`) that starts at
/// `at`, with nothing between them.
#[inline]
fn run_end(table: &Table, b: &[u8], at: usize, c: u8) -> usize {
    let mut j = at + 1;
    while b
        .get(j)
        .is_some_and(|&n| n.is_ascii() && table.ascii_fold(n) == c)
    {
        j += 1;
    }
    j
}

/// The fold of the first char at or after `at` that is not skipped, or `Some(None)` at the
/// text's end, through ASCII only: `None` if a char outside ASCII comes first.
#[inline]
fn next_kept(table: &Table, b: &[u8], mut at: usize) -> Option<Option<u8>> {
    loop {
        match b.get(at) {
            None => return Some(None),
            Some(&n) if n.is_ascii() => match table.ascii_fold(n) {
                0 => at += 1,
                f => return Some(Some(f)),
            },
            Some(_) => return None,
        }
    }
}

/// Whether every run of `seq` is exactly as long as its unit in `p` (runs split as `accept`
/// does with collapse on).
fn exact_counts(p: &Pattern, seq: &[Folded1]) -> bool {
    let mut k = 0usize;
    let mut count = 0u16;
    for (j, x) in seq.iter().enumerate() {
        if j > 0 && seq[j - 1].c != x.c {
            if p.units.get(k).is_none_or(|u| u.count != count) {
                return false;
            }
            k += 1;
            count = 0;
        }
        count += 1;
    }
    p.units.get(k).is_some_and(|u| u.count == count) && k + 1 == p.units.len()
}

/// The script of a letter as the whole-script rule sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LetterScript {
    /// Latin letters, and letters styled in any way (full-width, mathematical, enclosed)
    Latin,
    /// a letter of another script written with spaces (Greek, Cyrillic, Armenian, Cherokee ...)
    Foreign,
    /// not a letter, or a letter of a script written without spaces (CJK ...)
    Other,
}

fn letter_script(c: char) -> LetterScript {
    use unicode_script::{Script, UnicodeScript};
    if c.is_ascii() {
        return if c.is_ascii_alphabetic() {
            LetterScript::Latin
        } else {
            LetterScript::Other
        };
    }
    if !c.is_alphabetic() || is_unspaced_script(c) {
        return LetterScript::Other;
    }
    match c.script() {
        Script::Latin | Script::Common | Script::Inherited => LetterScript::Latin,
        _ => LetterScript::Foreign,
    }
}

fn gap_kind(c: char) -> u8 {
    if c.is_whitespace() {
        GAP_WS
    } else if is_invisible(c) {
        0
    } else {
        GAP_VISIBLE
    }
}

/// The length of the invisible characters that open `rest` and are written on the character
/// before them (combining marks, variation selectors, joiners); not a zero-width space or a
/// control character, which stand between words.
fn marks_after(rest: &str) -> usize {
    rest.char_indices()
        .find(|&(_, c)| !is_invisible(c) || parts_words(c))
        .map_or(rest.len(), |(i, _)| i)
}

/// A regional indicator (`🇦`..`🇿`): it folds to its letter, so that a word spelled in them
/// (`🇫🇺🇨🇰`) is found, but a flag is a word of its own: a word written next to one is not glued
/// to it (`fuck🇺🇸`).
fn is_regional_indicator(c: char) -> bool {
    matches!(c, '\u{1F1E6}'..='\u{1F1FF}')
}

/// The first char of `s` that is not invisible.
fn first_visible(s: &str) -> Option<char> {
    s.chars().find(|&c| !is_invisible(c))
}

/// The last char of `s` that is not invisible.
fn last_visible(s: &str) -> Option<char> {
    s.chars().rev().find(|&c| !is_invisible(c))
}

/// An invisible character that stands between two words rather than inside one: the
/// zero-width space (a word break by definition) and control characters. The others (soft
/// hyphens, joiners, marks) are written inside words and are no boundary there.
fn parts_words(c: char) -> bool {
    c == '\u{200B}' || c.is_control()
}

/// Letters and digits of scripts written with spaces between words.
pub(crate) fn is_word_char(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_alphanumeric();
    }
    c.is_alphanumeric() && !is_unspaced_script(c)
}

/// Scripts written without spaces between words: words in them match anywhere.
fn is_unspaced_script(c: char) -> bool {
    matches!(c as u32,
        0x0E00..=0x0EFF // Thai, Lao
        | 0x1000..=0x109F // Myanmar
        | 0x1780..=0x17FF // Khmer
        | 0x2E80..=0x2FDF | 0x3000..=0x9FFF | 0xA000..=0xA4CF // CJK, kana, Yi
        | 0xAC00..=0xD7AF | 0x1100..=0x11FF // Hangul (0x3130..0x318F is above)
        | 0xF900..=0xFAFF | 0xFF66..=0xFF9F
        | 0x20000..=0x3FFFF)
}

/// The shape of an entry: its units and the automaton key (normalized, collapsed if on).
fn shape(table: &Table, word: &str) -> Option<(Vec<PUnit>, Vec<u8>)> {
    let collapse = table.options().collapse_repeats;
    let mut units: Vec<PUnit> = Vec::new();
    let mut key = Vec::new();
    let mut scratch = Folded::new();
    let mut gap = false;
    let push = |f: char, exact: char, gap: &mut bool, units: &mut Vec<PUnit>, key: &mut Vec<u8>| {
        match units.last_mut() {
            Some(u) if collapse && u.c == f && u.exact == exact => {
                u.count = u.count.saturating_add(1);
                u.inner_gap |= *gap;
            }
            _ => {
                units.push(PUnit {
                    c: f,
                    count: 1,
                    gap: *gap && !units.is_empty(),
                    inner_gap: false,
                    exact,
                });
                let mut b = [0u8; 4];
                key.extend_from_slice(f.encode_utf8(&mut b).as_bytes());
            }
        }
        *gap = false;
    };
    for c in word.chars() {
        match table.unit(c, &mut scratch) {
            Unit::Skip => gap = true,
            Unit::One(f) => {
                // a traditional character as listed must be written so in the text
                let exact = if f != c && crate::fold::simplify(c) == f {
                    c
                } else {
                    '\0'
                };
                push(f, exact, &mut gap, &mut units, &mut key)
            }
            Unit::Many(fs) => {
                let fs: Vec<char> = fs.to_vec();
                for f in fs {
                    push(f, '\0', &mut gap, &mut units, &mut key);
                }
            }
        }
    }
    if units.is_empty() {
        None
    } else {
        Some((units, key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::ListSource;

    /// Every quick rejection rejects only what the full check (`verify`) rejects too, for every
    /// match of the automaton in short texts of letters, repeats, spaces, noise and a few chars
    /// outside ASCII.
    #[test]
    fn the_quick_rejections_reject_only_what_the_full_check_rejects() {
        let words = "ass\npp\nkkk\nbutt\n_l_\nshit\nas\nhell\nf u\nlp\n";
        let pieces = [
            "a", "s", "ss", "sss", "S", "p", "pp", "k", "kk", "l", "ll", "b", "u", "t", "tt", "h",
            "i", "e", "f", " ", "  ", "*", ".", "-", "Ａ", "ä", "你", "1",
        ];
        let mut next = crate::testing::picker(0x2545_F491_4F6C_DD1Du64);
        let (mut checked, mut rejected) = (0, 0);
        for options in [
            Options::default(),
            Options::default().collapse_repeats(false),
        ] {
            let collapse = options.collapse_repeats;
            let sources = Sources::new().list(ListSource::inline("t", words, Level::Danger));
            let dict = Dictionary::build(&sources, options).expect("the list builds");
            let (mut norm, mut seq) = (Normalized::default(), Vec::new());
            for _ in 0..20_000 {
                let text: String = (0..1 + next(8))
                    .map(|_| pieces[next(pieces.len())])
                    .collect();
                dict.table.normalize_into(&text, &mut norm);
                let mut matches = Vec::new();
                dict.ac
                    .each_match(norm.as_bytes(), |s, e, p| matches.push((s, e, p)));
                for (ms, me, pat) in matches {
                    let p = &dict.pats[pat];
                    let (os, oe) = (norm.orig_start(&text, ms), norm.orig_end(&text, me));
                    let full = dict.verify(&text, &text, os, oe, p, &mut seq);
                    checked += 1;
                    if dict.quickly_rejected(&text, os, oe, p) {
                        rejected += 1;
                        assert_eq!(
                            full, None,
                            "{:?} in {text:?} at {os}..{oe}, collapse {collapse}",
                            p.word
                        );
                    }
                }
            }
        }
        assert!(
            rejected > checked / 4,
            "only {rejected} of {checked} candidates were rejected quickly"
        );
    }
}
