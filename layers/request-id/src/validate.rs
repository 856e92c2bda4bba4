//! Validating incoming ids: they are client input, so they are checked before they are trusted.
//!
//! An incoming id is kept only when the request carries exactly one value of the id header, and
//! that value is non-empty, at most `max_len` bytes long, and made only of [`AllowedChars`]
//! (by default `[A-Za-z0-9._:-]`). Anything else is replaced by a fresh id, and the raw value is
//! removed from the request's headers. On request, a sanitized copy of the rejected value is
//! kept as a [`ClientRequestId`] extension for correlation.

use http::{HeaderMap, HeaderName, HeaderValue};
use std::fmt;

// === impl AllowedChars ===

/// The set of bytes an incoming id may be made of.
///
/// Only visible ASCII (`!` to `~`) can ever be in the set: those are the only bytes that are safe
/// to copy into headers and logs, and the only ones a [`RequestId`](crate::RequestId) holds.
/// Builders silently leave other bytes out.
///
/// ```
/// use espresso_request_id::AllowedChars;
///
/// // The default, `[A-Za-z0-9._:-]`:
/// let default = AllowedChars::DEFAULT;
/// assert!(default.contains(b'a') && default.contains(b':') && !default.contains(b'/'));
///
/// // Letters, digits and `-` only:
/// let strict = AllowedChars::alphanumeric().with("-");
/// assert!(!strict.contains(b'.'));
///
/// // Also accept `/` and `=` (base64-ish ids from a gateway):
/// let wider = AllowedChars::DEFAULT.with("/+=");
/// assert!(wider.contains(b'/'));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct AllowedChars([u64; 2]);

impl AllowedChars {
    /// `[A-Za-z0-9._:-]`: what UUIDs, ULIDs, counters and most tracing ids are made of.
    pub const DEFAULT: Self = Self::alphanumeric().with("._:-");

    /// The empty set.
    pub const fn none() -> Self {
        Self([0; 2])
    }

    /// `[A-Za-z0-9]`.
    pub const fn alphanumeric() -> Self {
        Self::none()
            .with_range(b'0', b'9')
            .with_range(b'a', b'z')
            .with_range(b'A', b'Z')
    }

    /// Every visible ASCII character, `!` to `~`.
    pub const fn visible_ascii() -> Self {
        Self::none().with_range(b'!', b'~')
    }

    /// The set with the characters of `chars` added (bytes outside visible ASCII are ignored).
    pub const fn with(mut self, chars: &str) -> Self {
        let bytes = chars.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            self = self.with_range(bytes[i], bytes[i]);
            i += 1;
        }
        self
    }

    /// The set with the characters of `chars` removed.
    pub const fn without(mut self, chars: &str) -> Self {
        let bytes = chars.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            if b < 128 {
                self.0[(b >> 6) as usize] &= !(1 << (b & 63));
            }
            i += 1;
        }
        self
    }

    const fn with_range(mut self, from: u8, to: u8) -> Self {
        let mut b = from;
        while b <= to {
            if b.is_ascii_graphic() {
                self.0[(b >> 6) as usize] |= 1 << (b & 63);
            }
            if b == u8::MAX {
                break;
            }
            b += 1;
        }
        self
    }

    /// `true` when every byte of `bytes` is in the set.
    ///
    /// Runs without early exit: ids are short, and valid ones (the common case) are read to the
    /// end anyway. The default set is checked through a 256-byte table (one load per byte).
    #[inline]
    pub fn contains_all(&self, bytes: &[u8]) -> bool {
        if *self == Self::DEFAULT {
            let mut outside = 0u8;
            for &b in bytes {
                outside |= OUTSIDE_DEFAULT[usize::from(b)];
            }
            outside == 0
        } else {
            let [low, high] = self.0;
            bytes.iter().fold(true, |ok, &b| {
                let word = if b < 64 { low } else { high };
                ok & (b < 128) & ((word >> (b & 63)) & 1 != 0)
            })
        }
    }

    /// `true` when `byte` is in the set.
    #[inline]
    pub const fn contains(&self, byte: u8) -> bool {
        byte < 128 && self.0[(byte >> 6) as usize] & (1 << (byte & 63)) != 0
    }
}

/// 1 for every byte outside [`AllowedChars::DEFAULT`].
static OUTSIDE_DEFAULT: [u8; 256] = {
    let mut table = [1u8; 256];
    let mut b = 0;
    while b < 256 {
        if AllowedChars::DEFAULT.contains(b as u8) {
            table[b] = 0;
        }
        b += 1;
    }
    table
};

