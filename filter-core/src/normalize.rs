//! One-pass normalization with a map back to the original byte offsets.
//!
//! Every character of the input is folded (see [`crate::fold`]) through a per-options table:
//! noise characters and characters outside the charset are dropped, and with repeated-character
//! collapse on, a character equal to the previously emitted one is dropped too. The result is the
//! normalized UTF-8 text that the automaton scans, plus an [offset map](Normalized::original_range)
//! made of segments:
//!
//! - a *linear* segment is a run of characters whose folded form has the same byte length as the
//!   original with nothing dropped in between (`Hello` → `hello`, `國家` → `国家`): normalized byte
//!   `n` maps to `orig + (n - norm)`;
//! - an *expansion* segment is one original character whose fold has another length (`Ａ` → `a`,
//!   `ﬁ` → `fi`): every normalized byte in it maps to that whole original character.
//!
//! Plain ASCII and CJK text therefore costs one segment per skipped character, not one entry per
//! byte, and mapping a hit back is a binary search.

use std::ops::Range;

use crate::fold::{Folded, MANY, NOISE, base_fold, encode_entry, fold_char};
use crate::options::Options;

/// A fold table specialised for one [`Options`] (noise set and charset applied).
pub(crate) struct Table {
    ascii: [u8; 128],
    entries: Vec<u32>,
    pool: Vec<char>,
    options: Options,
    /// what the detectors' quick look passes over: a function of this table, made once
    plain: std::sync::OnceLock<crate::detect::Plain>,
}

impl std::fmt::Debug for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Table")
            .field("entries", &self.entries.len())
            .field("pool", &self.pool.len())
            .field("options", &self.options)
            .finish()
    }
}

/// What one original character contributes to the normalized text.
pub(crate) enum Unit<'a> {
    Skip,
    One(char),
    Many(&'a [char]),
}

impl Table {
    /// Derives the table for `options` from the shared base table (well under a millisecond
    /// once the base exists).
    pub(crate) fn new(options: &Options) -> Table {
        let base = base_fold();
        let mut entries = Vec::with_capacity(base.entries.len());
        let mut pool = Vec::new();
        let mut tmp = Vec::with_capacity(18);
        for (u, &e) in base.entries.iter().enumerate() {
            let Some(orig) = char::from_u32(u as u32) else {
                entries.push(NOISE);
                continue;
            };
            if options.outside_charset(orig) {
                entries.push(NOISE);
                continue;
            }
            tmp.clear();
            if e == NOISE {
            } else if e & MANY != 0 {
                let (off, len) = ((e & 0x00FF_FFFF) as usize, ((e >> 24) & 0x7F) as usize);
                tmp.extend_from_slice(&base.pool[off..off + len]);
            } else if let Some(c) = char::from_u32(e) {
                tmp.push(c);
            }
            tmp.retain(|&c| !options.noise.contains_folded(c));
            entries.push(encode_entry(&tmp, &mut pool));
        }
        let mut ascii = [0u8; 128];
        for (b, slot) in ascii.iter_mut().enumerate() {
            let e = entries[b];
            if e != NOISE && e < 128 {
                *slot = e as u8;
            }
        }
        // ASCII folds to ASCII or to nothing; NUL is invisible noise, so 0 can mean "skip".
        Table {
            ascii,
            entries,
            pool,
            options: options.clone(),
            plain: std::sync::OnceLock::new(),
        }
    }

    /// What the ASCII byte `b` folds to; 0 when it is skipped (ASCII never expands).
    #[inline]
    pub(crate) fn ascii_fold(&self, b: u8) -> u8 {
        self.ascii[usize::from(b & 0x7F)]
    }

    pub(crate) fn options(&self) -> &Options {
        &self.options
    }

    /// Whether matching skips `c` (noise, or outside the charset): [`Self::unit`] is
    /// [`Unit::Skip`], read from the tables without a scratch buffer below U+10000.
    #[inline]
    pub(crate) fn skips(&self, c: char) -> bool {
        let u = c as u32;
        if u < 0x80 {
            self.ascii[u as usize] == 0
        } else if u < 0x10000 {
            self.entries[u as usize] == NOISE
        } else {
            matches!(self.unit(c, &mut Folded::new()), Unit::Skip)
        }
    }

