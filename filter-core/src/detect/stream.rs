//! The detectors' view of a text: folded characters with their original byte ranges, in which
//! the disguises of a contact are undone (spoken and CJK dots and at signs, spaced letters,
//! noise inside a word).
//!
//! Characters are folded by the engine's own table (full-width, styled and circled letters and
//! digits, confusables, case, traditional → simplified), so detectors see what word matching
//! sees. Unlike word matching they keep the separators that give a contact its shape: spaces,
//! `.`, `@`, `-`, `_`, `:`, `/` and `+`.

use crate::fold::{Folded, fold_char};
use crate::normalize::{Table, Unit};
use crate::options::{is_emoji, is_invisible};

/// One character of the stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Tok {
    /// The folded character (ASCII lower case; `' '` for any whitespace; `.` and `@` for their
    /// spoken and CJK forms).
    pub(crate) c: char,
    /// Original byte range.
    pub(crate) start: u32,
    pub(crate) end: u32,
    /// See the `UPPER`/`SPOKEN` flags.
    pub(crate) flags: u8,
}

/// The original character was an upper-case ASCII letter.
pub(crate) const UPPER: u8 = 1;
/// A `.` or `@` written as a word (`点`, `dot`, `(at)`, `艾特`) or a CJK full stop.
pub(crate) const SPOKEN: u8 = 2;
/// A `@` written as the bare English word `at` (weak evidence: see the email detector).
pub(crate) const BARE_AT: u8 = 4;
/// Spaces before this character were removed as a disguise (`w w w`).
pub(crate) const GLUED: u8 = 8;

impl Tok {
    pub(crate) fn is_alnum(self) -> bool {
        self.c.is_ascii_alphanumeric()
    }
}

/// The digit a character reads as for the number detectors: ASCII digits (every other digit
/// style is folded onto these first), Chinese numerals (`一`…`九`, `零`, `〇`, `幺` = 1, `两` = 2)
/// and financial numerals (`壹`…`玖`; traditional forms fold onto the simplified ones).
pub(crate) fn digit_of(c: char) -> Option<u8> {
    Some(match c {
        '0'..='9' => c as u8 - b'0',
        '零' | '〇' => 0,
        '一' | '幺' | '壹' => 1,
        '二' | '两' | '贰' | '貳' => 2,
        '三' | '叁' | '参' => 3,
        '四' | '肆' => 4,
        '五' | '伍' => 5,
        '六' | '陆' => 6,
        '七' | '柒' => 7,
        '八' | '捌' => 8,
        '九' | '玖' => 9,
        _ => return None,
    })
}

/// CJK ideographs, kana and CJK punctuation (text written without spaces).
pub(crate) fn is_cjk(c: char) -> bool {
    matches!(c as u32, 0x2E80..=0x9FFF | 0xF900..=0xFAFF | 0x20000..=0x3FFFF)
}

/// Whether `c` can be part of a host name label.
pub(crate) fn is_host_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-'
}

/// Folds `text` into the raw stream (no disguise undone yet).
fn fold_text(table: &Table, text: &str, out: &mut Vec<Tok>) {
    out.clear();
    let mut scratch = Folded::new();
    for (i, ch) in text.char_indices() {
        let (start, end) = (i as u32, (i + ch.len_utf8()) as u32);
        fold_one(table, ch, &mut scratch, |c, flags| {
            out.push(Tok {
                c,
                start,
                end,
                flags,
            })
        });
    }
}

/// The tokens one character of the text becomes (none, one, or several: `emit(c, flags)`
/// for each). The quick look of [`super::look`] reads the text through this too, so it sees
/// what the detectors see.
#[inline]
pub(crate) fn fold_one(
    table: &Table,
    ch: char,
    scratch: &mut Folded,
    mut emit: impl FnMut(char, u8),
) {
    if ch.is_ascii() {
        match ch {
            'A'..='Z' => emit(ch.to_ascii_lowercase(), UPPER),
            c if c.is_ascii_whitespace() => emit(' ', 0),
            // noise inside a word: dropped, like word matching does
            '*' | '|' | '~' | '^' | '`' | '\\' => {}
            c if c.is_ascii_control() => {}
            c => emit(c, 0),
        }
        return;
    }
    match ch {
        '。' | '｡' | '点' | '點' => return emit('.', SPOKEN),
        // CJK ideographs are never spaces, invisible or emoji: straight to the table
        '\u{4E00}'..='\u{9FFF}' => {}
        _ if ch.is_whitespace() => return emit(' ', 0),
        _ if is_invisible(ch) || is_emoji(ch) && digit_of_styled(ch).is_none() => return,
        _ => {}
    }
    match table.unit(ch, scratch) {
        Unit::One(f) => emit(f, 0),
        Unit::Many(fs) => {
            for &f in fs {
                emit(f, 0);
            }
        }
        Unit::Skip => {
            // a noise character of the engine: keep the separators a contact needs
            let f = fold_char(ch);
            if let [c @ ('.' | '@' | '-' | '_' | ':' | '/' | '+')] = f.as_slice() {
                emit(*c, 0);
            }
        }
    }
}

