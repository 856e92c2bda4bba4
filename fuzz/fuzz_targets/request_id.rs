//! Request-id validation (`AllowedChars`) and the `RequestIdLayer` end to end, against an
//! independent model of the documented rule: an incoming id is kept when it is the header's only
//! value, non-empty, at most `max_len` bytes (default 128) and made of the allowed characters
//! (default `[A-Za-z0-9._:-]`, never anything outside visible ASCII).
//!
//! Input layout:
//! - byte 0: bit 0: custom allowed set; bit 1: custom `max_len` (byte 1); bit 2:
//!   `always_generate`; bit 3: `keep_client_id`; bit 4: `response_extension`; bit 5: the inner
//!   service sets the id header on its response itself; bit 6: header `x-correlation-id`;
//!   bit 7: the custom set is `visible_ascii().without(spec)` instead of `DEFAULT.with(spec)`.
//! - byte 1: `max_len`; byte 2: the number of header values (low 2 bits, 0 to 3); byte 3: the
//!   length `n` of the allowed-set spec, then `n` bytes of spec;
//! - the rest: the header values, separated by `\n`.
//!
//! Checked: `contains`/`contains_all` agree with the model for every byte and every value; a
//! service call never panics and answers with the model's id (the single valid value, or a
//! fresh UUID v4); the inner service sees exactly that id as the only header value, in the
//! extensions and as `current()` during `call` and `poll`; a `ClientRequestId` is there exactly
//! when a sent id was rejected and `keep_client_id` is on, with the model's reason and
//! escaping; the inner service's own response header is never overwritten.
#![no_main]

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use espresso_request_id::{AllowedChars, ClientRequestId, RejectReason, RequestId, RequestIdLayer};
use http::{HeaderName, HeaderValue, Request, Response};
use libfuzzer_sys::fuzz_target;
use tower_layer::Layer;
use tower_service::Service;

/// The documented default: `[A-Za-z0-9._:-]`.
fn default_allows(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-')
}

/// The set a fuzzed spec describes, one flag per byte value.
fn model_set(flags: u8, spec: &str) -> [bool; 256] {
    let mut set = [false; 256];
    let visible = |b: u8| (0x21..=0x7e).contains(&b);
    if flags & 1 == 0 {
        for b in 0..=255u8 {
            set[b as usize] = default_allows(b);
        }
    } else if flags & 0x80 == 0 {
        for b in 0..=255u8 {
            set[b as usize] = default_allows(b);
        }
        for b in spec.bytes().filter(|&b| visible(b)) {
            set[b as usize] = true;
        }
    } else {
        for b in 0..=255u8 {
            set[b as usize] = visible(b);
        }
        for b in spec.bytes() {
            set[b as usize] = false;
        }
    }
    set
}

fn allowed_chars(flags: u8, spec: &str) -> AllowedChars {
    match (flags & 1 != 0, flags & 0x80 != 0) {
        (false, _) => AllowedChars::DEFAULT,
        (true, false) => AllowedChars::DEFAULT.with(spec),
        (true, true) => AllowedChars::visible_ascii().without(spec),
    }
}

/// What the model expects for the request's id header values.
#[derive(Debug, PartialEq)]
enum Expect {
    Keep(HeaderValue),
    Generate(Option<RejectReason>),
}

fn model(values: &[HeaderValue], max_len: usize, set: &[bool; 256], always: bool) -> Expect {
    match values {
        [] => Expect::Generate(None),
        [value] => {
            let bytes = value.as_bytes();
            let reason = if bytes.is_empty() {
                Some(RejectReason::Empty)
            } else if bytes.len() > max_len {
                Some(RejectReason::TooLong)
            } else if !bytes.iter().all(|&b| set[b as usize]) {
                Some(RejectReason::DisallowedChar)
            } else if always {
                Some(RejectReason::Untrusted)
            } else {
                None
            };
            match reason {
                None => Expect::Keep(value.clone()),
                Some(reason) => Expect::Generate(Some(reason)),
            }
        }
        _ => Expect::Generate(Some(RejectReason::Multiple)),
    }
}

/// The documented sanitized copy: at most `max_len` bytes, allowed bytes other than `%` as they
/// are, everything else as `%XX`.
fn model_escape(raw: &[u8], set: &[bool; 256], max_len: usize) -> (String, bool) {
    let kept = &raw[..raw.len().min(max_len)];
    let mut out = String::new();
    for &b in kept {
        if set[b as usize] && b != b'%' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    (out, kept.len() < raw.len())
}

fn is_uuid_v4(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, &c)| match i {
            8 | 13 | 18 | 23 => c == b'-',
            _ => c.is_ascii_hexdigit() && !c.is_ascii_uppercase(),
        })
        && b[14] == b'4'
}

/// What the inner service saw, returned in the response's extensions.
#[derive(Clone, Debug)]
struct Seen {
    header_values: Vec<HeaderValue>,
    extension: Option<RequestId>,
    client: Option<ClientRequestId>,
    current_in_call: Option<RequestId>,
    current_in_poll: Option<RequestId>,
}

#[derive(Clone)]
struct Inner {
    header: HeaderName,
    sets_own_header: bool,
}

struct InnerFuture {
    seen: Option<Seen>,
    sets_own_header: bool,
    header: HeaderName,
}

impl Future for InnerFuture {
    type Output = Result<Response<()>, Infallible>;

