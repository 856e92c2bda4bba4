//! The quick look: one pass over the text, through the detectors' own folding of each
//! character, that answers `false` only when no detector can find anything in it, so that most
//! lines skip building the detectors' view and the four scans over it.
//!
//! A text is worth a look when its folded characters hold
//! - an at sign (`@`, `＠`, `艾特`, or any character folded to `@`);
//! - a run of eight digits (any digit style, Chinese numerals) that nothing but the separators
//!   a number may contain (spaces, `- . / ( ) _`, brackets, and the letters of a spoken `dot`)
//!   interrupts: a phone number has at least eight; five once an IM keyword came, since a QQ
//!   or WeChat number has five and follows its keyword;
//! - a dot between two words, glued (`a.b`) or standing alone (`a . b`), not ending a
//!   sentence (`a. B`), or a dot in brackets (`[.]`); not a dot before a single letter and
//!   the next dot (`U.S.`, `a.m.`: that next dot is looked at on its own, and a host's last
//!   label has two letters at least); between two digits only the third of a row
//!   (`1.2.3.4`), since a host's last label has a letter and an IPv4 address has three dots
//!   (`3.56`, `v1.2`, `2011.2.28` pass);
//! - the word `dot` on its own (`dot`, `(dot)`), which the view reads as a dot;
//! - with the IM detector on, letters or digits and an IM keyword: a keyword of ASCII letters
//!   as whole words (spaces inside it skipped, in any case or width: see [`Latin`]), another
//!   ASCII keyword anywhere in the raw text, or the start of any other: its first non-ASCII
//!   character after the one before it (`v信`), or its first two characters (`微信`; `加` and
//!   a letter or digit for `加v`).
//!
//! Words of ASCII letters are read at once, and runs of three-byte characters that change
//! nothing but "something else came" (most CJK ideographs and punctuation: see [`Plain`]) with
//! one bit test each.

use super::im::{Keywords, Latin, low_bytes};
use super::stream::{SPOKEN, digit_of, fold_one, is_cjk};
use crate::fold::Folded;
use crate::normalize::Table;

/// Whether `text` may hold a contact (see the module docs). `keywords` is `None` when the IM
/// detector is off.
pub(super) fn worth_a_look(
    table: &Table,
    plain: &Plain,
    keywords: Option<&Keywords>,
    text: &str,
) -> bool {
    let mut look = Look::new(keywords);
    let mut scratch = Folded::new();
    let mut hit = false;
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b < 0x80 {
            // the common case first: a word of ASCII letters, read at once
            if b.is_ascii_alphabetic() {
                let start = i;
                i = word_end(bytes, i + 1);
                if look.letters(&bytes[start..i], packed(bytes, start, i)) {
                    return true;
                }
                continue;
            }
            i += 1;
            if b == b' ' {
                if look.space() {
                    return true;
                }
                continue;
            }
            // ASCII folds to itself (lower case), a space, or nothing
            let t = match char::from(b) {
                c if c.is_ascii_whitespace() => ' ',
                '*' | '|' | '~' | '^' | '`' | '\\' => continue,
                c if c.is_ascii_control() => continue,
                c => c,
            };
            if look.token(t, false) {
                return true;
            }
            continue;
        }
        // a run of plain three-byte characters (valid UTF-8: two continuation bytes follow)
        if (0xE0..0xF0).contains(&b) && plain.contains(three(bytes, i), look.mark) {
            i += 3;
            while i < bytes.len()
                && (0xE0..0xF0).contains(&bytes[i])
                && plain.contains(three(bytes, i), look.mark)
            {
                i += 3;
            }
            if look.plain() {
                return true;
            }
            continue;
        }
        let Some(ch) = text[i..].chars().next() else {
            break;
        };
        i += ch.len_utf8();
        fold_one(table, ch, &mut scratch, |t, flags| {
            hit = hit || look.token(t, flags & SPOKEN != 0)
        });
        if hit {
            return true;
        }
    }
    if look.end_word(OTHER) {
        return true;
    }
    keywords.is_some_and(|k| look.alnum && (look.mark || look.keyword || k.loose_may_occur(text)))
}

