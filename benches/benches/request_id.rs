//! Per-request cost of `espresso-request-id` against tower-http's `SetRequestId` +
//! `PropagateRequestId`, around the same trivial `service_fn`, in the same run.
//!
//! Two cases: (a) `no_incoming_id`, the request has no id (one is generated: UUID v4 on both
//! sides); (b) `valid_incoming_id`, it has a valid one (kept and echoed). Each iteration builds the
//! request, calls the service and polls the response future to completion (it is ready at once).
//! `bare` is the trivial service alone, so `variant - bare` is a layer's own cost. No tracing
//! subscriber is installed, as in a service that logs nothing at INFO.
//!
//! Variants: `espresso` is the default layer. `espresso-response-extension` adds the one thing
//! tower-http's pair does that the default does not (the id in response extensions, an
//! allocation per response), so it is the like-for-like row. The other generators are for
//! reference.
//!
//! Time (criterion):
//!
//! ```text
//! cargo bench -p espresso-benches --bench request_id
//! ```
//!
//! On a shared machine, where load drifts between criterion's sequential measurements,
//! `REQUEST_ID_INTERLEAVED=1 cargo bench -p espresso-benches --bench request_id` times all
//! variants in interleaved rounds and prints each one's best round instead.
//!
//! Instructions per request (deterministic): set
//! `REQUEST_ID_COUNT=<case>/<variant>` to run 200 000 iterations of one variant and exit, under
//! callgrind, and divide the total by 200 000:
//!
//! ```text
//! cargo bench -p espresso-benches --bench request_id --no-run   # prints the executable path
//! REQUEST_ID_COUNT=valid_incoming_id/tower-http valgrind --tool=callgrind <executable>
//! ```

use criterion::Criterion;
use espresso_request_id::{PrefixCounter, RequestIdLayer, UuidV7, X_REQUEST_ID};
use http::{HeaderValue, Request, Response};
use std::{
    convert::Infallible,
    future::{Future, Ready, ready},
    hint::black_box,
    pin::pin,
    task::{Context, Poll, Waker},
};
use tower::{Layer, Service, ServiceBuilder, service_fn, util::ServiceFn};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};

type Trivial = ServiceFn<fn(Request<()>) -> Ready<Result<Response<()>, Infallible>>>;

fn trivial() -> Trivial {
    service_fn((|_| ready(Ok(Response::new(())))) as fn(_) -> _)
}

/// Calls the service once and drives the (immediately ready) response future.
// Never inlined, so callgrind counts each request as one call of `call` (see BENCHMARKS.md).
#[inline(never)]
fn call<S>(service: &mut S, request: Request<()>) -> Response<()>
where
    S: Service<Request<()>, Response = Response<()>, Error = Infallible>,
{
    let mut cx = Context::from_waker(Waker::noop());
    let Poll::Ready(Ok(())) = service.poll_ready(&mut cx) else {
        unreachable!("the trivial service is always ready")
    };
    let mut future = pin!(service.call(request));
    match future.as_mut().poll(&mut cx) {
        Poll::Ready(Ok(response)) => response,
        _ => unreachable!("the trivial service answers at once"),
    }
}

const CASES: [&str; 2] = ["no_incoming_id", "valid_incoming_id"];

/// The request of a case: with or without a valid id.
fn request(with_id: bool) -> Request<()> {
    // As hyper delivers it: a header value sharing the connection's read buffer, so a clone is a
    // reference-count increment (a static value would make clones free and flatter both layers).
    thread_local! {
        static INCOMING: HeaderValue = {
            let value = HeaderValue::from_str("0b7d4f7e-8f5a-4c1e-9d3b-2a6c8e1f4b90").unwrap();
            let _promote_to_shared = value.clone();
            value
        };
    }
    let mut request = Request::new(());
    if with_id {
        request
            .headers_mut()
            .insert(X_REQUEST_ID, INCOMING.with(HeaderValue::clone));
    }
    request
}

/// Calls `$body` with `$service` bound to each variant in turn, `$name` to its name.
macro_rules! for_each_variant {
    (|$name:ident, $service:ident| $body:expr) => {{
        {
            let $name = "bare";
            let mut $service = trivial();
            $body
        }
        {
            let $name = "espresso";
            let mut $service = RequestIdLayer::new().layer(trivial());
            $body
        }
        {
            let $name = "espresso-response-extension";
            let mut $service = RequestIdLayer::new()
                .response_extension(true)
                .layer(trivial());
            $body
        }
        {
            let $name = "tower-http";
            let mut $service = ServiceBuilder::new()
                .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
                .layer(PropagateRequestIdLayer::x_request_id())
                .service(trivial());
            $body
        }
        {
            let $name = "espresso-uuid-v7";
            let mut $service = RequestIdLayer::new().generator(UuidV7).layer(trivial());
            $body
        }
        {
            let $name = "espresso-prefix-counter";
            let mut $service = RequestIdLayer::new()
                .generator(PrefixCounter::new())
                .layer(trivial());
            $body
        }
    }};
}

fn criterion_benches(c: &mut Criterion) {
    for case in CASES {
        let with_id = case == "valid_incoming_id";
        let mut group = c.benchmark_group(format!("request_id/{case}"));
        for_each_variant!(|name, service| {
            group.bench_function(name, |b| {
                b.iter(|| black_box(call(&mut service, request(with_id))))
            });
        });
        group.finish();
    }
}

/// Runs one `<case>/<variant>` a fixed number of times, for instruction counting.
fn count(which: &str) {
    const ITERATIONS: usize = 200_000;
    let mut found = false;
    for case in CASES {
        let with_id = case == "valid_incoming_id";
        for_each_variant!(|name, service| {
            if which == format!("{case}/{name}") {
                found = true;
                for _ in 0..ITERATIONS {
                    black_box(call(&mut service, request(with_id)));
                }
            }
        });
    }
    assert!(found, "no variant named {which:?}");
    println!("{which}: {ITERATIONS} iterations");
}

/// Times every variant in interleaved rounds and prints each one's best round: on a shared
/// machine, load that comes and goes then hits all variants alike.
fn interleaved() {
    const ROUNDS: usize = 30;
    const ITERATIONS: u32 = 20_000;
    let mut best: Vec<(String, f64)> = Vec::new();
    for _ in 0..ROUNDS {
        for case in CASES {
            let with_id = case == "valid_incoming_id";
            for_each_variant!(|name, service| {
                let start = std::time::Instant::now();
                for _ in 0..ITERATIONS {
                    black_box(call(&mut service, request(with_id)));
                }
                let ns = start.elapsed().as_nanos() as f64 / f64::from(ITERATIONS);
                let key = format!("{case}/{name}");
                match best.iter_mut().find(|(k, _)| *k == key) {
                    Some((_, b)) => *b = b.min(ns),
                    None => best.push((key, ns)),
                }
            });
        }
    }
    for (key, ns) in best {
        println!("{key:50} {ns:8.1} ns/req (best of {ROUNDS} rounds)");
    }
}

fn main() {
    if let Ok(which) = std::env::var("REQUEST_ID_COUNT") {
        return count(&which);
    }
    if std::env::var_os("REQUEST_ID_INTERLEAVED").is_some() {
        return interleaved();
    }
    let mut criterion = Criterion::default().configure_from_args();
    criterion_benches(&mut criterion);
    criterion.final_summary();
}