    fn poll(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut seen = self.seen.take().expect("polled once");
        seen.current_in_poll = espresso_request_id::current();
        let mut response = Response::new(());
        if self.sets_own_header {
            response
                .headers_mut()
                .insert(self.header.clone(), HeaderValue::from_static("from-inner"));
        }
        response.extensions_mut().insert(seen);
        Poll::Ready(Ok(response))
    }
}

impl Service<Request<()>> for Inner {
    type Response = Response<()>;
    type Error = Infallible;
    type Future = InnerFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<()>) -> InnerFuture {
        let seen = Seen {
            header_values: request
                .headers()
                .get_all(&self.header)
                .iter()
                .cloned()
                .collect(),
            extension: request.extensions().get::<RequestId>().cloned(),
            client: request.extensions().get::<ClientRequestId>().cloned(),
            current_in_call: espresso_request_id::current(),
            current_in_poll: None,
        };
        InnerFuture {
            seen: Some(seen),
            sets_own_header: self.sets_own_header,
            header: self.header.clone(),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    let (flags, max_len_byte, count) = (data[0], data[1], usize::from(data[2] & 3));
    let spec_len = usize::from(data[3]).min(data.len() - 4);
    let spec = String::from_utf8_lossy(&data[4..4 + spec_len]);
    let rest = &data[4 + spec_len..];

    // The validator on its own.
    let set = model_set(flags, &spec);
    let allowed = allowed_chars(flags, &spec);
    for b in 0..=255u8 {
        assert_eq!(
            allowed.contains(b),
            set[b as usize],
            "byte {b:#04x} in {allowed:?}"
        );
    }
    assert!(
        (0..=255u8).all(|b| !allowed.contains(b) || (0x21..=0x7e).contains(&b)),
        "{allowed:?} holds a byte outside visible ASCII"
    );

    let mut raw_values: Vec<&[u8]> = rest.split(|&b| b == b'\n').take(count).collect();
    raw_values.resize(count, b"");
    let mut values = Vec::new();
    for raw in &raw_values {
        assert_eq!(
            allowed.contains_all(raw),
            raw.iter().all(|&b| set[b as usize]),
            "contains_all({raw:?})"
        );
        if let Ok(value) = HeaderValue::from_bytes(raw) {
            values.push(value);
        }
    }

    // The layer end to end.
    let max_len = if flags & 2 != 0 {
        usize::from(max_len_byte)
    } else {
        128
    };
    let header = if flags & 0x40 != 0 {
        HeaderName::from_static("x-correlation-id")
    } else {
        HeaderName::from_static("x-request-id")
    };
    let (always, keep_client, extension, sets_own) = (
        flags & 4 != 0,
        flags & 8 != 0,
        flags & 16 != 0,
        flags & 32 != 0,
    );
    let mut layer = RequestIdLayer::new()
        .header(header.clone())
        .always_generate(always)
        .keep_client_id(keep_client)
        .response_extension(extension);
    if flags & 1 != 0 {
        layer = layer.allowed_chars(allowed);
    }
    if flags & 2 != 0 {
        layer = layer.max_len(max_len);
    }
    let mut service = layer.layer(Inner {
        header: header.clone(),
        sets_own_header: sets_own,
    });

    let mut request = Request::new(());
    for value in &values {
        request.headers_mut().append(&header, value.clone());
    }
    let expect = model(&values, max_len, &set, always);

    let mut cx = Context::from_waker(Waker::noop());
    assert!(service.poll_ready(&mut cx).is_ready());
    let mut future = std::pin::pin!(service.call(request));
    let Poll::Ready(Ok(response)) = future.as_mut().poll(&mut cx) else {
        panic!("a ready inner service gives a ready response");
    };
    assert_eq!(
        espresso_request_id::current(),
        None,
        "the id leaked out of the request"
    );

    let seen = response
        .extensions()
        .get::<Seen>()
        .expect("inner service ran")
        .clone();
    let [id_value] = seen.header_values.as_slice() else {
        panic!("inner service saw {:?}", seen.header_values);
    };
    let id = seen.extension.clone().expect("a RequestId extension");
    assert_eq!(id.header_value(), id_value);
    assert_eq!(seen.current_in_call.as_ref(), Some(&id));
    assert_eq!(seen.current_in_poll.as_ref(), Some(&id));
    match &expect {
        Expect::Keep(value) => assert_eq!(id_value, value, "a valid id was not kept"),
        Expect::Generate(_) => assert!(is_uuid_v4(id.as_str()), "generated {id:?}"),
    }

    let responded = response
        .headers()
        .get_all(&header)
        .iter()
        .collect::<Vec<_>>();
    if sets_own {
        assert_eq!(
            responded,
            ["from-inner"],
            "the inner service's header was replaced"
        );
    } else {
        assert_eq!(responded, [id_value], "response id");
    }
    assert_eq!(
        response.extensions().get::<RequestId>(),
        extension.then_some(&id),
        "response extension"
    );

    let want_client = match (&expect, keep_client) {
        (Expect::Generate(Some(reason)), true) => {
            let (escaped, truncated) = model_escape(values[0].as_bytes(), &set, max_len);
            Some((escaped, *reason, truncated))
        }
        _ => None,
    };
    let got_client = seen
        .client
        .as_ref()
        .map(|c| (c.as_str().to_owned(), c.reason(), c.is_truncated()));
    assert_eq!(got_client, want_client, "client id for {expect:?}");
});
