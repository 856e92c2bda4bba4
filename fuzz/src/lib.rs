//! Helpers shared by the fuzz targets: input splitting and reference implementations that the
//! targets compare the real code against.

/// One word-list entry as the documented format defines it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefEntry {
    /// The word, trimmed.
    pub word: String,
    /// Its own category, trimmed, if the line has a tab.
    pub category: Option<String>,
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
        entries.push(RefEntry {
            word: word.to_owned(),
            category: category.map(str::to_owned),
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
    }
}
