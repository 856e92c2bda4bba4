//! The Redis backend: one global limit shared by every instance (one node, a Redis Cluster or a
//! Sentinel-managed master), with a local fallback.

#[cfg(feature = "metrics")]
use crate::metrics::LimiterMetrics;
use crate::{
    Decision, LimitKey, Quotas,
    backend::{
        gcra,
        lease::{Leases, Step},
        memory::{MemoryBackend, Store},
    },
    limiter::Checked,
};
use espresso_common::redis::{RedisConnection, RedisTarget};
use std::{
    fmt,
    sync::{
        Arc,
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

/// A lease: up to `want` admissions at once from the same GCRA state, on Redis's clock.
///
/// KEYS[1]: the key's hash, as for [`SCRIPT`]. ARGV: want, n, then per quota: interval (µs),
/// burst capacity (µs), burst. Returns {granted, wait µs (when nothing was granted: until one
/// admission would be)}. `k` admissions fit while `backlog + k * interval <= capacity`; the
/// TATs move on by `granted` intervals, exactly as `granted` single checks would move them.
const LEASE_SCRIPT: &str = r#"
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local want = tonumber(ARGV[1])
local n = tonumber(ARGV[2])
local fields = {}
for i = 1, n do fields[i] = tostring(i) end
local stored = redis.call('HMGET', KEYS[1], unpack(fields))
local grant = want
local wait = 0
local base = {}
for i = 1, n do
  local t = tonumber(ARGV[3 * i])
  local tau = tonumber(ARGV[3 * i + 1])
  local tat = tonumber(stored[i]) or 0
  if tat < now then tat = now end
  base[i] = tat
  if t > 0 then
    local backlog = tat - now
    local fits = 0
    if tau > backlog then fits = math.floor((tau - backlog) / t) end
    if fits < grant then grant = fits end
    local excess = backlog + t - tau
    if excess > wait then wait = excess end
  end
end
if grant > 0 then
  local updates = {}
  local longest = 0
  for i = 1, n do
    local tat = base[i] + grant * tonumber(ARGV[3 * i])
    updates[#updates + 1] = fields[i]
    updates[#updates + 1] = string.format('%.0f', tat)
    if tat - now > longest then longest = tat - now end
  end
  redis.call('HSET', KEYS[1], unpack(updates))
  redis.call('PEXPIRE', KEYS[1], math.floor(longest / 1000) + 1)
  wait = 0
end
return {grant, wait}
"#;

/// Gives admissions back: each stored TAT moves back by `count` intervals (a key expired since
/// has nothing to give back to; its expiry stays).
///
/// KEYS[1]: the key's hash, as for [`SCRIPT`]. ARGV: count, n, then per quota as for [`SCRIPT`].
const GIVE_BACK_SCRIPT: &str = r#"
local count = tonumber(ARGV[1])
local n = tonumber(ARGV[2])
local fields = {}
for i = 1, n do fields[i] = tostring(i) end
local stored = redis.call('HMGET', KEYS[1], unpack(fields))
local updates = {}
for i = 1, n do
  local tat = tonumber(stored[i])
  if tat then
    updates[#updates + 1] = fields[i]
    updates[#updates + 1] = string.format('%.0f', tat - count * tonumber(ARGV[3 * i]))
  end
end
if #updates > 0 then redis.call('HSET', KEYS[1], unpack(updates)) end
return #updates / 2
"#;

/// How a Redis limiter spends its global budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GlobalMode {
    /// One Redis call per request: the exact global limit (the default).
    #[default]
    Exact,
    /// Each instance leases a share of a key's budget in one call and spends it locally,
    /// renewing in the background before it runs out: almost no Redis calls, and at most one
    /// lease per instance per window over the limit. See [`RedisBackend::global_mode`].
    Leased,
}

/// Settings of the Redis backend (feature `redis`).
///
/// One Redis node ([`new`](Self::new)), a Redis Cluster ([`cluster`](Self::cluster)) or the
/// master a Sentinel watches ([`sentinel`](Self::sentinel)); the topology work (slots,
/// redirections, finding the master) is the `redis` crate's. Keys are
/// `<prefix>:{<limiter>:<key>}`, `<key>` being the key's bytes as its [`LimitKey`] writes them
/// (a peer address as `=127.0.0.1`, `=` marking a key found, `~` none): the braces are a
/// cluster hash tag, so everything one script touches for a key lives in one slot.
///
/// In [`GlobalMode::Exact`] (the default) every check is one `EVALSHA` of a GCRA script (loaded once; reloaded by itself after a
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
/// outage never fails requests. A failover (a master killed, a replica promoted) is such an
/// outage while it lasts: the limiter decides locally, logs it once, and goes back to Redis by
/// itself once the new master answers.
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
    target: RedisTarget,
    prefix: Arc<str>,
    timeout: Duration,
    local_share: f64,
    retry_interval: Duration,
    local: MemoryBackend,
    mode: GlobalMode,
    lease_interval: Duration,
}

impl RedisBackend {
    /// A backend for the Redis at `url` (`redis://host:port/db`). Only parses the URL: the
    /// connection is made on the first check, and a Redis that is down then is a fallback,
    /// not an error.
    pub fn new(url: &str) -> redis::RedisResult<Self> {
        Self::target(RedisTarget::node(url))
    }

    /// A backend for the Redis Cluster reachable through any of `seeds`
    /// (`["redis://10.0.0.1:7000", …]`). Only parses the URLs.
    pub fn cluster<S: Into<String>>(
        seeds: impl IntoIterator<Item = S>,
    ) -> redis::RedisResult<Self> {
        Self::target(RedisTarget::cluster(seeds))
    }

    /// A backend for the master the Sentinels at `nodes` know as `master`. Only parses the
    /// URLs; each (re)connection asks a Sentinel where the master is now.
    pub fn sentinel<S: Into<String>>(
        nodes: impl IntoIterator<Item = S>,
        master: impl Into<String>,
    ) -> redis::RedisResult<Self> {
        Self::target(RedisTarget::sentinel(nodes, master))
    }

    /// A backend for `target`. Only parses its URLs.
    pub fn target(target: RedisTarget) -> redis::RedisResult<Self> {
        let timeout = Duration::from_millis(50);
        RedisConnection::new(&target, timeout)?;
        Ok(Self {
            target,
            prefix: Arc::from("espresso:rl"),
            timeout,
            local_share: 1.0,
            retry_interval: Duration::from_secs(1),
            local: MemoryBackend::default(),
            mode: GlobalMode::Exact,
            lease_interval: Duration::from_millis(100),
        })
    }

    /// The prefix of every key (default `espresso:rl`); keys are `<prefix>:{<limiter>:<key>}`.
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

    /// The settings of the local fallback's store (its key cap also bounds the leases).
    pub fn local_backend(mut self, local: MemoryBackend) -> Self {
        self.local = local;
        self
    }

    /// Exact (one Redis call per request, the default) or leased global limits.
    ///
    /// Leased: each instance takes a share of a key's budget (a lease of `n` admissions) from
    /// the same GCRA state in one call, admits from it locally, and renews in the background
    /// when a quarter is left. The lease is sized from the instance's own recent demand (its
    /// requests per [`lease_interval`](Self::lease_interval)), ramping up from 1 on a cold key
    /// and capped at a quarter of the quota's burst; unused tokens expire after ten lease
    /// intervals, so an idle key costs no call. A key at its limit is refused locally for a
    /// random quarter to half of the lease interval (or until the GCRA would admit, if later)
    /// before its next lease call, so it costs a few calls a second per instance.
    ///
    /// **Accuracy**: leased tokens count globally when granted, so over any window all
    /// instances together admit at most the limit plus one lease per instance. With a
    /// 100 ms lease interval that is about a tenth of each instance's own per-second rate.
    /// Requests a layer may hold back ([`wait_up_to`](crate::RateLimitLayer::wait_up_to)) are
    /// checked exactly.
    pub fn global_mode(mut self, mode: GlobalMode) -> Self {
        self.mode = mode;
        self
    }

    /// In [`GlobalMode::Leased`]: how much of its recent traffic an instance leases at once
    /// (default 100 ms). Longer means fewer Redis calls and a larger over-admission bound.
    pub fn lease_interval(mut self, interval: Duration) -> Self {
        self.lease_interval = interval;
        self
    }
}

impl fmt::Debug for RedisBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisBackend")
            .field("target", &self.target)
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .field("local_share", &self.local_share)
            .field("retry_interval", &self.retry_interval)
            .field("local", &self.local)
            .field("mode", &self.mode)
            .field("lease_interval", &self.lease_interval)
            .finish()
    }
}

/// A Redis limiter for one key type: the shared connection and its local fallback.
pub(crate) struct RedisLimiter<Key> {
    shared: Arc<RedisShared>,
    local: Arc<Store<Option<Key>>>,
    share: f64,
    /// `Some` in leased mode.
    leases: Option<Arc<Leases<Option<Key>>>>,
}

struct RedisShared {
    conn: RedisConnection,
    script: redis::Script,
    lease_script: redis::Script,
    give_back_script: redis::Script,
    key_prefix: Vec<u8>,
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
        let mut key_prefix = Vec::with_capacity(config.prefix.len() + name.len() + 3);
        key_prefix.extend_from_slice(config.prefix.as_bytes());
        key_prefix.extend_from_slice(b":{");
        key_prefix.extend_from_slice(name.as_bytes());
        key_prefix.push(b':');
        let conn = RedisConnection::new(&config.target, config.timeout)
            .expect("RedisBackend's constructors checked the target");
        let leases = (config.mode == GlobalMode::Leased)
            .then(|| Arc::new(Leases::new(config.local.max_keys, config.lease_interval)));
        Self {
            leases,
            shared: Arc::new(RedisShared {
                conn,
                script: redis::Script::new(SCRIPT),
                lease_script: redis::Script::new(LEASE_SCRIPT),
                give_back_script: redis::Script::new(GIVE_BACK_SCRIPT),
                key_prefix,
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
        if let Some(leases) = &self.leases
            && max_delay.is_zero()
        {
            return self.leased(leases, key, quotas);
        }
        let redis_key = self.shared.redis_key(&key);
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

    /// Leased mode: spend a local token, starting a background renewal at the low-water mark,
    /// or wait for a lease when there is none.
    fn leased(
        &self,
        leases: &Arc<Leases<Option<Key>>>,
        key: Option<Key>,
        quotas: &Quotas,
    ) -> Checked {
        let (step, renew) = leases.spend(&key, quotas.compiled());
        if let Some(size) = renew {
            self.spawn_renewal(leases, key.clone(), quotas, size);
        }
        let size = match step {
            Step::Decided(decision) => return Checked::Ready(decision),
            Step::Fetch(size) => size,
        };
        let redis_key = self.shared.redis_key(&key);
        let shared = self.shared.clone();
        let local = self.local.clone();
        let leases = leases.clone();
        let share = self.share;
        let quotas = quotas.clone();
        Checked::Pending(Box::pin(async move {
            match shared.lease(redis_key, &quotas, size).await {
                Ok((granted, wait)) => {
                    shared.mark_healthy();
                    leases.granted(&key, quotas.compiled(), (size, granted, wait), true)
                }
                Err(error) => {
                    shared.mark_degraded(&error);
                    local.check(key, quotas.scaled(share).compiled(), Duration::ZERO)
                }
            }
        }))
    }

    fn spawn_renewal(
        &self,
        leases: &Arc<Leases<Option<Key>>>,
        key: Option<Key>,
        quotas: &Quotas,
        size: u64,
    ) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            // No runtime to renew on: the next request without a token fetches in the open.
            leases.renewal_failed(&key);
            return;
        };
        let redis_key = self.shared.redis_key(&key);
        let shared = self.shared.clone();
        let leases = leases.clone();
        let quotas = quotas.clone();
        runtime.spawn(async move {
            match shared.lease(redis_key, &quotas, size).await {
                Ok((granted, wait)) => {
                    shared.mark_healthy();
                    leases.granted(&key, quotas.compiled(), (size, granted, wait), false);
                }
                Err(error) => {
                    shared.mark_degraded(&error);
                    leases.renewal_failed(&key);
                }
            }
        });
    }

    /// Gives back the admission a check of `key` against `quotas` took: to Redis when its
    /// script decided (`remote`; in the background, an error loses the give-back, never a
    /// request), to the local fallback otherwise.
    pub(crate) fn give_back(&self, key: Option<Key>, quotas: &Quotas, remote: bool) {
        if !remote {
            self.local
                .give_back(&key, quotas.scaled(self.share).compiled());
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let redis_key = self.shared.redis_key(&key);
        let shared = self.shared.clone();
        let quotas = quotas.clone();
        runtime.spawn(async move {
            let mut invocation = shared.give_back_script.key(redis_key);
            invocation.arg(1);
            quota_args(&mut invocation, &quotas);
            if let Err(error) = shared.conn.invoke::<i64>(&invocation).await {
                tracing::debug!(limiter = %shared.name, %error, "rate limiter: a held request's admission was not given back to Redis");
            }
        });
    }

    fn local_check(&self, key: Option<Key>, quotas: &Quotas, max_delay: Duration) -> Decision {
        self.local
            .check(key, quotas.scaled(self.share).compiled(), max_delay)
    }
}

/// The quotas as both scripts read them: their count, then `T`, `T * burst` and `burst` of each,
/// in microseconds.
fn quota_args(invocation: &mut redis::ScriptInvocation<'_>, quotas: &Quotas) {
    let compiled = quotas.compiled();
    invocation.arg(compiled.len());
    for q in compiled {
        let t = micros(q.t);
        invocation
            .arg(t)
            .arg(t.saturating_mul(q.burst))
            .arg(q.burst);
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
            tracing::warn!(limiter = %self.name, redis = %self.conn.target(), %error, "rate limiter: Redis unavailable, using the local fallback until it answers again");
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

    /// `<prefix>:{<limiter>:<key>}`: the braces make the limiter and key the cluster hash tag.
    fn redis_key<Key: LimitKey>(&self, key: &Option<Key>) -> Vec<u8> {
        let mut redis_key = self.key_prefix.clone();
        key.write_bytes(&mut redis_key);
        redis_key.push(b'}');
        redis_key
    }

    /// Leases up to `want` admissions: (granted, ns until one would be when none were).
    async fn lease(&self, key: Vec<u8>, quotas: &Quotas, want: u64) -> Result<(u64, u64), String> {
        let mut invocation = self.lease_script.key(key);
        invocation.arg(want);
        quota_args(&mut invocation, quotas);
        let reply: Vec<i64> = self
            .conn
            .invoke(&invocation)
            .await
            .map_err(|e| e.to_string())?;
        let [granted, wait] = reply[..] else {
            return Err(format!("unexpected lease script reply {reply:?}"));
        };
        let granted = u64::try_from(granted).unwrap_or(0);
        Ok((
            granted,
            u64::try_from(wait).unwrap_or(0).saturating_mul(1000),
        ))
    }

    async fn remote(
        &self,
        key: Vec<u8>,
        quotas: &Quotas,
        max_delay: Duration,
    ) -> Result<Decision, String> {
        let mut invocation = self.script.key(key);
        invocation.arg(micros(crate::quota::duration_nanos(max_delay)));
        quota_args(&mut invocation, quotas);
        let reply: Vec<i64> = self
            .conn
            .invoke(&invocation)
            .await
            .map_err(|e| e.to_string())?;
        let [allowed, wait, remaining, reset, policy] = reply[..] else {
            return Err(format!("unexpected script reply {reply:?}"));
        };
        let us = |v: i64| Duration::from_micros(u64::try_from(v).unwrap_or(0));
        let mut decision = Decision::new(
            allowed == 1,
            us(wait),
            u64::try_from(remaining).unwrap_or(0),
            us(reset),
            usize::try_from(policy).unwrap_or(0),
        );
        decision.remote = true;
        Ok(decision)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Quota;

    /// A held request's admission goes back where it was taken, whatever the limiter's state
    /// when the request is given up (a Redis decision's to Redis, a fallback decision's to the
    /// fallback), so neither gains one it never gave out.
    #[tokio::test]
    async fn a_give_back_goes_where_the_admission_was_taken() {
        // Nothing listens on port 1: the give-back to Redis fails in the background.
        let config = RedisBackend::new("redis://127.0.0.1:1").unwrap();
        let name: Arc<str> = Arc::from("test");
        #[cfg(feature = "metrics")]
        let limiter = RedisLimiter::<u8>::new(&config, &name, None);
        #[cfg(not(feature = "metrics"))]
        let limiter = RedisLimiter::<u8>::new(&config, &name);
        let quotas: Quotas = Quota::per_minute(1).into();
        let local = |limiter: &RedisLimiter<u8>| {
            limiter
                .local_store()
                .check(Some(1), quotas.compiled(), Duration::ZERO)
                .allowed
        };
        assert!(local(&limiter), "the fallback's one admission, taken");
        limiter.give_back(Some(1), &quotas, true);
        assert!(
            !local(&limiter),
            "a Redis decision's give-back is not the fallback's"
        );
        limiter.give_back(Some(1), &quotas, false);
        assert!(local(&limiter), "the fallback's own, given back");
    }
}