    /// The characters the detectors' quick look passes over with this table, made at the first
    /// call (a dictionary build makes it, off the request path).
    pub(crate) fn plain(&self) -> &crate::detect::Plain {
        self.plain.get_or_init(|| crate::detect::Plain::new(self))
    }

    /// The contribution of `c`; `scratch` holds the result for astral characters.
    #[inline]
    pub(crate) fn unit<'a>(&'a self, c: char, scratch: &'a mut Folded) -> Unit<'a> {
        let u = c as u32;
        if u < 0x80 {
            // ASCII folds to ASCII or to nothing (0 in `ascii`).
            let f = self.ascii[u as usize];
            return if f == 0 {
                Unit::Skip
            } else {
                Unit::One(char::from(f))
            };
        }
        if u < 0x10000 {
            let e = self.entries[u as usize];
            if e == NOISE {
                Unit::Skip
            } else if e & MANY != 0 {
                let (off, len) = ((e & 0x00FF_FFFF) as usize, ((e >> 24) & 0x7F) as usize);
                Unit::Many(&self.pool[off..off + len])
            } else {
                // Entries below MANY are valid chars by construction.
                Unit::One(char::from_u32(e).unwrap_or(c))
            }
        } else {
            if self.options.outside_charset(c) {
                return Unit::Skip;
            }
            *scratch = Folded::new();
            for &x in fold_char(c).as_slice() {
                if !self.options.noise.contains_folded(x) {
                    scratch.push(x);
                }
            }
            match scratch.as_slice() {
                [] => Unit::Skip,
                [one] => Unit::One(*one),
                many => Unit::Many(many),
            }
        }
    }

