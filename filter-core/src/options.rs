//! Engine options: noise characters, charset allow-list, repeated-character collapse, masks,
//! contact detectors.

use crate::Level;
use crate::detect::Detectors;

/// Which characters are noise: skipped between the characters of a word (`f*u*c*k`, `傻 逼`).
///
/// A character is noise when it (or what it folds to, e.g. full-width `＊` → `*`) is in the
/// explicit set, or belongs to an enabled class: Unicode whitespace, invisible characters
/// (zero-width spaces and joiners, direction marks, soft hyphen, variation selectors, tags,
/// combining diacritics used for "Zalgo" text, control characters), or emoji and pictographs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoiseSet {
    chars: Vec<char>,
    whitespace: bool,
    invisible: bool,
    emoji: bool,
}

/// The default explicit noise characters (their full-width forms fold onto these).
pub const DEFAULT_NOISE_CHARS: &str = "*._|-@·・•‧∙⋅~^–—";

impl Default for NoiseSet {
    fn default() -> Self {
        NoiseSet {
            chars: Vec::new(),
            whitespace: true,
            invisible: true,
            emoji: true,
        }
        .with_chars(DEFAULT_NOISE_CHARS)
    }
}

impl NoiseSet {
    /// No noise at all: every character takes part in matching.
    pub fn none() -> Self {
        NoiseSet {
            chars: Vec::new(),
            whitespace: false,
            invisible: false,
            emoji: false,
        }
    }

    /// Adds explicit noise characters (each is also folded, so `＊` adds `*`). A letter or a
    /// digit is a mistake (every entry would lose it): building an engine with it fails with
    /// [`LoadError::Invalid`](crate::LoadError::Invalid).
    pub fn with_chars(mut self, chars: &str) -> Self {
        for c in chars.chars() {
            self.chars.push(c);
            for f in crate::fold::fold_char(c).as_slice() {
                self.chars.push(*f);
            }
        }
        self.chars.sort_unstable();
        self.chars.dedup();
        self
    }

    /// Replaces the explicit noise characters.
    pub fn chars(mut self, chars: &str) -> Self {
        self.chars.clear();
        self.with_chars(chars)
    }

    /// Whether Unicode whitespace is noise (default: yes).
    pub fn whitespace(mut self, yes: bool) -> Self {
        self.whitespace = yes;
        self
    }

    /// Whether invisible characters are noise (default: yes).
    pub fn invisible(mut self, yes: bool) -> Self {
        self.invisible = yes;
        self
    }

    /// Whether emoji and pictographs are noise (default: yes).
    pub fn emoji(mut self, yes: bool) -> Self {
        self.emoji = yes;
        self
    }

    /// Whether `c` is noise: it, or everything it folds to (`＊` → `*`), is noise.
    pub fn contains(&self, c: char) -> bool {
        self.contains_folded(c)
            || crate::fold::fold_char(c)
                .as_slice()
                .iter()
                .all(|&f| self.contains_folded(f))
    }

    /// Whether the already folded character `c` is noise.
    pub(crate) fn contains_folded(&self, c: char) -> bool {
        (self.whitespace && c.is_whitespace())
            || (self.invisible && is_invisible(c))
            || (self.emoji && is_emoji(c))
            || self.chars.binary_search(&c).is_ok()
    }
}

/// Zero-width, formatting and control characters, and free-standing combining diacritics.
pub(crate) fn is_invisible(c: char) -> bool {
    matches!(c as u32,
        0x00..=0x08 | 0x0E..=0x1F | 0x7F..=0x9F | 0xAD | 0x034F | 0x061C | 0x115F | 0x1160
        | 0x17B4 | 0x17B5 | 0x180B..=0x180F | 0x200B..=0x200F | 0x202A..=0x202E
        | 0x2060..=0x206F | 0x3164 | 0xFE00..=0xFE0F | 0xFEFF | 0xFFA0 | 0xFFF0..=0xFFFB
        | 0x1BCA0..=0x1BCA3 | 0x1D173..=0x1D17A | 0xE0000..=0xE0FFF
        // combining diacritics ("Zalgo" text, keycaps), Cyrillic's among them (`f\u{489}u`)
        | 0x0300..=0x036F | 0x0483..=0x0489 | 0xA670..=0xA672 | 0x1AB0..=0x1AFF | 0x1DC0..=0x1DFF
        | 0x20D0..=0x20FF | 0xFE20..=0xFE2F)
}

