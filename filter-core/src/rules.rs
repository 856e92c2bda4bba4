//! Combination rules in word lists: AND of parts (within an optional window), OR alternatives
//! inside a part, and NOT exceptions that veto the hits they overlap.
//!
//! # Syntax
//!
//! An entry whose word holds one of the operator characters `&`, `|` or `~` is a rule:
//!
//! - `a&b` fires when both `a` and `b` occur (any order, anywhere in the text, or within the
//!   list's [`rule_window`](crate::ListSource::rule_window));
//! - `a|b` is an alternative: either counts; `|` binds tighter than `&`, so
//!   `buy|sell&cheap|discount` is "(buy or sell) and (cheap or discount)";
//! - `a~x` is an exception: a hit of `x` vetoes every hit of the rule's parts that it overlaps,
//!   and only those (`赌博~禁止赌博` fires on the second `赌博` of `禁止赌博，他在赌博`). `~` binds
//!   loosest: `a&b~x|y~z` has the exceptions `x`, `y` and `z`.
//! - `\&`, `\|`, `\~` and `\\` stand for the characters themselves, in lines that hold an
//!   operator (`AT\&T` is the plain word `AT&T`); a backslash before anything else is itself.
//!   A line without any of `& | ~` is a plain word exactly as written, backslashes included.
//! - Whitespace around an operator is ignored; an empty part (`a&`, `&a`, `a||b`) is an error.
//!
//! Every part goes through the same normalization and matching rules as a word (folding, noise,
//! leet, word boundaries, pinyin for a list with pinyin on, allow lists).
//!
//! # Hits
//!
//! A rule that fires gives one hit per part occurrence that made it fire, each with the span of
//! that occurrence and the rule's own word (the rule as written), level and category. These
//! hits join the words' hits before overlaps are resolved, with the same priority (the longest
//! part wins), so `hits` stays sorted and non-overlapping.
//!
//! # The combination step
//!
//! Parts (and exceptions) are patterns of the one automaton. A part's match in the text as
//! written is only noted (normalized offsets); once the text is scanned, a gate marks per rule
//! the `&` groups that have a match, and only the matches of parts of rules whose every group
//! has one (few texts) are mapped to the text and verified like words' (matches in the leet and
//! tone-number copies, which are few, are verified at once). Then, per rule that has a part
//! hit: exception hits veto the part hits they overlap; the rule fires if every `&` group still
//! has a hit; with a window, a part hit counts only where some window of that many characters
//! holds it and a hit of every group. The cost is proportional to the part matches, nothing
//! when there are none.

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::Arc;

use crate::types::Level;

/// The most `&` groups a rule may have.
pub(crate) const MAX_GROUPS: usize = 64;

/// The role of an exception (a group index otherwise).
const EXCEPT: u8 = u8::MAX;

/// A list entry's word, read with the rule syntax.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Parsed {
    /// A plain word (escapes resolved).
    Word(String),
    /// A combination rule.
    Rule(RuleSpec),
}

/// The parts of a rule as written: `&` groups of `|` alternatives, and exceptions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RuleSpec {
    pub(crate) groups: Vec<Vec<String>>,
    pub(crate) exceptions: Vec<String>,
}

enum Token {
    Text(String),
    Op(char),
}

