//! Character folding: what one input character becomes in the normalized text.
//!
//! Folding a character applies, in order: Unicode compatibility decomposition (full-width →
//! half-width, styled and circled letters and digits, ligatures; a sign that abbreviates a
//! word, `™` or `㎏`, stays itself), parenthesised letters and digits lose their parentheses
//! (`⒡` → `f`), number and letter styles without a decomposition (`❶` → `1`, `🅰` → `a`,
//! regional indicators `🇦` → `a`), case folding, removal of accents on
//! Latin, Greek and Cyrillic letters (`é` → `e`; other scripts are recomposed so `が` stays
//! `が`), letters of other scripts that the Unicode confusables data (UTS #39 skeletons) maps
//! onto Latin letters (Cyrillic `а` → `a`, Greek `ν` → `v`, Cherokee `Ꮪ` → `s`), and
//! traditional → simplified Chinese (`國` → `国`).
//!
//! The result is computed once per BMP character into a table ([`BaseFold`], shared by every
//! engine) and on the fly for astral characters (styled mathematical letters, emoji), which are rare.

use std::sync::OnceLock;

use unicode_normalization::char::{compose, decompose_compatible, is_combining_mark};

/// A folded character: up to 18 output characters (the longest compatibility decomposition).
#[derive(Clone, Copy)]
pub(crate) struct Folded {
    buf: [char; 18],
    len: u8,
}

impl Folded {
    pub(crate) fn new() -> Self {
        Folded {
            buf: ['\0'; 18],
            len: 0,
        }
    }

    pub(crate) fn push(&mut self, c: char) {
        if (self.len as usize) < self.buf.len() {
            self.buf[self.len as usize] = c;
            self.len += 1;
        }
    }

    pub(crate) fn as_slice(&self) -> &[char] {
        &self.buf[..self.len as usize]
    }
}

/// Folds one character without any noise handling (see the module docs for the steps).
pub(crate) fn fold_char(c: char) -> Folded {
    let mut out = Folded::new();
    if c.is_ascii() {
        out.push(c.to_ascii_lowercase());
        return out;
    }
    // Hangul syllables decompose into jamo; keep them whole (NFKC would recompose them).
    if ('\u{AC00}'..='\u{D7A3}').contains(&c) {
        out.push(c);
        return out;
    }
    if let Some(f) = styled(c) {
        return f;
    }
    // A letter the confusables data maps onto Latin as written, before decomposition can turn
    // it into another letter (`ϲ`, lunate sigma, decomposes to `ς`, but imitates `c`).
    if other_script_letter(c) {
        let mut lower = c.to_lowercase();
        let l = match (lower.next(), lower.next()) {
            (Some(l), None) => l,
            _ => c,
        };
        let mut out = Folded::new();
        if confusable(l, &mut out) {
            return out;
        }
    }
    let mut decomposed = Folded::new();
    decompose_compatible(c, |d| decomposed.push(d));
    let mut d = decomposed.as_slice();
    // `⒡` → "(f)", `⑴` → "(1)": keep what is inside the parentheses.
    if d.len() >= 3 && d[0] == '(' && d[d.len() - 1] == ')' && c != '(' {
        d = &d[1..d.len() - 1];
    }
    // A symbol that abbreviates a word (`™` → "TM", `℠`, `℻`, `㎏`) is a sign written after
    // words, not letters of them: folded, it would glue "tm" onto the word before (`fuck™`).
    if !c.is_alphabetic() && d.len() >= 2 && d.iter().all(char::is_ascii_alphabetic) {
        out.push(c);
        return out;
    }
    // Lower-case every piece (may expand, e.g. `İ` → "i̇").
    let mut lowered = Folded::new();
    for &x in d {
        match x {
            'ß' | 'ẞ' => {
                lowered.push('s');
                lowered.push('s');
            }
            'ς' => lowered.push('σ'),
            _ if x.is_ascii() => lowered.push(x.to_ascii_lowercase()),
            _ => {
                for l in x.to_lowercase() {
                    lowered.push(l);
                }
            }
        }
    }
    let l = lowered.as_slice();
    // Accent stripping for alphabetic scripts; canonical recomposition for the others.
    let alphabetic_base = l
        .first()
        .is_some_and(|&b| (b as u32) < 0x0530 && b.is_alphabetic());
    let mut composed = Folded::new();
    if alphabetic_base {
        for &x in l {
            if !is_combining_mark(x) {
                composed.push(x);
            }
        }
    } else {
        let mut prev: Option<char> = None;
        for &x in l {
            match prev {
                Some(p) => match compose(p, x) {
                    Some(cx) => prev = Some(cx),
                    None => {
                        composed.push(p);
                        prev = Some(x);
                    }
                },
                None => prev = Some(x),
            }
        }
        if let Some(p) = prev {
            composed.push(p);
        }
    }
    for &x in composed.as_slice() {
        if !confusable(x, &mut out) {
            out.push(simplify(x));
        }
    }
    out
}

