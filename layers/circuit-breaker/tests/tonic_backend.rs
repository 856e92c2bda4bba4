//! A real tonic backend starts failing, the breaker opens, calls fail fast, the backend
//! recovers and the breaker closes.
//!
//! The backend is tonic-health's `HealthServer` behind a small switch (`Flaky`) that, when
//! turned on, answers every call with a trailers-only `UNAVAILABLE`, as a server in trouble
//! does. It runs on its own thread and runtime, on real time, on 127.0.0.1.
//!
//! The client side, where the breaker sits around a tonic `Channel`, runs with Tokio's clock
//! paused: the 60 s wait in OPEN passes with one `advance`, not a sleep. Nothing on the client
//! holds a timer while a call is on the wire, so pausing the clock cannot fire one early.
//!
//! The second test puts the same layer on the server side, inside a tonic `Server`.

use espresso_circuit_breaker::{CircuitBreaker, CircuitBreakerLayer, Event, SlidingWindow, State};
use std::{
    future::Future,
    pin::Pin,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};
use tonic::{Code, Status, transport::Endpoint};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};
use tower::{Service, ServiceBuilder, layer::layer_fn};

/// Answers `UNAVAILABLE` for the inner service while `failing` is on; counts calls that arrive.
#[derive(Clone)]
struct Flaky<S> {
    inner: S,
    failing: Arc<AtomicBool>,
    arrived: Arc<AtomicUsize>,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, B> Service<http::Request<B>> for Flaky<S>
where
    S: Service<http::Request<B>, Response = http::Response<tonic::body::Body>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        self.arrived.fetch_add(1, Ordering::SeqCst);
        if self.failing.load(Ordering::SeqCst) {
            let response = Status::unavailable("backend is down").into_http();
            Box::pin(async move { Ok(response) })
        } else {
            Box::pin(self.inner.call(request))
        }
    }
}

struct Backend {
    addr: std::net::SocketAddr,
    failing: Arc<AtomicBool>,
    arrived: Arc<AtomicUsize>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Backend {
    fn start() -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let failing = Arc::new(AtomicBool::new(false));
        let arrived = Arc::new(AtomicUsize::new(0));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (f, a) = (failing.clone(), arrived.clone());
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let (_reporter, health) = tonic_health::server::health_reporter();
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                tonic::transport::Server::builder()
                    .layer(layer_fn(move |inner| Flaky {
                        inner,
                        failing: f.clone(),
                        arrived: a.clone(),
                    }))
                    .add_service(health)
                    .serve_with_incoming_shutdown(
                        tonic::transport::server::TcpIncoming::from(listener),
                        async {
                            let _ = stopped.await;
                        },
                    )
                    .await
                    .unwrap();
            });
        });
        Self {
            addr,
            failing,
            arrived,
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        // Not joined: the server drains gracefully and waits for the client's connection,
        // whose task lives on the test's runtime, which this drop would block.
        drop(self.thread.take());
    }
}