/// Reads an entry's word (already trimmed and non-empty) with the rule syntax.
pub(crate) fn parse(word: &str) -> Result<Parsed, String> {
    if !word.contains(['&', '|', '~']) {
        return Ok(Parsed::Word(word.to_string()));
    }
    let mut tokens = Vec::new();
    let mut cur = String::new();
    let mut chars = word.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.peek() {
                Some(&n @ ('&' | '|' | '~' | '\\')) => {
                    cur.push(n);
                    chars.next();
                }
                _ => cur.push('\\'),
            },
            '&' | '|' | '~' => {
                tokens.push(Token::Text(std::mem::take(&mut cur)));
                tokens.push(Token::Op(c));
            }
            c => cur.push(c),
        }
    }
    tokens.push(Token::Text(cur));
    if tokens.len() == 1 {
        let Some(Token::Text(w)) = tokens.pop() else {
            unreachable!("one text token")
        };
        return Ok(Parsed::Word(w));
    }
    let op_at = |i: usize| match tokens.get(i) {
        Some(Token::Op(o)) => Some(*o),
        _ => None,
    };
    let mut spec = RuleSpec {
        groups: vec![Vec::new()],
        exceptions: Vec::new(),
    };
    let mut in_exception = false;
    for (i, t) in tokens.iter().enumerate() {
        match t {
            Token::Op('&') if in_exception => {
                return Err(
                    "`&` after `~`: an exception is one part or `|` alternatives \
                     (write `\\&` for a literal `&`)"
                        .into(),
                );
            }
            Token::Op('&') => spec.groups.push(Vec::new()),
            Token::Op('~') => in_exception = true,
            Token::Op(_) => {}
            Token::Text(text) => {
                let part = text.trim();
                if part.is_empty() {
                    let (before, after) = (i.checked_sub(1).and_then(op_at), op_at(i + 1));
                    let at = match (before, after) {
                        (None, Some(o)) => format!("nothing before `{o}`"),
                        (Some(o), None) => format!("nothing after `{o}`"),
                        (Some(a), Some(b)) => format!("nothing between `{a}` and `{b}`"),
                        (None, None) => unreachable!("a rule has an operator"),
                    };
                    return Err(format!(
                        "empty part in a rule: {at} (write `\\&`, `\\|`, `\\~` for the \
                         characters themselves)"
                    ));
                }
                if in_exception {
                    spec.exceptions.push(part.to_string());
                } else if let Some(g) = spec.groups.last_mut() {
                    g.push(part.to_string());
                }
            }
        }
    }
    if spec.groups.len() > MAX_GROUPS {
        return Err(format!("a rule has at most {MAX_GROUPS} `&` parts"));
    }
    Ok(Parsed::Rule(spec))
}

/// A part's verified hit in the text (byte offsets of the window being checked).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PartHit {
    pub(crate) start: usize,
    pub(crate) end: usize,
    pub(crate) part: u32,
    /// the normalized length of the pattern that hit (overlap priority)
    pub(crate) len: u32,
}

/// A hit a rule gives: the span of one part occurrence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RuleHit {
    pub(crate) start: usize,
    pub(crate) end: usize,
    pub(crate) rule: u32,
    pub(crate) len: u32,
}

/// One compiled rule.
#[derive(Debug)]
pub(crate) struct Rule {
    /// the rule as written in its list
    pub(crate) word: Box<str>,
    pub(crate) level: Level,
    pub(crate) category: Arc<str>,
    /// the index of the rule's list in the dictionary's lists
    pub(crate) list: u32,
    window: Option<NonZeroUsize>,
}

/// A part to be added to the automaton.
#[derive(Debug)]
pub(crate) struct PartSpec {
    pub(crate) text: String,
    /// the part's list has pinyin on: its spellings are patterns too
    pub(crate) pinyin: bool,
    /// where the part first appears, for errors
    pub(crate) list: String,
    pub(crate) line: usize,
}

/// Collects rules while a dictionary is built.
#[derive(Debug, Default)]
pub(crate) struct RulesBuilder {
    ids: HashMap<(String, bool), u32>,
    parts: Vec<PartSpec>,
    /// per part: (rule, role)
    uses: Vec<Vec<(u32, u8)>>,
    rules: Vec<Rule>,
    all_groups: Vec<u64>,
}

/// Where a rule comes from and what it gives.
pub(crate) struct RuleOrigin<'a> {
    pub(crate) word: &'a str,
    pub(crate) level: Level,
    pub(crate) category: Arc<str>,
    pub(crate) window: Option<NonZeroUsize>,
    pub(crate) pinyin: bool,
    pub(crate) list: &'a str,
    pub(crate) line: usize,
    /// the list's index in the dictionary's lists
    pub(crate) list_index: u32,
}