/// The end of the word of ASCII letters that goes on at `bytes[i]`: eight bytes at a time.
#[inline(always)]
fn word_end(bytes: &[u8], mut i: usize) -> usize {
    const LOW7: u64 = 0x7F7F_7F7F_7F7F_7F7F;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    while let Some(chunk) = bytes.get(i..i + 8) {
        let mut w = [0; 8];
        w.copy_from_slice(chunk);
        let w = u64::from_le_bytes(w);
        // a letter is a byte below 0x80 that is 0x61..=0x7A once folded to lower case; no
        // lane carries into the next
        let y = (w | 0x2020_2020_2020_2020) & LOW7;
        let from_a = (y + 0x1F1F_1F1F_1F1F_1F1F) & HIGH;
        let past_z = (y + 0x0505_0505_0505_0505) & HIGH;
        let other = !(from_a & !past_z & !w) & HIGH;
        if other != 0 {
            return i + other.trailing_zeros() as usize / 8;
        }
        i += 8;
    }
    while i < bytes.len() && bytes[i].is_ascii_alphabetic() {
        i += 1;
    }
    i
}

/// The code point of the three-byte UTF-8 sequence at `bytes[i]`.
#[inline(always)]
fn three(bytes: &[u8], i: usize) -> u32 {
    (u32::from(bytes[i] & 0x0F) << 12)
        | (u32::from(bytes[i + 1] & 0x3F) << 6)
        | u32::from(bytes[i + 2] & 0x3F)
}

/// The last (up to) eight letters of the word `bytes[start..end]` (ASCII letters), lower case,
/// packed one a byte, the last lowest.
#[inline(always)]
fn packed(bytes: &[u8], start: usize, end: usize) -> u64 {
    let n = (end - start) as u32;
    match bytes.get(end.wrapping_sub(8)..end) {
        Some(last8) => {
            let mut w = [0; 8];
            w.copy_from_slice(last8);
            (u64::from_be_bytes(w) | 0x2020_2020_2020_2020) & low_bytes(n)
        }
        None => bytes[start..end]
            .iter()
            .fold(0, |p, &b| p << 8 | u64::from(b | 0x20)),
    }
}

/// The three-byte characters (U+0800..=U+FFFF) the quick look passes over without folding
/// them, for one table and the detectors of its options: those that fold to one character
/// that reads as "something else" (no letter or digit of a word, no numeral, no separator a
/// number or an address may hold, no part of `艾特`; most CJK ideographs and punctuation);
/// and, apart, those that would be such but for starting an IM keyword (with the IM detector
/// on; see [`Keywords::starts_at`]). Two bits per character, 16 KiB; none when no detector runs.
pub(crate) struct Plain {
    /// `[plain, marks]` bits of the characters `64 * k..64 * k + 64`, at `k`
    bits: Option<Box<[[u64; 2]; 1024]>>,
}

impl Plain {
    pub(crate) fn new(table: &Table) -> Plain {
        let detectors = &table.options().detectors;
        if !detectors.any() {
            return Plain { bits: None };
        }
        let mut bits = Box::new([[0u64; 2]; 1024]);
        let marks = detectors
            .running_keywords()
            .map(Keywords::marks)
            .unwrap_or_default();
        let mut scratch = Folded::new();
        for u in 0x800..=0xFFFF_u32 {
            let Some(c) = char::from_u32(u) else { continue };
            let mut tokens = Vec::new();
            fold_one(table, c, &mut scratch, |t, flags| tokens.push((t, flags)));
            let &[(t, 0)] = tokens.as_slice() else {
                continue;
            };
            if t.is_ascii_alphanumeric()
                || wordish(t)
                || digit_of(t).is_some()
                || matches!(
                    t,
                    '@' | '.'
                        | ' '
                        | '-'
                        | '/'
                        | '('
                        | ')'
                        | '_'
                        | '['
                        | ']'
                        | '{'
                        | '}'
                        | '<'
                        | '>'
                        | '艾'
                        | '特'
                )
            {
                continue;
            }
            let mark = usize::from(marks.binary_search(&t).is_ok());
            bits[(u >> 6) as usize][mark] |= 1 << (u & 63);
        }
        Plain { bits: Some(bits) }
    }

