//! What counts as a failed call, decided at the response head or, for a streamed answer, at its
//! end.
//!
//! Breakers, adaptive limits, slow-call logs and metrics all need to know how a finished call went.
//! That decision is a policy, [`Classify`]. A gRPC server sends the status of a streamed (or any
//! non-trailers-only) answer in the trailers, after the messages, so the head alone cannot always
//! decide: a classifier then hands back a [`ClassifyEos`] step that sees the trailers when the body
//! ends. [`ClassifiedBody`] carries that step inside the response body and reports the outcome to a
//! [`Complete`] receiver (a breaker's permit, a limiter's sample, a closure). This is the shape of
//! linkerd2-proxy's `ClassifyResponse` / `ClassifyEos`.
//!
//! [`ServerErrorsAsFailures`] is the usual policy; any closure `Fn(Result<&Res, &E>) -> Outcome`
//! is one too (deciding at the head, for responses of any type).
//!
//! ```
//! use espresso_common::classify::{Classify, Outcome, ServerErrorsAsFailures};
//! use http::{HeaderMap, Response};
//! use http_body_util::{BodyExt, StreamBody};
//! use std::{cell::Cell, convert::Infallible, rc::Rc};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! // A gRPC answer: messages first, then `grpc-status: 14` (UNAVAILABLE) in the trailers.
//! let mut trailers = HeaderMap::new();
//! trailers.insert("grpc-status", "14".parse().unwrap());
//! let frames = vec![
//!     Ok::<_, Infallible>(http_body::Frame::data(bytes::Bytes::from_static(b"message"))),
//!     Ok(http_body::Frame::trailers(trailers)),
//! ];
//! let response = Response::builder()
//!     .header("content-type", "application/grpc")
//!     .body(StreamBody::new(futures_util::stream::iter(frames)))
//!     .unwrap();
//!
//! let seen = Rc::new(Cell::new(None));
//! let record = { let seen = seen.clone(); move |outcome: Outcome| seen.set(Some(outcome)) };
//! let classified = ServerErrorsAsFailures::new()
//!     .classify(Ok::<_, Infallible>(response), record)
//!     .unwrap();
//! assert_eq!(seen.get(), None); // the head says nothing yet
//! classified.into_body().collect().await.unwrap();
//! assert_eq!(seen.get(), Some(Outcome::Failure));
//! # }
//! ```

use crate::grpc::{Code, GRPC_STATUS, is_grpc_type};
use bytes::Buf;
use http::{HeaderMap, HeaderValue, Response, StatusCode, header::CONTENT_TYPE};
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use std::{
    any::TypeId,
    convert::Infallible,
    error::Error,
    fmt,
    pin::Pin,
    sync::{PoisonError, RwLock},
    task::{Context, Poll, ready},
    time::Duration,
};

/// How a finished call counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The call succeeded.
    Success,
    /// The call failed and counts against the callee.
    Failure,
    /// The call says nothing about the callee's health (a client error, a cancelled call).
    Ignored,
}

/// The mark, in a response's extensions, of an answer a refusing layer gave in its service's
/// place ([`Respond`](crate::refusal::Respond): rate limited, circuit open, shed): the service
/// never saw the request, so the answer says nothing about its health.
/// [`ServerErrorsAsFailures`] classifies such a response as [`Outcome::Ignored`], so a breaker
/// around an overload guard does not open because the guard shed load.
///
/// ```
/// use espresso_common::classify::{Classify, Outcome, Refused, ServerErrorsAsFailures};
/// use http::{Response, StatusCode};
/// use std::convert::Infallible;
///
/// let mut shed = Response::new(());
/// *shed.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
/// shed.extensions_mut().insert(Refused);
/// let mut class = None;
/// let result: Result<_, Infallible> = Ok(shed);
/// let _ = ServerErrorsAsFailures::new().classify(result, |outcome| class = Some(outcome));
/// assert_eq!(class, Some(Outcome::Ignored));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Refused;

/// Receives a call's class once it is known: at the response head, or when the body ends.
///
/// Implemented by every `FnOnce(C)`; a layer implements it for its own record (a breaker's permit,
/// a limiter's sample). A receiver dropped without being completed means the call was abandoned
/// (its body dropped before the end).
pub trait Complete<C> {
    /// Records `class`.
    fn complete(self, class: C);