/// What a letter of another script folds to when it imitates Latin letters: its UTS #39
/// confusable skeleton (the Unicode confusables data, through `unicode-security`), kept only
/// when that skeleton is one or more ASCII letters, the script of the Latin word lists.
/// `а` (Cyrillic) → `a`, `α` → `a`, `ν` → `v`, `Ꮪ` (Cherokee) → `s`, `օ` (Armenian) → `o`;
/// a letter whose skeleton is a digit (`З` → `3`) or another script stays itself.
fn confusable(c: char, out: &mut Folded) -> bool {
    if c.is_ascii() || !c.is_alphabetic() || is_cjk(c) {
        return false;
    }
    // The data maps each case on its own (`В` → `B`, but lower-case `в` has no entry): the
    // lower-case letter, then its capital.
    let mut upper = c.to_uppercase();
    let capital = match (upper.next(), upper.next()) {
        (Some(u), None) if u != c => Some(u),
        _ => None,
    };
    for x in std::iter::once(c).chain(capital) {
        if let Some(skeleton) = latin_skeleton(x) {
            for &l in skeleton.as_slice() {
                out.push(l);
            }
            return true;
        }
    }
    false
}

/// The UTS #39 skeleton of `c` when it is ASCII letters (lower-cased), else `None`.
fn latin_skeleton(c: char) -> Option<Folded> {
    let mut buf = [0u8; 4];
    let mut skeleton = Folded::new();
    for x in unicode_security::skeleton(c.encode_utf8(&mut buf)) {
        if is_combining_mark(x) {
            continue;
        }
        if !x.is_ascii_alphabetic() {
            return None;
        }
        skeleton.push(x.to_ascii_lowercase());
    }
    (!skeleton.as_slice().is_empty()).then_some(skeleton)
}

/// A letter of a script other than Latin (styled and full-width Latin letters are `Common` or
/// `Latin` and decompose first).
fn other_script_letter(c: char) -> bool {
    use unicode_script::{Script, UnicodeScript};
    !c.is_ascii()
        && c.is_alphabetic()
        && !is_cjk(c)
        && !matches!(
            c.script(),
            Script::Latin | Script::Common | Script::Inherited
        )
}

/// CJK ideographs, kana, Hangul and their symbols: never folded onto Latin.
fn is_cjk(c: char) -> bool {
    matches!(c as u32, 0x2E80..=0x9FFF | 0xAC00..=0xD7AF | 0xF900..=0xFAFF | 0x20000..=0x3FFFF)
}