impl RulesBuilder {
    /// Adds a rule.
    pub(crate) fn add(&mut self, spec: &RuleSpec, origin: RuleOrigin<'_>) {
        let rule = self.rules.len() as u32;
        let roles = spec
            .groups
            .iter()
            .enumerate()
            .flat_map(|(g, alts)| alts.iter().map(move |a| (a, g as u8)))
            .chain(spec.exceptions.iter().map(|a| (a, EXCEPT)));
        for (text, role) in roles {
            let key = (text.clone(), origin.pinyin);
            let id = *self.ids.entry(key).or_insert_with(|| {
                self.parts.push(PartSpec {
                    text: text.clone(),
                    pinyin: origin.pinyin,
                    list: origin.list.to_string(),
                    line: origin.line,
                });
                self.uses.push(Vec::new());
                (self.parts.len() - 1) as u32
            });
            // a part twice in one rule is one use; this rule's uses are the last ones (looking
            // only there keeps a part shared by many rules from costing each a scan of all)
            let uses = &mut self.uses[id as usize];
            let mut this_rule = uses.iter().rev().take_while(|&&(r, _)| r == rule);
            if !this_rule.any(|&u| u == (rule, role)) {
                uses.push((rule, role));
            }
        }
        let n = spec.groups.len();
        self.rules.push(Rule {
            word: origin.word.into(),
            level: origin.level,
            category: origin.category,
            list: origin.list_index,
            window: origin.window,
        });
        self.all_groups.push(if n == MAX_GROUPS {
            u64::MAX
        } else {
            (1u64 << n) - 1
        });
    }

    /// The parts to add to the automaton; part `i` of the slice has id `i`.
    pub(crate) fn parts(&self) -> &[PartSpec] {
        &self.parts
    }

    /// The compiled rules.
    pub(crate) fn finish(self) -> Rules {
        Rules {
            windowed: self.rules.iter().any(|r| r.window.is_some()),
            rules: self.rules,
            all_groups: self.all_groups.into(),
            uses: self.uses.into_iter().map(Vec::into_boxed_slice).collect(),
        }
    }
}

/// The compiled rules of a dictionary.
#[derive(Debug, Default)]
pub(crate) struct Rules {
    rules: Vec<Rule>,
    /// per rule: one bit per `&` group (apart from `rules`, as the gate reads only these)
    all_groups: Box<[u64]>,
    /// per part id: the (rule, role) pairs it takes part in
    uses: Vec<Box<[(u32, u8)]>>,
    /// some rule has a window: character positions are needed
    windowed: bool,
}

/// One part hit as one rule sees it.
#[derive(Clone, Copy, Debug)]
struct Use {
    rule: u32,
    role: u8,
    hit: u32,
}

/// Reusable buffers of the combination step.
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    uses: Vec<Use>,
    kept: Vec<Use>,
    vetoes: Vec<(usize, usize)>,
    /// per hit: character offsets of its start and end (windowed rules only)
    chars: Vec<(usize, usize)>,
    offsets: Vec<usize>,
    positions: Vec<usize>,
    suffix_min: Vec<usize>,
    groups: Vec<(usize, usize)>,
    full: Vec<usize>,
    /// per rule: the `&` groups that have a match (all zero between gates but for the rules
    /// in `touched`)
    masks: Vec<u64>,
    touched: Vec<u32>,
    /// the rules whose every group has a match, as a list and a bit per rule (zero but for
    /// `live`)
    live: Vec<u32>,
    live_bits: Vec<u64>,
}

impl Rules {
    /// How many rules there are.
    pub(crate) fn len(&self) -> usize {
        self.rules.len()
    }

    /// Rule `i`.
    pub(crate) fn rule(&self, i: u32) -> &Rule {
        &self.rules[i as usize]
    }

    /// The (level, category) pairs of the rules.
    pub(crate) fn categories(&self) -> impl Iterator<Item = (Level, &str)> {
        self.rules.iter().map(|r| (r.level, &*r.category))
    }

    /// Notes the rules that may fire given the parts matched (before verification): those whose
    /// every `&` group has a match. See [`Rules::needed`].
    pub(crate) fn gate(&self, parts: impl Iterator<Item = u32>, s: &mut Scratch) {
        // the buffers are per thread, shared by every dictionary: forget the last gate's rules
        // (and any marks a check that panicked left)
        for &rule in &s.live {
            s.live_bits[rule as usize / 64] = 0;
        }
        s.live.clear();
        for &rule in &s.touched {
            s.masks[rule as usize] = 0;
        }
        s.touched.clear();
        let n = self.rules.len();
        if s.masks.len() < n {
            s.masks.resize(n, 0);
            s.live_bits.resize(n.div_ceil(64), 0);
        }
        for part in parts {
            for &(rule, role) in self.uses[part as usize].iter() {
                if role == EXCEPT {
                    continue;
                }
                let mask = &mut s.masks[rule as usize];
                if *mask == 0 {
                    s.touched.push(rule);
                }
                *mask |= 1 << role;
            }
        }
        for &rule in &s.touched {
            let mask = std::mem::take(&mut s.masks[rule as usize]);
            if mask == self.all_groups[rule as usize] {
                s.live.push(rule);
                s.live_bits[rule as usize / 64] |= 1 << (rule % 64);
            }
        }
        s.touched.clear();
    }

