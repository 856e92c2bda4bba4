//! The answer of `POST /v1/filter`, exactly as `docs/http-api.md` spells it.

use crate::Checked;
use axum::{
    body::Body,
    response::{IntoResponse, Response},
};
use espresso_filter_core::{Hit, Verdict};
use http::{HeaderValue, header::CONTENT_TYPE};
use serde::Serialize;

/// `{"request_id", "verdict", "masked", "hits", "degraded"}`, and `"hits_truncated"` when
/// `filter.max_hits` left hits out.
#[derive(Serialize)]
pub(crate) struct FilterReply<'a> {
    request_id: &'a str,
    verdict: Verdict,
    masked: &'a str,
    hits: &'a [Hit],
    degraded: bool,
    #[serde(skip_serializing_if = "is_zero")]
    hits_truncated: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl<'a> FilterReply<'a> {
    /// The reply to a request with id `request_id` (empty when it has none).
    pub(crate) fn new(request_id: &'a str, checked: &'a Checked) -> Self {
        let response = &checked.response;
        Self {
            request_id,
            verdict: response.verdict,
            masked: &response.masked,
            hits: &response.hits,
            degraded: response.degraded,
            hits_truncated: checked.hits_truncated,
        }
    }
}

impl FilterReply<'_> {
    /// The JSON `serde_json` would write for this reply, byte for byte, with the field names
    /// written as they are and the id and masked text copied whole unless they hold a character
    /// JSON escapes: per character, serde's escaping cost more than the rest of the reply.
    fn write_json(&self, out: &mut Vec<u8>) -> serde_json::Result<()> {
        out.extend_from_slice(b"{\"request_id\":");
        write_str(out, self.request_id)?;
        out.extend_from_slice(b",\"verdict\":\"");
        out.extend_from_slice(self.verdict.as_str().as_bytes());
        out.extend_from_slice(b"\",\"masked\":");
        write_str(out, self.masked)?;
        out.extend_from_slice(b",\"hits\":");
        serde_json::to_writer(&mut *out, self.hits)?;
        out.extend_from_slice(if self.degraded {
            b",\"degraded\":true"
        } else {
            b",\"degraded\":false"
        });
        if !is_zero(&self.hits_truncated) {
            out.extend_from_slice(b",\"hits_truncated\":");
            serde_json::to_writer(&mut *out, &self.hits_truncated)?;
        }
        out.push(b'}');
        Ok(())
    }
}

/// `s` as a JSON string: quoted as it is when nothing in it needs escaping (no control
/// character, `"` or `\\`, exactly what serde_json escapes), else escaped by serde_json.
fn write_str(out: &mut Vec<u8>, s: &str) -> serde_json::Result<()> {
    if is_plain(s.as_bytes()) {
        out.reserve(s.len() + 2);
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
        Ok(())
    } else {
        serde_json::to_writer(out, s)
    }
}

/// `true` when no byte of `s` is below `0x20`, `"` or `\\`. Eight bytes at a time: a word has
/// such a byte exactly when one of the three tests below sets a high bit (each can misreport
/// bytes above the first one it finds, never the word as a whole).
fn is_plain(s: &[u8]) -> bool {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGHS: u64 = ONES * 0x80;
    let (words, rest) = s.as_chunks::<8>();
    let flagged = words.iter().fold(0, |flagged, word| {
        let w = u64::from_ne_bytes(*word);
        let (quote, backslash) = (w ^ (ONES * u64::from(b'"')), w ^ (ONES * u64::from(b'\\')));
        let control = w.wrapping_sub(ONES * 0x20) & !w;
        let quote = quote.wrapping_sub(ONES) & !quote;
        let backslash = backslash.wrapping_sub(ONES) & !backslash;
        flagged | ((control | quote | backslash) & HIGHS)
    });
    flagged == 0 && rest.iter().all(|&b| b >= 0x20 && b != b'"' && b != b'\\')
}

impl IntoResponse for FilterReply<'_> {
    /// `200` with the JSON, written into a `Vec` sized for a typical reply (`axum::Json` writes
    /// through a `BytesMut` writer, piece by piece, and grows it from 128 bytes), and the
    /// response built directly (axum's `(headers, body)` inserts the content type twice).
    fn into_response(self) -> Response {
        let mut json = Vec::with_capacity(256 + self.masked.len());
        match self.write_json(&mut json) {
            Ok(()) => {
                let mut response = Response::new(Body::from(json));
                response
                    .headers_mut()
                    .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                response
            }
            // Strings, numbers and booleans only: writing them into memory does not fail.
            Err(error) => {
                tracing::error!(%error, "could not serialize a filter reply");
                crate::internal_error(Box::new(error))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use espresso_filter_core::Level;

    fn reply<'a>(
        id: &'a str,
        masked: &'a str,
        hits: &'a [Hit],
        truncated: usize,
    ) -> FilterReply<'a> {
        FilterReply {
            request_id: id,
            verdict: Verdict::Review,
            masked,
            hits,
            degraded: truncated % 2 == 1,
            hits_truncated: truncated,
        }
    }

    #[test]
    fn plain_strings_are_told_apart_by_every_byte_at_every_position() {
        let plain = |s: &[u8]| s.iter().all(|&b| b >= 0x20 && b != b'"' && b != b'\\');
        for len in 1..=17 {
            for at in 0..len {
                for b in 0..=255u8 {
                    for fill in [b'a', 0x80, 0xff, 0x21, 0x5d] {
                        let mut s = vec![fill; len];
                        s[at] = b;
                        assert_eq!(is_plain(&s), plain(&s), "{s:?}");
                    }
                }
            }
        }
        assert!(is_plain(b""));
    }

    #[test]
    fn the_written_json_is_what_serde_writes() {
        let hits = [Hit {
            word: "b\"ad".into(),
            level: Level::Normal,
            category: "x\ny".into(),
            list: "default".into(),
            start: 3,
            end: 9,
        }];
        let texts = [
            "",
            "plain 你好 🙂",
            "quote \" and \\ back",
            "ctl \u{1}\t\u{1f} del \u{7f}",
        ];
        for (i, text) in texts.into_iter().enumerate() {
            for id in ["0b0c6f0e-1d2e-4f5a-8b9c-0d1e2f3a4b5c", "a\"b\\c"] {
                for (hits, truncated) in [(&hits[..0], 0), (&hits[..], i)] {
                    let reply = reply(id, text, hits, truncated);
                    let mut written = Vec::new();
                    reply.write_json(&mut written).unwrap();
                    let serde = serde_json::to_vec(&reply).unwrap();
                    assert_eq!(
                        String::from_utf8(written).unwrap(),
                        String::from_utf8(serde).unwrap()
                    );
                }
            }
        }
    }
}
