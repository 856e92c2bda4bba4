//! [`RedisCache`]: the shared level of the verdict cache.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

use espresso_circuit_breaker::{CircuitBreaker, CircuitBreakerBuilder, Outcome, SlidingWindow};
use espresso_common::redis::{RedisConnection, RedisTarget};

use crate::health::Health;
use crate::metrics::CacheMetrics;

/// The default timeout of one Redis call.
pub const DEFAULT_REDIS_TIMEOUT: Duration = Duration::from_millis(25);

/// The default key prefix.
pub const DEFAULT_PREFIX: &str = "espresso:filter:verdict:";

/// Verdicts shared across instances through Redis, for a [`CacheLayer`](super::CacheLayer).
///
/// Keys are `<prefix><dictionary version, 16 hex digits>:<xxh3-128 of the content, 32 hex
/// digits>`, values the response as JSON, written with the cache's TTL (`SET … PX`).
///
/// One Redis node ([`open`](Self::open)), a Redis Cluster or a Sentinel-managed master
/// ([`target`](Self::target)); each key is one `GET` or `SET`, so any slot will do.
///
/// Every call has a timeout and goes through a circuit breaker: when Redis is slow, down or
/// failing over, the cache works from the local level only, the errors are counted in
/// [`CacheMetrics`], the first failure after a success is logged once at WARN with its cause
/// (the next ones at debug; the breaker logs its transitions), Redis is said to answer again
/// (INFO) once a call succeeds a second or more after the last failure (while one master of a
/// cluster is down, calls to the others succeed in between), and no request fails or waits
/// more than the timeout for Redis. The connection is made on first use and re-made after a
/// failure (for Sentinel: the master is asked for again).
#[derive(Clone)]
pub struct RedisCache {
    shared: Arc<Shared>,
}

#[derive(Clone)]
struct Shared {
    target: RedisTarget,
    conn: RedisConnection,
    /// Whether Redis is failing, as the log says: what logs once.
    health: Arc<Health>,
    timeout: Duration,
    prefix: String,
    breaker: CircuitBreaker,
}

impl fmt::Debug for RedisCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisCache")
            .field("target", &self.shared.target)
            .field("timeout", &self.shared.timeout)
            .field("prefix", &self.shared.prefix)
            .field("breaker", &self.shared.breaker)
            .finish_non_exhaustive()
    }
}

/// The time a key has left from its `PTTL`: `None` for -1 (no expiry), zero for -2 (gone, as
/// when it expired between a `GET` and the `PTTL`).
fn time_left(pttl: i64) -> Option<Duration> {
    match pttl {
        -1 => None,
        ms => Some(Duration::from_millis(u64::try_from(ms).unwrap_or(0))),
    }
}

/// The settings of the breaker a [`RedisCache`] uses unless given one: a window of the last 20
/// calls, opening at 50 % failures once 5 calls are in, a 1 s wait, 2 half-open probes. Add
/// [`metrics`](espresso_circuit_breaker::CircuitBreakerBuilder::metrics) or change a setting,
/// then `build()` and pass it to [`RedisCache::breaker`].
pub fn default_redis_breaker(name: &str) -> CircuitBreakerBuilder {
    CircuitBreaker::builder(name)
        .sliding_window(SlidingWindow::count(20))
        .minimum_number_of_calls(5)
        .failure_rate_threshold(50.0)
        .wait_in_open(Duration::from_secs(1))
        .permitted_calls_in_half_open(2)
}

impl RedisCache {
    /// A cache on the Redis at `url` (`redis://host:port/db`). Only checks the URL: the
    /// connection is made on first use.
    pub fn open(url: &str) -> Result<Self, redis::RedisError> {
        Self::target(RedisTarget::node(url))
    }

    /// A cache on `target`: one node, a Redis Cluster (its seed nodes) or the master a Sentinel
    /// watches. Only checks the URLs: the connection is made on first use.
    pub fn target(target: RedisTarget) -> Result<Self, redis::RedisError> {
        Ok(RedisCache {
            shared: Arc::new(Shared {
                conn: RedisConnection::new(&target, DEFAULT_REDIS_TIMEOUT)?,
                target,
                health: Arc::default(),
                timeout: DEFAULT_REDIS_TIMEOUT,
                prefix: DEFAULT_PREFIX.to_owned(),
                breaker: default_redis_breaker("filter_cache_redis")
                    .build()
                    .expect("the default cache breaker configuration is valid"),
            }),
        })
    }

