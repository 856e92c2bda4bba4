//! Leetspeak readings (`sh1t`, `$hit`, `b4stard`, `p0rn`) and pinyin tone numbers (`sha3bi1`):
//! copies of the text with some characters replaced by others of the same length (an ASCII
//! byte by a letter, a full-width form by a full-width letter: `ｓｈ１ｔ` → `ｓｈｉｔ`), so every
//! byte offset of a copy is an offset of the original and hits map back unchanged.
//!
//! A leet reading exists only inside a *mixed* token: a run of non-space characters (punctuation
//! other than the leet symbols and noise such as `·` split runs) that holds at least one letter
//! and at least one digit or leet symbol, or a known all-symbol form such as `@$$`. A word
//! spelled out one character at a time (`s h 1 t`, `b.1.t.c.h`: three or more single
//! characters, one splitting character between two, a letter among them; see
//! `Tokens::spelled_out` for the numbers and units it leaves alone) is read as one token.
//! Full-width forms read as their ASCII forms, but `！` and `（` only next to full-width
//! letters, digits or other leet symbols: elsewhere they are Chinese punctuation.
//!
//! Plain numbers, prices, times and versions are never mixed (`1960`, `$5`, `3:45`, `v1.2` →
//! `v1`, `2`), and neither is a number with a short unit or ordinal suffix (`10am`, `4th`,
//! `1960s`, `4x4`). In a mixed token:
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

/// The letter a sign or a letter of another alphabet starting at byte `i` is written for
/// (`sh¡t`, `fu¢k`, `s€x`, `ßitch`, `cµnt`, `pørn`): `¡` i (inside a word only), `¢` c, `¥`
/// y, `§` s, `µ` (micro) and `μ` u, `ß` b, `ø` o, `€` e; read in a mixed token whose letters are
/// all Latin. The copy writes the letter and pads the rest of the char's bytes with NUL, which
/// matching skips, so offsets are kept.
fn sign(bytes: &[u8], i: usize) -> Option<u8> {
    Some(match bytes.get(i..)? {
        [0xC2, 0xA1, ..] => b'i',
        [0xC2, 0xA2, ..] => b'c',
        [0xC2, 0xA5, ..] => b'y',
        [0xC2, 0xA7, ..] => b's',
        [0xC2, 0xB5, ..] | [0xCE, 0xBC, ..] => b'u',
        [0xC3, 0x9F, ..] => b'b',
        [0xC3, 0xB8, ..] => b'o',
        [0xE2, 0x82, 0xAC, ..] => b'e',
        _ => return None,
    })
}

/// The first digit or leet symbol at or after `from`, ASCII or full-width, or a sign read as a
/// letter (the byte where its char starts), looked for eight bytes at a time: eight bytes that
/// all have the high bit set (inside CJK text, most of it) hold none unless one starts a char
/// other than a CJK one (`0xEF` full-width forms, `0xC2`..`0xCE` and `0xE2` the signs), and
/// eight ASCII bytes with none from `!` to `@` (every digit and leet
/// symbol but `|`) and no `|` (inside English words, most of them) hold none.
fn next_leet(bytes: &[u8], from: usize) -> Option<usize> {
    const HIGH: u64 = 0x8080_8080_8080_8080;
    const ONES: u64 = 0x0101_0101_0101_0101;
    // the high bit of each zero byte of `x` and maybe of bytes above the lowest such (the bit
    // hacks' has_zero: exact for the lowest)
    let zeros = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    let found = |j: usize, b: u8| leet(b) || (b >= 0xC2 && non_ascii_leet(bytes, j));
    let mut i = from;
    while let Some(chunk) = bytes
        .get(i..i + 8)
        .and_then(|c| <[u8; 8]>::try_from(c).ok())
    {
        let word = u64::from_le_bytes(chunk);
        if word & HIGH == HIGH {
            // only a full-width form (`0xEF`) or a sign (`0xC2`..`0xCE`, `0xE2`) can be one: look
            // at each first byte of a char but those of CJK text (`0xE3`..`0xE9`). Less 0x80,
            // every byte is below 0x80, and adding `0x80 - n` sets the high bit of those >= n.
            let x = word ^ HIGH;
            let at_least = |n: u64| x + ONES * (0x80 - n);
            let mut leads = at_least(0x40) & !(at_least(0x63) & !at_least(0x6A)) & HIGH;
            while leads != 0 {
                let k = leads.trailing_zeros() as usize / 8;
                if non_ascii_leet(bytes, i + k) {
                    return Some(i + k);
                }
                leads &= leads - 1;
            }
        } else if (word & HIGH != 0
            // Bytes below 0x80: one from 0x21 to 0x40 sets its high bit in `between`
            // (has_between), and a `|` is a zero byte of `word ^ 0x7C…`.
            || (((ONES * (127 + 0x41) - word) & !word & (word + ONES * (127 - 0x20)))
                | zeros(word ^ (ONES * u64::from(b'|'))))
                & HIGH
                != 0)
            && let Some(k) = (0..8).position(|k| found(i + k, chunk[k]))
        {
            return Some(i + k);
        }
        i += 8;
    }
    (i..bytes.len()).find(|&j| found(j, bytes[j]))
}

