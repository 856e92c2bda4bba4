//! The IETF rate-limit headers (draft-ietf-httpapi-ratelimit-headers).
//!
//! - `RateLimit-Policy` describes the quotas: `"default";q=100;w=1` is 100 requests (`q`) per
//!   1-second window (`w`). Several quotas are a list: `"default";q=10;w=1, "hourly";q=1000;w=3600`.
//! - `RateLimit` reports the tightest quota for this request: `"default";r=0;t=1` means 0
//!   requests remaining (`r`), full again in 1 second (`t`, rounded up).
//!
//! A GCRA quota has no fixed window: `q`/`w` is its steady rate over its period (rounded up to
//! whole seconds), `r` is how many requests a burst could still send now, and `t` is how long
//! until the key is back to its full burst. On a refusal, `Retry-After` says when *one* request
//! will be admitted and takes precedence, as the draft says.

use crate::{Decision, Quotas};
use http::{HeaderMap, HeaderName, HeaderValue};
use std::time::Duration;

/// `RateLimit`.
pub const RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");
/// `RateLimit-Policy`.
pub const RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");

/// When the layer adds the rate-limit headers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum HeaderMode {
    /// On refusals only (the default).
    #[default]
    OnRejection,
    /// On every response (admitted ones too), unless the inner service already set them.
    Always,
    /// Never (a refusal still carries `Retry-After`).
    Never,
}

/// Whole seconds, rounded up.
pub(crate) fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// The `RateLimit` value for a decision taken under `quotas`.
pub(crate) fn ratelimit_value(quotas: &Quotas, decision: &Decision) -> Option<HeaderValue> {
    let policy = quotas.compiled().get(decision.policy)?;
    let remaining = if decision.allowed {
        decision.remaining()
    } else {
        0
    };
    let value = format!(
        "\"{}\";r={};t={}",
        policy.name,
        remaining,
        ceil_secs(decision.reset())
    );
    HeaderValue::try_from(value).ok()
}

/// Both headers for a decision, as a map (empty when there are no quotas).
pub(crate) fn header_map(quotas: &Quotas, decision: &Decision) -> HeaderMap {
    let mut map = HeaderMap::with_capacity(2);
    if let Some(value) = ratelimit_value(quotas, decision) {
        map.insert(RATELIMIT_POLICY, quotas.policy_header().clone());
        map.insert(RATELIMIT, value);
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Quota;

    #[test]
    fn values_follow_the_draft() {
        let q: Quotas = Quota::per_second(100).into();
        let d = Decision::new(
            false,
            Duration::from_millis(10),
            0,
            Duration::from_millis(990),
            0,
        );
        let map = header_map(&q, &d);
        assert_eq!(map[RATELIMIT_POLICY], "\"default\";q=100;w=1");
        assert_eq!(map[RATELIMIT], "\"default\";r=0;t=1");
        assert!(header_map(&Quotas::from(vec![]), &Decision::unlimited()).is_empty());
    }
}