    /// Told at the response head when the head cannot decide, before the class comes at the
    /// end of the body (a gRPC status in the trailers after streamed messages). The callee has
    /// answered by then: what follows is as long as the caller reads. A breaker's permit takes
    /// the call's time here, so a long stream is not a slow call, and a half-open probe counts
    /// here; a concurrency limit's permit takes its sample and frees its place. The default does
    /// nothing.
    fn deferred(&mut self) {}
}

impl<C, F: FnOnce(C)> Complete<C> for F {
    fn complete(self, class: C) {
        self(class)
    }
}

/// A call's time to its response head, noted by a [`Complete`] receiver told
/// [`deferred`](Complete::deferred): eight bytes, where an `Option<Duration>` takes sixteen,
/// since a receiver lives in every call's response future.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeadTime(u64);

impl HeadTime {
    /// No head yet.
    pub const NONE: Self = Self(u64::MAX);

    /// Notes the time to the head (a time past 584 years is kept as that).
    pub fn set(&mut self, took: Duration) {
        self.0 = u64::try_from(took.as_nanos()).map_or(u64::MAX - 1, |n| n.min(u64::MAX - 1));
    }

    /// The time to the head, once noted.
    pub fn get(self) -> Option<Duration> {
        (self != Self::NONE).then(|| Duration::from_nanos(self.0))
    }
}

/// A test of whether an error is of one refusal type.
type IsRefusal = fn(&(dyn Error + Send + Sync + 'static)) -> bool;

/// The refusal types `ReturnError` has returned, each with its test: the errors [`is_refusal`]
/// knows. A handful of types at most, one per refusing layer.
static RETURNED: RwLock<Vec<(TypeId, IsRefusal)>> = RwLock::new(Vec::new());

/// Notes that `R` is a refusal type (called by `ReturnError`).
#[cfg_attr(not(feature = "refusal"), allow(dead_code))]
pub(crate) fn note_returned<R: Error + Send + Sync + 'static>() {
    fn is<R: Error + Send + Sync + 'static>(error: &(dyn Error + Send + Sync + 'static)) -> bool {
        error.is::<R>()
    }
    let id = TypeId::of::<R>();
    let known = |returned: &[(TypeId, IsRefusal)]| returned.iter().any(|(t, _)| *t == id);
    if known(&RETURNED.read().unwrap_or_else(PoisonError::into_inner)) {
        return;
    }
    let mut returned = RETURNED.write().unwrap_or_else(PoisonError::into_inner);
    if !known(&returned) {
        returned.push((id, is::<R>));
    }
}

/// Whether `error` is a refusal a layer returned with `.return_error()` (`ReturnError`: rate
/// limited, circuit open, shed...): not the callee's failure, but another layer's decision not
/// to call it. [`ServerErrorsAsFailures`] ignores such errors, as it ignores answers marked
/// [`Refused`], so that a breaker outside a rate limiter with `.return_error()` does not open
/// because the limiter refused.
///
/// ```
/// use espresso_common::{BoxError, classify::is_refusal};
///
/// let callee: BoxError = "connection refused".into();
/// assert!(!is_refusal(&*callee));
/// ```
pub fn is_refusal(error: &(dyn Error + Send + Sync + 'static)) -> bool {
    RETURNED
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .iter()
        .any(|(_, is)| is(error))
}

/// Decides how a call's result counts, and shapes the response so that a decision the head cannot
/// make is made at the end of its body.
///
/// `Res` and `E` are the inner service's response and error; [`Response<D>`](Self::Response) is
/// the response a layer hands on once `D` (a [`Complete`] receiver) is attached.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot classify the results `Result<{Res}, {E}>`",
    label = "classifier chosen here",
    note = "`ServerErrorsAsFailures` (the default) classifies `http::Response`s; for other responses \
            give the layer a closure `|result: Result<&Res, &E>| -> Outcome` with `.classify(...)`"
)]
pub trait Classify<Res, E> {
    /// The response handed on: `Res` itself, or `Res` with a body that finishes the decision.
    type Response<D>;

    /// Classifies `result`, completing `done` now when the head decides, or when the returned
    /// response's body ends.
    fn classify<D: Complete<Outcome>>(
        &self,
        result: Result<Res, E>,
        done: D,
    ) -> Result<Self::Response<D>, E>;

    /// Types a response that is not classified (a layer's own answer, which never reached the
    /// callee) as [`Response<D>`](Self::Response).
    fn pass<D>(response: Res) -> Self::Response<D>;
}

