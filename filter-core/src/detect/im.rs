//! The IM detector: ids after a QQ, WeChat or Telegram keyword (see the module docs of
//! [`crate::detect`] for the rules).

use super::Found;
use super::stream::{GLUED, Tok, digit_of};
use crate::fold::fold_char;
use crate::source::LoadError;
use std::sync::Arc;

/// The messenger a keyword names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ImKind {
    /// QQ: ids are numbers of 5–11 digits.
    Qq,
    /// WeChat: ids are 6–20 letters, digits, `_` or `-` starting with a letter, or numbers.
    Wechat,
    /// Telegram: handles are 5–32 letters, digits or `_` starting with a letter.
    Telegram,
}

impl ImKind {
    /// `"qq"`, `"wechat"` or `"telegram"`: the prefix of the canonical id.
    pub fn as_str(self) -> &'static str {
        match self {
            ImKind::Qq => "qq",
            ImKind::Wechat => "wechat",
            ImKind::Telegram => "telegram",
        }
    }
}

/// The keywords, folded like the stream (lower case, full-width folded, simplified).
#[derive(Clone)]
pub(crate) struct Keywords {
    /// (folded keyword, kind), longest first
    list: Vec<(Vec<char>, ImKind)>,
    /// (folded keyword, the list's name, its line) as added, for errors that name the line
    origins: Vec<(Vec<char>, Arc<str>, usize)>,
    /// the first characters of the keywords, sorted (most positions start none)
    firsts: Vec<char>,
    /// the keywords of ASCII letters, for the quick look (see [`Latin`])
    latin: Latin,
    /// the other ASCII keywords (digits or signs in them), case-insensitive, for the quick
    /// look at raw text
    loose: Option<aho_corasick::AhoCorasick>,
    /// the characters that start the other keywords for the quick look (see
    /// [`Keywords::starts_at`]), sorted
    marks: Vec<char>,
    /// (a keyword's first non-ASCII character, the character before it, or [`ANY`] if that
    /// is the whole keyword; else its second character, then its first), sorted
    pairs: Vec<(char, char)>,
    /// the first characters of keywords whose second one is ASCII (`加v`), sorted
    leads: Vec<char>,
    /// bit `c % 64` set for every mark `c`
    mark_bits: u64,
}

// a summary: a `Debug` of the options must not dump the tables
impl std::fmt::Debug for Keywords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keywords")
            .field("keywords", &self.list.len())
            .finish_non_exhaustive()
    }
}

impl Keywords {
    /// Hashes each keyword and its kind, so that a dictionary's version changes with them.
    pub(crate) fn fingerprint(&self, h: &mut crate::dict::Fnv) {
        for (keyword, kind) in &self.list {
            let keyword: String = keyword.iter().collect();
            h.write_str(&keyword);
            h.write_str(kind.as_str());
        }
    }
}

impl PartialEq for Keywords {
    fn eq(&self, o: &Self) -> bool {
        self.list == o.list
    }
}

impl Eq for Keywords {}

impl Keywords {
    pub(crate) fn builtin() -> Keywords {
        let mut k = Keywords {
            list: Vec::new(),
            origins: Vec::new(),
            firsts: Vec::new(),
            latin: Latin::default(),
            loose: None,
            marks: Vec::new(),
            pairs: Vec::new(),
            leads: Vec::new(),
            mark_bits: 0,
        };
        k.extend("im-keywords.txt", super::IM_KEYWORDS)
            .expect("the shipped IM keywords are valid (tested)");
        k
    }

    /// A keyword every char of which `noise` skips, if any: `(keyword folded, list name,
    /// line)`.
    pub(crate) fn only_noise(&self, noise: &crate::NoiseSet) -> Option<(String, &str, usize)> {
        self.origins
            .iter()
            .find(|(w, ..)| w.iter().all(|&c| noise.contains_folded(c)))
            .map(|(w, name, line)| (w.iter().collect(), &**name, *line))
    }