/// Circled and parenthesised digits are in the emoji blocks; they are digits here.
fn digit_of_styled(c: char) -> Option<u8> {
    let f = fold_char(c);
    match f.as_slice() {
        [d @ '0'..='9'] | [d @ '0'..='9', '.'] => Some(*d as u8 - b'0'),
        [a @ '0'..='9', b @ '0'..='9'] | [a @ '0'..='9', b @ '0'..='9', '.'] => {
            Some((*a as u8 - b'0') * 10 + (*b as u8 - b'0'))
        }
        _ => None,
    }
}

/// Builds the detectors' stream of `text` into `out` (using `tmp` as scratch).
pub(crate) fn build(table: &Table, text: &str, tmp: &mut Vec<Tok>, out: &mut Vec<Tok>) {
    fold_text(table, text, tmp);
    spoken_forms(tmp);
    out.clear();
    squeeze(tmp, out);
}

/// Replaces the spoken forms of `.` and `@` in place: `dot`, `(dot)`, `[dot]`, `at`, `(at)`,
/// `[at]` as separate words, `[.]` and `(.)`, and `艾特`. A replaced form keeps its whole original range.
fn spoken_forms(s: &mut Vec<Tok>) {
    // compacted in place: the write index never passes the read index
    let n = s.len();
    let mut w = 0;
    let mut i = 0;
    while i < n {
        let t = s[i];
        // 艾特
        if t.c == '艾' && s.get(i + 1).is_some_and(|x| x.c == '特') {
            s[w] = Tok {
                c: '@',
                start: t.start,
                end: s[i + 1].end,
                flags: SPOKEN,
            };
            w += 1;
            i += 2;
            continue;
        }
        if matches!(t.c, 'a' | 'd' | '(' | '[' | '{' | '<')
            && let Some((c, len, flags)) = spoken_word(s, i)
        {
            s[w] = Tok {
                c,
                start: t.start,
                end: s[i + len - 1].end,
                flags,
            };
            w += 1;
            i += len;
            continue;
        }
        s[w] = t;
        w += 1;
        i += 1;
    }
    s.truncate(w);
}

/// A spoken `.`/`@` starting at `s[i]`: (the char, tokens used, flags).
fn spoken_word(s: &[Tok], i: usize) -> Option<(char, usize, u8)> {
    let word_at = |j: usize| -> Option<(char, usize)> {
        let w = |k: usize| s.get(j + k).map(|t| t.c);
        if w(0) == Some('d') && w(1) == Some('o') && w(2) == Some('t') {
            Some(('.', 3))
        } else if w(0) == Some('a') && w(1) == Some('t') {
            Some(('@', 2))
        } else {
            None
        }
    };
    let alnum = |k: usize| s.get(k).is_some_and(|t| t.is_alnum());
    let open = s[i].c;
    if matches!(open, '(' | '[' | '{' | '<') {
        let close = match open {
            '(' => ')',
            '[' => ']',
            '{' => '}',
            _ => '>',
        };
        let mut j = i + 1;
        while s.get(j).is_some_and(|t| t.c == ' ') {
            j += 1;
        }
        // `[.]`, `(.)`: a defanged dot
        let (c, len) = if s.get(j).is_some_and(|t| t.c == '.') {
            ('.', 1)
        } else {
            word_at(j)?
        };
        let mut k = j + len;
        while s.get(k).is_some_and(|t| t.c == ' ') {
            k += 1;
        }
        if s.get(k).map(|t| t.c) != Some(close) {
            return None;
        }
        return Some((c, k + 1 - i, SPOKEN));
    }
    // a bare word: spaces (or the start of a hyphen-free word) on both sides, and a word
    // character beyond them
    let (c, len) = word_at(i)?;
    if alnum(i + len) || i == 0 || s[i - 1].c != ' ' || s.get(i + len).map(|t| t.c) != Some(' ') {
        return None;
    }
    let mut before = i - 1;
    while before > 0 && s[before].c == ' ' {
        before -= 1;
    }
    if !s[before].is_alnum() {
        return None;
    }
    let mut after = i + len;
    while s.get(after).is_some_and(|t| t.c == ' ') {
        after += 1;
    }
    if !alnum(after) {
        return None;
    }
    let flags = if c == '@' { SPOKEN | BARE_AT } else { SPOKEN };
    Some((c, len, flags))
}

