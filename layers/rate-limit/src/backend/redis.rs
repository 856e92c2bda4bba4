//! The Redis backend: one global limit shared by every instance, with a local fallback.

#[cfg(feature = "metrics")]
use crate::metrics::LimiterMetrics;
use crate::{
    Decision, LimitKey, Quotas,
    backend::{
        gcra,
        memory::{MemoryBackend, Store},
    },
    limiter::Checked,
};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::{
    fmt,
    sync::{
        Arc, OnceLock,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};
use tokio::time::Instant;

/// GCRA over several quotas in one atomic step, on Redis's clock.
///
/// KEYS[1]: the key's hash (field `i` holds quota `i`'s TAT, µs since the epoch).
/// ARGV: max delay (µs), n, then per quota: interval (µs), burst capacity (µs), burst.
/// Returns {allowed, wait µs, remaining, reset µs, policy index}.
/// TATs are written with `%.0f`: Lua's `tostring` would round 16-digit numbers.
const SCRIPT: &str = r#"
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local max_delay = tonumber(ARGV[1])
local n = tonumber(ARGV[2])
local fields = {}
for i = 1, n do fields[i] = tostring(i) end
local stored = redis.call('HMGET', KEYS[1], unpack(fields))
local wait = 0
local base = {}
for i = 1, n do
  local t = tonumber(ARGV[3 * i])
  local tau = tonumber(ARGV[3 * i + 1])
  local tat = tonumber(stored[i]) or 0
  if tat < now then tat = now end
  base[i] = tat
  local excess = tat + t - now - tau
  if excess > wait then wait = excess end
end
local allowed = wait <= max_delay
local remaining = -1
local reset = 0
local policy = 0
local longest = 0
local updates = {}
for i = 1, n do
  local t = tonumber(ARGV[3 * i])
  local tau = tonumber(ARGV[3 * i + 1])
  local burst = tonumber(ARGV[3 * i + 2])
  local backlog = base[i] - now
  if allowed then
    backlog = backlog + t
    updates[#updates + 1] = fields[i]
    updates[#updates + 1] = string.format('%.0f', base[i] + t)
  end
  local left
  if t == 0 then
    left = burst
  elseif tau >= backlog then
    left = math.floor((tau - backlog) / t)
  else
    left = 0
  end
  if remaining < 0 or left < remaining or (left == remaining and backlog > reset) then
    remaining = left
    reset = backlog
    policy = i - 1
  end
  if backlog > longest then longest = backlog end
end
if allowed then
  redis.call('HSET', KEYS[1], unpack(updates))
  redis.call('PEXPIRE', KEYS[1], math.floor(longest / 1000) + 1)
end
return {allowed and 1 or 0, wait, remaining, reset, policy}
"#;

/// Settings of the Redis backend (feature `redis`).
///
/// Every check is one `EVALSHA` of a GCRA script (loaded once; reloaded by itself after a
/// Redis restart flushed it) that reads and updates the key's TATs atomically on Redis's
/// clock, so instances with skewed clocks still share one limit. Keys expire once fully
/// replenished. Every call is bounded by [`timeout`](Self::timeout).
///
/// # When Redis is slow or down
///
/// A failed or timed-out call switches the limiter to its **local fallback**: an in-process
/// limiter enforcing [`local_share`](Self::local_share) of each quota (1.0 by default; with N
/// instances, `1.0 / N` keeps the total near the global limit). While on the fallback, one
/// request per [`retry_interval`](Self::retry_interval) tries Redis again (the others do not
/// wait for it); the first success switches back. Each switch logs one line (`warn` to local,
/// `info` back to Redis) and counts in `espresso_rate_limit_backend_transitions_total`. A Redis
/// outage never fails requests.
///
/// ```
/// use espresso_rate_limit::{Quota, RateLimitLayer, RedisBackend};
/// use std::time::Duration;
///
/// let redis = RedisBackend::new("redis://127.0.0.1:6379")
///     .unwrap()
///     .prefix("myapp:rl")
///     .timeout(Duration::from_millis(50))
///     .local_share(1.0 / 3.0);
/// let layer = RateLimitLayer::new(Quota::per_second(300)).name("api").backend(redis);
/// ```
#[derive(Clone)]
pub struct RedisBackend {
    client: redis::Client,
    prefix: Arc<str>,
    timeout: Duration,
    local_share: f64,
    retry_interval: Duration,
    local: MemoryBackend,
}

impl RedisBackend {
    /// A backend for the Redis at `url` (`redis://host:port/db`). Only parses the URL: the
    /// connection is made on the first check, and a Redis that is down then is a fallback,
    /// not an error.
    pub fn new(url: &str) -> redis::RedisResult<Self> {
        Ok(Self::from_client(redis::Client::open(url)?))
    }

    /// A backend using `client`.
    pub fn from_client(client: redis::Client) -> Self {
        Self {
            client,
            prefix: Arc::from("espresso:rl"),
            timeout: Duration::from_millis(50),
            local_share: 1.0,
            retry_interval: Duration::from_secs(1),
            local: MemoryBackend::default(),
        }
    }

    /// The prefix of every key (default `espresso:rl`); keys are `<prefix>:<limiter>:<key>`.
    pub fn prefix(mut self, prefix: impl Into<Arc<str>>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The bound on every Redis call, connecting included (default 50 ms).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The share of each quota the local fallback enforces, in (0, 1] (default 1.0).
    pub fn local_share(mut self, share: f64) -> Self {
        self.local_share = share;
        self
    }

    /// How often, while on the local fallback, one request tries Redis again (default 1 s).
    pub fn retry_interval(mut self, interval: Duration) -> Self {
        self.retry_interval = interval;
        self
    }

    /// The settings of the local fallback's store.
    pub fn local_backend(mut self, local: MemoryBackend) -> Self {
        self.local = local;
        self
    }
}

impl fmt::Debug for RedisBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisBackend")
            .field("addr", &self.client.get_connection_info().addr())
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .field("local_share", &self.local_share)
            .field("retry_interval", &self.retry_interval)
            .field("local", &self.local)
            .finish()
    }
}

/// A Redis limiter for one key type: the shared connection and its local fallback.
pub(crate) struct RedisLimiter<Key> {
    shared: Arc<RedisShared>,
    local: Arc<Store<Option<Key>>>,
    share: f64,
}

struct RedisShared {
    client: redis::Client,
    manager: OnceLock<Result<ConnectionManager, String>>,
    script: redis::Script,
    key_prefix: Vec<u8>,
    timeout: Duration,
    retry_interval: Duration,
    degraded: AtomicBool,
    next_probe: AtomicU64,
    epoch: Instant,
    name: Arc<str>,
    #[cfg(feature = "metrics")]
    metrics: Option<LimiterMetrics>,
}

impl<Key: LimitKey> RedisLimiter<Key> {
    pub(crate) fn new(
        config: &RedisBackend,
        name: &Arc<str>,
        #[cfg(feature = "metrics")] metrics: Option<LimiterMetrics>,
    ) -> Self {
        let local = Store::new(config.local);
        #[cfg(feature = "metrics")]
        let local = local.with_evictions(metrics.as_ref().map(|m| m.evictions.clone()));
        let mut key_prefix = Vec::with_capacity(config.prefix.len() + name.len() + 2);
        key_prefix.extend_from_slice(config.prefix.as_bytes());
        key_prefix.push(b':');
        key_prefix.extend_from_slice(name.as_bytes());
        key_prefix.push(b':');
        Self {
            shared: Arc::new(RedisShared {
                client: config.client.clone(),
                manager: OnceLock::new(),
                script: redis::Script::new(SCRIPT),
                key_prefix,
                timeout: config.timeout,
                retry_interval: config.retry_interval,
                degraded: AtomicBool::new(false),
                next_probe: AtomicU64::new(0),
                epoch: Instant::now(),
                name: name.clone(),
                #[cfg(feature = "metrics")]
                metrics,
            }),
            local: Arc::new(local),
            share: config.local_share,
        }
    }

    pub(crate) fn local_store(&self) -> &Store<Option<Key>> {
        &self.local
    }

    pub(crate) fn is_degraded(&self) -> bool {
        self.shared.degraded.load(Ordering::Acquire)
    }

    pub(crate) fn check(&self, key: Option<Key>, quotas: &Quotas, max_delay: Duration) -> Checked {
        let compiled = quotas.compiled();
        if compiled.is_empty() {
            return Checked::Ready(Decision::unlimited());
        }
        if compiled.iter().any(|q| q.t == u64::MAX) {
            // A blocking quota refuses whatever the state: no need to ask Redis.
            return Checked::Ready(gcra(&mut vec![0; compiled.len()], 0, compiled, 0));
        }
        if self.is_degraded() && !self.shared.probe_due() {
            return Checked::Ready(self.local_check(key, quotas, max_delay));
        }
        let mut redis_key = self.shared.key_prefix.clone();
        key.write_bytes(&mut redis_key);
        let shared = self.shared.clone();
        let local = self.local.clone();
        let share = self.share;
        let quotas = quotas.clone();
        Checked::Pending(Box::pin(async move {
            match shared.remote(redis_key, &quotas, max_delay).await {
                Ok(decision) => {
                    shared.mark_healthy();
                    decision
                }
                Err(error) => {
                    shared.mark_degraded(&error);
                    local.check(key, quotas.scaled(share).compiled(), max_delay)
                }
            }
        }))
    }

    fn local_check(&self, key: Option<Key>, quotas: &Quotas, max_delay: Duration) -> Decision {
        self.local
            .check(key, quotas.scaled(self.share).compiled(), max_delay)
    }
}

fn micros(ns: u64) -> u64 {
    if ns == 0 { 0 } else { (ns / 1000).max(1) }
}

impl RedisShared {
    fn now(&self) -> u64 {
        crate::quota::duration_nanos(Instant::now().saturating_duration_since(self.epoch))
    }

    /// `true` for the one caller that should try Redis again now.
    fn probe_due(&self) -> bool {
        let now = self.now();
        let next = self.next_probe.load(Ordering::Acquire);
        now >= next
            && self
                .next_probe
                .compare_exchange(
                    next,
                    now.saturating_add(crate::quota::duration_nanos(self.retry_interval)),
                    Ordering::AcqRel,
                    Ordering::Acquire,
                )
                .is_ok()
    }

    fn mark_degraded(&self, error: &str) {
        self.next_probe.store(
            self.now()
                .saturating_add(crate::quota::duration_nanos(self.retry_interval)),
            Ordering::Release,
        );
        if !self.degraded.swap(true, Ordering::AcqRel) {
            tracing::warn!(limiter = %self.name, %error, "rate limiter: Redis unavailable, using the local fallback");
            #[cfg(feature = "metrics")]
            if let Some(m) = &self.metrics {
                m.to_local.inc();
                m.local.set(1);
            }
        }
    }

    fn mark_healthy(&self) {
        if self.degraded.swap(false, Ordering::AcqRel) {
            tracing::info!(limiter = %self.name, "rate limiter: Redis is back, leaving the local fallback");
            #[cfg(feature = "metrics")]
            if let Some(m) = &self.metrics {
                m.to_redis.inc();
                m.local.set(0);
            }
        }
    }

    fn manager(&self) -> Result<ConnectionManager, String> {
        self.manager
            .get_or_init(|| {
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(self.timeout))
                    .set_response_timeout(Some(self.timeout))
                    .set_number_of_retries(1)
                    .set_min_delay(Duration::from_millis(10))
                    .set_max_delay(Duration::from_millis(100));
                ConnectionManager::new_lazy_with_config(self.client.clone(), config)
                    .map_err(|e| e.to_string())
            })
            .clone()
    }

    async fn remote(
        &self,
        key: Vec<u8>,
        quotas: &Quotas,
        max_delay: Duration,
    ) -> Result<Decision, String> {
        let mut conn = self.manager()?;
        let compiled = quotas.compiled();
        let mut invocation = self.script.key(key);
        invocation
            .arg(micros(crate::quota::duration_nanos(max_delay)))
            .arg(compiled.len());
        for q in compiled {
            let t = micros(q.t);
            invocation
                .arg(t)
                .arg(t.saturating_mul(q.burst))
                .arg(q.burst);
        }
        let reply: Vec<i64> =
            match tokio::time::timeout(self.timeout, invocation.invoke_async(&mut conn)).await {
                Ok(Ok(reply)) => reply,
                Ok(Err(e)) => return Err(e.to_string()),
                Err(_) => return Err(format!("no answer within {:?}", self.timeout)),
            };
        let [allowed, wait, remaining, reset, policy] = reply[..] else {
            return Err(format!("unexpected script reply {reply:?}"));
        };
        let us = |v: i64| Duration::from_micros(u64::try_from(v).unwrap_or(0));
        Ok(Decision {
            allowed: allowed == 1,
            wait: us(wait),
            remaining: u64::try_from(remaining).unwrap_or(0),
            reset: us(reset),
            policy: usize::try_from(policy).unwrap_or(0),
        })
    }
}
