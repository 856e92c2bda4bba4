//! The answer of `POST /v1/filter`, exactly as `docs/http-api.md` spells it.

use crate::Checked;
use axum::response::{IntoResponse, Response};
use espresso_common::RequestId;
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
    pub(crate) fn new(id: Option<&'a RequestId>, checked: &'a Checked) -> Self {
        let response = &checked.response;
        Self {
            request_id: id.map_or("", RequestId::as_str),
            verdict: response.verdict,
            masked: &response.masked,
            hits: &response.hits,
            degraded: response.degraded,
            hits_truncated: checked.hits_truncated,
        }
    }
}

impl IntoResponse for FilterReply<'_> {
    /// `200` with the JSON. Written into a `Vec` sized for a typical reply: `axum::Json` writes
    /// through a `BytesMut` writer, piece by piece, and grows it from 128 bytes.
    fn into_response(self) -> Response {
        let mut json = Vec::with_capacity(256 + self.masked.len());
        match serde_json::to_writer(&mut json, &self) {
            Ok(()) => (
                [(CONTENT_TYPE, HeaderValue::from_static("application/json"))],
                json,
            )
                .into_response(),
            // Strings, numbers and booleans only: writing them into memory does not fail.
            Err(error) => {
                tracing::error!(%error, "could not serialize a filter reply");
                crate::internal_error(Box::new(error))
            }
        }
    }
}