/// Removes the spaces that a disguise put inside a contact: around a spoken separator, around
/// a separator with spaces on both sides (`example . com`), and between single characters
/// (`w w w`, `1 3 8`).
fn squeeze(s: &[Tok], out: &mut Vec<Tok>) {
    let n = s.len();
    let is_sep = |t: &Tok| t.c == '.' || t.c == '@';
    // the first non-space index at or after `j`, and at or before `j`
    let next = |mut j: usize| {
        while j < n && s[j].c == ' ' {
            j += 1;
        }
        j
    };
    let mut i = 0;
    while i < n {
        let t = s[i];
        if t.c != ' ' {
            out.push(t);
            i += 1;
            continue;
        }
        let j = next(i);
        // spaces from i to j (exclusive)
        let prev = out.last().copied();
        let after = s.get(j).copied();
        let drop = match (prev, after) {
            (Some(p), Some(a)) => {
                let spoken =
                    (is_sep(&p) && p.flags & SPOKEN != 0) || (is_sep(&a) && a.flags & SPOKEN != 0);
                // `example . com`: the separator stands alone between spaces
                let lone_sep = (is_sep(&a) && s.get(j + 1).is_some_and(|x| x.c == ' '))
                    || (is_sep(&p) && prev_was_spaced(s, i));
                let singles = single(s, i, true) && single(s, j, false);
                spoken || lone_sep || singles
            }
            _ => false,
        };
        if drop {
            if let Some(a) = s.get(j)
                && j < n
            {
                let mut a = *a;
                a.flags |= GLUED;
                out.push(a);
                i = j + 1;
                continue;
            }
            i = j;
        } else {
            out.push(t);
            i = j;
        }
    }
}

/// Whether the separator just before the spaces at `i` had spaces before it too.
fn prev_was_spaced(s: &[Tok], i: usize) -> bool {
    i >= 2 && s[i - 2].c == ' '
}

/// Whether the character next to the spaces at `at` (before them when `before`, else the one
/// at `at`) stands alone: an alphanumeric (or numeral) character with a space, a separator or
/// the text's end on its other side.
fn single(s: &[Tok], at: usize, before: bool) -> bool {
    let standalone = |t: &Tok| t.is_alnum() || t.c == '_' || digit_of(t.c).is_some();
    let bound = |t: Option<&Tok>| t.is_none_or(|t| !standalone(t));
    if before {
        if at == 0 {
            return false;
        }
        let k = at - 1;
        standalone(&s[k]) && bound(if k == 0 { None } else { s.get(k - 1) })
    } else {
        s.get(at).is_some_and(standalone) && bound(s.get(at + 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Options;

    fn view(text: &str) -> String {
        let table = Table::new(&Options::default());
        let (mut tmp, mut out) = (Vec::new(), Vec::new());
        build(&table, text, &mut tmp, &mut out);
        out.iter().map(|t| t.c).collect()
    }

    #[test]
    fn spaced_letters_and_spoken_dots_are_joined() {
        assert_eq!(view("w w w . x x x . c o m"), "www.xxx.com");
        assert_eq!(view("name at gmail dot com"), "name@gmail.com");
        assert_eq!(view("name(at)gmail(dot)com"), "name@gmail.com");
        assert_eq!(view("百度点com"), "百度.com");
        assert_eq!(view("ＷＷＷ．ＥＸＡＭＰＬＥ．ＣＯＭ"), "www.example.com");
        assert_eq!(view("1 3 8 0 0 1 3 8 0 0 0"), "13800138000");
        assert_eq!(view("example[.]com (.) cn"), "example.com.cn");
    }

    #[test]
    fn ordinary_sentences_keep_their_spaces() {
        assert_eq!(view("see you. Then go"), "see you. then go");
        assert_eq!(view("it is 3 . 5 kg"), "it is 3.5 kg");
        assert_eq!(view("I am a cat"), "i am a cat");
    }
}
