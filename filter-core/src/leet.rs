//! Leetspeak readings (`sh1t`, `$hit`, `b4stard`, `p0rn`) and pinyin tone numbers (`sha3bi1`):
//! copies of the text with some ASCII bytes replaced by others of the same length, so every
//! byte offset of a copy is an offset of the original and hits map back unchanged.
//!
//! A leet reading exists only inside a *mixed* token: a run of non-space characters (ASCII
//! punctuation other than the leet symbols splits runs) that holds at least one letter and at
//! least one digit or leet symbol, or a known all-symbol form such as `@$$`. Plain numbers,
//! prices, times and versions are never mixed (`1960`, `$5`, `3:45`, `v1.2` → `v1`, `2`), and
//! neither is a number with a short unit or ordinal suffix (`10am`, `4th`, `1960s`, `4x4`). In a
//! mixed token:
//!
//! | text | reads as | where |
//! |---|---|---|
//! | `4` `@` | a | anywhere |
//! | `8` `6` | b | anywhere |
//! | `(` `<` | c | between a letter or digit and a letter or digit |
//! | `3` | e | anywhere |
//! | `9` | g | anywhere |
//! | `#` | h | inside, before a letter or digit |
//! | `1` | i or l (both readings are tried) | anywhere |
//! | `!` `\|` | i or l | inside, before a letter or digit |
//! | `0` | o | anywhere |
//! | `5` `$` | s | anywhere (`$` not before a digit) |
//! | `7` `+` | t | `+` inside, before a letter or digit |
//! | `2` | z | anywhere |
//!
//! A symbol that is also noise (`@`, `|`) keeps its noise reading in the plain pass, so
//! `f@u@c@k` still reads `fuck`; the leet pass only adds readings.

use std::ops::Range;

/// Ordinal and unit suffixes after a number: `1st`, `10am`, `1960s`, `5kg` are never leet.
const NUMBER_SUFFIXES: &str = "st nd rd th s am pm a p k m b d g h x mm cm km kg mg lb lbs oz \
    ft in mi mph kph ms ns hz khz mhz ghz kb mb gb tb px pt em v w kw mw l ml yo yr yrs";

/// The letter a leet character reads as (`'1'` → the ambiguous `i`/`l`, given as `amb`).
fn leet_letter(b: u8, amb: u8) -> Option<u8> {
    Some(match b {
        b'4' | b'@' => b'a',
        b'8' | b'6' => b'b',
        b'(' | b'<' => b'c',
        b'3' => b'e',
        b'9' => b'g',
        b'#' => b'h',
        b'1' | b'!' | b'|' => amb,
        b'0' => b'o',
        b'5' | b'$' => b's',
        b'7' | b'+' => b't',
        b'2' => b'z',
        _ => return None,
    })
}

/// Symbols read as letters only between two letters or digits of the token.
fn interior_only(b: u8) -> bool {
    matches!(b, b'(' | b'<' | b'#' | b'!' | b'|' | b'+')
}

const fn is_leet_symbol(b: u8) -> bool {
    matches!(b, b'@' | b'(' | b'<' | b'#' | b'!' | b'|' | b'$' | b'+')
}

/// Digits and leet symbols: the bytes a leet reading starts from. A table, because every byte
/// of every line is looked up, where a chain of compares cost several instructions a byte.
static LEET: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = (b as u8).is_ascii_digit() || is_leet_symbol(b as u8);
        b += 1;
    }
    table
};

fn leet(b: u8) -> bool {
    LEET[usize::from(b)]
}