    /// Adds the keywords of `text` (`keyword<TAB>kind` lines; `name` is used in errors).
    pub(crate) fn extend(&mut self, name: &str, text: &str) -> Result<(), LoadError> {
        let list_name: Arc<str> = name.into();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim_end_matches('\r');
            if line.trim().is_empty() || line.trim_start().starts_with('#') {
                continue;
            }
            let err = |reason: String| LoadError::Parse {
                name: name.to_string(),
                line: n + 1,
                reason,
            };
            let (word, kind) = line
                .split_once('\t')
                .ok_or_else(|| err("expected keyword<TAB>kind".into()))?;
            if kind.contains('\t') {
                return Err(err("more than one tab (expected keyword<TAB>kind)".into()));
            }
            let kind = match kind.trim() {
                "qq" => ImKind::Qq,
                "wechat" => ImKind::Wechat,
                "telegram" => ImKind::Telegram,
                other => {
                    return Err(err(format!(
                        "unknown kind {other:?} (expected \"qq\", \"wechat\" or \"telegram\")"
                    )));
                }
            };
            let folded: Vec<char> = word
                .trim()
                .chars()
                .filter(|c| !c.is_whitespace())
                .flat_map(|c| fold_char(c).as_slice().to_vec())
                .collect();
            if folded.is_empty() {
                return Err(err("empty keyword".into()));
            }
            self.origins
                .push((folded.clone(), list_name.clone(), n + 1));
            self.list.push((folded, kind));
        }
        // longest first; a keyword listed twice is kept once
        self.list
            .sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(a.cmp(b)));
        self.list.dedup();
        self.firsts = self.list.iter().map(|(w, _)| w[0]).collect();
        self.firsts.sort_unstable();
        self.firsts.dedup();
        let ascii = self
            .list
            .iter()
            .map(|(w, _)| w)
            .filter(|w| w.iter().all(char::is_ascii));
        let (letters, loose): (Vec<&Vec<char>>, Vec<&Vec<char>>) =
            ascii.partition(|w| w.iter().all(char::is_ascii_alphabetic));
        self.latin = Latin::new(&letters);
        (self.marks, self.pairs, self.leads) = (Vec::new(), Vec::new(), Vec::new());
        for (w, _) in &self.list {
            let Some(k) = w.iter().position(|c| !c.is_ascii()) else {
                continue;
            };
            if k > 0 {
                self.pairs.push((w[k], w[k - 1]));
                self.marks.push(w[k]);
            } else if w.len() == 1 {
                self.pairs.push((w[0], ANY));
                self.marks.push(w[0]);
            } else if !w[1].is_ascii() {
                self.pairs.push((w[1], w[0]));
                self.marks.extend([w[0], w[1]]);
            } else {
                self.leads.push(w[0]);
                self.marks.push(w[0]);
            }
        }
        for v in [&mut self.marks, &mut self.leads] {
            v.sort_unstable();
            v.dedup();
        }
        self.pairs.sort_unstable();
        self.pairs.dedup();
        self.mark_bits = self.marks.iter().fold(0, |b, &c| b | 1 << (c as u32 & 63));
        let loose: Vec<String> = loose.into_iter().map(|w| w.iter().collect()).collect();
        self.loose = if loose.is_empty() {
            None
        } else {
            aho_corasick::AhoCorasick::builder()
                .ascii_case_insensitive(true)
                .kind(Some(aho_corasick::AhoCorasickKind::DFA))
                .build(&loose)
                .ok()
        };
        Ok(())
    }

    /// The longest keyword at `toks[i..]` (spaces inside it skipped): its kind, the index just
    /// past it, and whether it introduces an id itself (`微信号`, `wechat id`).
    fn at(&self, toks: &[Tok], i: usize) -> Option<(ImKind, usize, bool)> {
        if self.firsts.binary_search(&toks[i].c).is_err() {
            return None;
        }
        'kw: for (w, kind) in &self.list {
            let mut j = i;
            for (n, &c) in w.iter().enumerate() {
                if n > 0 {
                    while toks.get(j).is_some_and(|t| t.c == ' ') {
                        j += 1;
                    }
                }
                if toks.get(j).map(|t| t.c) != Some(c) {
                    continue 'kw;
                }
                j += 1;
            }
            // a Latin keyword stands as a word of its own
            let latin_start = w[0].is_ascii_alphabetic();
            let latin_end = w[w.len() - 1].is_ascii_alphabetic();
            if latin_start && i > 0 && toks[i - 1].c.is_ascii_alphabetic() {
                continue;
            }
            if latin_end
                && toks
                    .get(j)
                    .is_some_and(|t| t.c.is_ascii_alphabetic() && t.flags & GLUED == 0)
            {
                continue;
            }
            return Some((*kind, j, w.ends_with(&['号']) || w.ends_with(&['i', 'd'])));
        }
        None
    }
}