/// Whether a full-width digit or leet symbol (`０`, `＄`: their ASCII forms, [`narrow`], read
/// from the bytes) or a sign read as a letter ([`sign`]) starts at byte `i`.
fn non_ascii_leet(bytes: &[u8], i: usize) -> bool {
    match bytes[i] {
        // `U+FF01`..`U+FF3F` are `EF BC 81`..`BF`, `U+FF40`..`U+FF5E` are `EF BD 80`..`9E`;
        // their ASCII forms are 0x21.. in the same order
        0xEF => leet(match (bytes.get(i + 1), bytes.get(i + 2)) {
            (Some(0xBC), Some(&b @ 0x81..=0xBF)) => b - 0x60,
            (Some(0xBD), Some(&b @ 0x80..=0x9E)) => b - 0x20,
            _ => 0,
        }),
        0xC2 | 0xC3 | 0xCE | 0xE2 => sign(bytes, i).is_some(),
        _ => false,
    }
}

/// The ASCII char a char stands for in a leet reading: itself when ASCII, the ASCII form of a
/// full-width one (`１` → `1`, `ｓ` → `s`, `＄` → `$`), else `None`. A full-width form and the
/// full-width letter it is read as are both three bytes long, so the copy keeps every offset.
fn narrow(c: char) -> Option<u8> {
    match c {
        '\0'..='\x7F' => Some(c as u8),
        '\u{FF01}'..='\u{FF5E}' => Some((c as u32 - 0xFEE0) as u8),
        _ => None,
    }
}

/// The char starting at byte `i`.
#[inline]
fn char_at(text: &str, i: usize) -> Option<char> {
    match *text.as_bytes().get(i)? {
        b if b < 0x80 => Some(char::from(b)),
        _ => text.get(i..)?.chars().next(),
    }
}

/// The char ending at byte `i`.
#[inline]
fn char_before(text: &str, i: usize) -> Option<char> {
    match *text.as_bytes().get(i.checked_sub(1)?)? {
        b if b < 0x80 => Some(char::from(b)),
        _ => text.get(..i)?.chars().next_back(),
    }
}

/// One character of a token as the leet reading sees it.
#[derive(Clone, Copy)]
struct Cell {
    /// its ASCII form ([`narrow`]), or `0x80` for any other char
    b: u8,
    /// its byte offset in the text
    at: usize,
    /// full-width (three bytes), written back as a full-width letter
    wide: bool,
    /// a letter of a script written with spaces (`2020年` is not leet), not a sign
    letter: bool,
    /// the letter a sign is written for ([`sign`]), else 0
    sign: u8,
}

