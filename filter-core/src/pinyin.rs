//! Pinyin readings of listed Chinese words (lists with [`ListSource::pinyin`] on).
//!
//! A listed word of two or more characters, at least one of them a Chinese character with a
//! reading, gets one extra entry for every way of writing some or all of its characters in
//! toneless Hanyu Pinyin, with every reading the `pinyin` crate (heteronyms) gives each
//! character: `傻逼` → `sha bi`, `傻 bi`, `sha 逼`. Syllables are separated by a space in the
//! entry, so the text may join them (`shabi`), space them (`sha bi`) or put noise between them
//! (`sha-bi`); tone marks fold away with the other accents and tone numbers are read as noise
//! (`sha3 bi1`), see [`crate::leet::tone_copy`]. `ü` is also written `v` (`lv`). Initials
//! (`sb`) are never derived.
//!
//! [`ListSource::pinyin`]: crate::ListSource::pinyin

use std::collections::HashSet;
use std::sync::OnceLock;

use pinyin::ToPinyinMulti;

/// At most this many spellings per listed word (a long word of polyphonic characters would
/// otherwise multiply without bound).
pub(crate) const MAX_SPELLINGS: usize = 64;

/// Words up to this many characters also get the spellings that mix characters and pinyin
/// (`傻bi`); longer ones only the all-pinyin spellings, which keeps a 14k-word list with pinyin
/// at a few spellings per word.
pub(crate) const MAX_MIXED_CHARS: usize = 4;

/// The toneless readings of `c`, `ü` also as `v`; empty when `c` has none.
fn readings(c: char) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    if let Some(multi) = c.to_pinyin_multi() {
        for p in multi {
            let plain = p.plain();
            for r in [plain.replace('ü', "u"), plain.replace('ü', "v")] {
                if !r.is_empty() && !out.contains(&r) {
                    out.push(r);
                }
            }
        }
    }
    out
}

/// The pinyin spellings of `word` (each different from the word itself), syllables and
/// characters separated by spaces; empty when the word has fewer than two characters or no
/// character with a reading.
pub(crate) fn spellings(word: &str) -> Vec<String> {
    let chars: Vec<char> = word.chars().filter(|c| !c.is_whitespace()).collect();
    if chars.len() < 2 {
        return Vec::new();
    }
    let mixed = chars.len() <= MAX_MIXED_CHARS;
    let options: Vec<Vec<String>> = chars
        .iter()
        .map(|&c| {
            let r = readings(c);
            let mut o = Vec::with_capacity(r.len() + 1);
            if mixed || r.is_empty() {
                o.push(c.to_string());
            }
            o.extend(r);
            o
        })
        .collect();
    if options
        .iter()
        .zip(&chars)
        .all(|(o, c)| o.len() == 1 && o[0] == c.to_string())
    {
        return Vec::new();
    }
    if !mixed {
        // all pinyin: the first combination is a spelling too
        let mut out = vec![first_spelling(&options)];
        product(&options, &mut out);
        return out;
    }
    let mut out = Vec::new();
    product(&options, &mut out);
    out
}

fn first_spelling(options: &[Vec<String>]) -> String {
    options
        .iter()
        .map(|o| o[0].as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Every combination of `options` after the first (odometer order), up to [`MAX_SPELLINGS`].
fn product(options: &[Vec<String>], out: &mut Vec<String>) {
    let mut idx = vec![0usize; options.len()];
    loop {
        // next combination (odometer); the all-zero one is the word itself
        let mut k = 0;
        while k < idx.len() {
            idx[k] += 1;
            if idx[k] < options[k].len() {
                break;
            }
            idx[k] = 0;
            k += 1;
        }
        if k == idx.len() || out.len() >= MAX_SPELLINGS {
            break;
        }
        let parts: Vec<&str> = idx
            .iter()
            .zip(options)
            .map(|(&i, o)| o[i].as_str())
            .collect();
        out.push(parts.join(" "));
    }
}

/// Whether the hit `text` is only ASCII letters and spaces and every space-separated piece is a
/// common English word: a pinyin spelling of Latin letters does not match it.
pub(crate) fn english_words(text: &str) -> bool {
    static SET: OnceLock<HashSet<&'static str>> = OnceLock::new();
    let set = SET.get_or_init(|| {
        crate::builtin::PINYIN_ENGLISH
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect()
    });
    if !text.bytes().all(|b| b.is_ascii_alphabetic() || b == b' ') {
        return false;
    }
    let mut buf = String::new();
    text.split(' ').filter(|p| !p.is_empty()).all(|p| {
        buf.clear();
        buf.extend(p.chars().map(|c| c.to_ascii_lowercase()));
        set.contains(buf.as_str())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_mix_of_characters_and_readings() {
        let s = spellings("傻逼");
        assert!(s.contains(&"sha bi".to_string()), "{s:?}");
        assert!(s.contains(&"傻 bi".to_string()), "{s:?}");
        assert!(s.contains(&"sha 逼".to_string()), "{s:?}");
        assert!(!s.contains(&"傻 逼".to_string()));
        // polyphonic: 的 reads de, di
        let s = spellings("你妈的");
        assert!(s.contains(&"ni ma de".to_string()), "{s:?}");
        assert!(s.contains(&"ni ma di".to_string()), "{s:?}");
        assert!(spellings("逼").is_empty());
        assert!(spellings("ab").is_empty());
        assert!(readings('绿').contains(&"lv".to_string()));
        // long words: pinyin only, every reading
        let s = spellings("海洛因海洛因");
        assert!(s.contains(&"hai luo yin hai luo yin".to_string()), "{s:?}");
        assert!(s.iter().all(|x| x.is_ascii()), "{s:?}");
    }
}