    /// The timeout of every call (connecting included); default [`DEFAULT_REDIS_TIMEOUT`].
    pub fn timeout(self, timeout: Duration) -> Self {
        self.with(|s| {
            s.timeout = timeout;
            s.conn = RedisConnection::new(&s.target, timeout)
                .expect("the target's URLs were checked when it was opened");
        })
    }

    /// The key prefix; default [`DEFAULT_PREFIX`].
    pub fn prefix(self, prefix: impl Into<String>) -> Self {
        self.with(|s| s.prefix = prefix.into())
    }

    /// The breaker around the calls (instead of [`default_redis_breaker`]).
    pub fn breaker(self, breaker: CircuitBreaker) -> Self {
        self.with(|s| s.breaker = breaker)
    }

    /// The breaker around the calls.
    pub fn circuit_breaker(&self) -> &CircuitBreaker {
        &self.shared.breaker
    }

    fn with(self, change: impl FnOnce(&mut Shared)) -> Self {
        let mut shared = Arc::unwrap_or_clone(self.shared);
        change(&mut shared);
        RedisCache {
            shared: Arc::new(shared),
        }
    }

    pub(crate) fn key(&self, version: u64, hash: u128) -> String {
        format!("{}{version:016x}:{hash:032x}", self.shared.prefix)
    }

    /// The value at `key` and the time it has left (`None`: no expiry), in one round trip.
    pub(crate) async fn get(
        &self,
        key: &str,
        metrics: Option<&CacheMetrics>,
    ) -> Option<(Vec<u8>, Option<Duration>)> {
        let mut pipe = redis::pipe();
        pipe.cmd("GET").arg(key).cmd("PTTL").arg(key);
        let call = self.shared.conn.query_pipe::<(Option<Vec<u8>>, i64)>(&pipe);
        let (value, left) = self.run("get", call, metrics).await?;
        value.map(|value| (value, time_left(left)))
    }

    pub(crate) async fn set(
        &self,
        key: &str,
        value: &[u8],
        ttl: Duration,
        metrics: Option<&CacheMetrics>,
    ) {
        let millis = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let mut cmd = redis::cmd("SET");
        cmd.arg(key).arg(value).arg("PX").arg(millis);
        let call = self.shared.conn.query::<()>(&cmd);
        self.run("set", call, metrics).await;
    }

    /// Makes `call` through the breaker, counting and logging a failure.
    async fn run<T>(
        &self,
        op: &'static str,
        call: impl Future<Output = redis::RedisResult<T>>,
        metrics: Option<&CacheMetrics>,
    ) -> Option<T> {
        let shared = &*self.shared;
        let fail = |kind: &'static str, message: &dyn fmt::Display| {
            if shared.health.failed(Instant::now()) {
                tracing::warn!(op, kind, redis = %shared.target, error = %message, "verdict cache: Redis call failed, caching in process only until it answers again");
            } else {
                tracing::debug!(op, kind, error = %message, "verdict cache: Redis call failed, local cache only");
            }
            if let Some(m) = metrics {
                m.redis_error(op, kind);
            }
        };
        let Ok(permit) = shared.breaker.try_acquire() else {
            if let Some(m) = metrics {
                m.redis_error(op, "open");
            }
            return None;
        };
        match call.await {
            Ok(value) => {
                permit.complete(Outcome::Success);
                if shared.health.succeeded() {
                    tracing::info!(op, redis = %shared.target, "verdict cache: Redis answers again");
                }
                Some(value)
            }
            Err(e) => {
                permit.complete(Outcome::Failure);
                let kind = if e.is_timeout() { "timeout" } else { "error" };
                fail(kind, &e);
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_gone_has_no_time_left_and_one_without_expiry_has_no_bound() {
        assert_eq!(time_left(1500), Some(Duration::from_millis(1500)));
        assert_eq!(time_left(-2), Some(Duration::ZERO));
        assert_eq!(time_left(-1), None);
    }
}