impl Keywords {
    /// Whether raw `text` may hold an ASCII keyword with a digit or sign in it, in any case
    /// (the quick look's; keywords of letters it looks for itself, see [`Latin`]).
    pub(crate) fn loose_may_occur(&self, text: &str) -> bool {
        self.loose.as_ref().is_some_and(|ac| ac.is_match(text))
    }

    /// Whether some ASCII keyword has a digit or sign in it.
    pub(crate) fn has_loose(&self) -> bool {
        self.loose.is_some()
    }

    /// Bit `c % 64` set for every mark `c` (see [`Keywords::marks`]).
    pub(crate) fn mark_bits(&self) -> u64 {
        self.mark_bits
    }

    /// The keywords of ASCII letters, for the quick look.
    pub(crate) fn latin(&self) -> &Latin {
        &self.latin
    }

    /// The characters that may start a keyword with a non-ASCII character for the quick look
    /// (see [`Keywords::starts_at`]), folded, sorted.
    pub(crate) fn marks(&self) -> &[char] {
        &self.marks
    }

    /// Whether the folded characters `prev` and then `c` (spaces between them skipped) start
    /// a keyword that has a non-ASCII character, as the quick look sees it: `c` is the first
    /// non-ASCII character and `prev` the one before it (`v信`, `qq号`), or `c` the second
    /// character and `prev` the first (`微信`), or `c` a keyword of its own.
    pub(crate) fn starts_at(&self, prev: char, c: char) -> bool {
        let from = self.pairs.partition_point(|&(s, _)| s < c);
        self.pairs[from..]
            .iter()
            .take_while(|&&(s, _)| s == c)
            .any(|&(_, p)| p == prev || p == ANY)
    }

    /// Whether `c` starts a keyword whose second character is ASCII (`加v`): the quick look
    /// counts it as started when a letter or digit follows.
    pub(crate) fn leads(&self, c: char) -> bool {
        self.leads.binary_search(&c).is_ok()
    }
}

/// The keywords made of ASCII letters, as the quick look matches them against the words of a
/// text.
///
/// The IM detector finds a Latin keyword standing as a word of its own, spaces inside it
/// skipped (`we chat`, `v x`): in the folded characters it is a run of whole words that only
/// spaces separate. The quick look keeps the last eight letters of such a run packed in a
/// `u64` (one byte a letter, the latest lowest) and where its words start, and compares them
/// with each keyword as a word ends. A keyword longer than eight letters is compared by its
/// last eight, wherever they start.
#[derive(Clone, Debug, Default)]
pub(crate) struct Latin {
    /// (the last eight letters packed, length), one per keyword
    words: Vec<(u64, u32)>,
    /// bit `n` set when a keyword has `n` <= 8 letters
    lengths: u32,
    /// a keyword has more than eight letters
    long: bool,
    /// bit `slot(p)` set for every part `p` of a keyword of up to eight letters, packed: a
    /// word that is no part of a keyword (most words) ends the run at once
    parts: Vec<u64>,
}

impl Latin {
    fn new(keywords: &[&Vec<char>]) -> Latin {
        let mut l = Latin {
            parts: vec![0; 64],
            ..Latin::default()
        };
        let pack = |w: &[char]| w.iter().fold(0u64, |p, &c| p << 8 | u64::from(c as u8));
        for w in keywords {
            let n = w.len() as u32;
            l.words.push((pack(w), n));
            if n <= 8 {
                l.lengths |= 1 << n;
            } else {
                l.long = true;
            }
            for a in 0..w.len() {
                for b in a + 1..=w.len().min(a + 8) {
                    let k = slot(pack(&w[a..b]));
                    l.parts[k / 64] |= 1 << (k % 64);
                }
            }
        }
        l
    }

    /// Whether the word of `len` letters whose last eight are `packed` may be part of a
    /// keyword.
    #[inline(always)]
    pub(crate) fn part(&self, packed: u64, len: u32) -> bool {
        if len > 8 {
            return self.long;
        }
        let k = slot(packed);
        self.parts
            .get(k / 64)
            .is_some_and(|w| w & (1 << (k % 64)) != 0)
    }

