//! [`SlowCall`]: the service.

use crate::{
    ResponseFuture, SlowCallLayer,
    call::{Call, Start},
    layer::Config,
    tree::CallTree,
};
use espresso_common::{RequestId, grpc::is_grpc};
use http::{Request, Response};
use http_body::Body;
use std::{
    sync::Arc,
    task::{Context, Poll},
};
use tokio::time::Instant;
use tower_service::Service;

/// Times each request until its response body ends; see the [crate docs](crate).
///
/// Made by [`SlowCallLayer`].
#[derive(Debug, Clone)]
pub struct SlowCall<S> {
    inner: S,
    config: Arc<Config>,
}

impl<S> SlowCall<S> {
    /// Wraps `inner` with the settings of `layer`.
    pub fn new(inner: S, layer: &SlowCallLayer) -> Self {
        #[cfg(feature = "metrics")]
        if let Some(metrics) = &layer.config.metrics {
            for route in layer.config.policy.known_routes() {
                metrics.known_route(route);
            }
        }
        Self {
            inner,
            config: layer.config.clone(),
        }
    }

    /// Returns a new [`SlowCallLayer`] with a global threshold (same as [`SlowCallLayer::new`]).
    pub fn layer(threshold: std::time::Duration) -> SlowCallLayer {
        SlowCallLayer::new(threshold)
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Consumes `self`, returning the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, ReqB, ResB> Service<Request<ReqB>> for SlowCall<S>
where
    S: Service<Request<ReqB>, Response = Response<ResB>>,
    ResB: Body,
{
    type Response = Response<crate::SlowCallBody<ResB>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqB>) -> Self::Future {
        let start = Instant::now();
        let config = &*self.config;
        let (route, threshold) = config.policy.resolve(req.method(), req.uri().path());
        #[cfg(feature = "axum")]
        let route = match route {
            crate::policy::RouteLabel::Unmatched => req
                .extensions()
                .get::<axum::extract::MatchedPath>()
                .map_or(route, |path| {
                    crate::policy::RouteLabel::Matched(path.clone())
                }),
            route => route,
        };
        let request_id = req.extensions().get::<RequestId>().cloned();
        let tree = CallTree::new(start, config.max_spans);
        // Only created when some layer wants it (log lines in context, trace export): the call
        // tree does not need it.
        let span = tracing::info_span!(
            target: "espresso_slow_call",
            "request",
            method = %req.method(),
            path = req.uri().path(),
            route = route.as_str(),
            request_id = tracing::field::Empty,
            trace_id = tracing::field::Empty,
        );
        if span.is_disabled() {
            crate::recorder::warn_if_root_span_filtered();
        }
        // The id goes on the line once: not here when the span we are in (the request-id
        // layer's) already shows it.
        #[cfg_attr(not(feature = "otel"), allow(unused_variables))]
        let outer_id = match &request_id {
            Some(id) if !span.is_disabled() => {
                if current_span_has_request_id() {
                    Some(id.as_str())
                } else {
                    // displayed as the request-id layer's span shows it: unquoted
                    span.record("request_id", tracing::field::display(id.as_str()));
                    None
                }
            }
            _ => None,
        };
        #[cfg(feature = "otel")]
        crate::otel::extract_parent(&span, req.headers(), outer_id);
        let call = Call::new(Start {
            span,
            tree,
            start,
            threshold,
            method: req.method().clone(),
            path: req.uri().path_and_query().cloned(),
            route,
            request_id,
            grpc: is_grpc(req.headers()),
            #[cfg(feature = "metrics")]
            config: self.config.clone(),
        });
        let future = {
            let _entered = call.enter();
            self.inner.call(req)
        };
        ResponseFuture::new(future, call)
    }
}

/// Whether the span the request is called in declares a `request_id` field. Looks it up without
/// cloning it.
fn current_span_has_request_id() -> bool {
    tracing::dispatcher::get_default(|dispatch| {
        dispatch
            .current_span()
            .metadata()
            .is_some_and(|meta| meta.fields().field("request_id").is_some())
    })
}