    /// Normalizes `text` (at most [`MAX_WINDOW`] bytes) into `out`.
    ///
    /// The output buffer is kept at least `remaining input + SLACK` bytes longer than what is
    /// written, so the ASCII path (one byte out per byte in, at most) writes by index without
    /// growing; the non-ASCII path re-establishes the margin before writing an expansion.
    pub(crate) fn normalize_into(&self, text: &str, out: &mut Normalized) {
        const SLACK: usize = 80; // > the longest expansion (18 chars x 4 bytes)
        debug_assert!(text.len() <= MAX_WINDOW);
        let bytes = text.as_bytes();
        let buf = &mut out.text;
        let segs = &mut out.segs;
        buf.clear();
        segs.clear();
        buf.resize(bytes.len() + SLACK, 0);
        let collapse = self.options.collapse_repeats;
        let ascii = &self.ascii;
        let mut scratch = Folded::new();
        let mut last = u32::MAX; // last emitted char
        let mut n = 0usize; // bytes written
        let mut seg_pending = true; // the next emitted char starts a new linear segment
        let mut i = 0usize;
        while i < bytes.len() {
            // A run of ASCII (most of most lines): its end found eight bytes at a time, then a
            // loop over the run alone into a slice of the run's length (the buffer always has
            // room for what is left of the input at one byte a byte; see `need` below).
            if bytes[i].is_ascii() {
                let run = ascii_run(&bytes[i..]);
                let src = &bytes[i..i + run];
                let dst = &mut buf[n..n + run];
                let state = (&mut *segs, &mut seg_pending, &mut last);
                let m = if collapse {
                    ascii_run_into::<true>(ascii, src, dst, state, (n, i))
                } else {
                    ascii_run_into::<false>(ascii, src, dst, state, (n, i))
                };
                n += m;
                i += run;
            }
            if i >= bytes.len() {
                break;
            }
            // A run of three-byte chars (CJK) folding to three-byte chars, in a loop of its
            // own like ASCII's; it stops at the first other char, which the general path below
            // takes.
            if (0xE0..0xF0).contains(&bytes[i]) {
                let (m, used) = three_byte_run(
                    &self.entries,
                    &bytes[i..],
                    &mut buf[n..],
                    (segs, &mut seg_pending, &mut last),
                    collapse,
                    (n, i),
                );
                n += m;
                i += used;
                if used > 0 {
                    continue;
                }
            }
            let (u, len) = decode(bytes, i);
            let need = n + SLACK + (bytes.len() - i);
            if buf.len() < need {
                buf.resize(need + (need >> 2), 0);
            }
            // The common case (CJK, accented letters): a BMP char that folds to one char, read
            // from the table here rather than through `unit`, and copied as written when it
            // folds to itself. Noise and expansions have the `MANY` bit.
            let e = if u < 0x10000 {
                self.entries[u as usize]
            } else {
                MANY
            };
            if e & MANY == 0 {
                if collapse && e == last {
                    seg_pending = true;
                } else {
                    last = e;
                    let flen = match e {
                        0..0x80 => 1,
                        0x80..0x800 => 2,
                        _ => 3,
                    };
                    note_one(segs, &mut seg_pending, n, i, flen == len);
                    if e == u {
                        // Two or three bytes, each a copy of a fixed length: a slice copy of a
                        // length unknown here would call memcpy.
                        if len == 2 {
                            buf[n..n + 2].copy_from_slice(&bytes[i..i + 2]);
                        } else {
                            buf[n..n + 3].copy_from_slice(&bytes[i..i + 3]);
                        }
                    } else {
                        // Entries below MANY are chars by construction (and the replacement
                        // character has the length a surrogate would).
                        char::from_u32(e)
                            .unwrap_or(char::REPLACEMENT_CHARACTER)
                            .encode_utf8(&mut buf[n..n + 4]);
                    }
                    n += flen;
                }
                i += len;
                continue;
            }
            let c = char::from_u32(u).unwrap_or('\u{FFFD}');
            match self.unit(c, &mut scratch) {
                Unit::Skip => seg_pending = true,
                Unit::One(f) => {
                    if !(collapse && f as u32 == last) {
                        last = f as u32;
                        note_one(segs, &mut seg_pending, n, i, f.len_utf8() == len);
                        n += f.encode_utf8(&mut buf[n..n + 4]).len();
                    } else {
                        seg_pending = true;
                    }
                }
                Unit::Many(fs) => {
                    let start = n;
                    for &f in fs {
                        if !(collapse && f as u32 == last) {
                            last = f as u32;
                            n += f.encode_utf8(&mut buf[n..n + 4]).len();
                        }
                    }
                    if n > start {
                        segs.push(Seg::expansion(start, i));
                    }
                    seg_pending = true;
                }
            }
            i += len;
        }
        buf.truncate(n);
    }
}

/// Notes the segment of one normalized char written at `n` for the original char at `i`: one
/// of the same length extends the current linear segment (or starts one after a skip), any
/// other is an expansion segment of its own.
#[inline(always)]
fn note_one(segs: &mut Vec<Seg>, seg_pending: &mut bool, n: usize, i: usize, same_len: bool) {
    if same_len {
        if *seg_pending {
            segs.push(Seg::linear(n, i));
            *seg_pending = false;
        }
    } else {
        segs.push(Seg::expansion(n, i));
        *seg_pending = true;
    }
}

/// Folds the ASCII run `src` (at original offset `i`) into `dst` (at normalized offset `n`, at
/// least as long as `src`), noting its segments; returns the bytes written. A byte is kept when
/// it folds to something and, with `COLLAPSE`, differs from the last kept char (`prev` stays 0
/// without collapse, which no kept byte equals).
#[inline(always)]
fn ascii_run_into<const COLLAPSE: bool>(
    ascii: &[u8; 128],
    src: &[u8],
    dst: &mut [u8],
    (segs, seg_pending, last): (&mut Vec<Seg>, &mut bool, &mut u32),
    (n, i): (usize, usize),
) -> usize {
    // a last char outside ASCII equals no byte of the run
    let mut prev = if COLLAPSE && *last < 0x80 {
        *last as u8
    } else {
        0
    };
    let mut pending = *seg_pending;
    let mut m = 0;
    for (k, &b) in src.iter().enumerate() {
        let f = ascii[usize::from(b & 0x7F)];
        if let Some(slot) = dst.get_mut(m) {
            *slot = f;
        }
        if f != 0 && f != prev {
            if pending {
                segs.push(Seg::linear(n + m, i + k));
                pending = false;
            }
            if COLLAPSE {
                prev = f;
            }
            m += 1;
        } else {
            pending = true;
        }
    }
    *seg_pending = pending;
    if COLLAPSE && m > 0 {
        *last = u32::from(prev);
    }
    m
}