impl<F, Res, E> Classify<Res, E> for F
where
    F: Fn(Result<&Res, &E>) -> Outcome,
{
    type Response<D> = Res;

    fn classify<D: Complete<Outcome>>(&self, result: Result<Res, E>, done: D) -> Result<Res, E> {
        done.complete(self(result.as_ref()));
        result
    }

    fn pass<D>(response: Res) -> Res {
        response
    }
}

/// The end-of-stream step of a classification: sees the trailers (or their absence) of a body
/// that ended, or the error it ended with.
pub trait ClassifyEos {
    /// What the step decides (an [`Outcome`], a gRPC [`Code`]...).
    type Class;

    /// The body ended, with `trailers` if it sent any.
    fn eos(self, trailers: Option<&HeaderMap>) -> Self::Class;

    /// The body failed before its end.
    fn error(self) -> Self::Class;
}

impl ClassifyEos for Infallible {
    type Class = Outcome;

    fn eos(self, _: Option<&HeaderMap>) -> Outcome {
        match self {}
    }

    fn error(self) -> Outcome {
        match self {}
    }
}

/// The gRPC status of an answer whose head did not carry one: `grpc-status` from the trailers, or
/// `UNKNOWN` when they lack it (the gRPC protocol's rule for a missing status) or the body fails
/// before its end.
#[derive(Debug, Clone, Copy, Default)]
pub struct GrpcStatus;

impl GrpcStatus {
    /// The status of a trailers-only answer, from `grpc-status` in the response head (`UNKNOWN`
    /// when it does not parse), or `None` when the head has none and the trailers will tell.
    pub fn in_head(headers: &HeaderMap) -> Option<Code> {
        headers.get(&GRPC_STATUS).map(Self::of_head)
    }

    /// The status a `grpc-status` value in a response head says (`UNKNOWN` when it does not
    /// parse).
    fn of_head(value: &HeaderValue) -> Code {
        Code::from_header(value).unwrap_or(Code::Unknown)
    }
}

impl ClassifyEos for GrpcStatus {
    type Class = Code;

    fn eos(self, trailers: Option<&HeaderMap>) -> Code {
        trailers
            .and_then(|t| t.get(&GRPC_STATUS))
            .and_then(Code::from_header)
            .unwrap_or(Code::Unknown)
    }

    fn error(self) -> Code {
        Code::Unknown
    }
}

pin_project! {
    /// A response body that finishes a classification when it ends: the [`ClassifyEos`] step sees
    /// the trailers, and its class goes to the [`Complete`] receiver. A body whose class is
    /// already known passes its frames through untouched.
    pub struct ClassifiedBody<B, C, D> {
        #[pin]
        body: B,
        pending: Option<(C, D)>,
    }
}

impl<B, C, D> ClassifiedBody<B, C, D> {
    /// `body`, with the step still to run (`Some`) or none (`None`).
    pub fn new(body: B, pending: Option<(C, D)>) -> Self {
        Self { body, pending }
    }

    /// The wrapped body.
    pub fn get_ref(&self) -> &B {
        &self.body
    }
}

impl<B: fmt::Debug, C, D> fmt::Debug for ClassifiedBody<B, C, D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClassifiedBody")
            .field("body", &self.body)
            .field("pending", &self.pending.is_some())
            .finish()
    }
}

impl<B: Default, C, D> Default for ClassifiedBody<B, C, D> {
    fn default() -> Self {
        Self::new(B::default(), None)
    }
}

