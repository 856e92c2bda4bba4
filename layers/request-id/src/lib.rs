//! One Tower layer for request ids: validates the incoming id, generates a new one when needed,
//! and propagates it to the request, the response, the tracing span and the task.
//!
//! ```
//! use espresso_request_id::{RequestId, RequestIdLayer};
//! use http::{Request, Response};
//! use std::convert::Infallible;
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let service = ServiceBuilder::new()
//!     .layer(RequestIdLayer::new())
//!     .service(service_fn(|request: Request<()>| async move {
//!         // The id is in the request's extensions and headers, and reachable without the
//!         // request through `espresso_request_id::current()`.
//!         let id = request.extensions().get::<RequestId>().unwrap();
//!         assert_eq!(request.headers()["x-request-id"], id.header_value());
//!         assert_eq!(espresso_request_id::current().as_ref(), Some(id));
//!         Ok::<_, Infallible>(Response::new(()))
//!     }));
//!
//! // A valid incoming id is kept and echoed back.
//! let request = Request::builder().header("x-request-id", "order-42").body(()).unwrap();
//! let response = service.clone().oneshot(request).await.unwrap();
//! assert_eq!(response.headers()["x-request-id"], "order-42");
//!
//! // An invalid one (here with a space) is replaced by a UUID v4.
//! let request = Request::builder().header("x-request-id", "a b").body(()).unwrap();
//! let response = service.oneshot(request).await.unwrap();
//! assert_eq!(response.headers()["x-request-id"].len(), 36);
//! # }
//! ```
//!
//! # What one request goes through
//!
//! 1. The id header (default `x-request-id`, see [`RequestIdLayer::header`]) is read. A single,
//!    [valid](#validation) value is kept. Otherwise (missing, invalid, repeated, or always at a
//!    trust boundary with [`always_generate`](RequestIdLayer::always_generate)) the generator
//!    makes a new id and it replaces every value of the header on the request, so inner
//!    services and the calls they forward never see a rejected value.
//! 2. The typed [`RequestId`] is put in the request's extensions (it is
//!    [`espresso_common::RequestId`], so other layers read it without depending on this crate).
//! 3. The inner service's `call` and response future run inside the request's tracing span
//!    ([Tracing](#tracing)) and a task-local scope ([`current()`]). The response body is not
//!    polled inside them: the messages of a gRPC stream, made as its body is read, see no
//!    [`current()`] id (take it in the handler and [`scope`] the stream with it), and their log
//!    lines carry the id only through a span the stream is instrumented with (or slow-call's
//!    root span, which is entered for every poll of the body).
//! 4. The header is set on the response, whatever its status (and, with
//!    [`response_extension(true)`](RequestIdLayer::response_extension), the [`RequestId`] is put
//!    in the response's extensions for outer layers).
//!
//! # Validation
//!
//! Incoming ids are untrusted input. One is kept only when it is the header's only value, is
//! non-empty, at most [`max_len`](RequestIdLayer::max_len) bytes (default 128), and made of
//! [`AllowedChars`] (default `[A-Za-z0-9._:-]`, never anything outside visible ASCII). Control
//! bytes, spaces, non-ASCII bytes and the like are rejected, so an id is always safe to copy into
//! headers and log lines. A rejected id is dropped; with
//! [`keep_client_id(true)`](RequestIdLayer::keep_client_id) a percent-encoded, bounded copy is
//! kept in request extensions as a [`ClientRequestId`] for correlation. Each replacement emits a
//! DEBUG event with the new id and the [`RejectReason`], never the raw value.
//!
//! # Generators
//!
//! [`UuidV4`] (default), [`UuidV7`] (time-ordered), [`PrefixCounter`] (`prefix-000042`, the
//! cheapest), or any [`MakeRequestId`], closures included. See [`make`].
//!
//! # Doesn't override existing response headers
//!
//! If the inner service set the id header on its response itself, that value is left alone
//! (as tower-http's `PropagateRequestId` does): it did so deliberately, e.g. a proxy passing an
//! upstream's answer through. Every other response gets the request's id, including error
//! statuses (4xx, 5xx) and gRPC trailers-only responses, whose headers carry the status.
//!
//! An `Err` from the inner service is not a response and passes through untouched. Put this layer
//! outside whatever turns errors into responses (axum's `HandleErrorLayer`, timeouts, the
//! espresso layers that reject), ideally outermost, so those responses get the id too.
//!
//! # Tracing
//!
//! The id is recorded in the field `request_id`, in the cheapest way that reaches log lines:
//!
//! - If the current span declares a `request_id` field (e.g. tower-http's `TraceLayer` with
//!   `request_id = tracing::field::Empty` in its `make_span`), the id is recorded there and no
//!   span is opened.
//! - Otherwise a span `request{request_id=…}` at INFO (see
//!   [`span_level`](RequestIdLayer::span_level)) wraps the inner call and response future, so
//!   every event of the request carries the id. [`without_span`](RequestIdLayer::without_span)
//!   turns it off.
//!
//! With no subscriber ever installed this is one atomic load; with the level filtered out, a
//! look at the current span and no new span.
//!
//! # Reading the id without the request
//!
//! [`current()`] returns the id of the request being served on this task, for deeper code (a
//! filter engine, a client forwarding it to a backend). Spawned tasks don't inherit it; forward
//! it with [`scope`] or [`sync_scope`]. See [the module docs](mod@crate::current).
//!
//! # Calls to other services
//!
//! [`RequestIdLayer`] is a server layer. On a client (hyper-util's `Client`, a tonic `Channel`),
//! [`ForwardRequestIdLayer`] sends the id of the request being served on with each call, so the
//! services called log the same id. A `RequestIdLayer` there would give each call an id of its
//! own and record it on the caller's span, over the caller's id.
//!
//! # gRPC and plain hyper
//!
//! gRPC metadata are HTTP/2 headers, so the layer works unchanged under
//! `tonic::transport::Server::builder().layer(RequestIdLayer::new())`: clients send the id as
//! `x-request-id` metadata and read it from the response metadata, or from
//! `Status::metadata()` when the call failed at once (a trailers-only answer); a stream that
//! fails after its first messages carries the id in its response head, not in its trailers. Under plain hyper, wrap the stack with
//! `hyper_util::service::TowerToHyperService`.
//!
//! # Compared with tower-http
//!
//! tower-http's `SetRequestIdLayer` + `PropagateRequestIdLayer` need two layers in the right
//! order and trust whatever id the client sends. This layer does both jobs, validates, can
//! regenerate at trust boundaries, and records the id on tracing and the task. With its defaults
//! it costs less per request than that pair (a generated id is formatted on the stack and
//! allocated once; the response extension is opt-in). With
//! [`response_extension(true)`](RequestIdLayer::response_extension), the like-for-like setting,
//! it costs the same when it generates the id and somewhat more when it keeps a valid one, which
//! is the price of validating it. Figures and the command: `benches/benches/request_id.rs` and
//! BENCHMARKS.md.
//!
//! # Features
//!
//! - `fast-rng` (default): UUIDs come from a userspace generator seeded once by the OS; without
//!   it every generated id asks the OS for its random bytes.
//!
//! The crate needs neither `prometheus` nor a proc-macro: with `default-features = false` its
//! normal dependency tree is 15 crates besides itself (`cargo tree -e normal --prefix none
//! --no-default-features | sort -u` lists 17 lines: this crate, and `http` twice, once marked
//! `(*)` where it is seen again).
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(unreachable_pub)]
#![warn(missing_docs)]

pub mod current;
mod forward;
pub mod future;
mod layer;
pub mod make;
mod service;
mod validate;

pub use current::{current, scope, sync_scope};
pub use espresso_common::RequestId;
pub use forward::{ForwardRequestId, ForwardRequestIdLayer};
pub use layer::{RequestIdLayer, X_REQUEST_ID};
pub use make::{MakeRequestId, PrefixCounter, UuidV4, UuidV7};
pub use service::RequestIdService;
pub use validate::{AllowedChars, ClientRequestId, RejectReason};

// The README is the crate page on crates.io; its example runs as a doctest so it stays true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