/// Folds the leading run of three-byte chars of `src` (at original offset `i`) that fold to
/// three-byte chars into `dst` (at normalized offset `n`, at least as long as `src`), noting
/// their segments (linear, as the lengths agree) and collapsing repeats with `collapse`;
/// returns the bytes written and the bytes read.
#[inline(always)]
fn three_byte_run(
    entries: &[u32],
    src: &[u8],
    dst: &mut [u8],
    (segs, seg_pending, last): (&mut Vec<Seg>, &mut bool, &mut u32),
    collapse: bool,
    (n, i): (usize, usize),
) -> (usize, usize) {
    let (mut k, mut m) = (0, 0);
    while let [b0 @ 0xE0..=0xEF, b1, b2, ..] = src[k..] {
        // valid UTF-8 (from a `str`): a lead byte and two continuation bytes
        let u = (u32::from(b0 & 0x0F) << 12) | (u32::from(b1 & 0x3F) << 6) | u32::from(b2 & 0x3F);
        let e = entries.get(u as usize).copied().unwrap_or(MANY);
        if e & MANY != 0 || !(0x800..0x10000).contains(&e) {
            break; // noise, an expansion, or a fold of another length
        }
        if collapse && e == *last {
            *seg_pending = true;
        } else {
            let Some(out) = dst.get_mut(m..m + 3) else {
                break; // never: `dst` is as long as `src`
            };
            if *seg_pending {
                segs.push(Seg::linear(n + m, i + k));
                *seg_pending = false;
            }
            if e == u {
                out.copy_from_slice(&[b0, b1, b2]);
            } else {
                // `e` is a char below 0x10000 and not a surrogate (entries are chars), written
                // as its three bytes: `char::encode_utf8` branches on the length again (zh's
                // count rose by 2% with it)
                out.copy_from_slice(&[
                    0xE0 | (e >> 12) as u8,
                    0x80 | ((e >> 6) & 0x3F) as u8,
                    0x80 | (e & 0x3F) as u8,
                ]);
            }
            *last = e;
            m += 3;
        }
        k += 3;
    }
    (m, k)
}

/// The length of the run of ASCII bytes that `bytes` starts with.
#[inline]
fn ascii_run(bytes: &[u8]) -> usize {
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let mut words = bytes.chunks_exact(8);
    let mut run = 0;
    for w in words.by_ref() {
        let high = u64::from_le_bytes(w.try_into().unwrap_or([0x80; 8])) & HIGH;
        if high != 0 {
            // the first byte with its high bit set, counted from the low (first) end
            return run + (high.trailing_zeros() / 8) as usize;
        }
        run += 8;
    }
    run + words
        .remainder()
        .iter()
        .position(|b| !b.is_ascii())
        .unwrap_or(words.remainder().len())
}

/// Decodes the char starting at `bytes[i]` (valid UTF-8 from a `str`, first byte >= 0x80)
/// into its scalar value and length.
#[inline]
fn decode(bytes: &[u8], i: usize) -> (u32, usize) {
    let b = bytes[i] as u32;
    let cont = |k: usize| (bytes.get(i + k).copied().unwrap_or(0x80) & 0x3F) as u32;
    let (u, len) = if b < 0xE0 {
        (((b & 0x1F) << 6) | cont(1), 2)
    } else if b < 0xF0 {
        (((b & 0x0F) << 12) | (cont(1) << 6) | cont(2), 3)
    } else {
        (
            ((b & 0x07) << 18) | (cont(1) << 12) | (cont(2) << 6) | cont(3),
            4,
        )
    };
    (u, len)
}

/// The largest input normalized in one piece (longer inputs are checked in windows of this size;
/// a hit spanning two windows is not found). Expansions can make normalized text up to ~11x
/// longer than the original, which must stay below 2^31.
pub(crate) const MAX_WINDOW: usize = 128 << 20;