/// The first digit or leet symbol at or after `from`, looked for eight bytes at a time: eight
/// bytes that all have the high bit set (inside CJK text, most of it) hold none, and neither do
/// eight ASCII bytes with none from `!` to `@` (every digit and leet symbol but `|`) and no
/// `|` (inside English words, most of them).
fn next_leet(bytes: &[u8], from: usize) -> Option<usize> {
    const HIGH: u64 = 0x8080_8080_8080_8080;
    const ONES: u64 = 0x0101_0101_0101_0101;
    let mut i = from;
    while let Some(chunk) = bytes
        .get(i..i + 8)
        .and_then(|c| <[u8; 8]>::try_from(c).ok())
    {
        let word = u64::from_ne_bytes(chunk);
        let none = if word & HIGH == HIGH {
            true
        } else if word & HIGH == 0 {
            // Bytes below 0x80: one from 0x21 to 0x40 sets its high bit in `between`, and a
            // `|` is a zero byte of `word ^ 0x7C…` (the bit hacks' has_between and has_zero).
            let between = (ONES * (127 + 0x41) - word) & !word & (word + ONES * (127 - 0x20));
            let bar = word ^ (ONES * u64::from(b'|'));
            let has_bar = bar.wrapping_sub(ONES) & !bar;
            (between | has_bar) & HIGH == 0
        } else {
            false
        };
        if !none && let Some(k) = chunk.iter().position(|&b| leet(b)) {
            return Some(i + k);
        }
        i += 8;
    }
    let rest = bytes.get(i..)?;
    rest.iter().position(|&b| leet(b)).map(|k| i + k)
}

/// Whether byte `b` (of a char starting there) ends a token.
fn splits(text: &str, i: usize) -> bool {
    let b = text.as_bytes()[i];
    if b < 0x80 {
        return b.is_ascii_whitespace() || (b.is_ascii_punctuation() && !is_leet_symbol(b));
    }
    text[i..].chars().next().is_some_and(char::is_whitespace)
}

/// The leet copy of `text` for one reading of the ambiguous `1 ! |` (`amb` = `b'i'` or `b'l'`),
/// written into `out` (cleared first). Returns the byte ranges that hold a replaced byte (whole
/// mixed tokens, neighbours merged), empty when there is nothing to read; whether any ambiguous
/// character was read is returned too, so the caller knows if the second reading can differ.
/// Neighbours a `hard` character (one no hit can span) separates are never merged: a window
/// reaching past it would let what follows change the hits before it.
pub(crate) fn leet_copy(
    text: &str,
    amb: u8,
    out: &mut Vec<u8>,
    hard: impl Fn(char) -> bool,
) -> (Vec<Range<usize>>, bool) {
    let bytes = text.as_bytes();
    let mut windows: Vec<Range<usize>> = Vec::new();
    let mut ambiguous = false;
    let mut copied = false;
    let mut next = 0; // where to look for the next digit or symbol: tokens before are done
    while let Some(i) = next_leet(bytes, next) {
        let b = bytes[i];
        next = i + 1;
        // a candidate touches an ASCII letter, or is a symbol touching a digit or symbol
        // (`@$$`, `@5$`); plain
        // numbers and numbers next to CJK characters never get this far
        let touches = |j: Option<usize>| {
            j.and_then(|j| bytes.get(j))
                .is_some_and(|&n| n.is_ascii_alphabetic() || (is_leet_symbol(b) && leet(n)))
        };
        if !touches(i.checked_sub(1)) && !touches(Some(i + 1)) {
            continue;
        }
        let (start, end) = token_bounds(text, i);
        next = end;
        if !copied {
            out.clear();
            out.extend_from_slice(bytes);
            copied = true;
        }
        if let Some(changed_amb) = read_token(&text[start..end], amb, &mut out[start..end]) {
            ambiguous |= changed_amb;
            match windows.last_mut() {
                Some(w) if start - w.end <= 8 && !text[w.end..start].chars().any(&hard) => {
                    w.end = end;
                }
                _ => windows.push(start..end),
            }
        }
    }
    (windows, ambiguous)
}

/// The token around byte `i` (an ASCII byte that does not split).
fn token_bounds(text: &str, i: usize) -> (usize, usize) {
    let mut start = i;
    while start > 0 {
        let mut p = start - 1;
        while p > 0 && !text.is_char_boundary(p) {
            p -= 1;
        }
        if splits(text, p) {
            break;
        }
        start = p;
    }
    let mut end = i + 1;
    while end < text.len() && !(text.is_char_boundary(end) && splits(text, end)) {
        end += 1;
    }
    (start, end)
}