impl<B, C, D> Body for ClassifiedBody<B, C, D>
where
    B: Body,
    B::Data: Buf,
    C: ClassifyEos,
    D: Complete<C::Class>,
{
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        let this = self.project();
        let frame = ready!(this.body.poll_frame(cx));
        if let Some((step, done)) = this.pending.take() {
            match &frame {
                Some(Ok(frame)) if frame.is_trailers() => {
                    done.complete(step.eos(frame.trailers_ref()))
                }
                Some(Ok(_)) => *this.pending = Some((step, done)),
                Some(Err(_)) => done.complete(step.error()),
                None => done.complete(step.eos(None)),
            }
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        // Ends only when the step has run, so that a caller stopping at `is_end_stream` polls
        // once more and lets it run.
        self.pending.is_none() && self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// Counts an `Err`, a failing HTTP status (5xx by default) and a gRPC status from a chosen set as
/// failures; everything else as a success.
///
/// The gRPC status is read from the response head, where a trailers-only answer (an error before
/// any message) carries it; a gRPC answer without one in its head is decided at the end of its
/// body, from the trailers ([`GrpcStatus`]). The default set is `UNAVAILABLE`,
/// `DEADLINE_EXCEEDED`, `INTERNAL`, `UNKNOWN` and `DATA_LOSS`: the codes that say the server, not
/// the request, is at fault. An answer marked [`Refused`] (another layer refused the request in
/// the service's place) is [`Outcome::Ignored`].
#[derive(Clone, Copy)]
pub struct ServerErrorsAsFailures {
    grpc_failures: u32,
    http_failure: fn(StatusCode) -> bool,
}

impl ServerErrorsAsFailures {
    /// The default policy: HTTP 5xx and the default gRPC set.
    pub fn new() -> Self {
        Self {
            grpc_failures: 0,
            http_failure: |status| status.is_server_error(),
        }
        .grpc_failures([
            Code::Unavailable,
            Code::DeadlineExceeded,
            Code::Internal,
            Code::Unknown,
            Code::DataLoss,
        ])
    }

    /// Counts exactly these gRPC codes as failures.
    pub fn grpc_failures(mut self, codes: impl IntoIterator<Item = Code>) -> Self {
        self.grpc_failures = codes.into_iter().fold(0, |set, c| set | 1 << c as u32);
        self
    }

    /// Counts the HTTP statuses for which `is_failure` is `true` as failures (5xx by default).
    pub fn http_failures(mut self, is_failure: fn(StatusCode) -> bool) -> Self {
        self.http_failure = is_failure;
        self
    }

    /// `true` when `code` counts as a failure.
    pub fn is_failure_code(&self, code: Code) -> bool {
        self.grpc_failures & (1 << code as u32) != 0
    }

    /// `true` when `status` counts as a failure.
    pub fn is_failure_status(&self, status: StatusCode) -> bool {
        (self.http_failure)(status)
    }

    fn outcome(&self, code: Code) -> Outcome {
        if self.is_failure_code(code) {
            Outcome::Failure
        } else {
            Outcome::Success
        }
    }
}

impl Default for ServerErrorsAsFailures {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for ServerErrorsAsFailures {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerErrorsAsFailures")
            .field("grpc_failures", &format_args!("{:#x}", self.grpc_failures))
            .finish_non_exhaustive()
    }
}

/// The end-of-stream step of [`ServerErrorsAsFailures`]: the trailers' gRPC status, against the
/// failure set.
#[derive(Debug, Clone, Copy)]
pub struct ServerErrorsEos {
    policy: ServerErrorsAsFailures,
}

impl ClassifyEos for ServerErrorsEos {
    type Class = Outcome;

    fn eos(self, trailers: Option<&HeaderMap>) -> Outcome {
        self.policy.outcome(GrpcStatus.eos(trailers))
    }

    fn error(self) -> Outcome {
        Outcome::Failure
    }
}

/// The `grpc-status` of an answer's head and whether its content type is gRPC's, as
/// [`GrpcStatus::in_head`] and [`is_grpc`](crate::grpc::is_grpc) read them. A head of a few
/// headers (an answer's, as the layers see it, holds one or two) is read in one pass, cheaper
/// than the two lookups, which hash each name; a larger one is looked up.
fn grpc_head(headers: &HeaderMap) -> (Option<&HeaderValue>, bool) {
    if headers.len() > 4 {
        let grpc = headers
            .get(CONTENT_TYPE)
            .is_some_and(|ct| is_grpc_type(ct.as_bytes()));
        return (headers.get(&GRPC_STATUS), grpc);
    }
    let (mut status, mut content_type) = (None, None);
    for (name, value) in headers {
        // The first value of each, as a lookup finds it.
        if *name == CONTENT_TYPE {
            content_type = content_type.or(Some(value));
        } else if *name == GRPC_STATUS {
            status = status.or(Some(value));
        }
    }
    let grpc = content_type.is_some_and(|ct| is_grpc_type(ct.as_bytes()));
    (status, grpc)
}

impl<B, E: 'static> Classify<Response<B>, E> for ServerErrorsAsFailures {
    type Response<D> = Response<ClassifiedBody<B, ServerErrorsEos, D>>;

    fn classify<D: Complete<Outcome>>(
        &self,
        result: Result<Response<B>, E>,
        done: D,
    ) -> Result<Self::Response<D>, E> {
        let response = match result {
            Ok(response) => response,
            Err(error) => {
                // Another layer's refusal returned as an error (`.return_error()`) is ignored,
                // as its answer marked `Refused` would be.
                let refused = (&error as &dyn std::any::Any)
                    .downcast_ref::<crate::BoxError>()
                    .is_some_and(|error| is_refusal(&**error));
                done.complete(if refused {
                    Outcome::Ignored
                } else {
                    Outcome::Failure
                });
                return Err(error);
            }
        };
        let headers = response.headers();
        let decided = if response.extensions().get::<Refused>().is_some() {
            Some(Outcome::Ignored)
        } else if self.is_failure_status(response.status()) {
            Some(Outcome::Failure)
        } else {
            let (status, grpc) = grpc_head(headers);
            if let Some(status) = status {
                Some(self.outcome(GrpcStatus::of_head(status)))
            } else if grpc {
                None
            } else {
                Some(Outcome::Success)
            }
        };
        let pending = match decided {
            Some(outcome) => {
                done.complete(outcome);
                None
            }
            None => {
                let mut done = done;
                done.deferred();
                Some((ServerErrorsEos { policy: *self }, done))
            }
        };
        Ok(response.map(|body| ClassifiedBody::new(body, pending)))
    }

    fn pass<D>(response: Response<B>) -> Self::Response<D> {
        response.map(|body| ClassifiedBody::new(body, None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use http_body_util::{BodyExt, Empty, StreamBody};
    use std::{cell::Cell, rc::Rc};

    fn response(status: StatusCode, grpc: Option<&'static str>) -> Response<Empty<Bytes>> {
        let mut r = Response::builder().status(status);
        if let Some(code) = grpc {
            r = r
                .header("content-type", "application/grpc")
                .header("grpc-status", code);
        }
        r.body(Empty::new()).unwrap()
    }

    fn at_head<B>(c: &ServerErrorsAsFailures, result: Result<Response<B>, ()>) -> Option<Outcome> {
        let seen = Cell::new(None);
        let _ = c.classify(result, |o| seen.set(Some(o)));
        seen.get()
    }

    #[test]
    fn server_errors_and_grpc_failures_in_the_head_fail() {
        let c = ServerErrorsAsFailures::default();
        assert_eq!(at_head::<()>(&c, Err(())), Some(Outcome::Failure));
        let cases = [
            (StatusCode::OK, None, Outcome::Success),
            (StatusCode::NOT_FOUND, None, Outcome::Success),
            (StatusCode::BAD_GATEWAY, None, Outcome::Failure),
            (StatusCode::OK, Some("14"), Outcome::Failure),
            (StatusCode::OK, Some("3"), Outcome::Success),
        ];
        for (status, grpc, outcome) in cases {
            assert_eq!(
                at_head(&c, Ok(response(status, grpc))),
                Some(outcome),
                "{status} {grpc:?}"
            );
        }
    }

    #[test]
    fn a_small_head_read_in_one_pass_says_what_the_lookups_say() {
        let names = ["content-type", "grpc-status", "x-other", "content-length"];
        let values = [
            "application/grpc",
            "14",
            "application/json",
            "application/grpc-web",
        ];
        // A sample (one in seven at each length) of the heads of up to six headers drawn from
        // these, repeats included.
        let mut heads = vec![HeaderMap::new()];
        for _ in 0..6 {
            let mut longer = Vec::new();
            for head in &heads {
                for name in names {
                    for value in values {
                        let mut head = head.clone();
                        head.append(name, HeaderValue::from_static(value));
                        longer.push(head);
                    }
                }
            }
            heads.extend(longer.into_iter().step_by(7));
        }
        for head in &heads {
            let expected = (
                GrpcStatus::in_head(head).is_some(),
                crate::grpc::is_grpc(head),
            );
            let (status, grpc) = grpc_head(head);
            assert_eq!((status.is_some(), grpc), expected, "{head:?}");
            assert_eq!(status, head.get(&GRPC_STATUS), "{head:?}");
        }
        assert!(heads.iter().any(|h| h.len() > 4) && heads.iter().any(|h| h.len() == 4));
    }

    #[test]
    fn failure_sets_are_configurable() {
        let c = ServerErrorsAsFailures::new()
            .grpc_failures([Code::ResourceExhausted])
            .http_failures(|s| s == StatusCode::TOO_MANY_REQUESTS);
        assert!(c.is_failure_code(Code::ResourceExhausted));
        assert!(!c.is_failure_code(Code::Unavailable));
        assert!(c.is_failure_status(StatusCode::TOO_MANY_REQUESTS));
        assert!(!c.is_failure_status(StatusCode::INTERNAL_SERVER_ERROR));
    }

    fn streamed(
        trailers: Option<&'static str>,
    ) -> Response<impl Body<Data = Bytes, Error = Infallible>> {
        let mut frames = vec![Ok(Frame::data(Bytes::from_static(b"message")))];
        if let Some(code) = trailers {
            let mut map = HeaderMap::new();
            map.insert("grpc-status", code.parse().unwrap());
            frames.push(Ok(Frame::trailers(map)));
        }
        Response::builder()
            .header("content-type", "application/grpc")
            .body(StreamBody::new(futures_util::stream::iter(frames)))
            .unwrap()
    }

    async fn at_eos(trailers: Option<&'static str>) -> (Option<Outcome>, Option<Outcome>) {
        let seen = Rc::new(Cell::new(None));
        let record = {
            let seen = seen.clone();
            move |o| seen.set(Some(o))
        };
        let response = ServerErrorsAsFailures::new()
            .classify(Ok::<_, ()>(streamed(trailers)), record)
            .unwrap();
        let before = seen.get();
        response.into_body().collect().await.unwrap();
        (before, seen.get())
    }

    #[tokio::test]
    async fn a_grpc_status_in_the_trailers_decides_at_the_end_of_the_body() {
        assert_eq!(at_eos(Some("14")).await, (None, Some(Outcome::Failure)));
        assert_eq!(at_eos(Some("0")).await, (None, Some(Outcome::Success)));
        assert_eq!(at_eos(Some("5")).await, (None, Some(Outcome::Success)));
    }

    #[tokio::test]
    async fn a_grpc_body_without_a_status_is_unknown_and_fails() {
        assert_eq!(at_eos(None).await, (None, Some(Outcome::Failure)));
    }

    #[tokio::test]
    async fn a_grpc_body_that_fails_before_its_end_fails() {
        let frames = vec![
            Ok(Frame::data(Bytes::from_static(b"message"))),
            Err("connection reset"),
        ];
        let response = Response::builder()
            .header("content-type", "application/grpc")
            .body(StreamBody::new(futures_util::stream::iter(frames)))
            .unwrap();
        let seen = Rc::new(Cell::new(None));
        let record = {
            let seen = seen.clone();
            move |o| seen.set(Some(o))
        };
        let response = ServerErrorsAsFailures::new()
            .classify(Ok::<_, ()>(response), record)
            .unwrap();
        assert!(!response.body().is_end_stream());
        assert_eq!(
            response.into_body().collect().await.unwrap_err(),
            "connection reset"
        );
        assert_eq!(seen.get(), Some(Outcome::Failure));
    }

    #[test]
    fn the_trailers_status_is_unknown_when_missing() {
        let mut trailers = HeaderMap::new();
        assert_eq!(GrpcStatus.eos(Some(&trailers)), Code::Unknown);
        trailers.insert("grpc-status", "8".parse().unwrap());
        assert_eq!(GrpcStatus.eos(Some(&trailers)), Code::ResourceExhausted);
        assert_eq!(GrpcStatus.eos(None), Code::Unknown);
        assert_eq!(GrpcStatus.error(), Code::Unknown);
    }

    #[test]
    fn a_body_dropped_before_its_end_leaves_the_receiver_uncompleted() {
        let completed = Cell::new(false);
        let response = ServerErrorsAsFailures::new()
            .classify(Ok::<_, ()>(streamed(Some("0"))), |_| completed.set(true))
            .unwrap();
        drop(response);
        assert!(!completed.get());
    }

    #[test]
    fn closures_are_policies_that_decide_at_the_head() {
        let only_errors = |r: Result<&u16, &()>| match r {
            Ok(_) => Outcome::Success,
            Err(_) => Outcome::Failure,
        };
        let seen = Cell::new(None);
        let answer = only_errors.classify(Ok(500), |o| seen.set(Some(o)));
        assert_eq!(answer, Ok(500));
        assert_eq!(seen.get(), Some(Outcome::Success));
    }
}
