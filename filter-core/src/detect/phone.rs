//! The phone detector (see the module docs of [`crate::detect`] for the rules).

use super::Found;
use super::stream::{Tok, digit_of};

/// Labels that make a number something other than a phone number (looked for just before it).
const LABELS: &[&str] = &[
    "订单",
    "单号",
    "运单",
    "快递",
    "物流",
    "编号",
    "流水",
    "工号",
    "学号",
    "证号",
    "身份证",
    "卡号",
    "账号",
    "帐号",
    "发票",
    "票号",
    "合同",
    "批号",
    "型号",
    "序列号",
    "条码",
    "order",
    "tracking",
    "invoice",
    "isbn",
    "serial",
    "ref",
    "no.",
    "#",
    "id",
    "sku",
    "case",
    "ticket",
    "account",
    "acct",
    "po",
    "awb",
    "issn",
    "doi",
];

/// Characters allowed between the digits of one number.
fn is_gap(c: char) -> bool {
    matches!(c, ' ' | '-' | '.' | '/' | '(' | ')' | '_')
}

/// A run of digits: the digit tokens and where the pieces split.
struct Group {
    /// (token index, digit)
    digits: Vec<(usize, u8)>,
    /// indices into `digits` where a new piece starts after a space, dash or parenthesis
    breaks: Vec<usize>,
}

/// The phone numbers of the stream.
pub(super) fn find(toks: &[Tok]) -> Vec<Found> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        if digit_of(toks[i].c).is_none() {
            i += 1;
            continue;
        }
        let (g, end) = group(toks, i);
        numbers(toks, &g, &mut out);
        i = end;
    }
    out
}

fn currency(c: char) -> bool {
    matches!(c, '$' | '¥' | '￥' | '€' | '£' | '₩' | '₹')
}

/// The digit group starting at `i`, and the index just past it.
fn group(toks: &[Tok], i: usize) -> (Group, usize) {
    let mut g = Group {
        digits: Vec::new(),
        breaks: Vec::new(),
    };
    let mut j = i;
    let mut last = i;
    loop {
        match toks.get(j).and_then(|t| digit_of(t.c)) {
            Some(d) => {
                if let Some(&(prev, _)) = g.digits.last()
                    && toks[prev + 1..j]
                        .iter()
                        .any(|t| matches!(t.c, ' ' | '-' | '(' | ')'))
                {
                    g.breaks.push(g.digits.len());
                }
                g.digits.push((j, d));
                last = j;
                j += 1;
            }
            None => {
                // a short gap of separators between digits keeps the group going (never `:` or
                // `,`, as in `10:30` and `1,299`)
                let mut k = j;
                while k < toks.len() && k - j < 3 && is_gap(toks[k].c) {
                    k += 1;
                }
                if k > j && toks.get(k).is_some_and(|t| digit_of(t.c).is_some()) {
                    j = k;
                } else {
                    break;
                }
            }
        }
    }
    (g, last + 1)
}

/// Adds the numbers a group holds: the whole group, or else runs of whole pieces of it.
fn numbers(toks: &[Tok], g: &Group, out: &mut Vec<Found>) {
    let n = g.digits.len();
    if n < 7 {
        return;
    }
    if let Some(f) = number(toks, &g.digits, true) {
        out.push(f);
        return;
    }
    // two numbers side by side, a number after a date, a number before `(24h)`
    let mut starts = vec![0];
    starts.extend(&g.breaks);
    let mut ends = g.breaks.clone();
    ends.push(n);
    let mut from = 0;
    for &s in &starts {
        if s < from {
            continue;
        }
        // only the ends 7 to 15 digits on (both lists ascend): a long group of numbers side by
        // side is linear, not quadratic, in its pieces
        let near = ends.partition_point(|&e| e < s + 7)..ends.partition_point(|&e| e <= s + 15);
        for &e in ends[near].iter().rev() {
            if s == 0 && e == n {
                continue;
            }
            if let Some(f) = number(toks, &g.digits[s..e], s == 0) {
                out.push(f);
                from = e;
                break;
            }
        }
    }
}

/// The phone number made of exactly `digits`, if it is one (`plus_ok`: a `+` before it may
/// belong to it).
fn number(toks: &[Tok], digits: &[(usize, u8)], plus_ok: bool) -> Option<Found> {
    let first = digits[0].0;
    let last = digits[digits.len() - 1].0;
    let before = first.checked_sub(1).map(|k| toks[k].c);
    if before.is_some_and(|c| c.is_ascii_alphabetic() || currency(c)) {
        return None;
    }
    let after = toks.get(last + 1).map(|t| t.c);
    if after.is_some_and(|c| c.is_ascii_alphabetic() || matches!(c, '元' | '块' | '%' | '円')) {
        return None;
    }
    let plus = if plus_ok {
        plus_before(toks, first)
    } else {
        None
    };
    // the shape first: it rejects most digit runs, and the labels cost a few dozen compares
    let word = shape(digits, plus.is_some())?;
    if labelled(toks, first) {
        return None;
    }
    // an area code's opening parenthesis, when its closing one is inside (`(0755) 2345 6789`)
    let start = plus.unwrap_or(first);
    let start = match start.checked_sub(1) {
        Some(open) if toks[open].c == '(' && toks[first..last].iter().any(|t| t.c == ')') => open,
        _ => start,
    };
    Some(Found {
        word,
        toks: start..last + 1,
    })
}

/// A `+` (or `＋`) right before the number, through spaces: its index.
fn plus_before(toks: &[Tok], first: usize) -> Option<usize> {
    let mut k = first;
    while k > 0 && toks[k - 1].c == ' ' {
        k -= 1;
    }
    (k > 0 && toks[k - 1].c == '+').then(|| k - 1)
}