/// Replaces the leet characters of one token in `out` (its bytes); `None` when the token is not
/// mixed. `Some(true)` when an ambiguous character was read.
fn read_token(token: &str, amb: u8, out: &mut [u8]) -> Option<bool> {
    let b = token.as_bytes();
    // letters of scripts written with spaces (CJK next to digits, `2020年`, is not leet)
    let letters = token
        .chars()
        .filter(|&c| c.is_alphabetic() && (c as u32) < 0x2E80)
        .count();
    let ascii_letters: Vec<u8> = b.iter().copied().filter(u8::is_ascii_alphabetic).collect();
    let digits = b.iter().filter(|c| c.is_ascii_digit()).count();
    let symbols = b.iter().filter(|&&c| is_leet_symbol(c)).count();
    if digits + symbols == 0 {
        return None;
    }
    if letters == 0 {
        // a known all-symbol form (`@$$`, `$h!t` has letters): two or more leet characters, a
        // symbol among them, no price or number sign (`$5`, `#1`)
        let price = b
            .windows(2)
            .any(|w| matches!(w[0], b'$' | b'#') && w[1].is_ascii_digit());
        if symbols == 0 || digits + symbols < 2 || price || b.iter().all(|&c| c == b'!') {
            return None;
        }
    } else {
        // a number with an ordinal or unit suffix: `10am`, `4th`, `1960s`, `3d`, `5kg`; or only
        // `x` (`4x4`)
        let lead_digits = b.iter().take_while(|c| c.is_ascii_digit()).count();
        if lead_digits > 0 && lead_digits + ascii_letters.len() == b.len() {
            let suffix = token[lead_digits..].to_ascii_lowercase();
            if NUMBER_SUFFIXES.split(' ').any(|s| s == suffix) {
                return None;
            }
        }
        if !ascii_letters.is_empty()
            && ascii_letters.iter().all(|c| c.eq_ignore_ascii_case(&b'x'))
            && symbols == 0
        {
            return None;
        }
    }
    // `$5`, `$5k`, `#1`: a price or a number, unless other letters make it a word (`$1u+`)
    let price = ascii_letters
        .iter()
        .all(|c| matches!(c.to_ascii_lowercase(), b'k' | b'm' | b'b'));
    let word_like = |c: Option<&u8>| c.is_some_and(|c| c.is_ascii_alphanumeric() || *c >= 0x80);
    let mut changed = false;
    let mut ambiguous = false;
    for (j, &c) in b.iter().enumerate() {
        let Some(l) = leet_letter(c, amb) else {
            continue;
        };
        if interior_only(c) {
            let before = j > 0 && (word_like(b.get(j - 1)) || is_leet_symbol(b[j - 1]));
            // before a letter, a digit or another leet symbol (`r4p!$t`), or ending the token
            // for `+` (`cun+`)
            let after = word_like(b.get(j + 1))
                || b.get(j + 1).is_some_and(|&n| n != c && is_leet_symbol(n))
                || (c == b'+' && j + 1 == b.len());
            if !before || !after {
                continue;
            }
        }
        if price && matches!(c, b'$' | b'#') && b.get(j + 1).is_some_and(u8::is_ascii_digit) {
            continue;
        }
        out[j] = l;
        changed = true;
        ambiguous |= matches!(c, b'1' | b'!' | b'|');
    }
    changed.then_some(ambiguous)
}

