//! The `Host` header of HTTP/1.1 requests (RFC 9112 §3.2): exactly one, and a valid
//! `host[:port]`. A request without one, with two, or with garbage in it is answered 400
//! `invalid_host` (the error JSON with the request id), like an edge proxy would, before any
//! route or rate limit sees it. HTTP/1.0 may omit it; HTTP/2 carries `:authority` instead.

use crate::{App, by_path::EitherFuture, http_api::ApiError};
use axum::{body::Body, response::Response};
use espresso_common::RequestId;
use futures_util::future::{Ready, ready};
use http::{HeaderMap, Request, StatusCode, Version, header::HOST};
use http_body_util::Either;
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

impl<S, B, ResB> Service<Request<B>> for HostCheck<S>
where
    S: Service<Request<B>, Response = http::Response<ResB>>,
{
    // The refusal is the other side of the `Either`: passed answers are not boxed.
    type Response = http::Response<Either<ResB, Body>>;
    type Error = S::Error;
    type Future = EitherFuture<S::Future, Ready<Result<Response, S::Error>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let problem = (request.version() == Version::HTTP_11)
            .then(|| host_problem(request.headers()))
            .flatten();
        match problem {
            None => EitherFuture::Left {
                future: self.inner.call(request),
            },
            Some(problem) => {
                let id = request.extensions().get::<RequestId>();
                let error = ApiError::new(StatusCode::BAD_REQUEST, "invalid_host", problem);
                EitherFuture::Right {
                    future: ready(Ok(error.into_response_for(&self.app, id))),
                }
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
    let valid = is_host_and_port(host.as_bytes());
    (!valid).then_some("the Host header is not a valid host[:port]")
}

/// `host[:port]` as RFC 3986 spells it: a bracketed IPv6 literal or a non-empty reg-name (an
/// IPv4 address is one), then optionally `:` and a port of 0-65535. Byte by byte, without
/// allocating: it runs on every HTTP/1.1 request.
fn is_host_and_port(value: &[u8]) -> bool {
    let (host, port) = match value.first() {
        Some(b'[') => match value.iter().position(|&b| b == b']') {
            Some(end) => value.split_at(end + 1),
            None => return false,
        },
        _ => match value.iter().position(|&b| b == b':') {
            Some(colon) => value.split_at(colon),
            None => (value, &[][..]),
        },
    };
    let host_ok = match host {
        [b'[', literal @ .., b']'] => {
            !literal.is_empty()
                && literal
                    .iter()
                    .all(|&b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        }
        [] => false,
        name => is_reg_name(name),
    };
    host_ok
        && match port {
            [] => true,
            [b':', digits @ ..] => is_port(digits),
            _ => false,
        }
}

/// RFC 3986 `reg-name`: unreserved characters, sub-delimiters and `%XX`.
fn is_reg_name(name: &[u8]) -> bool {
    let mut i = 0;
    while i < name.len() {
        match name[i] {
            b'%' => {
                let hex = name.get(i + 1..i + 3);
                if !hex.is_some_and(|hex| hex.iter().all(u8::is_ascii_hexdigit)) {
                    return false;
                }
                i += 3;
            }
            b if REG_NAME[usize::from(b)] => i += 1,
            _ => return false,
        }
    }
    true
}

/// The bytes of a `reg-name` but `%`: `ALPHA DIGIT - . _ ~ ! $ & ' ( ) * + , ; =`.
static REG_NAME: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = (b as u8).is_ascii_alphanumeric();
        b += 1;
    }
    let others = b"-._~!$&'()*+,;=";
    let mut i = 0;
    while i < others.len() {
        table[others[i] as usize] = true;
        i += 1;
    }
    table
};

/// 1-5 digits, at most 65535.
fn is_port(digits: &[u8]) -> bool {
    (1..=5).contains(&digits.len())
        && digits.iter().all(u8::is_ascii_digit)
        && digits
            .iter()
            .fold(0u32, |n, &d| n * 10 + u32::from(d - b'0'))
            <= u32::from(u16::MAX)
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
            b"[2001:db8::1]",
            b"localhost",
            b"localhost:0",
            b"localhost:65535",
            b"my_host.local",
            b"a%20b",
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
            b"example.com:",
            b"example.com:65536",
            b"example.com:123456",
            b"example.com:80:80",
            b"[::1",
            b"[]:80",
            b"[::1]x",
            b"[::1]:",
            b"[::g]",
            b":80",
            b"100%",
            b"a%2",
            b"a%zz",
            b"exa\tmple",
        ] {
            assert!(problem(&[host]).is_some(), "{host:?}");
        }
    }
}