impl Default for AllowedChars {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl fmt::Debug for AllowedChars {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let chars: String = (b'!'..=b'~')
            .filter(|b| self.contains(*b))
            .map(char::from)
            .collect();
        f.debug_tuple("AllowedChars").field(&chars).finish()
    }
}

// === impl RejectReason ===

/// Why an incoming id was not kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RejectReason {
    /// The header was present but empty.
    Empty,
    /// The value was longer than the layer's `max_len`.
    TooLong,
    /// The value held a byte outside the allowed characters (control bytes, spaces, non-ASCII,
    /// or punctuation the policy leaves out).
    DisallowedChar,
    /// The header appeared more than once, so which id is meant is ambiguous.
    Multiple,
    /// The value may have been valid, but the layer always generates (a trust boundary).
    Untrusted,
}

impl RejectReason {
    /// A short, stable name for logs and metrics (`"too_long"`).
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Empty => "empty",
            Self::TooLong => "too_long",
            Self::DisallowedChar => "disallowed_char",
            Self::Multiple => "multiple",
            Self::Untrusted => "untrusted",
        }
    }
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

// === impl ClientRequestId ===

/// The id a client sent when the layer did not keep it, sanitized, in request extensions.
///
/// Inserted only when the layer is built with
/// [`keep_client_id(true)`](crate::RequestIdLayer::keep_client_id). The raw value is never
/// copied: at most `max_len` bytes of it are kept, and every byte outside the allowed characters
/// (and `%` itself) is percent-encoded, so [`as_str`](Self::as_str) is visible ASCII that is
/// safe to log or put in a header. A value cut short is marked by
/// [`is_truncated`](Self::is_truncated).
///
/// ```
/// # use espresso_request_id::{ClientRequestId, RejectReason};
/// fn log_correlation(client: Option<&ClientRequestId>) {
///     if let Some(client) = client {
///         tracing::info!(client_request_id = %client, reason = %client.reason(), "client id replaced");
///     }
/// }
/// # log_correlation(None);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClientRequestId {
    escaped: String,
    reason: RejectReason,
    truncated: bool,
}

impl ClientRequestId {
    pub(crate) fn escape(
        raw: &HeaderValue,
        reason: RejectReason,
        allowed: &AllowedChars,
        max_len: usize,
    ) -> Self {
        const HEX: &[u8; 16] = b"0123456789ABCDEF";
        let raw = raw.as_bytes();
        let kept = &raw[..raw.len().min(max_len)];
        let mut escaped = String::with_capacity(kept.len());
        for &b in kept {
            if allowed.contains(b) && b != b'%' {
                escaped.push(char::from(b));
            } else {
                escaped.push('%');
                escaped.push(char::from(HEX[usize::from(b >> 4)]));
                escaped.push(char::from(HEX[usize::from(b & 15)]));
            }
        }
        Self {
            escaped,
            reason,
            truncated: kept.len() < raw.len(),
        }
    }

    /// The sanitized value.
    pub fn as_str(&self) -> &str {
        &self.escaped
    }

    /// Why the layer did not keep it.
    pub fn reason(&self) -> RejectReason {
        self.reason
    }

    /// `true` when the client's value was longer than `max_len` and only its start is kept.
    pub fn is_truncated(&self) -> bool {
        self.truncated
    }
}

impl fmt::Display for ClientRequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.escaped)
    }
}

// === validation ===

/// How the layer judges an incoming id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Policy {
    pub(crate) max_len: usize,
    pub(crate) allowed: AllowedChars,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            max_len: 128,
            allowed: AllowedChars::DEFAULT,
        }
    }
}

/// What the request carried in the id header.
#[derive(Debug)]
pub(crate) enum Incoming<'a> {
    /// No id header.
    Missing,
    /// One acceptable value.
    Valid(&'a HeaderValue),
    /// A value (or several) that must not be trusted.
    Rejected(RejectReason),
}

impl Policy {
    pub(crate) fn check_value(&self, value: &[u8]) -> Result<(), RejectReason> {
        if value.is_empty() {
            Err(RejectReason::Empty)
        } else if value.len() > self.max_len {
            Err(RejectReason::TooLong)
        } else if !self.allowed.contains_all(value) {
            Err(RejectReason::DisallowedChar)
        } else {
            Ok(())
        }
    }