/// The pinyin tone-number copy: a digit 0-5 right after an ASCII letter and not before another
/// digit (`sha3`, `bi1`) becomes NUL, which is invisible noise. Returns whether anything changed.
pub(crate) fn tone_copy(text: &str, out: &mut Vec<u8>) -> bool {
    let b = text.as_bytes();
    let mut changed = false;
    for j in 1..b.len() {
        if matches!(b[j], b'0'..=b'5')
            && b[j - 1].is_ascii_alphabetic()
            && !b.get(j + 1).is_some_and(u8::is_ascii_digit)
        {
            if !changed {
                out.clear();
                out.extend_from_slice(b);
                changed = true;
            }
            out[j] = 0;
        }
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str, amb: u8) -> String {
        let mut out = Vec::new();
        let (w, _) = leet_copy(text, amb, &mut out, |c| c == ',');
        if w.is_empty() {
            return text.to_string();
        }
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn mixed_tokens_are_read() {
        assert_eq!(read("sh1t", b'i'), "shit");
        assert_eq!(read("$hit happens", b'i'), "shit happens");
        assert_eq!(read("b4stard", b'i'), "bastard");
        assert_eq!(read("p0rn!", b'i'), "porn!");
        assert_eq!(read("bu11sh!t", b'l'), "bullshlt");
        assert_eq!(read("sh!t", b'i'), "shit");
        assert_eq!(read("@$$", b'i'), "ass");
        assert_eq!(read("@5$", b'i'), "ass");
        assert_eq!(read("a$$hole", b'i'), "asshole");
        assert_eq!(read("71ts 817ch", b'i'), "tits bitch");
        assert_eq!(read("51ut", b'l'), "slut");
        assert_eq!(read("rap!$+", b'i'), "rapist");
    }

    #[test]
    fn numbers_prices_times_versions_stay() {
        for t in [
            "in 1960 it cost $5.99 at 3:45pm",
            "version v1.2.3 and 10am, the 4th, 1960s, 4x4, #1",
            "!!! 100% (sic)",
            "2020年3月5日",
        ] {
            let mut out = Vec::new();
            let (w, _) = leet_copy(t, b'i', &mut out, |c| c == ',');
            let changed: Vec<&str> = w.iter().map(|r| &t[r.clone()]).collect();
            assert!(changed.iter().all(|s| *s == "v1"), "{t:?} read {changed:?}");
        }
    }

    #[test]
    fn windows_and_offsets() {
        let t = "héllo sh1t and 5hit";
        let mut out = Vec::new();
        let (w, amb) = leet_copy(t, b'i', &mut out, |c| c == ',');
        assert!(amb);
        // tokens a few bytes apart share a window
        assert_eq!(
            w.iter().map(|r| &t[r.clone()]).collect::<Vec<_>>(),
            ["sh1t and 5hit"]
        );
        let t = "sh1t and then some more words, 5hit";
        let (w, _) = leet_copy(t, b'i', &mut out, |c| c == ',');
        assert_eq!(
            w.iter().map(|r| &t[r.clone()]).collect::<Vec<_>>(),
            ["sh1t", "5hit"]
        );
        assert_eq!(out.len(), t.len());
        // but never across a character no hit can span
        let t = "@|*ass\n,\nsh1t";
        let (w, _) = leet_copy(t, b'i', &mut out, |c| c == ',');
        assert_eq!(
            w.iter().map(|r| &t[r.clone()]).collect::<Vec<_>>(),
            ["@|", "sh1t"]
        );
    }

    #[test]
    fn tone_numbers() {
        let mut out = Vec::new();
        assert!(tone_copy("sha3 bi1", &mut out));
        assert_eq!(out, b"sha\0 bi\0");
        assert!(!tone_copy("in 2024, 50 people", &mut out));
    }

    #[test]
    fn the_eight_byte_look_finds_what_a_byte_by_byte_look_finds() {
        // every byte value at every place of a chunk, among letters, among non-ASCII bytes,
        // and among both
        for fill in [
            &b"abcdefghijklmnopq"[..],
            &[0xE4; 17],
            b"ab\xE4cd\xE5ef\xE6gh\x80ijklm",
        ] {
            for at in 0..fill.len() {
                for b in 0..=255u8 {
                    let mut bytes = fill.to_vec();
                    bytes[at] = b;
                    for from in [0, 1, 8] {
                        let naive = bytes[from..]
                            .iter()
                            .position(|&x| leet(x))
                            .map(|k| from + k);
                        assert_eq!(next_leet(&bytes, from), naive, "{bytes:?} from {from}");
                    }
                }
            }
        }
    }
}