/// Whether a label for another kind of number stands just before the token `first`.
fn labelled(toks: &[Tok], first: usize) -> bool {
    let from = first.saturating_sub(14);
    let before: String = toks[from..first].iter().map(|t| t.c).collect();
    let before = before.trim_end_matches([' ', ':', '：', '#', '=', '-', '.']);
    let tail: String = before
        .chars()
        .rev()
        .take(12)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    LABELS.iter().any(|l| {
        tail.ends_with(l)
            || (l.is_ascii() && l.len() > 2 && tail.rsplit(' ').next().is_some_and(|w| w == *l))
            || (!l.is_ascii() && tail.contains(l))
    }) || before
        // `no.` (its dot trimmed above) as a word of its own: `No. 1380…`, `(no. 1380…`
        .strip_suffix("no")
        .is_some_and(|rest| !rest.chars().next_back().is_some_and(char::is_alphanumeric))
        || before.ends_with("number")
}

/// The canonical phone number of `digits`, if they have the shape of one.
fn shape(digits: &[(usize, u8)], plus: bool) -> Option<String> {
    // Every shape below has 15 digits at most; they are read from the stack, and text is made
    // only of a number found (a long group tries thousands of candidates, nearly all rejected).
    let n = digits.len();
    if n > 15 {
        return None;
    }
    let mut buf = [0u8; 15];
    for (slot, &(_, x)) in buf.iter_mut().zip(digits) {
        *slot = b'0' + x;
    }
    let b = &buf[..n];
    let text = |b: &[u8]| b.iter().map(|&c| char::from(c)).collect::<String>();
    let mobile = |s: &[u8]| s.len() == 11 && s[0] == b'1' && (b'3'..=b'9').contains(&s[1]);
    if plus {
        if n == 13 && b.starts_with(b"86") && mobile(&b[2..]) {
            return Some(text(&b[2..]));
        }
        return (8..=15).contains(&n).then(|| format!("+{}", text(b)));
    }
    if mobile(b) {
        return Some(text(b));
    }
    if n == 13 && b.starts_with(b"86") && mobile(&b[2..]) {
        return Some(text(&b[2..]));
    }
    if n == 10 && (b.starts_with(b"400") || b.starts_with(b"800")) {
        return Some(text(b));
    }
    // landline: 0 + area code (010, 02x: 3 digits; 0xxx: 4 digits) + 7-8 digits
    if b[0] == b'0' && b.get(1).is_some_and(|&x| x != b'0') && (10..=12).contains(&n) {
        let area = if b[1] == b'1' || b[1] == b'2' { 3 } else { 4 };
        let local = n - area;
        if (7..=8).contains(&local) && b[area] >= b'2' {
            return Some(format!("{}-{}", text(&b[..area]), text(&b[area..])));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Options;
    use crate::normalize::Table;

    fn phones(text: &str) -> Vec<String> {
        let table = Table::new(&Options::default());
        let (mut tmp, mut toks) = (Vec::new(), Vec::new());
        super::super::stream::build(&table, text, &mut tmp, &mut toks);
        find(&toks).into_iter().map(|f| f.word).collect()
    }

    #[test]
    fn mobiles_in_every_digit_style() {
        for text in [
            "13800138000",
            "call 138 0013 8000",
            "138-0013-8000",
            "①③⑧⓪⓪①③⑧⓪⓪⓪",
            "⑴⑶⑻⑽",
            "１３８００１３８０００",
            "一三八零零一三八零零零",
            "壹叁捌零零壹叁捌零零零",
            "幺三八〇〇幺三八〇〇〇",
            "+86 138 0013 8000",
        ] {
            let got = phones(text);
            if text == "⑴⑶⑻⑽" {
                assert!(got.is_empty(), "{text}: {got:?}");
            } else {
                assert_eq!(got, ["13800138000"], "{text}");
            }
        }
    }

    #[test]
    fn landlines_service_and_international_numbers() {
        assert_eq!(phones("tel 010-62345678"), ["010-62345678"]);
        assert_eq!(phones("(0755) 2345 6789"), ["0755-23456789"]);
        assert_eq!(phones("400-123-4567"), ["4001234567"]);
        assert_eq!(phones("+1 (415) 555-2671"), ["+14155552671"]);
        assert_eq!(
            phones("13800138000 13900139000"),
            ["13800138000", "13900139000"]
        );
    }

    #[test]
    fn every_number_of_a_long_run_side_by_side_is_found() {
        // one group of 2,000 pieces (spaces and line breaks join them): each found once
        for sep in [" ", "\n", "  "] {
            let pieces: Vec<&str> = ["13800138000", "010-62345678"].repeat(1000);
            let found = phones(&pieces.join(sep));
            assert_eq!(found.len(), 2000, "{sep:?}");
            assert!(
                found
                    .chunks(2)
                    .all(|p| p == ["13800138000", "010-62345678"]),
                "{sep:?}"
            );
        }
    }

    #[test]
    fn ordinary_numbers_are_not_phones() {
        for text in [
            "2024-05-01 10:30",
            "price ¥13800138000",
            "订单号：13800138000",
            "tracking number 13800138000",
            "ISBN 978-7-111-12345-6",
            "postal code 100080",
            "the score was 3-1",
            "version 1.2.3",
            "13800138000元",
            "id 440301199001011234",
            "pi is 3.14159265358979",
            "No. 13800138000",
            "(no. 13800138000)",
            "order no. 13800138000",
        ] {
            assert!(phones(text).is_empty(), "{text}: {:?}", phones(text));
        }
    }
}