    pub(crate) fn check<'a>(&self, headers: &'a HeaderMap, name: &HeaderName) -> Incoming<'a> {
        let mut values = headers.get_all(name).iter();
        let Some(first) = values.next() else {
            return Incoming::Missing;
        };
        if values.next().is_some() {
            return Incoming::Rejected(RejectReason::Multiple);
        }
        match self.check_value(first.as_bytes()) {
            Ok(()) => Incoming::Valid(first),
            Err(reason) => Incoming::Rejected(reason),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_set_is_the_documented_one() {
        let set = AllowedChars::default();
        let members: String = (0..=255u8)
            .filter(|b| set.contains(*b))
            .map(char::from)
            .collect();
        assert_eq!(
            members,
            "-.0123456789:ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"
        );
        assert_eq!(
            format!("{set:?}"),
            "AllowedChars(\"-.0123456789:ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz\")"
        );
    }

    #[test]
    fn sets_never_hold_unsafe_bytes() {
        let set = AllowedChars::visible_ascii().with(" \t\r\n\u{7f}é");
        for b in (0..=0x20u8).chain(0x7f..=0xff) {
            assert!(!set.contains(b), "{b:#x}");
        }
        assert!((b'!'..=b'~').all(|b| set.contains(b)));
        let fewer = set.without("/é");
        assert!(!fewer.contains(b'/') && fewer.contains(b'+'));
        assert!(!AllowedChars::none().contains(b'a'));
    }

    #[test]
    fn the_fast_paths_agree_with_contains() {
        let sets = [
            AllowedChars::DEFAULT,
            AllowedChars::DEFAULT.with("/"),
            AllowedChars::visible_ascii(),
            AllowedChars::none().with("a?~"),
        ];
        for set in sets {
            for b in 0..=255u8 {
                for input in [
                    vec![b],
                    vec![b'a', b, b'0'],
                    [b'-'; 40].iter().copied().chain([b]).collect(),
                ] {
                    assert_eq!(
                        set.contains_all(&input),
                        input.iter().all(|&c| set.contains(c)),
                        "{set:?} {input:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn values_are_judged_by_length_and_charset() {
        let policy = Policy::default();
        assert_eq!(policy.check_value(b"abc-123_x.y:z"), Ok(()));
        assert_eq!(policy.check_value(&[b'a'; 128]), Ok(()));
        assert_eq!(policy.check_value(b""), Err(RejectReason::Empty));
        assert_eq!(policy.check_value(&[b'a'; 129]), Err(RejectReason::TooLong));
        for bad in [
            &b"a b"[..],
            b"a\tb",
            b"a\r\nb",
            b"a\0b",
            b"caf\xc3\xa9",
            b"\xff",
            b"a/b",
            b"a%0D%0A",
            b"<script>",
        ] {
            assert_eq!(
                policy.check_value(bad),
                Err(RejectReason::DisallowedChar),
                "{bad:?}"
            );
        }
        let custom = Policy {
            max_len: 4,
            allowed: AllowedChars::none().with("ab/"),
        };
        assert_eq!(custom.check_value(b"a/b"), Ok(()));
        assert_eq!(
            custom.check_value(b"abc"),
            Err(RejectReason::DisallowedChar)
        );
        assert_eq!(custom.check_value(b"ababa"), Err(RejectReason::TooLong));
    }

    #[test]
    fn headers_must_hold_exactly_one_value() {
        let name = HeaderName::from_static("x-request-id");
        let policy = Policy::default();
        let mut headers = HeaderMap::new();
        assert!(matches!(policy.check(&headers, &name), Incoming::Missing));
        headers.append(&name, HeaderValue::from_static("one"));
        assert!(matches!(policy.check(&headers, &name), Incoming::Valid(v) if v == "one"));
        headers.append(&name, HeaderValue::from_static("two"));
        assert!(matches!(
            policy.check(&headers, &name),
            Incoming::Rejected(RejectReason::Multiple)
        ));
    }

    #[test]
    fn client_ids_are_escaped_and_bounded() {
        let raw = HeaderValue::from_bytes(b"ab c%\xff\tz").unwrap();
        let client = ClientRequestId::escape(
            &raw,
            RejectReason::DisallowedChar,
            &AllowedChars::DEFAULT,
            128,
        );
        assert_eq!(client.as_str(), "ab%20c%25%FF%09z");
        assert_eq!(client.to_string(), client.as_str());
        assert_eq!(client.reason(), RejectReason::DisallowedChar);
        assert!(!client.is_truncated());

        let long = HeaderValue::from_str(&"x".repeat(300)).unwrap();
        let client =
            ClientRequestId::escape(&long, RejectReason::TooLong, &AllowedChars::DEFAULT, 8);
        assert_eq!(client.as_str(), "xxxxxxxx");
        assert!(client.is_truncated());
        assert_eq!(client.reason().as_str(), "too_long");
    }
}