/// Emoji, pictographs and dingbats (approximate, by block).
pub(crate) fn is_emoji(c: char) -> bool {
    matches!(c as u32,
        0x2190..=0x21FF | 0x2300..=0x23FF | 0x2460..=0x24FF | 0x25A0..=0x27BF | 0x2900..=0x297F
        | 0x2B00..=0x2BFF | 0x3030 | 0x303D | 0x3297 | 0x3299
        | 0x1F000..=0x1FAFF | 0x1FC00..=0x1FFFD)
}

/// A charset allow-list: characters outside it are stripped from the masked text and skipped by
/// matching like noise.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Charset {
    ranges: Vec<(char, char)>,
    // ranges given end first: an engine built with them refuses to load, naming the first
    reversed: Option<(char, char)>,
}

impl Charset {
    /// A charset of the given inclusive ranges. A range that ends before it starts (`('z',
    /// 'a')`) is a mistake: building an engine with the charset fails with
    /// [`LoadError::Invalid`](crate::LoadError::Invalid) naming it.
    pub fn new(ranges: impl IntoIterator<Item = (char, char)>) -> Self {
        let (mut given, reversed): (Vec<_>, Vec<_>) = ranges.into_iter().partition(|(a, b)| a <= b);
        given.sort_unstable();
        // merged where they overlap, so the one range that can hold a char is the last one
        // starting at or before it (what `contains` looks at)
        let mut ranges: Vec<(char, char)> = Vec::with_capacity(given.len());
        for (a, b) in given {
            match ranges.last_mut() {
                Some((_, end)) if a <= *end => *end = (*end).max(b),
                _ => ranges.push((a, b)),
            }
        }
        Charset {
            ranges,
            reversed: reversed.first().copied(),
        }
    }

    /// Text people write in English and Chinese: ASCII (printable and whitespace), Latin-1 and
    /// Latin Extended letters, general punctuation, CJK symbols, kana, CJK ideographs
    /// (with Extension A and compatibility ideographs), Hangul syllables, full-width forms.
    /// Emoji, control characters and other scripts are outside.
    pub fn common() -> Self {
        Charset::new([
            ('\t', '\n'),
            ('\r', '\r'),
            (' ', '~'),
            ('\u{A0}', '\u{24F}'),
            ('\u{2000}', '\u{206F}'),
            ('\u{3000}', '\u{30FF}'),
            ('\u{3400}', '\u{4DBF}'),
            ('\u{4E00}', '\u{9FFF}'),
            ('\u{AC00}', '\u{D7AF}'),
            ('\u{F900}', '\u{FAFF}'),
            ('\u{FF00}', '\u{FFEF}'),
        ])
    }

    /// Whether `c` is allowed.
    pub fn contains(&self, c: char) -> bool {
        let i = self.ranges.partition_point(|&(a, _)| a <= c);
        i > 0 && c <= self.ranges[i - 1].1
    }
}

/// Why `options` cannot be built with, if they cannot.
pub(crate) fn invalid(options: &Options) -> Option<String> {
    if let Some((a, b)) = options.charset.as_ref().and_then(|c| c.reversed) {
        return Some(format!(
            "charset range {a:?}..={b:?} ends before it starts (give ({b:?}, {a:?}))"
        ));
    }
    if let Some(c) = options.noise.chars.iter().find(|c| c.is_alphanumeric()) {
        return Some(format!(
            "noise char {c:?} is a letter or digit: entries and texts would lose it (`fuck` \
             would be listed as `fuk` with `c`)"
        ));
    }
    options.detectors.invalid(&options.noise)
}

