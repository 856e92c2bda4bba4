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
        // Branch-free form of `all(u8::is_ascii_graphic)` (0x21..=0x7e): this runs per request.
        let visible = value
            .as_bytes()
            .iter()
            .fold(true, |ok, b| ok & (b.wrapping_sub(0x21) < 0x5e));
        (visible && !value.is_empty()).then_some(Self(value))
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
    fn accepts_visible_ascii_only() {
        let id = RequestId::new(HeaderValue::from_static("abc-123")).unwrap();
        assert_eq!(id.as_str(), "abc-123");
        assert_eq!(id.to_string(), "abc-123");
        assert!(RequestId::new(HeaderValue::from_static("")).is_none());
        assert!(RequestId::new(HeaderValue::from_static("a b")).is_none());
        assert!(RequestId::new(HeaderValue::from_bytes(b"caf\xc3\xa9").unwrap()).is_none());
    }
}
