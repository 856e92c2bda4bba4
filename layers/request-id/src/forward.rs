//! [`ForwardRequestIdLayer`]: the client side, sending the id of the request being served on
//! with the calls it makes.

use crate::{X_REQUEST_ID, current};
use http::{HeaderName, Request};
use std::task::{Context, Poll};
use tower_layer::Layer;
use tower_service::Service;

/// Sends the id of the request being served ([`current()`]) on with every outgoing request, in
/// the `x-request-id` header: a layer for clients (hyper-util's `Client`, a tonic `Channel`),
/// where [`RequestIdLayer`](crate::RequestIdLayer) is for servers.
///
/// An outgoing request that already carries the header keeps it; one made outside a served
/// request (no [`current()`] id, e.g. on a spawned task not given one with
/// [`scope`](crate::scope)) goes out without it. Nothing else is touched: no id is generated,
/// and no span is opened or recorded, so the caller's log lines keep its own id. (A
/// `RequestIdLayer` on a client would give each call a new id, and record it on the caller's
/// span.)
///
/// ```
/// use espresso_request_id::{ForwardRequestIdLayer, RequestIdLayer};
/// use http::{Request, Response};
/// use std::convert::Infallible;
/// use tower::{Service, ServiceBuilder, ServiceExt, service_fn};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// // Stands in for a hyper-util `Client` or a tonic `Channel`.
/// let downstream = service_fn(|request: Request<()>| async move {
///     let id = request.headers().get("x-request-id").cloned();
///     Ok::<_, Infallible>(Response::new(id))
/// });
/// let client = ServiceBuilder::new().layer(ForwardRequestIdLayer::new()).service(downstream);
///
/// let server = ServiceBuilder::new()
///     .layer(RequestIdLayer::new())
///     .service(service_fn(move |_: Request<()>| {
///         let client = client.clone();
///         async move {
///             // A call made while serving the request carries its id.
///             let answer = client.oneshot(Request::new(())).await?;
///             Ok::<_, Infallible>(Response::new(answer.into_body()))
///         }
///     }));
/// let request = Request::builder().header("x-request-id", "order-42").body(()).unwrap();
/// let forwarded = server.oneshot(request).await.unwrap().into_body();
/// assert_eq!(forwarded.unwrap(), "order-42");
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct ForwardRequestIdLayer {
    header: HeaderName,
}

impl ForwardRequestIdLayer {
    /// Forwards the id in `x-request-id`.
    pub fn new() -> Self {
        Self {
            header: X_REQUEST_ID,
        }
    }

    /// Forwards the id in `header` instead (what the service called expects).
    pub fn header(mut self, header: HeaderName) -> Self {
        self.header = header;
        self
    }
}

impl Default for ForwardRequestIdLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl<S> Layer<S> for ForwardRequestIdLayer {
    type Service = ForwardRequestId<S>;

    fn layer(&self, inner: S) -> ForwardRequestId<S> {
        ForwardRequestId {
            inner,
            header: self.header.clone(),
        }
    }
}

/// Sets the id of the request being served on outgoing requests; made by
/// [`ForwardRequestIdLayer`].
#[derive(Debug, Clone)]
pub struct ForwardRequestId<S> {
    inner: S,
    header: HeaderName,
}

impl<S> ForwardRequestId<S> {
    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Consumes the layer, returning the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, B> Service<Request<B>> for ForwardRequestId<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        if !request.headers().contains_key(&self.header)
            && let Some(id) = current()
        {
            request
                .headers_mut()
                .insert(self.header.clone(), id.header_value().clone());
        }
        self.inner.call(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{RequestId, scope};
    use http::Response;
    use std::convert::Infallible;
    use tower::{ServiceExt, service_fn};

    fn echo_id() -> impl Service<
        Request<()>,
        Response = Response<Option<String>>,
        Error = Infallible,
        Future = impl Send,
    > + Clone {
        service_fn(|request: Request<()>| async move {
            let id = request.headers().get("x-request-id");
            let id = id.map(|v| v.to_str().unwrap().to_owned());
            Ok::<_, Infallible>(Response::new(id))
        })
    }

    #[tokio::test]
    async fn a_call_made_while_serving_carries_the_id_and_one_made_outside_does_not() {
        let client = ForwardRequestIdLayer::new().layer(echo_id());
        let id = RequestId::new(http::HeaderValue::from_static("order-42")).unwrap();
        let sent = scope(id, client.clone().oneshot(Request::new(()))).await;
        assert_eq!(sent.unwrap().into_body().as_deref(), Some("order-42"));
        let outside = client.oneshot(Request::new(())).await.unwrap();
        assert_eq!(outside.into_body(), None);
    }

    #[tokio::test]
    async fn an_id_the_caller_set_is_kept() {
        let client = ForwardRequestIdLayer::new().layer(echo_id());
        let request = Request::builder()
            .header("x-request-id", "chosen")
            .body(())
            .unwrap();
        let id = RequestId::new(http::HeaderValue::from_static("order-42")).unwrap();
        let sent = scope(id, client.oneshot(request)).await.unwrap();
        assert_eq!(sent.into_body().as_deref(), Some("chosen"));
    }
}
