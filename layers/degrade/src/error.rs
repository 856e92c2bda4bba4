//! The error of the `Error`-returning mode.

use crate::DegradeReason;
use std::fmt;

/// A request was shed: returned by a layer built with
/// [`DegradeLayer::error`](crate::DegradeLayer::error) instead of a fallback answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shed {
    reason: DegradeReason,
}

impl Shed {
    pub(crate) fn new(reason: DegradeReason) -> Self {
        Self { reason }
    }

    /// Why the request was shed.
    pub fn reason(&self) -> DegradeReason {
        self.reason
    }
}

impl fmt::Display for Shed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "request shed: {}", self.reason)
    }
}

impl std::error::Error for Shed {}