/// Options of an engine. `Options::default()` turns every normalization on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    pub(crate) noise: NoiseSet,
    pub(crate) charset: Option<Charset>,
    pub(crate) collapse_repeats: bool,
    pub(crate) mask_danger: char,
    pub(crate) mask_normal: char,
    pub(crate) detectors: Detectors,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            noise: NoiseSet::default(),
            charset: None,
            collapse_repeats: true,
            mask_danger: '*',
            mask_normal: '*',
            detectors: Detectors::new(),
        }
    }
}

impl Options {
    /// The noise characters (default: [`NoiseSet::default`]).
    pub fn noise(mut self, noise: NoiseSet) -> Self {
        self.noise = noise;
        self
    }

    /// A charset allow-list; characters outside it are stripped (default: none).
    pub fn charset(mut self, charset: Option<Charset>) -> Self {
        self.charset = charset;
        self
    }

    /// Whether runs of one character match a single one (`fuuuck` → `fuck`; default: on).
    /// A listed word's own doubled letters still have to be there (`as` never matches `ass`).
    pub fn collapse_repeats(mut self, yes: bool) -> Self {
        self.collapse_repeats = yes;
        self
    }

    /// The mask character for hits of `level` (default `*`).
    pub fn mask(mut self, level: Level, mask: char) -> Self {
        match level {
            Level::Danger => self.mask_danger = mask,
            Level::Normal => self.mask_normal = mask,
        }
        self
    }

    /// The contact and ad detectors (default: all off; see [`crate::detect`]).
    pub fn detectors(mut self, detectors: Detectors) -> Self {
        self.detectors = detectors;
        self
    }

    /// The mask character for hits of `level`.
    pub fn mask_for(&self, level: Level) -> char {
        match level {
            Level::Danger => self.mask_danger,
            Level::Normal => self.mask_normal,
        }
    }

    /// Whether the original character `c` is outside the charset allow-list.
    pub(crate) fn outside_charset(&self, c: char) -> bool {
        self.charset.as_ref().is_some_and(|cs| !cs.contains(c))
    }

    /// A stable fingerprint of the options that change results (part of the dictionary version).
    pub(crate) fn fingerprint(&self, h: &mut crate::dict::Fnv) {
        h.write_str(&format!("{self:?}"));
        // The `Debug` above counts the IM keywords without listing them.
        self.detectors.keywords_fingerprint(h);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_noise() {
        let n = NoiseSet::default();
        for c in [
            ' ', '\u{3000}', '*', '.', '_', '|', '-', '@', '·', '＊', '．', '＿', '｜', '－', '＠',
            '\u{200B}', '\u{200D}', '\u{FEFF}', '😀', '🍆', '❤', '\u{FE0F}', '\u{0334}',
        ] {
            assert!(n.contains(c), "{c:?} should be noise");
        }
        for c in ['a', '1', '傻', ',', '，', '!', '\''] {
            assert!(!n.contains(c), "{c:?} should not be noise");
        }
        assert!(!NoiseSet::none().contains(' '));
        assert!(NoiseSet::none().chars("#").contains('#'));
        assert!(!NoiseSet::default().emoji(false).contains('😀'));
        assert!(!NoiseSet::default().whitespace(false).contains(' '));
        assert!(!NoiseSet::default().invisible(false).contains('\u{200B}'));
    }

    #[test]
    fn charset_ranges() {
        let cs = Charset::common();
        assert!(cs.contains('a'));
        assert!(cs.contains('傻'));
        assert!(cs.contains('Ａ'));
        assert!(!cs.contains('😀'));
        assert!(!cs.contains('\u{1}'));
        assert!(!cs.contains('א'));
        let empty = Charset::new([]);
        assert!(!empty.contains('a'));
    }

    #[test]
    fn overlapping_charset_ranges_hold_every_char_of_each() {
        let nested = Charset::new([('a', 'z'), ('b', 'c')]);
        assert!(nested.contains('x') && nested.contains('b') && !nested.contains('{'));
        let chained = Charset::new([('a', 'f'), ('d', 'k'), ('j', 'p'), ('0', '9')]);
        assert!("0aejop".chars().all(|c| chained.contains(c)));
        assert!(!chained.contains('q') && !chained.contains('A'));
        assert_eq!(nested, Charset::new([('a', 'z')]));
    }
}
