//! The quick look: one pass over the text, through the detectors' own folding of each
//! character, that answers `false` only when no detector can find anything in it, so that most
//! lines skip building the detectors' view and the four scans over it.
//!
//! A text is worth a look when its folded characters hold
//! - an at sign (`@`, `＠`, `艾特`, or any character folded to `@`);
//! - a run of five digits (any digit style, Chinese numerals) that nothing but the separators a
//!   number may contain (spaces, `- . / ( ) _`, brackets, and the letters of a spoken `dot`)
//!   interrupts: a phone number has seven digits, a QQ or WeChat number five;
//! - a dot between two words, glued (`a.b`) or standing alone (`a . b`), not ending a
//!   sentence (`a. B`), or a dot in brackets (`[.]`);
//! - the word `dot` on its own (`dot`, `(dot)`), which the view reads as a dot;
//! - with the IM detector on, letters or digits and an IM keyword: an ASCII keyword anywhere
//!   in any case, or the first non-ASCII character of another keyword.

use super::im::Keywords;
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
    let mut look = Look {
        marks: keywords.map(Keywords::marks),
        run: 0,
        alnum: false,
        mark: false,
        mark_bits: keywords
            .map(Keywords::marks)
            .unwrap_or_default()
            .iter()
            .fold(0, |bits, &c| bits | 1 << (c as u32 & 63)),
        recent: [' '; 3],
        open_dot: None,
        last: ' ',
        last_space: false,
        solid: ' ',
        dot_word: false,
    };
    let mut scratch = Folded::new();
    let mut hit = false;
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b < 0x80 {
            i += 1;
            // the common case first: a word of ASCII letters while no dot is open and no
            // digits are counted, read at once
            if b.is_ascii_alphabetic() && !look.dot_word && look.open_dot.is_none() && look.run == 0
            {
                let start = i - 1;
                while i < bytes.len() && bytes[i].is_ascii_alphabetic() {
                    i += 1;
                }
                look.word(&bytes[start..i]);
                continue;
            }
            if b == b' ' && !look.dot_word {
                look.space();
                continue;
            }
            // ASCII folds to itself (lower case), a space, or nothing
            let t = match char::from(b) {
                c @ 'A'..='Z' => c.to_ascii_lowercase(),
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
        // U+4E00..=U+9FFF, the CJK ideographs, are the three-byte sequences led by E4 (from
        // B8 on) to E9; most of them in Chinese text need no reading (see `Plain`)
        if (0xE4..=0xE9).contains(&b) && i + 2 < bytes.len() && (b != 0xE4 || bytes[i + 1] >= 0xB8)
        {
            let u = (u32::from(b & 0x0F) << 12)
                | (u32::from(bytes[i + 1] & 0x3F) << 6)
                | u32::from(bytes[i + 2] & 0x3F);
            if plain.contains(u, look.mark)
                && let Some(c) = char::from_u32(u)
            {
                look.ideograph(c);
                i += 3;
                continue;
            }
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
    if look.dot_word {
        return true;
    }
    keywords.is_some_and(|k| look.alnum && (look.mark || k.ascii_may_occur(text)))
}

/// The CJK ideographs (U+4E00..=U+9FFF) the quick look passes over without reading them, for
/// one table and the detectors of its options: those the table folds to one ideograph that is
/// no numeral, no part of `艾特` and (IM detector on) no keyword's mark; and, apart, the marks.
/// Two bits per ideograph, 5 KiB; empty when no detector runs.
pub(crate) struct Plain {
    /// bit `u - 0x4E00`: a plain ideograph
    plain: Vec<u64>,
    /// bit `u - 0x4E00`: plain but for being a mark
    marks: Vec<u64>,
}

const IDEOGRAPHS: std::ops::RangeInclusive<u32> = 0x4E00..=0x9FFF;

impl Plain {
    pub(crate) fn new(table: &Table) -> Plain {
        let detectors = &table.options().detectors;
        let words = (IDEOGRAPHS.end() - IDEOGRAPHS.start()) as usize / 64 + 1;
        let mut p = Plain {
            plain: Vec::new(),
            marks: Vec::new(),
        };
        if !detectors.any() {
            return p;
        }
        p.plain = vec![0; words];
        p.marks = vec![0; words];
        let marks = detectors
            .running_keywords()
            .map(Keywords::marks)
            .unwrap_or_default();
        for u in IDEOGRAPHS {
            let Some(c) = char::from_u32(u) else { continue };
            let Some(f) = table.single(c) else { continue };
            if matches!(c, '点' | '點')
                || !IDEOGRAPHS.contains(&(f as u32))
                || matches!(f, '艾' | '特')
                || digit_of(f).is_some()
            {
                continue;
            }
            let k = (u - IDEOGRAPHS.start()) as usize;
            let bits = if marks.binary_search(&f).is_ok() {
                &mut p.marks
            } else {
                &mut p.plain
            };
            bits[k / 64] |= 1 << (k % 64);
        }
        p
    }

    /// Whether the ideograph `u` (in U+4E00..=U+9FFF) needs no reading: a plain one, or a
    /// mark once a mark was seen (`mark_seen`).
    #[inline(always)]
    fn contains(&self, u: u32, mark_seen: bool) -> bool {
        let k = u.wrapping_sub(*IDEOGRAPHS.start()) as usize;
        let bit = |v: &[u64]| v.get(k / 64).is_some_and(|w| w & (1 << (k % 64)) != 0);
        bit(&self.plain) || mark_seen && bit(&self.marks)
    }
}

/// The quick look's state over the folded characters.
struct Look<'a> {
    /// The IM keywords' first non-ASCII characters (IM detector on).
    marks: Option<&'a [char]>,
    /// Digits since the last character that ends a number.
    run: u32,
    /// An ASCII letter or digit was seen.
    alnum: bool,
    /// An IM keyword's mark was seen.
    mark: bool,
    /// Bit `c % 64` set for every mark `c`: most characters are ruled out without a search.
    mark_bits: u64,
    /// The last three characters, the latest last.
    recent: [char; 3],
    /// An open dot: (the character before it, a space before it, a space after it).
    open_dot: Option<(char, bool, bool)>,
    /// The last character that is neither a space nor a dot, and whether spaces followed it.
    last: char,
    last_space: bool,
    /// The last character that is not a space.
    solid: char,
    /// `dot` was just read after a character that is no letter or digit.
    dot_word: bool,
}

impl Look<'_> {
    /// [`Look::token`] for each letter of `word` (ASCII letters, a whole word of the text)
    /// while no dot is open, no `dot` word is pending and no digits are counted: what is left
    /// of them.
    #[inline(always)]
    fn word(&mut self, word: &[u8]) {
        let lower = |k: usize| char::from(word[k] | 0x20);
        let n = word.len();
        if word.eq_ignore_ascii_case(b"dot") && !self.recent[2].is_ascii_alphanumeric() {
            self.dot_word = true;
        }
        self.recent = match n {
            1 => [self.recent[1], self.recent[2], lower(0)],
            2 => [self.recent[2], lower(0), lower(1)],
            _ => [lower(n - 3), lower(n - 2), lower(n - 1)],
        };
        self.alnum = true;
        self.last = lower(n - 1);
        self.solid = self.last;
        self.last_space = false;
    }

    /// [`Look::token`] for an ideograph that [`Plain`] passes over (`t` as written; it folds
    /// to an ideograph just as inert here): what is left of it.
    #[inline(always)]
    fn ideograph(&mut self, t: char) {
        let [_, r1, r2] = self.recent;
        self.recent = [r1, r2, t];
        self.run = 0;
        self.open_dot = None;
        self.last = t;
        self.solid = t;
        self.last_space = false;
    }

    /// [`Look::token`] for a space while no `dot` word is pending.
    #[inline(always)]
    fn space(&mut self) {
        let [_, r1, r2] = self.recent;
        self.recent = [r1, r2, ' '];
        if let Some(d) = self.open_dot.as_mut() {
            d.2 = true;
        }
        self.last_space = true;
    }

    /// Whether `t` is a keyword's mark not seen yet.
    #[inline(always)]
    fn is_new_mark(&self, t: char) -> bool {
        !self.mark
            && self.mark_bits & (1 << (t as u32 & 63)) != 0
            && self.marks.is_some_and(|m| m.binary_search(&t).is_ok())
    }

    /// Reads one folded character (`spoken`: a dot written `点` or `。`, which the view joins
    /// to the words around it through spaces): `true` when the text is worth a look.
    #[inline(always)]
    fn token(&mut self, t: char, spoken: bool) -> bool {
        let [r0, r1, r2] = self.recent;
        self.recent = [r1, r2, t];
        if self.dot_word {
            if !t.is_ascii_alphanumeric() {
                return true;
            }
            self.dot_word = false;
        }
        if t.is_ascii_alphanumeric() {
            self.alnum = true;
            if t == 't' && r2 == 'o' && r1 == 'd' && !r0.is_ascii_alphanumeric() {
                self.dot_word = true;
            }
        }
        if t == '@' || t == '特' && r2 == '艾' {
            return true;
        }
        if t.is_ascii_digit() || !t.is_ascii() && digit_of(t).is_some() {
            self.run += 1;
            if self.run >= 5 {
                return true;
            }
        } else if !matches!(
            t,
            ' ' | '-' | '.' | '/' | '(' | ')' | '_' | '[' | ']' | '{' | '}' | '<' | '>' | 'd' | 'o'
        ) {
            self.run = 0;
        }
        if !t.is_ascii() && self.is_new_mark(t) {
            self.mark = true;
        }
        if t == '.' {
            // `[.]`, `( . )`: a defanged dot
            if matches!(self.solid, '(' | '[' | '{' | '<') {
                return true;
            }
            self.solid = t;
            self.open_dot = Some((self.last, self.last_space || spoken, false));
            self.last_space = false;
            return false;
        }
        if t == ' ' {
            if let Some(d) = self.open_dot.as_mut() {
                d.2 = true;
            }
            self.last_space = true;
            return false;
        }
        // a dot between two words, glued (`a.b`) or standing alone (`a . b`), not ending a
        // sentence (`a. B`)
        if let Some((before, space_before, space_after)) = self.open_dot.take()
            && wordish(before)
            && wordish(t)
            && (!space_after || space_before)
        {
            return true;
        }
        self.last = t;
        self.solid = t;
        self.last_space = false;
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
            "陸陸陸陸陸",
            "①③⑧①②",
            "1-2-3-4-5",
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
            "12 ab 34 cd 56",
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
            "一二三四五"
        ));
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
            "1", "3", "8", "0", "5", "一", "三", "陸", "①", "⑽", "１", " ", "  ", "-", ".", "/",
            "(", ")", "_", "[", "]", "{", "<", ">", "d", "o", "t", "a", "at", "dot", "DOT", "x",
            "q", "v", "w", "qq", "vx", "QQ", "ｑｑ", "微信", "扣扣", "号", "@", "＠", "艾", "特",
            "点", "。", "．", "com", "cn", "gmail", "www", "http://", ":", "，", "的", "*", "~",
            "\u{200b}", "😀", "é",
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
