use http::HeaderValue;
use std::fmt;

/// A request's id, as put in request extensions by `espresso-request-id`.
///
/// It always holds a valid header value made of visible ASCII, so it can be copied into
/// headers and logs as it is.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RequestId(HeaderValue);

impl RequestId {
    /// Wraps a header value. Returns `None` when it holds anything but visible ASCII.
    pub fn new(value: HeaderValue) -> Option<Self> {
        (is_visible_ascii(value.as_bytes()) && !value.is_empty()).then_some(Self(value))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        // Checked in `new`: visible ASCII is valid UTF-8 (and `from_utf8` checks ASCII a word
        // at a time, where `HeaderValue::to_str` goes byte by byte).
        std::str::from_utf8(self.0.as_bytes()).unwrap_or_default()
    }

    /// The id as a header value.
    pub fn header_value(&self) -> &HeaderValue {
        &self.0
    }
}

/// `all(u8::is_ascii_graphic)` (0x21..=0x7e), eight bytes at a time: it runs per request. A
/// word holds another byte exactly when one of the two tests sets a high bit (each can misreport
/// bytes above the first one it finds, never the word as a whole).
fn is_visible_ascii(bytes: &[u8]) -> bool {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGHS: u64 = ONES * 0x80;
    let (words, rest) = bytes.as_chunks::<8>();
    let flagged = words.iter().fold(0, |flagged, word| {
        let w = u64::from_ne_bytes(*word);
        let below = w.wrapping_sub(ONES * 0x21) & !w;
        let above = w.wrapping_add(ONES) | w;
        flagged | ((below | above) & HIGHS)
    });
    flagged == 0 && rest.iter().all(u8::is_ascii_graphic)
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<RequestId> for HeaderValue {
    fn from(id: RequestId) -> Self {
        id.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn visible_ascii_is_told_apart_by_every_byte_at_every_position() {
        for len in 1..=17 {
            for at in 0..len {
                for b in 0..=255u8 {
                    for fill in [b'a', b'!', b'~', 0x80, 0xff] {
                        let mut s = vec![fill; len];
                        s[at] = b;
                        let expected = s.iter().all(u8::is_ascii_graphic);
                        assert_eq!(is_visible_ascii(&s), expected, "{s:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn accepts_visible_ascii_only() {
        let id = RequestId::new(HeaderValue::from_static("abc-123")).unwrap();
        assert_eq!(id.as_str(), "abc-123");
        assert_eq!(id.to_string(), "abc-123");
        assert!(RequestId::new(HeaderValue::from_static("")).is_none());
        assert!(RequestId::new(HeaderValue::from_static("a b")).is_none());
        assert!(RequestId::new(HeaderValue::from_bytes(b"caf\xc3\xa9").unwrap()).is_none());
    }
}
