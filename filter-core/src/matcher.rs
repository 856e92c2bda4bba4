//! The dictionary's automaton and its overlapping search, each match handed to a closure where
//! the search stands.
//!
//! aho-corasick's overlapping iterator leaves its search at every match and resumes it at the
//! next call (a saved state, a `Match` made and read back). English text has a match every few
//! bytes, most rejected at once, so the engine walks the automaton itself: about a fifth fewer
//! instructions for the search on English text. The walk is the crate's own (its transitions,
//! its prefilter at start states), so the matches are exactly the iterator's, in its order.

use std::sync::Arc;

use aho_corasick::automaton::Automaton;
use aho_corasick::nfa::{contiguous, noncontiguous};
use aho_corasick::{Anchored, BuildError, MatchKind, Span};

/// An automaton of a dictionary's keys, all matches reported (`MatchKind::Standard`).
#[derive(Clone, Debug)]
pub(crate) enum Matcher {
    /// aho-corasick's contiguous NFA: the compact and fast kind
    Contiguous(Arc<contiguous::NFA>),
    /// the noncontiguous NFA, for a set too big for the contiguous kind
    Noncontiguous(Arc<noncontiguous::NFA>),
}

impl Matcher {
    /// Builds the automaton of `keys` (pattern `i` is the `i`-th key).
    pub(crate) fn build<'a>(keys: impl IntoIterator<Item = &'a [u8]>) -> Result<Self, BuildError> {
        let nfa = noncontiguous::Builder::new()
            .match_kind(MatchKind::Standard)
            .build(keys)?;
        Ok(
            match contiguous::Builder::new()
                .match_kind(MatchKind::Standard)
                .build_from_noncontiguous(&nfa)
            {
                Ok(compact) => Matcher::Contiguous(Arc::new(compact)),
                Err(_) => Matcher::Noncontiguous(Arc::new(nfa)),
            },
        )
    }

    /// The number of keys.
    pub(crate) fn patterns_len(&self) -> usize {
        match self {
            Matcher::Contiguous(a) => a.patterns_len(),
            Matcher::Noncontiguous(a) => a.patterns_len(),
        }
    }

    /// Heap bytes of the automaton.
    pub(crate) fn memory_usage(&self) -> usize {
        match self {
            Matcher::Contiguous(a) => a.memory_usage(),
            Matcher::Noncontiguous(a) => a.memory_usage(),
        }
    }

    /// Calls `each(start, end, pattern)` for every match in `haystack`, overlapping ones too,
    /// in the order of aho-corasick's `find_overlapping_iter`.
    #[inline]
    pub(crate) fn each_match(&self, haystack: &[u8], each: impl FnMut(usize, usize, usize)) {
        match self {
            Matcher::Contiguous(a) => overlapping(&**a, haystack, each),
            Matcher::Noncontiguous(a) => overlapping(&**a, haystack, each),
        }
    }
}

/// aho-corasick's overlapping forward search (`try_find_overlapping_fwd`), unanchored, with
/// the matches of each state reported in place.
#[inline(always)]
fn overlapping<A: Automaton>(aut: &A, haystack: &[u8], mut each: impl FnMut(usize, usize, usize)) {
    let Ok(mut sid) = aut.start_state(Anchored::No) else {
        return;
    };
    let mut report = |sid, end: usize| {
        for i in 0..aut.match_len(sid) {
            let pattern = aut.match_pattern(sid, i);
            each(end - aut.pattern_len(pattern), end, pattern.as_usize());
        }
    };
    // an empty key matches before the first byte too
    if aut.is_match(sid) {
        report(sid, 0);
    }
    let pre = aut.prefilter();
    let mut at = 0;
    while at < haystack.len() {
        sid = aut.next_state(Anchored::No, sid, haystack[at]);
        if aut.is_special(sid) {
            if aut.is_dead(sid) {
                return;
            } else if aut.is_match(sid) {
                report(sid, at + 1);
            } else if let Some(pre) = pre {
                // a start state, special only with a prefilter: on to the next candidate
                match pre
                    .find_in(haystack, Span::from(at..haystack.len()))
                    .into_option()
                {
                    None => return,
                    Some(i) if i > at => {
                        at = i;
                        continue;
                    }
                    Some(_) => {}
                }
            }
        }
        at += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aho_corasick::{AhoCorasick, AhoCorasickKind};

    /// The matches are the iterator's, in its order, for both kinds, with and without a
    /// prefilter (few keys get one), over texts of the keys' bytes and others.
    #[test]
    fn the_matches_are_aho_corasicks_overlapping_matches_in_its_order() {
        let sets: [&[&str]; 4] = [
            &["he", "she", "his", "hers", "s", "e"],
            &["abc", "bcd", "cde", "b", "abcdef"],
            &["国家", "家", "a国", "ß", "ss"],
            &["x"],
        ];
        let mut next = crate::testing::picker(0x853C_49E6_748F_EA9Bu64);
        let alphabet = [
            "a", "b", "c", "d", "e", "f", "h", "i", "r", "s", "x", " ", "国", "家", "ß",
        ];
        for keys in sets {
            let bytes = || keys.iter().map(|k| k.as_bytes());
            let unfiltered = contiguous::Builder::new()
                .match_kind(MatchKind::Standard)
                .prefilter(false)
                .build(bytes())
                .unwrap();
            assert!(unfiltered.prefilter().is_none());
            for (kind, matcher) in [
                (
                    AhoCorasickKind::ContiguousNFA,
                    Matcher::build(bytes()).unwrap(),
                ),
                (
                    AhoCorasickKind::ContiguousNFA,
                    Matcher::Contiguous(Arc::new(unfiltered)),
                ),
                (
                    AhoCorasickKind::NoncontiguousNFA,
                    Matcher::Noncontiguous(Arc::new(
                        noncontiguous::Builder::new()
                            .match_kind(MatchKind::Standard)
                            .build(bytes())
                            .unwrap(),
                    )),
                ),
            ] {
                for prefilter in [true, false] {
                    let ac = AhoCorasick::builder()
                        .match_kind(MatchKind::Standard)
                        .kind(Some(kind))
                        .prefilter(prefilter)
                        .build(bytes())
                        .unwrap();
                    for _ in 0..500 {
                        let text: String = (0..next(40))
                            .map(|_| alphabet[next(alphabet.len())])
                            .collect();
                        let want: Vec<(usize, usize, usize)> = ac
                            .find_overlapping_iter(&text)
                            .map(|m| (m.start(), m.end(), m.pattern().as_usize()))
                            .collect();
                        let mut got = Vec::new();
                        matcher.each_match(text.as_bytes(), |s, e, p| got.push((s, e, p)));
                        assert_eq!(got, want, "{keys:?} in {text:?}, {kind:?}");
                    }
                }
            }
        }
    }
}
