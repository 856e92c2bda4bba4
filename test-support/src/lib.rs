//! Helpers for espresso's own tests and benches (never published; crates take it as a
//! dev-dependency by path only, so `cargo package` drops it).
//!
//! - [`missing`] and [`program`]: the one skip policy. A test that needs a program or service
//!   the machine lacks prints one line naming the test, the missing piece and how to install
//!   it, then returns early; with `ESPRESSO_REQUIRE_SERVICES=1` (CI) it panics with the same
//!   line instead, so nothing skips there.
//! - [`histogram`]: latency percentiles from a `/metrics` scrape, as Prometheus computes them.
//! - [`RedisServer`]: a throw-away `redis-server` on a free port of 127.0.0.1, without
//!   persistence, that can be killed and restarted on its port and dies with its owner.
//! - [`RedisCluster`] (3 masters + 3 replicas, made with `redis-cli --cluster create`) and
//!   [`RedisSentinel`] (a master, a replica, one Sentinel): throw-away topologies with a 1 s
//!   failure detection, for failover tests.
//! - [`FailsInTrailers`] (feature `grpc`): a tonic health service whose `Watch` stream sends
//!   messages, then fails in its trailers, for layers that must judge a call at the end of its
//!   body.
//!
//! ```
//! use espresso_test_support::RedisServer;
//!
//! // Skips this example (one line on stderr) where redis-server is not installed.
//! let Some(redis) = RedisServer::start() else { return };
//! let pong: String = redis.query(&["PING"]);
//! assert_eq!(pong, "PONG");
//! assert_eq!(redis.url(), format!("redis://127.0.0.1:{}", redis.port()));
//! ```
#![forbid(unsafe_code)]

mod eventually;
#[cfg(feature = "grpc")]
mod grpc;
pub mod histogram;
mod redis_server;
mod redis_topology;
mod skip;
#[cfg(feature = "grpc")]
mod streams;

pub use eventually::eventually;
#[cfg(feature = "grpc")]
pub use grpc::{
    FailsInTrailers, TRAILERS_MESSAGE, WatchStream, health_client_of, health_request, serving,
};
pub use redis_server::{RedisServer, StartError};
pub use redis_topology::{RedisCluster, RedisSentinel};
pub use skip::{Policy, REQUIRE_SERVICES, missing, program};
#[cfg(feature = "grpc")]
pub use streams::{
    StreamBody, StreamSender, grpc_status, open_stream, read_stream, streaming_backend,
};