#[tokio::test(start_paused = true)]
async fn a_failing_tonic_backend_opens_the_breaker_and_its_recovery_closes_it() {
    let backend = Backend::start();
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    let breaker = CircuitBreaker::builder("health")
        .sliding_window(SlidingWindow::count(4))
        .minimum_number_of_calls(4)
        .failure_rate_threshold(50.0)
        .permitted_calls_in_half_open(2)
        .wait_in_open(Duration::from_secs(60))
        .on_event(move |e| {
            if let Event::StateTransition { from, to, .. } = e {
                sink.lock().unwrap().push((*from, *to));
            }
        })
        .build()
        .unwrap();

    let channel = Endpoint::from_shared(format!("http://{}", backend.addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let guarded = ServiceBuilder::new()
        .layer(CircuitBreakerLayer::new(breaker.clone()).respond())
        .service(channel);
    let mut client = HealthClient::new(guarded);
    let check = || HealthCheckRequest {
        service: String::new(),
    };

    // Healthy.
    for _ in 0..3 {
        let reply = client.check(check()).await.unwrap().into_inner();
        assert_eq!(reply.status(), ServingStatus::Serving);
    }
    assert_eq!(breaker.state(), State::Closed);

    // The backend starts failing: the second failure makes 2 of the last 4 calls, 50 %.
    backend.failing.store(true, Ordering::SeqCst);
    for _ in 0..2 {
        let status = client.check(check()).await.unwrap_err();
        assert_eq!(status.code(), Code::Unavailable);
        assert_eq!(status.message(), "backend is down");
    }
    assert_eq!(breaker.state(), State::Open);
    assert_eq!(backend.arrived.load(Ordering::SeqCst), 5);

    // Calls now fail fast: an UNAVAILABLE status from the breaker, nothing reaches the backend.
    for _ in 0..5 {
        let status = client.check(check()).await.unwrap_err();
        assert_eq!(status.code(), Code::Unavailable);
        assert_eq!(status.message(), "circuit breaker is open");
        assert_eq!(status.metadata().get("retry-after").unwrap(), "60");
        assert_eq!(
            status.metadata().get("x-circuit-breaker").unwrap(),
            "health"
        );
    }
    assert_eq!(backend.arrived.load(Ordering::SeqCst), 5);

    // The backend recovers; the wait runs out and the breaker half-opens with no call made.
    backend.failing.store(false, Ordering::SeqCst);
    tokio::time::advance(Duration::from_secs(60)).await;
    assert_eq!(breaker.state(), State::HalfOpen);

    // Two good probes close it; traffic flows again.
    for _ in 0..4 {
        let reply = client.check(check()).await.unwrap().into_inner();
        assert_eq!(reply.status(), ServingStatus::Serving);
    }
    assert_eq!(breaker.state(), State::Closed);
    assert_eq!(backend.arrived.load(Ordering::SeqCst), 9);
    assert_eq!(
        *events.lock().unwrap(),
        vec![
            (State::Closed, State::Open),
            (State::Open, State::HalfOpen),
            (State::HalfOpen, State::Closed)
        ]
    );
}

#[tokio::test]
async fn the_same_breaker_type_guards_a_tonic_server() {
    // Server side: the breaker wraps the (flaky) health service inside the server and answers
    // UNAVAILABLE itself once open, so the handler is not called while it is in trouble.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let failing = Arc::new(AtomicBool::new(true));
    let arrived = Arc::new(AtomicUsize::new(0));
    let breaker = CircuitBreaker::builder("health-server")
        .sliding_window(SlidingWindow::consecutive_failures(2))
        .wait_in_open(Duration::from_secs(3600))
        .build()
        .unwrap();
    let (_reporter, health) = tonic_health::server::health_reporter();
    let (f, a) = (failing.clone(), arrived.clone());
    let server = tonic::transport::Server::builder()
        .layer(CircuitBreakerLayer::new(breaker.clone()).respond())
        .layer(layer_fn(move |inner| Flaky {
            inner,
            failing: f.clone(),
            arrived: a.clone(),
        }))
        .add_service(health)
        .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener));
    let server = tokio::spawn(server);

    let channel = Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = HealthClient::new(channel);
    let check = || HealthCheckRequest {
        service: String::new(),
    };
    for _ in 0..2 {
        let status = client.check(check()).await.unwrap_err();
        assert_eq!(status.message(), "backend is down");
    }
    assert_eq!(breaker.state(), State::Open);
    for _ in 0..3 {
        let status = client.check(check()).await.unwrap_err();
        assert_eq!(status.code(), Code::Unavailable);
        assert_eq!(status.message(), "circuit breaker is open");
    }
    assert_eq!(
        arrived.load(Ordering::SeqCst),
        2,
        "rejected calls never reach the handler"
    );

    // An operator closes it once the backend is fixed.
    failing.store(false, Ordering::SeqCst);
    breaker.transition_to(State::Closed);
    let reply = client.check(check()).await.unwrap().into_inner();
    assert_eq!(reply.status(), ServingStatus::Serving);
    server.abort();
}