/// One entry of the offset map.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Seg {
    /// normalized byte offset; the high bit marks an expansion segment
    norm: u32,
    /// original byte offset
    orig: u32,
}

const EXPANSION: u32 = 1 << 31;

impl Seg {
    fn linear(norm: usize, orig: usize) -> Seg {
        Seg {
            norm: norm as u32,
            orig: orig as u32,
        }
    }
    fn expansion(norm: usize, orig: usize) -> Seg {
        Seg {
            norm: norm as u32 | EXPANSION,
            orig: orig as u32,
        }
    }
    fn norm(self) -> usize {
        (self.norm & !EXPANSION) as usize
    }
    fn is_expansion(self) -> bool {
        self.norm & EXPANSION != 0
    }
    /// Original offset of the normalized char at byte `n` of this segment.
    #[inline]
    fn orig_start(self, n: usize) -> usize {
        if self.is_expansion() {
            self.orig as usize
        } else {
            self.orig as usize + (n - self.norm())
        }
    }
    /// Original offset just past the normalized char ending at byte `n` of this segment.
    #[inline]
    fn orig_end(self, original: &str, n: usize) -> usize {
        let o = self.orig as usize;
        if self.is_expansion() {
            o + original[o..].chars().next().map_or(0, char::len_utf8)
        } else {
            o + (n - self.norm())
        }
    }
}

/// Normalized text and its map back to the original text's byte offsets.
#[derive(Clone, Debug, Default)]
pub struct Normalized {
    pub(crate) text: Vec<u8>,
    pub(crate) segs: Vec<Seg>,
}

impl Normalized {
    /// The normalized text.
    pub fn as_str(&self) -> &str {
        // Only whole UTF-8 encodings of chars are ever pushed.
        std::str::from_utf8(&self.text).unwrap_or("")
    }