    /// Whether a keyword ends a run of words whose last letters are `packed` (see the type
    /// docs), `len` letters in all, with a word starting `n` letters before its end for each
    /// bit `n` of `starts`.
    #[inline(always)]
    pub(crate) fn ends(&self, packed: u64, len: u32, starts: u32) -> bool {
        if starts & self.lengths == 0 && !self.long {
            return false;
        }
        self.words.iter().any(|&(w, n)| {
            if n <= 8 {
                starts & (1 << n) != 0 && packed & low_bytes(n) == w
            } else {
                len >= n && packed == w
            }
        })
    }
}

/// A 12-bit hash of a packed part of a keyword.
#[inline(always)]
fn slot(packed: u64) -> usize {
    (packed.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 52) as usize
}

/// A mask of the low `n` (<= 8) bytes of a `u64`.
#[inline(always)]
pub(crate) fn low_bytes(n: u32) -> u64 {
    if n >= 8 { u64::MAX } else { (1 << (8 * n)) - 1 }
}

/// Any character before (a keyword of one character).
const ANY: char = '\0';

/// Characters that may stand between a keyword and the id.
fn is_filler(c: char) -> bool {
    matches!(
        c,
        ' ' | ':'
            | '：'
            | '='
            | '-'
            | '>'
            | '#'
            | '('
            | ')'
            | '['
            | ']'
            | '【'
            | '】'
            | '「'
            | '」'
            | '号'
            | '码'
            | '是'
            | '为'
            | '加'
            | '我'
            | '的'
            | '搜'
            | '索'
            | '私'
            | '聊'
            | '找'
            | ','
            | '，'
            | '、'
    )
}

/// Fillers that introduce an id explicitly (so a letters-only id counts).
fn is_marker(c: char) -> bool {
    matches!(c, ':' | '：' | '=' | '号' | '是' | '为' | '>' | '#')
}

/// The IM ids of the stream.
pub(super) fn find(toks: &[Tok], keywords: &Keywords) -> Vec<Found> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        let Some((kind, j, marked)) = keywords.at(toks, i) else {
            i += 1;
            continue;
        };
        match id_after(toks, j, kind, marked) {
            Some((id, end)) => {
                out.push(Found {
                    word: format!("{}:{id}", kind.as_str()),
                    toks: i..end,
                });
                i = end;
            }
            // a shorter keyword may start inside this one (`加V信`: `加V`, then `V信`)
            None => i += 1,
        }
    }
    out
}

/// The id after a keyword ending at `j`: (canonical id, index past it).
fn id_after(toks: &[Tok], j: usize, kind: ImKind, mut marked: bool) -> Option<(String, usize)> {
    let mut k = j;
    while k < toks.len() && k - j < 8 && is_filler(toks[k].c) {
        marked |= is_marker(toks[k].c);
        k += 1;
    }
    if toks.get(k).is_some_and(|t| t.c == '@') {
        marked = true;
        k += 1;
    }
    let start = k;
    // a number (any digit style, gaps of spaces or dashes allowed)
    if toks.get(k).and_then(|t| digit_of(t.c)).is_some() {
        let mut digits = String::new();
        let mut end = k;
        while k < toks.len() {
            if let Some(d) = digit_of(toks[k].c) {
                if digits.len() == MAX_ID {
                    // too long for any id: stop reading (a keyword before each piece of a long
                    // run would read the run again)
                    return None;
                }
                digits.push(char::from(b'0' + d));
                end = k + 1;
                k += 1;
            } else if matches!(toks[k].c, ' ' | '-' | '.' | '_' | '/')
                && toks.get(k + 1).and_then(|t| digit_of(t.c)).is_some()
            {
                k += 1;
            } else {
                break;
            }
        }
        if toks.get(end).is_some_and(|t| t.c.is_ascii_alphabetic()) {
            // letters after the digits (`123abc`): no kind's id (a WeChat id starts with a
            // letter)
            return None;
        }
        let n = digits.len();
        let ok = match kind {
            ImKind::Qq => (5..=11).contains(&n) && !digits.starts_with('0'),
            ImKind::Wechat => (6..=11).contains(&n),
            ImKind::Telegram => false,
        };
        return ok.then_some((digits, end));
    }
    let (min, max) = match kind {
        ImKind::Qq => return None,
        ImKind::Wechat => (6, 20),
        ImKind::Telegram => (5, 32),
    };
    let (id, end) = word_id(toks, start, min, max, kind == ImKind::Wechat)?;
    // a letters-only word is an id only when introduced as one (`微信 version` is not)
    let has_mark = id
        .bytes()
        .any(|b| b.is_ascii_digit() || b == b'_' || b == b'-');
    (marked || has_mark).then_some((id, end))
}