    /// Whether [`Rules::gate`] found some rule that may fire.
    pub(crate) fn any_live(&self, s: &Scratch) -> bool {
        !s.live.is_empty()
    }

    /// Whether a match of `part` can change the answer: it belongs (as a part or an
    /// exception) to a rule that [`Rules::gate`] found may fire.
    pub(crate) fn needed(&self, part: u32, s: &Scratch) -> bool {
        self.uses[part as usize]
            .iter()
            .any(|&(rule, _)| s.live_bits[rule as usize / 64] & (1 << (rule % 64)) != 0)
    }

    /// The combination step: from the part hits of one text (allow-list suppression already
    /// applied), the hits of the rules that fire.
    pub(crate) fn combine(
        &self,
        text: &str,
        hits: &mut Vec<PartHit>,
        s: &mut Scratch,
        out: &mut Vec<RuleHit>,
    ) {
        // the same part at the same span, from several readings of the text, counts once
        hits.sort_unstable_by_key(|h| (h.start, h.end, h.part));
        hits.dedup_by_key(|h| (h.start, h.end, h.part));
        if self.windowed {
            self.char_positions(text, hits, s);
        }
        s.uses.clear();
        for (i, h) in hits.iter().enumerate() {
            for &(rule, role) in self.uses[h.part as usize].iter() {
                s.uses.push(Use {
                    rule,
                    role,
                    hit: i as u32,
                });
            }
        }
        // by rule, then role (exceptions last), then position
        s.uses.sort_unstable_by_key(|u| (u.rule, u.role, u.hit));
        let mut uses = std::mem::take(&mut s.uses);
        let mut at = 0;
        while at < uses.len() {
            let rule = uses[at].rule;
            let n = uses[at..].partition_point(|u| u.rule == rule);
            self.fire(rule, &uses[at..at + n], hits, s, out);
            at += n;
        }
        uses.clear();
        s.uses = uses;
    }

    /// Character offsets of every hit's start and end, in one walk over the text.
    fn char_positions(&self, text: &str, hits: &[PartHit], s: &mut Scratch) {
        s.offsets.clear();
        s.offsets.extend(hits.iter().flat_map(|h| [h.start, h.end]));
        s.offsets.sort_unstable();
        s.offsets.dedup();
        s.positions.clear();
        let (mut count, mut at) = (0usize, 0usize);
        for &o in &s.offsets {
            count += text[at..o].chars().count();
            at = o;
            s.positions.push(count);
        }
        let pos = |o: usize| s.positions[s.offsets.partition_point(|&x| x < o)];
        s.chars.clear();
        s.chars
            .extend(hits.iter().map(|h| (pos(h.start), pos(h.end))));
    }