    /// The normalized bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.text
    }

    /// Maps a byte range of the normalized text (on char boundaries) to the byte range of the
    /// original text it came from. The result is always on char boundaries of the original.
    /// `original` must be the text this was normalized from.
    pub fn original_range(&self, original: &str, range: Range<usize>) -> Range<usize> {
        // a range past the end is read as ending there
        let len = self.text.len();
        let range = range.start.min(len)..range.end.min(len);
        if self.segs.is_empty() || range.start >= range.end {
            let at = self.orig_start(original, range.start.min(self.text.len()));
            return at..at;
        }
        let s = self.orig_start(original, range.start);
        let e = self.orig_end(original, range.end);
        s..e.max(s)
    }

    /// Original offset of the normalized char starting at byte `n`.
    pub(crate) fn orig_start(&self, original: &str, n: usize) -> usize {
        if n >= self.text.len() {
            return original.len();
        }
        let idx = self
            .segs
            .partition_point(|s| s.norm() <= n)
            .saturating_sub(1);
        self.segs[idx].orig_start(n)
    }

    /// `(orig_start(start), orig_end(end))` of a match `start..end` (`start < end`, within the
    /// text), found from `hint`, the segment of the previous match's end, and left there for the
    /// next. A scan's matches come in order of their ends, so the end's segment is a step or two
    /// on from the last one and the start's a few back from the end's (at most one per byte of
    /// the match), where bisecting the segments costs a search per offset.
    #[inline]
    pub(crate) fn orig_range_near(
        &self,
        original: &str,
        start: usize,
        end: usize,
        hint: &mut usize,
    ) -> (usize, usize) {
        let segs = &self.segs;
        if segs.is_empty() || start >= end || end > self.text.len() {
            return (
                self.orig_start(original, start),
                self.orig_end(original, end),
            );
        }
        // The last segment starting before `end`: `orig_end`'s.
        let mut e = (*hint).min(segs.len() - 1);
        while e > 0 && segs[e].norm() >= end {
            e -= 1;
        }
        while e + 1 < segs.len() && segs[e + 1].norm() < end {
            e += 1;
        }
        *hint = e;
        // The last segment starting at or before `start` (`orig_start`'s), which is `e` or
        // before it.
        let mut s = e;
        while s > 0 && segs[s].norm() > start {
            s -= 1;
        }
        (segs[s].orig_start(start), segs[e].orig_end(original, end))
    }

    /// Original offset just past the normalized char ending at byte `n` (exclusive end).
    pub(crate) fn orig_end(&self, original: &str, n: usize) -> usize {
        if n == 0 || self.segs.is_empty() {
            return 0;
        }
        let idx = self
            .segs
            .partition_point(|s| s.norm() < n)
            .saturating_sub(1);
        self.segs[idx].orig_end(original, n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::{Charset, NoiseSet};

    fn norm(opts: &Options, s: &str) -> Normalized {
        let t = Table::new(opts);
        let mut n = Normalized::default();
        t.normalize_into(s, &mut n);
        n
    }

    /// Every normalized char maps back to the original chars it came from.
    fn pieces(opts: &Options, s: &str) -> Vec<(String, String)> {
        let n = norm(opts, s);
        n.as_str()
            .char_indices()
            .map(|(i, c)| {
                let r = n.original_range(s, i..i + c.len_utf8());
                (c.to_string(), s[r].to_string())
            })
            .collect()
    }

    #[test]
    fn ascii_lowercase_is_one_segment() {
        let n = norm(&Options::default(), "HeLLo");
        assert_eq!(n.as_str(), "helo");
        let n = norm(&Options::default().collapse_repeats(false), "HeLLo");
        assert_eq!(n.as_str(), "hello");
        assert_eq!(n.segs.len(), 1);
        assert_eq!(n.original_range("HeLLo", 1..4), 1..4);
    }

    #[test]
    fn noise_is_skipped_and_mapped() {
        let s = "f*u c.k";
        let n = norm(&Options::default(), s);
        assert_eq!(n.as_str(), "fuck");
        assert_eq!(n.original_range(s, 0..4), 0..7);
        assert_eq!(n.original_range(s, 1..3), 2..5);
        let p = pieces(&Options::default(), "傻*逼");
        assert_eq!(
            p,
            vec![("傻".into(), "傻".into()), ("逼".into(), "逼".into())]
        );
    }

    #[test]
    fn full_width_and_styled_map_to_whole_chars() {
        let s = "ＦＵ𝐜𝐤";
        let p = pieces(&Options::default(), s);
        let want: Vec<(String, String)> = [("f", "Ｆ"), ("u", "Ｕ"), ("c", "𝐜"), ("k", "𝐤")]
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        assert_eq!(p, want);
        let n = norm(&Options::default(), s);
        assert_eq!(n.original_range(s, 0..4), 0..s.len());
    }

    #[test]
    fn expansion_maps_to_the_one_char() {
        let s = "ﬁne ⑩";
        let n = norm(&Options::default(), s);
        assert_eq!(n.as_str(), "fine10");
        // "i" is inside the ligature: it maps to the whole ligature
        assert_eq!(n.original_range(s, 1..2), 0..3);
        assert_eq!(n.original_range(s, 2..4), 3..5);
        assert_eq!(n.original_range(s, 4..5), 6..9);
    }

    #[test]
    fn traditional_case_and_emoji() {
        let s = "國家😀Ab";
        let n = norm(&Options::default(), s);
        assert_eq!(n.as_str(), "国家ab");
        assert_eq!(n.original_range(s, 0..6), 0..6);
        assert_eq!(n.original_range(s, 6..8), 10..12);
    }

    #[test]
    fn collapse_keeps_first_of_run() {
        let s = "fuuuuck";
        let n = norm(&Options::default(), s);
        assert_eq!(n.as_str(), "fuck");
        assert_eq!(n.original_range(s, 2..3), 5..6);
        assert_eq!(n.original_range(s, 0..2), 0..2);
    }

    #[test]
    fn charset_strips() {
        let opts = Options::default()
            .charset(Some(Charset::common()))
            .noise(NoiseSet::none());
        let n = norm(&opts, "a\u{5D0}b😀c");
        assert_eq!(n.as_str(), "abc");
    }

    #[test]
    fn no_noise_keeps_spaces() {
        let n = norm(&Options::default().noise(NoiseSet::none()), "a b");
        assert_eq!(n.as_str(), "a b");
    }

    #[test]
    fn empty_and_all_noise() {
        let n = norm(&Options::default(), "");
        assert_eq!(n.as_str(), "");
        assert_eq!(n.original_range("", 0..0), 0..0);
        let n = norm(&Options::default(), " * ");
        assert_eq!(n.as_str(), "");
    }

    #[test]
    fn a_range_found_from_a_hint_is_the_range_found_by_bisecting() {
        let opts = Options::default();
        for s in [
            "Ｈｅｌｌｏ, w*o r l d! ﬁne 國家 sh1t",
            "a",
            "ＡＢ  c..d ﬁ",
            "aaa bbb a",
        ] {
            let n = norm(&opts, s);
            let ends: Vec<usize> = (1..=n.text.len())
                .filter(|&i| n.as_str().is_char_boundary(i))
                .collect();
            let starts: Vec<usize> = (0..n.text.len())
                .filter(|&i| n.as_str().is_char_boundary(i))
                .collect();
            // every hint, including stale ones from far ahead or behind
            for hint in 0..=n.segs.len() + 1 {
                for &start in &starts {
                    for &end in ends.iter().filter(|&&e| e > start) {
                        let mut h = hint;
                        assert_eq!(
                            n.orig_range_near(s, start, end, &mut h),
                            (n.orig_start(s, start), n.orig_end(s, end)),
                            "{s:?} {start}..{end} from segment {hint}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn an_ascii_run_ends_at_the_first_byte_with_its_high_bit_set() {
        for len in 0..=20 {
            let mut bytes = vec![b'a'; len];
            assert_eq!(ascii_run(&bytes), len);
            for at in 0..len {
                bytes[at] = 0xE5;
                assert_eq!(ascii_run(&bytes), at, "{len} bytes, high at {at}");
                bytes[at] = b'a';
            }
        }
    }

    /// Normalization char by char through `Table::unit`, as the definition reads: each
    /// normalized char and the original range it maps to.
    fn by_unit(t: &Table, s: &str) -> Vec<(char, Range<usize>)> {
        let (mut out, mut last) = (Vec::new(), None);
        let collapse = t.options().collapse_repeats;
        let mut scratch = Folded::new();
        for (i, c) in s.char_indices() {
            let folded: Vec<char> = match t.unit(c, &mut scratch) {
                Unit::Skip => Vec::new(),
                Unit::One(f) => vec![f],
                Unit::Many(fs) => fs.to_vec(),
            };
            for f in folded {
                if !(collapse && last == Some(f)) {
                    out.push((f, i..i + c.len_utf8()));
                    last = Some(f);
                }
            }
        }
        out
    }

    #[test]
    fn the_fast_paths_normalize_as_char_by_char_folding_does() {
        // runs of ASCII of every length around the eight-byte steps, between CJK, noise,
        // repeats, upper case, expansions and emoji
        let pieces = [
            "a",
            "B",
            "bb",
            "Hello",
            "oO",
            " ",
            "*",
            "1",
            "國",
            "家",
            "ﬁ",
            "Ａ",
            "😀",
            "ab cd",
            "xyzxyzxyz",
            "!!",
            "\u{200B}",
            "é",
            "家家",
            "國國",
            "国",
            "ｷ",
            "\u{3000}",
        ];
        let mut next = crate::testing::picker(0x9E37_79B9_7F4A_7C15u64);
        for opts in [
            Options::default(),
            Options::default().collapse_repeats(false),
            Options::default().noise(NoiseSet::none()),
        ] {
            let t = Table::new(&opts);
            let mut n = Normalized::default();
            for _ in 0..3000 {
                let s: String = (0..next(12)).map(|_| pieces[next(pieces.len())]).collect();
                t.normalize_into(&s, &mut n);
                let fast: Vec<(char, Range<usize>)> = n
                    .as_str()
                    .char_indices()
                    .map(|(i, c)| (c, n.original_range(&s, i..i + c.len_utf8())))
                    .collect();
                assert_eq!(fast, by_unit(&t, &s), "{s:?} with {opts:?}");
            }
        }
    }
}