fn cells(text: &str, range: Range<usize>, out: &mut Vec<Cell>) {
    for (k, c) in text[range.clone()].char_indices() {
        let at = range.start + k;
        let (b, wide, letter, sign) = match narrow(c) {
            Some(b) => (b, !c.is_ascii(), b.is_ascii_alphabetic(), 0),
            None => match sign(text.as_bytes(), at) {
                Some(l) => (0x80, false, false, l),
                None => (0x80, false, (c as u32) < 0x2E80 && c.is_alphabetic(), 0),
            },
        };
        out.push(Cell {
            b,
            at,
            wide,
            letter,
            sign,
        });
    }
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
    noise: impl Fn(char) -> bool,
) -> (Vec<Range<usize>>, bool) {
    let bytes = text.as_bytes();
    let tokens = Tokens { text, noise };
    let mut windows: Vec<Range<usize>> = Vec::new();
    let mut ambiguous = false;
    let mut copied = false;
    let mut token: Vec<Cell> = Vec::new();
    let mut next = 0; // where to look for the next digit or symbol: tokens before are done
    while let Some(i) = next_leet(bytes, next) {
        let Some(ch) = char_at(text, i) else { break };
        let (c, len) = (narrow(ch).unwrap_or(0x80), ch.len_utf8());
        next = i + len;
        if len > 1 && is_leet_symbol(c) && !tokens.among_wide_forms(i, ch) {
            continue;
        }
        // a candidate touches a letter, or is a symbol touching a digit or symbol (`@$$`,
        // `@5$`); plain numbers and numbers next to CJK characters never get this far
        let touches = |n: Option<char>| {
            n.and_then(narrow)
                .is_some_and(|n| n.is_ascii_alphabetic() || (is_leet_symbol(c) && leet(n)))
        };
        token.clear();
        let Range { start, end } =
            if touches(char_before(text, i)) || touches(char_at(text, i + len)) {
                let range = tokens.around(i, len);
                cells(text, range.clone(), &mut token);
                range
            } else {
                match tokens.spelled_out(i, len, &mut token) {
                    Ok(range) => range,
                    Err(resume) => {
                        next = resume;
                        continue;
                    }
                }
            };
        next = end;
        if !copied {
            out.clear();
            out.extend_from_slice(bytes);
            copied = true;
        }
        if let Some(changed_amb) = read_token(&token, amb, out) {
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

/// The text a leet reading looks at, and which of its chars matching skips as noise.
struct Tokens<'a, N> {
    text: &'a str,
    noise: N,
}

impl<N: Fn(char) -> bool> Tokens<'_, N> {
    /// Whether the char starting at byte `i` (or the text's end) ends a token: whitespace,
    /// punctuation other than the leet symbols, and beyond ASCII a char matching skips (`·`).
    fn splits(&self, i: usize) -> bool {
        let ascii_splits =
            |b: u8| b.is_ascii_whitespace() || (b.is_ascii_punctuation() && !is_leet_symbol(b));
        match self.text.as_bytes().get(i) {
            None => true,
            Some(&b) if b < 0x80 => ascii_splits(b),
            Some(_) => char_at(self.text, i).is_some_and(|c| match narrow(c) {
                Some(b) if is_leet_symbol(b) => !self.among_wide_forms(i, c),
                Some(b) => ascii_splits(b),
                None => c.is_whitespace() || (self.noise)(c),
            }),
        }
    }

    /// Whether the full-width leet symbol `c` at byte `i` is read as one: any but `！（` is;
    /// those two only next to a full-width letter, digit or other leet symbol (`ｓｈ！ｔ`,
    /// `ｓｈ！＋`). Elsewhere they are the punctuation of Chinese text (`好！5`, `好！！`,
    /// `（Public`). Only the neighbours are looked at, so a run of them costs its length.
    fn among_wide_forms(&self, i: usize, c: char) -> bool {
        let symbol = |b: u8| is_leet_symbol(b) && !matches!(b, b'!' | b'(');
        // a full-width letter, digit or leet symbol other than `！（`
        let wide = |n: Option<char>| {
            n.is_some_and(|n| {
                !n.is_ascii() && narrow(n).is_some_and(|b| b.is_ascii_alphanumeric() || symbol(b))
            })
        };
        narrow(c).is_some_and(symbol)
            || wide(char_before(self.text, i))
            || wide(char_at(self.text, i + c.len_utf8()))
    }

    /// The token around the char at byte `i` (`len` bytes, one that does not split).
    fn around(&self, i: usize, len: usize) -> Range<usize> {
        let mut start = i;
        while let Some(c) = char_before(self.text, start) {
            if self.splits(start - c.len_utf8()) {
                break;
            }
            start -= c.len_utf8();
        }
        let mut end = i + len;
        while !self.splits(end) {
            end += char_at(self.text, end).map_or(1, char::len_utf8);
        }
        start..end
    }

    /// A word spelled out one char at a time, around the char at byte `i` (`len` bytes): three
    /// or more single letters, digits or leet symbols, each parted from the next by one char
    /// that splits tokens (`s h 1 t`, `b.1.t.c.h`, `s*h-1·t`). Its chars (not the separators)
    /// are pushed onto `token`. Otherwise `Err` with where to look on: past the whole run when
    /// it was read, for every candidate in it would find the same run (a text of `1 ` repeated
    /// stays linear).
    fn spelled_out(
        &self,
        i: usize,
        len: usize,
        token: &mut Vec<Cell>,
    ) -> Result<Range<usize>, usize> {
        let text = self.text;
        // a piece: one char that does not split, between two splits (or an end of the text)
        let split_before =
            |at: usize| char_before(text, at).is_none_or(|p| self.splits(at - p.len_utf8()));
        let single = |at: usize, c: char| {
            !self.splits(at) && split_before(at) && self.splits(at + c.len_utf8())
        };
        let (mut start, mut end) = (i, i + len);
        // the candidate does not split: a digit or leet symbol
        if !self.splits(end) || !split_before(start) {
            return Err(end);
        }
        let mut count = 1;
        // leftwards a separator and a piece before it, rightwards likewise, while there are
        while let Some(sep) = char_before(text, start)
            && let Some(x) = char_before(text, start - sep.len_utf8())
            && single(start - sep.len_utf8() - x.len_utf8(), x)
        {
            start -= sep.len_utf8() + x.len_utf8();
            count += 1;
        }
        while let Some(sep) = char_at(text, end)
            && let Some(x) = char_at(text, end + sep.len_utf8())
            && single(end + sep.len_utf8(), x)
        {
            end += sep.len_utf8() + x.len_utf8();
            count += 1;
        }
        if count < 3 {
            return Err(end);
        }
        // the pieces are every other char from the first, the separators the others
        let chars: Vec<(usize, char)> = text[start..end].char_indices().collect();
        for &(at, c) in chars.iter().step_by(2) {
            cells(text, start + at..start + at + c.len_utf8(), token);
        }
        let seps = || chars.iter().skip(1).step_by(2).map(|&(_, c)| c);
        let letters = token.iter().filter(|c| c.letter).count();
        let symbols = token.iter().any(|c| is_leet_symbol(c.b));
        // three pieces parted by spaces or hyphens are too often a letter, a number and a unit
        // (`a 5 s`, `a 5-s`): they spell a word with a leet symbol or other noise (`k*y·$`)
        let three = count == 3 && !symbols && seps().any(|c| c.is_whitespace() || c == '-');
        // a number with a decimal point or a colon among words parted by spaces (`a 4.5 s`;
        // but `n*1*g~9.4`)
        let decimal = |k: usize| {
            chars[k - 1].1.is_ascii_digit()
                && chars[k + 1].1.is_ascii_digit()
                && matches!(chars[k].1, '.' | ',' | ':')
        };
        let number = (1..chars.len() - 1).step_by(2).any(decimal)
            && seps()
                .filter(|c| !matches!(c, '.' | ',' | ':'))
                .all(char::is_whitespace);
        // one letter beside a number (`a 6-5`; but `n-i.g 9-4`, `p.1*5*$`)
        let digits_in_a_row = token
            .windows(2)
            .any(|w| w[0].b.is_ascii_digit() && w[1].b.is_ascii_digit());
        if letters == 0 || three || number || (letters == 1 && digits_in_a_row && !symbols) {
            token.clear();
            return Err(end);
        }
        Ok(start..end)
    }
}

/// Replaces the leet characters of one token in `out` (the whole copy); `None` when the token
/// is not mixed. `Some(true)` when an ambiguous character was read.
fn read_token(token: &[Cell], amb: u8, out: &mut [u8]) -> Option<bool> {
    let b: Vec<u8> = token.iter().map(|c| c.b).collect();
    let letters = token.iter().filter(|c| c.letter).count();
    let ascii_letters: Vec<u8> = b.iter().copied().filter(u8::is_ascii_alphabetic).collect();
    let digits = b.iter().filter(|c| c.is_ascii_digit()).count();
    let signs = token.iter().filter(|c| c.sign != 0).count();
    let symbols = b.iter().filter(|&&c| is_leet_symbol(c)).count() + signs;
    if digits + symbols == 0 {
        return None;
    }
    // signs are read among Latin letters only (`Straße` is `strabe`, Greek `μου` stays)
    let latin = token.iter().all(|c| !c.letter || c.b.is_ascii_alphabetic());
    if letters == 0 {
        // a known all-symbol form (`@$$`, `$h!t` has letters): two or more leet characters, an
        // `@` or `$` among them (the symbols read anywhere: `455!`, `(455)` stay numbers), no
        // price or number sign (`$5`, `#1`)
        let price = b
            .windows(2)
            .any(|w| matches!(w[0], b'$' | b'#') && w[1].is_ascii_digit());
        if !b.iter().any(|&c| matches!(c, b'@' | b'$')) || digits + symbols < 2 || price {
            return None;
        }
    } else {
        // a number with an ordinal or unit suffix: `10am`, `4th`, `1960s`, `3d`, `5kg`; or only
        // `x` (`4x4`)
        let lead_digits = b.iter().take_while(|c| c.is_ascii_digit()).count();
        // a number with a micro unit: `8µm`, `5µK`
        if lead_digits > 0
            && token.get(lead_digits).is_some_and(|c| c.sign == b'u')
            && token[lead_digits + 1..]
                .iter()
                .all(|c| c.b.is_ascii_alphabetic())
        {
            return None;
        }
        if lead_digits > 0 && lead_digits + ascii_letters.len() == b.len() {
            let suffix = String::from_utf8_lossy(&b[lead_digits..]).to_ascii_lowercase();
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
    // a letter or digit of a word written with spaces, or a sign read as a letter: not a CJK
    // character (`我喜欢（ＲＡＰ）`, `ＬＯＬ！真好` hold no `crap`, no `loli`)
    let word_like = |k: usize| {
        token
            .get(k)
            .is_some_and(|c| c.b.is_ascii_alphanumeric() || c.letter || c.sign != 0)
    };
    let mut changed = false;
    let mut ambiguous = false;
    for (j, &c) in b.iter().enumerate() {
        if token[j].sign != 0 {
            // `¡` only inside a word, like `!`: it opens Spanish exclamations (`¡hola!`)
            let inside = j > 0 && word_like(j - 1) && word_like(j + 1);
            if latin && letters > 0 && (token[j].sign != b'i' || inside) {
                let at = token[j].at;
                // the length of the char, from its first byte (still the text's)
                let len = match out[at] {
                    0xC0..=0xDF => 2,
                    _ => 3,
                };
                out[at] = token[j].sign;
                out[at + 1..at + len].fill(0);
                changed = true;
            }
            continue;
        }
        let Some(l) = leet_letter(c, amb) else {
            continue;
        };
        if interior_only(c) {
            let before = j > 0 && (word_like(j - 1) || is_leet_symbol(b[j - 1]));
            // before a letter, a digit or another leet symbol (`r4p!$t`), or ending the token
            // for `+` (`cun+`)
            let after = word_like(j + 1)
                || b.get(j + 1).is_some_and(|&n| n != c && is_leet_symbol(n))
                || (c == b'+' && j + 1 == b.len());
            if !before || !after {
                continue;
            }
        }
        if price && matches!(c, b'$' | b'#') && b.get(j + 1).is_some_and(u8::is_ascii_digit) {
            continue;
        }
        let at = token[j].at;
        if token[j].wide {
            // the full-width letter, as long as the full-width char it replaces
            let wide = char::from_u32(0xFF41 + u32::from(l - b'a')).unwrap_or('\u{FF41}');
            wide.encode_utf8(&mut out[at..at + 3]);
        } else {
            out[at] = l;
        }
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

    /// The windows of `text` a leet reading changed (`i` for the ambiguous chars).
    fn changed(text: &str) -> Vec<&str> {
        let mut out = Vec::new();
        let (w, _) = leet_copy(text, b'i', &mut out, |c| c == ',', |c| c == '·');
        w.iter().map(|r| &text[r.clone()]).collect()
    }

    fn read(text: &str, amb: u8) -> String {
        let mut out = Vec::new();
        let (w, _) = leet_copy(text, amb, &mut out, |c| c == ',', |c| c == '·');
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
    fn full_width_forms_are_read_as_full_width_letters() {
        assert_eq!(read("ｓｈ１ｔ", b'i'), "ｓｈｉｔ");
        assert_eq!(read("＠＄＄ and sｈ1ｔ", b'i'), "ａｓｓ and sｈiｔ");
        assert_eq!(read("２０２０年，ｖ１．２", b'i'), "２０２０年，ｖｉ．２");
        assert_eq!(
            read("ｓｈ！ｔ ＠＄＄ ｓｈ！＋", b'i'),
            "ｓｈｉｔ ａｓｓ ｓｈｉｔ"
        );
        // `！` and `（` are Chinese punctuation unless full-width letters stand next to them
        for t in ["好！5 个", "记住！！（以后", "陈渝（SkyEye）", "好！！"] {
            assert_eq!(read(t, b'i'), t);
        }
    }

    #[test]
    fn signs_are_read_among_latin_letters_with_nul_after_them() {
        assert_eq!(read("sh¡t", b'i'), "shi\0t");
        assert_eq!(read("s€x and ßitch", b'i'), "se\0\0x and b\0itch");
        assert_eq!(read("cμnt", b'i'), "cu\0nt");
        for t in ["μου", "€5", "§ 3", "¡hola!"] {
            assert_eq!(read(t, b'i'), t);
        }
        // every sign the docs list, by its bytes
        for (c, l) in [
            ('¡', b'i'),
            ('¢', b'c'),
            ('¥', b'y'),
            ('§', b's'),
            ('µ', b'u'),
            ('μ', b'u'),
            ('ß', b'b'),
            ('ø', b'o'),
            ('€', b'e'),
        ] {
            assert_eq!(sign(c.to_string().as_bytes(), 0), Some(l), "{c}");
        }
    }

    #[test]
    fn a_run_that_spells_nothing_is_looked_at_once() {
        // each of its digits would find the same run: the look goes on past it
        let text = "1 3 8 0 ".repeat(1000);
        let tokens = Tokens {
            text: &text,
            noise: |_| false,
        };
        assert_eq!(
            tokens.spelled_out(0, 1, &mut Vec::new()),
            Err(text.len() - 1)
        );
        assert_eq!(
            tokens.spelled_out(4, 1, &mut Vec::new()),
            Err(text.len() - 1)
        );
    }

    #[test]
    fn words_spelled_one_char_at_a_time_are_read() {
        assert_eq!(read("s.h.1.t", b'i'), "s.h.i.t");
        assert_eq!(read("oh s h 1 t", b'i'), "oh s h i t");
        assert_eq!(read("b-1-t-c-h", b'l'), "b-l-t-c-h");
        // three pieces or more, each one char, one separator between two
        assert_eq!(read("s*h-1·t", b'i'), "s*h-i·t");
        assert_eq!(read("n-i.g 9-4 p.1*5*$", b'i'), "n-i.g g-a p.i*s*s");
        for t in [
            "s..h..1..t",
            "a 1",
            "ab 1 t",
            "1.2.3",
            "v1.2.3",
            "a 5.5",
            "a 6-5 win",
        ] {
            let changed = changed(t);
            assert!(changed.iter().all(|s| *s == "v1"), "{t:?} read {changed:?}");
        }
    }

    #[test]
    fn numbers_prices_times_versions_stay() {
        for t in [
            "in 1960 it cost $5.99 at 3:45pm",
            "version v1.2.3 and 10am, the 4th, 1960s, 4x4, #1",
            "!!! 100% (sic)",
            "2020年3月5日",
        ] {
            let changed = changed(t);
            assert!(changed.iter().all(|s| *s == "v1"), "{t:?} read {changed:?}");
        }
    }

    #[test]
    fn windows_and_offsets() {
        let t = "héllo sh1t and 5hit";
        let mut out = Vec::new();
        let (w, amb) = leet_copy(t, b'i', &mut out, |c| c == ',', |c| c == '·');
        assert!(amb);
        // tokens a few bytes apart share a window
        assert_eq!(
            w.iter().map(|r| &t[r.clone()]).collect::<Vec<_>>(),
            ["sh1t and 5hit"]
        );
        let t = "sh1t and then some more words, 5hit";
        let (w, _) = leet_copy(t, b'i', &mut out, |c| c == ',', |c| c == '·');
        assert_eq!(
            w.iter().map(|r| &t[r.clone()]).collect::<Vec<_>>(),
            ["sh1t", "5hit"]
        );
        assert_eq!(out.len(), t.len());
        // but never across a character no hit can span
        assert_eq!(changed("@|*ass\n,\nsh1t"), ["@|", "sh1t"]);
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
            // two-byte chars (`ßø`), `€` and `“`, among CJK
            "ßø中€“文".as_bytes(),
            // full-width forms: `ａｂ，（ｃ`, and `ｄ` cut short at the end
            b"\xEF\xBD\x81\xEF\xBD\x82\xEF\xBC\x8C\xEF\xBC\x88\xEF\xBD\x83\xEF\xBD",
        ] {
            for at in 0..fill.len() {
                for b in 0..=255u8 {
                    let mut bytes = fill.to_vec();
                    bytes[at] = b;
                    for from in [0, 1, 8] {
                        let naive = (from..bytes.len())
                            .find(|&j| leet(bytes[j]) || non_ascii_leet(&bytes, j));
                        assert_eq!(next_leet(&bytes, from), naive, "{bytes:?} from {from}");
                    }
                }
            }
        }
    }
}
