//! The response future of [`CircuitBreakerService`](crate::CircuitBreakerService).

use crate::{CircuitOpen, Permit};

/// Drives the inner call and classifies its outcome into the breaker's window, or answers a call
/// the open breaker refused (`R`, the future of the refusal policy `P` for requests `Req`). The
/// shape every judging layer shares: [`espresso_common::refusal::ResponseFuture`].
pub type ResponseFuture<F, C, P, Req, R> =
    espresso_common::refusal::ResponseFuture<F, C, Permit, P, Req, CircuitOpen, R>;
