//! Helpers shared by the fuzz targets: input splitting and reference implementations that the
//! targets compare the real code against.

/// One word-list entry as the documented format defines it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefEntry {
    /// The word, trimmed.
    pub word: String,
    /// Its own category, trimmed, if the line has a tab.
    pub category: Option<String>,
    /// The 1-based line number.
    pub line: usize,
    /// Set when the entry is a combination rule: its parts (alternatives and exceptions
    /// included), trimmed; `word` is then the rule as written.
    pub rule: Option<Vec<String>>,
}

/// The documented rule syntax (`docs/word-lists.md`, "Combination rules"), written
/// independently of `filter-core`: a word without `&`, `|`, `~` is itself; otherwise `\`
/// before one of `& | ~ \` is that character, any other character is itself, and the unescaped
/// operators split the word into parts. No operator left: a plain word (`Ok(Err(word))`).
/// `Err(())`: an empty part, `&` after `~`, or more than 64 `&` parts.
#[allow(clippy::result_unit_err)]
pub fn reference_rule(word: &str) -> Result<Result<Vec<String>, String>, ()> {
    if !word.chars().any(|c| "&|~".contains(c)) {
        return Ok(Err(word.to_owned()));
    }
    let chars: Vec<char> = word.chars().collect();
    let mut parts = vec![String::new()];
    let mut ops = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\\' && i + 1 < chars.len() && "&|~\\".contains(chars[i + 1]) {
            parts.last_mut().unwrap().push(chars[i + 1]);
            i += 2;
            continue;
        }
        if "&|~".contains(c) {
            ops.push(c);
            parts.push(String::new());
        } else {
            parts.last_mut().unwrap().push(c);
        }
        i += 1;
    }
    if ops.is_empty() {
        return Ok(Err(parts.remove(0)));
    }
    let parts: Vec<String> = parts.iter().map(|p| p.trim().to_owned()).collect();
    let tilde = ops.iter().position(|&o| o == '~').unwrap_or(ops.len());
    let ands = ops.iter().filter(|&&o| o == '&').count();
    if parts.iter().any(String::is_empty) || ops[tilde..].contains(&'&') || ands + 1 > 64 {
        return Err(());
    }
    Ok(Ok(parts))
}

/// The documented word-list format (`docs/word-lists.md`), written independently of
/// `filter-core`: UTF-8 (an initial byte-order mark is ignored), one entry per line (`\n` or
/// `\r\n`), blank lines and lines starting with `#` ignored (after trimming), an entry is
/// `word` or `word<TAB>category`, both trimmed and non-empty.
///
/// Returns the entries, or the 1-based number of the first malformed line.
pub fn reference_word_list(bytes: &[u8]) -> Result<Vec<RefEntry>, usize> {
    let bytes = match bytes {
        [0xEF, 0xBB, 0xBF, rest @ ..] => rest,
        other => other,
    };
    let mut entries = Vec::new();
    let mut line_start = 0;
    let mut number = 0;
    while line_start <= bytes.len() {
        number += 1;
        let line_end = bytes[line_start..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(bytes.len(), |i| line_start + i);
        let mut line = &bytes[line_start..line_end];
        if line.last() == Some(&b'\r') {
            line = &line[..line.len() - 1];
        }
        line_start = line_end + 1;
        let Ok(line) = std::str::from_utf8(line) else {
            return Err(number);
        };
        if line.trim().is_empty() || line.trim().starts_with('#') {
            continue;
        }
        let tabs = line.matches('\t').count();
        let (word, category) = match line.find('\t') {
            Some(tab) => (&line[..tab], Some(line[tab + 1..].trim())),
            None => (line, None),
        };
        let word = word.trim();
        if tabs > 1 || word.is_empty() || category == Some("") {
            return Err(number);
        }
        let (word, rule) = match reference_rule(word) {
            Ok(Err(plain)) => (plain, None),
            Ok(Ok(parts)) => (word.to_owned(), Some(parts)),
            Err(()) => return Err(number),
        };
        entries.push(RefEntry {
            word,
            category: category.map(str::to_owned),
            line: number,
            rule,
        });
    }
    Ok(entries)
}

/// The longest prefix of `s` of at most `max_bytes` bytes that ends on a char boundary.
pub fn truncate_to(s: &str, max_bytes: usize) -> &str {
    let mut end = s.len().min(max_bytes);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// The first `max_chars` chars of `s`.
pub fn first_chars(s: &str, max_chars: usize) -> &str {
    match s.char_indices().nth(max_chars) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_word_list_follows_the_format() {
        let entries =
            reference_word_list("\u{FEFF}# c\n\nfoo\nbar\tinsult\r\n  baz  \n".as_bytes()).unwrap();
        let words: Vec<_> = entries.iter().map(|e| e.word.as_str()).collect();
        assert_eq!(words, ["foo", "bar", "baz"]);
        assert_eq!(entries[1].category.as_deref(), Some("insult"));
        assert_eq!(reference_word_list(b"ok\na\tb\tc\n"), Err(2));
        assert_eq!(reference_word_list(b"ok\n\tcat\n"), Err(2));
        assert_eq!(reference_word_list(b"a\nb\t \n"), Err(2));
        assert_eq!(reference_word_list(b"a\n\xFF\xFE\n"), Err(2));
        assert_eq!(reference_word_list(b""), Ok(vec![]));
        let entries = reference_word_list("AT\\&T\na & b|c ~ d\n".as_bytes()).unwrap();
        assert_eq!((entries[0].word.as_str(), entries[0].rule.is_none()), ("AT&T", true));
        assert_eq!(entries[1].rule.as_deref().map(<[String]>::len), Some(4));
        assert_eq!(reference_word_list(b"ok\na&\n"), Err(2));
        assert_eq!(reference_word_list(b"a~b&c\n"), Err(1));
    }
}
