//! The `Host` header of HTTP/1.1 requests (RFC 9112 §3.2): exactly one, and a valid
//! `host[:port]`. A request without one, with two, or with garbage in it is answered 400
//! `invalid_host` (the error JSON with the request id), like an edge proxy would, before any
//! route or rate limit sees it. HTTP/1.0 may omit it; HTTP/2 carries `:authority` instead.

use crate::{App, http_api::ApiError};
use axum::response::Response;
use espresso_common::RequestId;
use futures_util::future::{Either, Ready, ready};
use http::{HeaderMap, Request, StatusCode, Version, header::HOST, uri::Authority};
use std::task::{Context, Poll};
use tower::{Layer, Service};

/// Refuses HTTP/1.1 requests without exactly one valid `Host`.
#[derive(Clone)]
pub(crate) struct HostCheckLayer {
    app: App,
}

impl HostCheckLayer {
    pub(crate) fn new(app: App) -> Self {
        Self { app }
    }
}

impl<S> Layer<S> for HostCheckLayer {
    type Service = HostCheck<S>;

    fn layer(&self, inner: S) -> HostCheck<S> {
        HostCheck {
            inner,
            app: self.app.clone(),
        }
    }
}

/// Made by [`HostCheckLayer`].
#[derive(Clone)]
pub(crate) struct HostCheck<S> {
    inner: S,
    app: App,
}

impl<S, B> Service<Request<B>> for HostCheck<S>
where
    S: Service<Request<B>, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Either<Ready<Result<Response, S::Error>>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        if request.version() != Version::HTTP_11 {
            return Either::Right(self.inner.call(request));
        }
        match host_problem(request.headers()) {
            None => Either::Right(self.inner.call(request)),
            Some(problem) => {
                let id = request.extensions().get::<RequestId>();
                let error = ApiError::new(StatusCode::BAD_REQUEST, "invalid_host", problem);
                Either::Left(ready(Ok(error.into_response_for(&self.app, id))))
            }
        }
    }
}

/// What is wrong with the `Host` headers of an HTTP/1.1 request, if anything.
fn host_problem(headers: &HeaderMap) -> Option<&'static str> {
    let mut hosts = headers.get_all(HOST).iter();
    let Some(host) = hosts.next() else {
        return Some("an HTTP/1.1 request needs a Host header");
    };
    if hosts.next().is_some() {
        return Some("the request has more than one Host header");
    }
    let valid = host
        .to_str()
        .ok()
        .filter(|host| !host.is_empty() && !host.contains('@'))
        .and_then(|host| host.parse::<Authority>().ok())
        .is_some_and(|authority| {
            // `Authority` takes any text after the colon; a port is digits.
            let port = &authority.as_str()[authority.host().len()..];
            !authority.host().is_empty()
                && (port.is_empty()
                    || port
                        .strip_prefix(':')
                        .is_some_and(|p| p.parse::<u16>().is_ok()))
        });
    (!valid).then_some("the Host header is not a valid host[:port]")
}

#[cfg(test)]
mod tests {
    use super::host_problem;
    use http::{HeaderMap, HeaderValue, header::HOST};

    fn problem(hosts: &[&'static [u8]]) -> Option<&'static str> {
        let mut headers = HeaderMap::new();
        for host in hosts {
            headers.append(HOST, HeaderValue::from_bytes(host).unwrap());
        }
        host_problem(&headers)
    }

    #[test]
    fn one_valid_host_is_accepted() {
        for host in [
            &b"example.com"[..],
            b"example.com:8080",
            b"127.0.0.1:8080",
            b"[::1]:8080",
            b"localhost",
        ] {
            assert_eq!(problem(&[host]), None, "{host:?}");
        }
    }

    #[test]
    fn a_missing_duplicate_or_garbage_host_is_refused() {
        assert!(problem(&[]).unwrap().contains("needs a Host"));
        assert!(problem(&[b"a", b"b"]).unwrap().contains("more than one"));
        for host in [
            &b""[..],
            b"a b",
            b"user@example.com",
            b"example.com:port",
            b"/path",
            b"\xff\xfe",
            b"exa mple",
        ] {
            assert!(problem(&[host]).is_some(), "{host:?}");
        }
    }
}