/// Number and letter styles that have no compatibility decomposition, folded by their place in
/// their Unicode block (each block is a run in code point order): dingbat and double circled
/// digits (`❶ ➀ ➊ ⓵` → `1`, `⓫` → `11`, `⓿ 🄋 🄌` → `0`), negative circled and squared letters
/// (`🅐`, `🅰` → `a`) and regional indicator symbols (`🇦` → `a`), the letter forms that
/// compatibility decomposition leaves alone.
fn styled(c: char) -> Option<Folded> {
    let u = c as u32;
    let number = |n: u32| {
        let mut f = Folded::new();
        for d in n.to_string().chars() {
            f.push(d);
        }
        f
    };
    let letter = |base: u32| {
        let mut f = Folded::new();
        f.push(char::from(b'a' + (u - base) as u8));
        f
    };
    Some(match u {
        0x2776..=0x277F => number(u - 0x2776 + 1), // DINGBAT NEGATIVE CIRCLED DIGIT ONE..TEN
        0x2780..=0x2789 => number(u - 0x2780 + 1), // DINGBAT CIRCLED SANS-SERIF DIGIT ONE..TEN
        0x278A..=0x2793 => number(u - 0x278A + 1), // DINGBAT NEGATIVE CIRCLED SANS-SERIF ..
        0x24EB..=0x24F4 => number(u - 0x24EB + 11), // NEGATIVE CIRCLED NUMBER ELEVEN..TWENTY
        0x24F5..=0x24FE => number(u - 0x24F5 + 1), // DOUBLE CIRCLED DIGIT ONE..NUMBER TEN
        0x24FF | 0x1F10B | 0x1F10C => number(0),   // NEGATIVE CIRCLED DIGIT ZERO, DINGBAT ..ZERO
        0x1F150..=0x1F169 => letter(0x1F150),      // NEGATIVE CIRCLED LATIN CAPITAL LETTER A..Z
        0x1F170..=0x1F189 => letter(0x1F170),      // NEGATIVE SQUARED LATIN CAPITAL LETTER A..Z
        0x1F1E6..=0x1F1FF => letter(0x1F1E6),      // REGIONAL INDICATOR SYMBOL LETTER A..Z
        _ => return None,
    })
}

/// Traditional → simplified for one character (identity for everything else).
pub(crate) fn simplify(c: char) -> char {
    let u = c as u32;
    if !(0x3400..=0x9FFF).contains(&u) {
        return c;
    }
    t2s_table()
        .binary_search_by_key(&u, |&(t, _)| t)
        .map(|i| t2s_table()[i].1)
        .unwrap_or(c)
}

/// The character table of `fast2s` (MIT), extracted by converting each CJK character alone.
/// Context-dependent conversions (`乾隆`) are intentionally not applied: a filter wants the
/// plain character mapping so that both `乾` spellings of a listed word match.
fn t2s_table() -> &'static [(u32, char)] {
    static TABLE: OnceLock<Vec<(u32, char)>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut v = Vec::with_capacity(4096);
        let mut buf = [0u8; 4];
        for u in 0x3400u32..=0x9FFF {
            let Some(c) = char::from_u32(u) else { continue };
            let s = c.encode_utf8(&mut buf);
            let conv = fast2s::convert(s);
            let mut it = conv.chars();
            if let (Some(t), None) = (it.next(), it.next())
                && t != c
            {
                v.push((u, t));
            }
        }
        v
    })
}

/// Encoding of a table entry (`u32`).
pub(crate) const NOISE: u32 = u32::MAX;
/// Bit set on entries that point into the expansion pool: bits 0..24 offset, 24..31 length.
pub(crate) const MANY: u32 = 1 << 31;

/// The noise-free fold of every BMP character, shared by all engines.
pub(crate) struct BaseFold {
    pub(crate) entries: Vec<u32>,
    pub(crate) pool: Vec<char>,
}

/// The process-wide base fold table (built on first use, a few milliseconds).
pub(crate) fn base_fold() -> &'static BaseFold {
    static BASE: OnceLock<BaseFold> = OnceLock::new();
    BASE.get_or_init(|| {
        let mut entries = Vec::with_capacity(0x10000);
        let mut pool = Vec::new();
        for u in 0u32..0x10000 {
            let Some(c) = char::from_u32(u) else {
                // Surrogates never occur in a `str`.
                entries.push(u);
                continue;
            };
            let f = fold_char(c);
            let e = encode_entry(f.as_slice(), &mut pool);
            entries.push(e);
        }
        BaseFold { entries, pool }
    })
}