    /// Whether the character `u` (U+0800..=U+FFFF) needs no folding: a plain one, or a mark
    /// once a mark was seen (`mark_seen`).
    #[inline(always)]
    fn contains(&self, u: u32, mark_seen: bool) -> bool {
        let Some(bits) = &self.bits else { return false };
        let [plain, marks] = bits[(u >> 6) as usize & 1023];
        let w = if mark_seen { plain | marks } else { plain };
        w & (1 << (u & 63)) != 0
    }
}

/// The quick look's state over the folded characters.
struct Look<'a> {
    /// The IM keywords (IM detector on).
    keywords: Option<&'a Keywords>,
    /// The IM keywords of ASCII letters (IM detector on).
    latin: Option<&'a Latin>,
    /// Digits since the last character that ends a number.
    run: u32,
    /// The digits that make a run worth a look: eight, five once an IM keyword came.
    min_run: u32,
    /// An ASCII letter or digit was seen.
    alnum: bool,
    /// The start of an IM keyword with a non-ASCII character was seen.
    mark: bool,
    /// The last character that is not a space.
    prev: char,
    /// It may start a keyword whose second character is ASCII.
    lead: bool,
    /// An IM keyword of letters was seen.
    keyword: bool,
    /// Bit `c % 64` set for every mark `c`: most characters are ruled out without a search.
    mark_bits: u64,
    /// The last character was an ASCII digit.
    digit: bool,
    /// The last character was `艾`.
    ai: bool,
    /// An open dot: (a letter or digit of a word before it, a space before it, a space after
    /// it, an ASCII digit before it).
    open_dot: Option<(bool, bool, bool, bool)>,
    /// The last character that is neither a space nor a dot is a letter or digit of a word.
    wordish: bool,
    /// It is an ASCII digit.
    number: bool,
    /// The word being read follows a dot between words.
    after_dot: bool,
    /// Dots between digits in the current run of digits, dots and spaces: an IPv4 address
    /// has three; one or two are a decimal, a version or a date.
    dotted: u32,
    /// Spaces followed it.
    space: bool,
    /// The last character that is not a space is an opening bracket.
    bracket: bool,
    /// The word of ASCII letters being read: its length and last eight letters (packed like
    /// `Latin`'s), and whether a digit came just before it.
    word_len: u32,
    word: u64,
    word_after_digit: bool,
    /// The run of words that only spaces separate, as [`Latin`] compares it: its last eight
    /// letters, its length, and bit `n` set where a word starts `n` letters before its end.
    chain: u64,
    chain_len: u32,
    chain_starts: u32,
    /// Only spaces came since the chain's last word.
    chain_open: bool,
}

/// A character after a word that is neither a dot nor a digit.
const OTHER: char = '\u{FFFC}';

/// `dot`, packed like a word.
const DOT: u64 = 0x64_6F_74;

