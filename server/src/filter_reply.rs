//! The answer of `POST /v1/filter`, exactly as DESIGN.md's JSON contract spells it.

use espresso_common::RequestId;
use espresso_filter_core::{FilterResponse, Hit, Verdict};
use serde::Serialize;

/// `{"request_id", "verdict", "masked", "hits", "degraded"}`
#[derive(Serialize)]
pub(crate) struct FilterReply<'a> {
    request_id: &'a str,
    verdict: Verdict,
    masked: &'a str,
    hits: &'a [Hit],
    degraded: bool,
}

impl<'a> FilterReply<'a> {
    pub(crate) fn new(id: Option<&'a RequestId>, response: &'a FilterResponse) -> Self {
        Self {
            request_id: id.map_or("", RequestId::as_str),
            verdict: response.verdict,
            masked: &response.masked,
            hits: &response.hits,
            degraded: response.degraded,
        }
    }
}
