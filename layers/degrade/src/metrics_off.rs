//! Without the `metrics` feature: no value of [`Metrics`] can exist, so a layer's limiter never
//! has one and every report compiles to nothing.

use crate::{DegradeReason, Priority};

/// Uninhabited: the metrics of a build without metrics.
#[derive(Debug, Clone)]
pub(crate) enum Metrics {}

impl Metrics {
    pub(crate) fn limit(&self, _: usize) {
        match *self {}
    }

    pub(crate) fn gauges(&self, _: usize, _: usize) {
        match *self {}
    }

    pub(crate) fn inflight(&self, _: usize) {
        match *self {}
    }

    pub(crate) fn primary(&self, _: Priority) {
        match *self {}
    }

    pub(crate) fn fallback(&self, _: Priority, _: DegradeReason) {
        match *self {}
    }

    pub(crate) fn abandoned(&self, _: Priority) {
        match *self {}
    }
}