impl<'a> Look<'a> {
    fn new(keywords: Option<&'a Keywords>) -> Look<'a> {
        Look {
            keywords,
            prev: OTHER,
            lead: false,
            latin: keywords.map(Keywords::latin),
            run: 0,
            alnum: false,
            mark: false,
            keyword: false,
            mark_bits: keywords.map_or(0, Keywords::mark_bits),
            digit: false,
            ai: false,
            open_dot: None,
            wordish: false,
            number: false,
            dotted: 0,
            after_dot: false,
            min_run: if keywords.is_some_and(Keywords::has_loose) {
                5
            } else {
                8
            },
            space: false,
            bracket: false,
            word_len: 0,
            word: 0,
            word_after_digit: false,
            chain: 0,
            chain_len: 0,
            chain_starts: 0,
            chain_open: false,
        }
    }

    /// Reads ASCII letters (`letters`, the last eight of them `packed`): `true` when the text
    /// is worth a look.
    #[inline(always)]
    fn letters(&mut self, letters: &[u8], packed: u64) -> bool {
        // a dot between two words
        if let Some((before, space_before, space_after, _)) = self.open_dot.take()
            && before
            && (!space_after || space_before)
        {
            self.after_dot = true;
        }
        // the letters of `dot` may stand inside a number
        if self.run > 0 && letters.iter().any(|&b| !matches!(b | 0x20, b'd' | b'o')) {
            self.run = 0;
        }
        if self.lead {
            self.lead = false;
            self.set_mark();
        }
        self.prev = char::from(packed as u8);
        self.alnum = true;
        self.wordish = true;
        self.number = false;
        self.dotted = 0;
        self.space = false;
        self.bracket = false;
        self.ai = false;
        if self.word_len == 0 {
            self.word_after_digit = self.digit;
        }
        self.digit = false;
        let n = letters.len() as u32;
        self.word = if n >= 8 {
            packed
        } else {
            self.word << (8 * n) | packed
        };
        self.word_len = self.word_len.saturating_add(n);
        false
    }

    /// Ends the word being read (`next`: the character after it, [`OTHER`] for any that
    /// needs no name): `true` when it is `dot` on its own, which the view reads as a dot, or
    /// when it follows a dot between words and is no single letter before another dot. Adds
    /// it to the chain of words for the keywords.
    #[inline(always)]
    fn end_word(&mut self, next: char) -> bool {
        let n = self.word_len;
        if n == 0 {
            return false;
        }
        self.word_len = 0;
        if std::mem::take(&mut self.after_dot) && !(n == 1 && next == '.') {
            return true;
        }
        if n == 3 && self.word == DOT && !self.word_after_digit && !next.is_ascii_digit() {
            return true;
        }
        if let Some(latin) = self.latin {
            if !latin.part(self.word, n) {
                self.chain_open = false;
                self.word = 0;
                return false;
            }
            if !self.chain_open {
                (self.chain, self.chain_len, self.chain_starts) = (0, 0, 0);
            }
            if n >= 8 {
                self.chain = self.word;
                self.chain_starts = if n == 8 { 1 << 8 } else { 0 };
            } else {
                self.chain = self.chain << (8 * n) | self.word;
                self.chain_starts = (self.chain_starts << n | 1 << n) & 0x1FF;
            }
            self.chain_len = self.chain_len.saturating_add(n);
            self.chain_open = true;
            if latin.ends(self.chain, self.chain_len, self.chain_starts) {
                self.keyword = true;
                self.min_run = 5;
            }
        }
        self.word = 0;
        false
    }

    /// Reads a space ([`Look::token`]'s `' '`).
    #[inline(always)]
    fn space(&mut self) -> bool {
        if self.end_word(' ') {
            return true;
        }
        self.ai = false;
        self.digit = false;
        if let Some(d) = self.open_dot.as_mut() {
            d.2 = true;
        }
        self.space = true;
        false
    }

    /// Reads a run of [`Plain`] characters: what is left of them.
    #[inline(always)]
    fn plain(&mut self) -> bool {
        if self.end_word(OTHER) {
            return true;
        }
        self.chain_open = false;
        self.prev = OTHER;
        self.lead = false;
        self.run = 0;
        self.digit = false;
        self.ai = false;
        self.open_dot = None;
        self.wordish = false;
        self.number = false;
        self.dotted = 0;
        self.space = false;
        self.bracket = false;
        false
    }

    /// Notes that an IM keyword started.
    #[inline(always)]
    fn set_mark(&mut self) {
        self.mark = true;
        self.min_run = 5;
    }

    /// Reads a character that is not a space for the keywords with a non-ASCII character.
    #[inline(always)]
    fn starts(&mut self, t: char) {
        let prev = std::mem::replace(&mut self.prev, t);
        if self.lead {
            self.lead = false;
            if t.is_ascii_alphanumeric() {
                self.set_mark();
            }
        }
        if !t.is_ascii()
            && !self.mark
            && self.mark_bits & (1 << (t as u32 & 63)) != 0
            && let Some(k) = self.keywords
        {
            if k.starts_at(prev, t) {
                self.set_mark();
            }
            self.lead = k.leads(t);
        }
    }

    /// Reads one folded character (`spoken`: a dot written `点` or `。`, which the view joins
    /// to the words around it through spaces): `true` when the text is worth a look.
    #[inline(always)]
    fn token(&mut self, t: char, spoken: bool) -> bool {
        if t.is_ascii_alphabetic() {
            let b = t as u8 | 0x20;
            return self.letters(&[b], u64::from(b));
        }
        let digit = t.is_ascii_digit();
        if self.end_word(t) {
            return true;
        }
        if t != ' ' {
            self.chain_open = false;
            self.starts(t);
        }
        let ai = self.ai;
        self.ai = t == '艾';
        self.digit = digit;
        if digit {
            self.alnum = true;
        }
        if t == '@' || t == '特' && ai {
            return true;
        }
        if digit || !t.is_ascii() && digit_of(t).is_some() {
            self.run += 1;
            if self.run >= self.min_run {
                return true;
            }
        } else if !matches!(
            t,
            ' ' | '-' | '.' | '/' | '(' | ')' | '_' | '[' | ']' | '{' | '}' | '<' | '>'
        ) {
            self.run = 0;
        }
        if t == '.' {
            // `[.]`, `( . )`: a defanged dot
            if self.bracket {
                return true;
            }
            self.bracket = false;
            self.open_dot = Some((self.wordish, self.space || spoken, false, self.number));
            self.space = false;
            return false;
        }
        if t == ' ' {
            if let Some(d) = self.open_dot.as_mut() {
                d.2 = true;
            }
            self.space = true;
            return false;
        }
        // a dot between two words, glued (`a.b`) or standing alone (`a . b`), not ending a
        // sentence (`a. B`); between digits, the third of an IPv4 address (a host's last
        // label has a letter)
        let w = wordish(t);
        if let Some((before, space_before, space_after, number)) = self.open_dot.take()
            && before
            && w
            && (!space_after || space_before)
        {
            if !(number && digit) {
                return true;
            }
            self.dotted += 1;
            if self.dotted >= 3 {
                return true;
            }
        } else if !digit {
            self.dotted = 0;
        }
        self.wordish = w;
        self.number = digit;
        self.bracket = matches!(t, '(' | '[' | '{' | '<');
        self.space = false;
        false
    }
}

/// A letter or digit of a word written with spaces (not a CJK character).
fn wordish(c: char) -> bool {
    if c.is_ascii() {
        c.is_ascii_alphanumeric()
    } else {
        !is_cjk(c) && c.is_alphanumeric()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DetectorMode, Detectors, Options};

    fn looks(text: &str) -> bool {
        let options = Options::default().detectors(Detectors::new().all(DetectorMode::Review));
        let table = Table::new(&options);
        worth_a_look(
            &table,
            &Plain::new(&table),
            Some(&Keywords::builtin()),
            text,
        )
    }

    #[test]
    fn contacts_in_any_disguise_are_worth_a_look() {
        for text in [
            "mail me: a@b",
            "name＠host",
            "name艾特qq",
            "call 138 0013 8000",
            "一三八零零一三八零零零",
            "陸陸陸陸陸陸陸陸",
            "①③⑧①②③④⑤",
            "1-2-3-4-5-6-7-8",
            "qq 1-2-3-4-5",
            "微信 陸陸陸陸陸",
            "ＱＱ１２３４５",
            "加 V abcdefg",
            "V 信：abcdefg",
            "微 信 abc",
            "企鹅号 1 2 3 4 5 6 7",
            "电报：moneybot",
            "纸飞机 abc",
            "go to example.com",
            "example . com",
            "example[.]com",
            "example ( . ) com",
            "name at gmail dot com",
            "name(dot)com",
            "name AT gmail DOT com",
            "Ｅｘａｍｐｌｅ．ＣＯＭ",
            "加我QQ abc",
            "微信 abc",
            "vx: hello",
            // keywords through the folding: width, spaces and noise inside them
            "ｖｘ:abcdefg",
            "ＴＧ：abcdefg",
            "we chat: abcdefg",
            "v x:abcdefg",
            "v*x:abcdefg",
            "Tele gram: @name",
            "example do*t com",
            "1.2.3.4:8080",
            "10 . 0 . 0 . 1/admin",
            "163.com",
        ] {
            assert!(looks(text), "{text}");
        }
    }

    #[test]
    fn prose_and_scattered_numbers_are_not() {
        for text in [
            "我们一起去看了三场电影，花了两个小时。",
            "In 2024 we sold 12 cars, 3 vans and 40 bikes.",
            "See you. Then go",
            "the anecdote about dots",
            "1dot 2dot 3",
            "微信支付很方便",
            "相信 abc，参加了 3 场，信号 5G，佛号 12345",
            "12 ab 34 cd 56",
            "an outgoing wave of qqx, vxa and wechats",
            "we chatted",
            "花了 3.56 亿，2011.2.28 发布 v1.2 版",
            "the U.S.A. at 8 a.m., e.g. J.D.H. Donnay (1951-56), 12345",
        ] {
            assert!(!looks(text), "{text}");
        }
    }

    #[test]
    fn keywords_count_only_with_the_im_detector_on() {
        let on = Options::default().detectors(Detectors::new().all(DetectorMode::Review));
        let table = Table::new(&on);
        let plain = Plain::new(&table);
        assert!(worth_a_look(
            &table,
            &plain,
            Some(&Keywords::builtin()),
            "微信 abc"
        ));
        let im_off = on.detectors(
            Detectors::new()
                .all(DetectorMode::Review)
                .im(DetectorMode::Off),
        );
        let table = Table::new(&im_off);
        let plain = Plain::new(&table);
        assert!(!worth_a_look(&table, &plain, None, "微信 abc"));
        // with the detectors off nothing is plain: every ideograph is read
        let table = Table::new(&Options::default());
        let plain = Plain::new(&table);
        assert!(worth_a_look(
            &table,
            &plain,
            Some(&Keywords::builtin()),
            "一二三四五六七八"
        ));
    }

    #[test]
    fn words_end_where_the_letters_do() {
        let text =
            "Hello, wide World!xyz\u{e9}ab[`@{abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
        let bytes = text.as_bytes();
        for i in 0..bytes.len() {
            if bytes[i].is_ascii_alphabetic() {
                let mut j = i;
                while j < bytes.len() && bytes[j].is_ascii_alphabetic() {
                    j += 1;
                }
                assert_eq!(word_end(bytes, i), j, "{i}");
            }
        }
        for b in 0..=255u8 {
            let mut v = vec![b'a'; 20];
            v[9] = b;
            let want = if b.is_ascii_alphabetic() { 20 } else { 9 };
            assert_eq!(word_end(&v, 1), want, "{b}");
        }
    }

    /// Whether the full view and the four scans find anything in `text`.
    fn finds_any(text: &str) -> bool {
        let table =
            Table::new(&Options::default().detectors(Detectors::new().all(DetectorMode::Review)));
        let (mut tmp, mut toks) = (Vec::new(), Vec::new());
        super::super::stream::build(&table, text, &mut tmp, &mut toks);
        !super::super::domain::urls(&toks).is_empty()
            || !super::super::domain::emails(&toks).is_empty()
            || !super::super::im::find(&toks, &Keywords::builtin()).is_empty()
            || !super::super::phone::find(&toks).is_empty()
    }

    fn piece() -> impl proptest::strategy::Strategy<Value = &'static str> {
        proptest::sample::select(vec![
            "1",
            "3",
            "8",
            "0",
            "5",
            "一",
            "三",
            "陸",
            "①",
            "⑽",
            "１",
            " ",
            "  ",
            "-",
            ".",
            "/",
            "(",
            ")",
            "_",
            "[",
            "]",
            "{",
            "<",
            ">",
            "d",
            "o",
            "t",
            "a",
            "at",
            "dot",
            "DOT",
            "x",
            "q",
            "v",
            "w",
            "qq",
            "vx",
            "QQ",
            "ｑｑ",
            "微信",
            "扣扣",
            "号",
            "@",
            "＠",
            "艾",
            "特",
            "点",
            "。",
            "．",
            "com",
            "cn",
            "gmail",
            "www",
            "http://",
            ":",
            "，",
            "的",
            "*",
            "~",
            "\u{200b}",
            "😀",
            "é",
            "ｖ",
            "ｘ",
            "we",
            "chat",
            "ｔｇ",
            "e",
            "g",
            "id",
            "，",
            "　",
            "企鹅",
            "电报",
            "纸飞机",
            "加",
            "薇",
        ])
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(1500))]

        /// The quick look may let a text through that holds nothing, never the other way.
        #[test]
        fn the_quick_look_never_skips_a_text_with_a_contact(
            pieces in proptest::collection::vec(piece(), 0..16)
        ) {
            let text = pieces.concat();
            if finds_any(&text) {
                proptest::prop_assert!(looks(&text), "{text:?}");
            }
        }
    }
}