    /// Decides one rule from its uses (sorted by role, then position) and adds its hits.
    fn fire(
        &self,
        rule: u32,
        uses: &[Use],
        hits: &[PartHit],
        s: &mut Scratch,
        out: &mut Vec<RuleHit>,
    ) {
        let r = &self.rules[rule as usize];
        let split = uses.partition_point(|u| u.role != EXCEPT);
        let (positive, exceptions) = uses.split_at(split);
        // exception spans, sorted by start (uses are in hit order) and merged
        s.vetoes.clear();
        for u in exceptions {
            let h = &hits[u.hit as usize];
            match s.vetoes.last_mut() {
                Some(last) if h.start < last.1 => last.1 = last.1.max(h.end),
                _ => s.vetoes.push((h.start, h.end)),
            }
        }
        let vetoes = &s.vetoes;
        let vetoed = |h: &PartHit| {
            let i = vetoes.partition_point(|&(a, _)| a < h.end);
            i > 0 && vetoes[i - 1].1 > h.start
        };
        s.kept.clear();
        let mut seen = 0u64;
        for u in positive {
            if !vetoed(&hits[u.hit as usize]) {
                seen |= 1 << u.role;
                s.kept.push(*u);
            }
        }
        if seen != self.all_groups[rule as usize] {
            return;
        }
        let emit = |u: &Use, out: &mut Vec<RuleHit>| {
            let h = &hits[u.hit as usize];
            out.push(RuleHit {
                start: h.start,
                end: h.end,
                rule,
                len: h.len,
            });
        };
        let Some(window) = r.window else {
            for u in &s.kept {
                emit(u, out);
            }
            return;
        };
        let n = window.get();
        // A hit x counts iff some window [L, L + n] (in characters) holds x and a hit of every
        // group; L can be taken at a hit's start. Per group (kept is sorted by role, then
        // start), the suffix minimum of the ends says whether a group has a hit inside [L, L+n].
        let chars = &s.chars;
        s.groups.clear();
        let mut g0 = 0;
        for i in 1..=s.kept.len() {
            if i == s.kept.len() || s.kept[i].role != s.kept[g0].role {
                s.groups.push((g0, i));
                g0 = i;
            }
        }
        s.suffix_min.clear();
        s.suffix_min.resize(s.kept.len(), 0);
        for &(a, b) in &s.groups {
            let mut m = usize::MAX;
            for i in (a..b).rev() {
                m = m.min(chars[s.kept[i].hit as usize].1);
                s.suffix_min[i] = m;
            }
        }
        s.full.clear();
        for u in &s.kept {
            let l = chars[u.hit as usize].0;
            let full = s.groups.iter().all(|&(a, b)| {
                let i = a + s.kept[a..b].partition_point(|v| chars[v.hit as usize].0 < l);
                i < b && s.suffix_min[i] <= l.saturating_add(n)
            });
            if full {
                s.full.push(l);
            }
        }
        s.full.sort_unstable();
        s.full.dedup();
        for u in &s.kept {
            let (cs, ce) = chars[u.hit as usize];
            let i = s.full.partition_point(|&l| l < ce.saturating_sub(n));
            if i < s.full.len() && s.full[i] <= cs {
                emit(u, out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(word: &str) -> RuleSpec {
        match parse(word).unwrap() {
            Parsed::Rule(r) => r,
            Parsed::Word(w) => panic!("{word} parsed as the word {w}"),
        }
    }

    #[test]
    fn a_line_without_operators_is_the_word_as_written() {
        for w in ["fuck", "a\\b", "c:\\path\\x", "kill yourself"] {
            assert_eq!(parse(w).unwrap(), Parsed::Word(w.to_string()));
        }
    }

    #[test]
    fn escaped_operators_make_a_plain_word() {
        assert_eq!(parse("AT\\&T").unwrap(), Parsed::Word("AT&T".into()));
        assert_eq!(
            parse("a\\|b\\~c\\\\d").unwrap(),
            Parsed::Word("a|b~c\\d".into())
        );
        // a backslash before another character stays
        assert_eq!(parse("\\x\\&").unwrap(), Parsed::Word("\\x&".into()));
    }

    #[test]
    fn and_or_and_exceptions_nest_as_documented() {
        let r = rule("buy | sell & cheap|discount ~ x|y ~ z");
        assert_eq!(
            r.groups,
            vec![vec!["buy", "sell"], vec!["cheap", "discount"]]
        );
        assert_eq!(r.exceptions, vec!["x", "y", "z"]);
        let r = rule("赌博~禁止赌博");
        assert_eq!(r.groups, vec![vec!["赌博"]]);
        assert_eq!(r.exceptions, vec!["禁止赌博"]);
        let r = rule("AT\\&T&phone");
        assert_eq!(r.groups, vec![vec!["AT&T"], vec!["phone"]]);
    }

    #[test]
    fn empty_parts_say_where() {
        for (w, msg) in [
            ("a&", "nothing after `&`"),
            ("&a", "nothing before `&`"),
            ("a| &b", "nothing between `|` and `&`"),
            ("a~", "nothing after `~`"),
            ("~a", "nothing before `~`"),
        ] {
            let err = parse(w).unwrap_err();
            assert!(err.contains(msg), "{w}: {err}");
        }
        assert!(parse("a~b&c").unwrap_err().contains("`&` after `~`"));
        let many = vec!["x"; MAX_GROUPS + 1].join("&");
        assert!(parse(&many).unwrap_err().contains("at most 64"));
        assert!(matches!(
            parse(&vec!["x"; MAX_GROUPS].join("&")),
            Ok(Parsed::Rule(_))
        ));
    }
}