/// Encodes a fold result as a table entry, appending expansions to `pool`.
pub(crate) fn encode_entry(f: &[char], pool: &mut Vec<char>) -> u32 {
    match f {
        [] => NOISE,
        [one] => *one as u32,
        many => {
            let off = pool.len() as u32;
            pool.extend_from_slice(many);
            MANY | ((many.len() as u32) << 24) | off
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(c: char) -> String {
        fold_char(c).as_slice().iter().collect()
    }

    #[test]
    fn full_width_and_case() {
        assert_eq!(f('Ａ'), "a");
        assert_eq!(f('ｚ'), "z");
        assert_eq!(f('１'), "1");
        assert_eq!(f('＊'), "*");
        assert_eq!(f('Q'), "q");
    }

    #[test]
    fn styled_letters_and_digits() {
        assert_eq!(f('𝐟'), "f");
        assert_eq!(f('𝓊'), "u");
        assert_eq!(f('ⓒ'), "c");
        assert_eq!(f('Ⓚ'), "k");
        assert_eq!(f('⒡'), "f");
        assert_eq!(f('①'), "1");
        assert_eq!(f('⑩'), "10");
        assert_eq!(f('ﬁ'), "fi");
        // no decomposition: folded by their place in the block
        assert_eq!(f('🅰'), "a");
        assert_eq!(f('🅐'), "a");
        assert_eq!(f('🇰'), "k");
        assert_eq!(f('❶'), "1");
        assert_eq!(f('➉'), "10");
        assert_eq!(f('⓬'), "12");
        assert_eq!(f('⓿'), "0");
        assert_eq!(f('🄰'), "a");
    }

    #[test]
    fn accents_and_scripts() {
        assert_eq!(f('é'), "e");
        assert_eq!(f('Ü'), "u");
        assert_eq!(f('ß'), "ss");
        assert_eq!(f('が'), "が");
        assert_eq!(f('한'), "한");
        assert_eq!(f('а'), "a"); // Cyrillic
        // UTS #39 confusables onto Latin letters, either case of the data
        assert_eq!(f('Σ'), "o");
        for (c, want) in [
            ('α', "a"),
            ('ν', "v"),
            ('в', "b"),
            ('к', "k"),
            ('Ꮪ', "s"),
            ('օ', "o"),
            ('ɑ', "a"),
        ] {
            assert_eq!(f(c), want, "{c}");
        }
        // no Latin skeleton, or a digit one: the letter stays
        for c in ['д', 'ж', 'λ', 'з'] {
            assert_eq!(f(c), c.to_string(), "{c}");
        }
    }

    #[test]
    fn traditional_to_simplified() {
        assert_eq!(f('國'), "国");
        assert_eq!(f('傻'), "傻");
        assert_eq!(f('媽'), "妈");
        assert_eq!(f('說'), "说");
        assert_eq!(f('乾'), "干");
        // compatibility ideographs first become the unified ideograph
        assert_eq!(f('\u{F900}'), "岂");
    }

    #[test]
    fn base_table_matches_fold_char() {
        let base = base_fold();
        for c in ['a', 'Ａ', 'ﬁ', '國', '①', 'é', '\u{200B}'] {
            let e = base.entries[c as usize];
            let got: Vec<char> = if e == NOISE {
                vec![]
            } else if e & MANY != 0 && e != NOISE {
                let off = (e & 0x00FF_FFFF) as usize;
                let len = ((e >> 24) & 0x7F) as usize;
                base.pool[off..off + len].to_vec()
            } else {
                vec![char::from_u32(e).unwrap()]
            };
            assert_eq!(got, fold_char(c).as_slice(), "{c:?}");
        }
    }
}