/// The longest id of any kind, in chars (a Telegram username).
const MAX_ID: usize = 32;

/// A word id starting at `toks[k]`: a letter, then letters, digits, `_` (and `-` if `dash`; not
/// at its end).
fn word_id(toks: &[Tok], k: usize, min: usize, max: usize, dash: bool) -> Option<(String, usize)> {
    if !toks.get(k).is_some_and(|t| t.c.is_ascii_alphabetic()) {
        return None;
    }
    // `end`: past the last char that is not `-`. Reading stops once the id is too long, so a
    // keyword before each piece of a long run (`vx-vx-vx-…`) reads a bounded part of it.
    let (mut e, mut end) = (k, k);
    while e < toks.len()
        && (toks[e].c.is_ascii_alphanumeric() || toks[e].c == '_' || (dash && toks[e].c == '-'))
    {
        if toks[e].c != '-' {
            end = e + 1;
            if end - k > max {
                return None;
            }
        }
        e += 1;
    }
    let id: String = toks[k..end].iter().map(|t| t.c).collect();
    (id.len() >= min).then_some((id, end))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Options;
    use crate::normalize::Table;

    fn ids(text: &str) -> Vec<String> {
        let table = Table::new(&Options::default());
        let (mut tmp, mut toks) = (Vec::new(), Vec::new());
        super::super::stream::build(&table, text, &mut tmp, &mut toks);
        find(&toks, &Keywords::builtin())
            .into_iter()
            .map(|f| f.word)
            .collect()
    }

    #[test]
    fn qq_numbers_after_their_keywords() {
        assert_eq!(ids("加我QQ：12345678"), ["qq:12345678"]);
        assert_eq!(ids("扣扣 贰叁肆伍陆柒捌"), ["qq:2345678"]);
        assert_eq!(ids("企鹅号 1 2 3 4 5 6 7"), ["qq:1234567"]);
        assert_eq!(ids("Q号:①②③④⑤⑥"), ["qq:123456"]);
        assert_eq!(ids("ＱＱ 87654321"), ["qq:87654321"]);
        assert_eq!(ids("QQ号 : ❺.❹.❷.❹.❶.❾"), ["qq:542419"]);
    }

    #[test]
    fn wechat_and_telegram_ids() {
        assert_eq!(ids("加V：abc_123"), ["wechat:abc_123"]);
        assert_eq!(ids("微信号 helloworld"), ["wechat:helloworld"]);
        assert_eq!(ids("vx: shop2024"), ["wechat:shop2024"]);
        assert_eq!(ids("add me on wechat: lucky888"), ["wechat:lucky888"]);
        assert_eq!(ids("telegram @crypto_king"), ["telegram:crypto_king"]);
        assert_eq!(ids("电报：moneybot"), ["telegram:moneybot"]);
        assert_eq!(ids("加V h 3 5 n e z b"), ["wechat:h35nezb"]);
        assert_eq!(ids("有需要的加V信：hqivl5"), ["wechat:hqivl5"]);
        assert_eq!(
            ids("加微信号一八一六零七七一四一九"),
            ["wechat:18160771419"]
        );
    }

    #[test]
    fn ids_end_where_their_kind_says() {
        assert_eq!(ids("vx: shop-2024---"), ["wechat:shop-2024"]);
        let longest = format!("vx: {}", "a".repeat(20));
        assert_eq!(ids(&longest), [format!("wechat:{}", "a".repeat(20))]);
        assert!(ids(&format!("{longest}b")).is_empty());
        assert!(ids(&format!("{longest}-b")).is_empty());
        assert!(ids(&format!("QQ {}", "1".repeat(40))).is_empty());
        // a keyword before each piece of a run: only its last 20 chars make an id
        assert_eq!(ids(&"vx-".repeat(1000)), ["wechat:vx-vx-vx-vx-vx-vx-vx"]);
        assert!(ids(&"qq 1".repeat(1000)).is_empty());
    }

    #[test]
    fn mentions_without_an_id_pass() {
        for text in [
            "微信 version 8.0 is out",
            "我用微信支付",
            "QQ音乐很好听",
            "the tg ratio is 1.2",
            "wxWidgets is a toolkit",
            "download telegram desktop",
            "QQ 2024 年度报告",
            "vx: 123abc",
        ] {
            assert!(ids(text).is_empty(), "{text}: {:?}", ids(text));
        }
    }
}
