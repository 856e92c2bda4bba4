//! The in-process backend: a sharded map of per-key GCRA state with a hard cap.
//!
//! # Why not governor's keyed limiter
//!
//! governor's keyed `RateLimiter` keeps one `AtomicU64` per key in a `DashMap` and leaves
//! cleanup to the user (`retain_recent`, a scan of the whole map, from a task the user spawns);
//! it has no cap, so a flood of random keys grows it without bound (tower_governor #29). It also
//! bakes one quota into each limiter and stores TATs relative to that limiter's start, so two
//! quotas cannot be checked all-or-nothing, a per-key quota needs a limiter per quota, and a
//! quota change means a new limiter and lost state.
//!
//! So this backend runs governor's GCRA arithmetic (same quota meaning, same decisions, checked
//! against governor in the tests) over its own store:
//!
//! - The map is split into shards, each a `Mutex<HashMap>` holding, per key, one TAT per quota
//!   in absolute nanoseconds since the store was created. An absolute TAT means the same thing
//!   under any quota, so overrides and runtime quota changes keep each key's history.
//! - **Idle eviction, inline:** a key whose TATs are all in the past is exactly as good as
//!   a key never seen, so dropping it loses nothing. Each shard sweeps such keys after as many
//!   checks as it holds keys (at least 1024), which costs at most one visited entry per check,
//!   and then sweeps one other shard in turn, so traffic anywhere drains idle keys everywhere.
//! - **Hard cap:** each shard holds at most `max_keys / shards` keys. A new key arriving at a full
//!   shard first sweeps idle keys; if the shard is still full, the eighth of its keys closest to
//!   idle (lowest TAT) are evicted, so the cost is amortised over the next inserts. An evicted
//!   busy key restarts with a full burst: under a flood larger than the cap the limiter forgets
//!   the least-limited keys first, and memory stays bounded.
//! - A refused request never inserts a key, so keys that only ever get refused cost nothing.

use crate::{
    backend::{Decision, gcra},
    quota::Compiled,
};
use governor::clock::{Clock, QuantaClock, QuantaInstant, Reference};
#[cfg(feature = "metrics")]
use prometheus::IntCounter;
use std::{
    collections::HashMap,
    hash::{BuildHasher, BuildHasherDefault, Hash, Hasher, RandomState},
    sync::{Mutex, MutexGuard},
    time::Duration,
};
use tokio::time::Instant;

/// Settings of the in-process backend (the default one).
///
/// ```
/// use espresso_rate_limit::{MemoryBackend, Quota, RateLimitLayer};
///
/// let layer = RateLimitLayer::new(Quota::per_second(100))
///     .backend(MemoryBackend::new().max_keys(10_000));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryBackend {
    pub(crate) max_keys: usize,
    pub(crate) shards: usize,
    pub(crate) fast_clock: bool,
}

impl MemoryBackend {
    /// Default settings: at most 100 000 tracked keys in 64 shards.
    pub fn new() -> Self {
        Self::default()
    }

    /// The hard cap on tracked keys (at least one per shard).
    pub fn max_keys(mut self, max_keys: usize) -> Self {
        self.max_keys = max_keys;
        self
    }

    /// How many independently locked shards the keys are spread over (rounded up to a power of
    /// two, at least 1). More shards mean less lock contention and a coarser per-shard cap.
    pub fn shards(mut self, shards: usize) -> Self {
        self.shards = shards;
        self
    }

    /// Reads time from the CPU's timestamp counter (quanta, governor's default clock) instead
    /// of tokio's clock. `Instant::now()` costs ~60 ns on some virtual machines against ~20 ns
    /// for quanta, about a fifth of this layer's per-request cost there. The catch: the limiter
    /// no longer follows `tokio::time::pause`, so keep the default in tests that rely on
    /// paused time.
    pub fn fast_clock(mut self, fast: bool) -> Self {
        self.fast_clock = fast;
        self
    }
}

impl Default for MemoryBackend {
    fn default() -> Self {
        Self {
            max_keys: 100_000,
            shards: 64,
            fast_clock: false,
        }
    }
}

/// Per-key TATs: one quota is the common case and needs no allocation; several live behind a
/// thin pointer, so an entry is 16 bytes either way.
#[derive(Debug)]
enum Tats {
    One(u64),
    Many(Box<ManyTats>),
}

#[derive(Debug)]
struct ManyTats(Vec<u64>);

impl Tats {
    fn fresh(n: usize) -> Self {
        if n == 1 {
            Tats::One(0)
        } else {
            Tats::Many(Box::new(ManyTats(vec![0; n])))
        }
    }

    /// The TATs for `n` quotas, keeping what is known when the number of quotas changed.
    fn slots(&mut self, n: usize) -> &mut [u64] {
        let len = match self {
            Tats::One(_) => 1,
            Tats::Many(v) => v.0.len(),
        };
        if len != n {
            let mut next = Tats::fresh(n);
            let old = match self {
                Tats::One(t) => std::slice::from_ref(t),
                Tats::Many(v) => &v.0[..],
            };
            for (dst, src) in next.slots_unchecked().iter_mut().zip(old) {
                *dst = *src;
            }
            *self = next;
        }
        self.slots_unchecked()
    }

    fn slots_unchecked(&mut self) -> &mut [u64] {
        match self {
            Tats::One(t) => std::slice::from_mut(t),
            Tats::Many(v) => &mut v.0,
        }
    }

    fn latest(&self) -> u64 {
        match self {
            Tats::One(t) => *t,
            Tats::Many(v) => v.0.iter().copied().max().unwrap_or(0),
        }
    }
}

/// A key with its hash, computed once (SipHash with a random key, so clients cannot aim keys
/// at one bucket) and used both to pick the shard and inside the shard's map.
struct Hashed<K> {
    hash: u64,
    key: K,
}

impl<K: PartialEq> PartialEq for Hashed<K> {
    fn eq(&self, other: &Self) -> bool {
        self.hash == other.hash && self.key == other.key
    }
}

impl<K: Eq> Eq for Hashed<K> {}

impl<K> Hash for Hashed<K> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

/// Hands the precomputed hash of a [`Hashed`] key to the map unchanged.
#[derive(Default)]
struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used by `Hashed`; fold anything else in rather than ignore it.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

struct Shard<K> {
    map: HashMap<Hashed<K>, Tats, BuildHasherDefault<PassThrough>>,
    checks: usize,
    /// Which other shard this one's next sweep also visits.
    cursor: usize,
}

/// Counters of evicted keys, when metrics are on.
#[cfg(feature = "metrics")]
#[derive(Debug, Clone)]
pub(crate) struct EvictionCounters {
    pub(crate) idle: IntCounter,
    pub(crate) capacity: IntCounter,
}

/// One shard per cache line pair, so threads working on neighbouring shards do not slow each
/// other down (false sharing).
#[repr(align(128))]
struct Padded<T>(T);

/// The sharded, capped store of per-key GCRA state.
pub(crate) struct Store<K> {
    shards: Box<[Padded<Mutex<Shard<K>>>]>,
    hasher: RandomState,
    shard_cap: usize,
    clock: StoreClock,
    #[cfg(feature = "metrics")]
    evictions: Option<EvictionCounters>,
}

/// Where the store reads time: tokio's clock (pausable in tests) or quanta's.
enum StoreClock {
    Tokio(Instant),
    Quanta(QuantaClock, QuantaInstant),
}

const MIN_SWEEP_INTERVAL: usize = 1024;

impl<K: Hash + Eq> Store<K> {
    pub(crate) fn new(config: MemoryBackend) -> Self {
        let shards = config.shards.clamp(1, 1 << 16).next_power_of_two();
        let shard_cap = config.max_keys.div_ceil(shards).max(1);
        Self {
            shards: (0..shards)
                .map(|_| {
                    Padded(Mutex::new(Shard {
                        map: HashMap::default(),
                        checks: 0,
                        cursor: 0,
                    }))
                })
                .collect(),
            hasher: RandomState::new(),
            shard_cap,
            clock: if config.fast_clock {
                let clock = QuantaClock::default();
                let epoch = clock.now();
                StoreClock::Quanta(clock, epoch)
            } else {
                StoreClock::Tokio(Instant::now())
            },
            #[cfg(feature = "metrics")]
            evictions: None,
        }
    }

    /// Counts evicted keys into `evictions`.
    #[cfg(feature = "metrics")]
    pub(crate) fn with_evictions(mut self, evictions: Option<EvictionCounters>) -> Self {
        self.evictions = evictions;
        self
    }

    fn now(&self) -> u64 {
        match &self.clock {
            StoreClock::Tokio(epoch) => {
                crate::quota::duration_nanos(Instant::now().saturating_duration_since(*epoch))
            }
            StoreClock::Quanta(clock, epoch) => clock.now().duration_since(*epoch).as_u64(),
        }
    }

    fn shard(&self, hash: u64) -> (usize, MutexGuard<'_, Shard<K>>) {
        // Bits 48.. pick the shard; the map uses the low bits for buckets and the top 7 as tags.
        let index = (hash >> 48) as usize & (self.shards.len() - 1);
        let guard = self.shards[index]
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        (index, guard)
    }

    /// Checks one request for `key` against `quotas`, all or nothing.
    pub(crate) fn check(&self, key: K, quotas: &[Compiled], max_delay: Duration) -> Decision {
        if quotas.is_empty() {
            return Decision::unlimited();
        }
        let max_delay = crate::quota::duration_nanos(max_delay);
        let now = self.now();
        let key = Hashed {
            hash: self.hasher.hash_one(&key),
            key,
        };
        let (index, mut shard) = self.shard(key.hash);
        shard.checks += 1;
        if shard.checks >= shard.map.len().max(MIN_SWEEP_INTERVAL) {
            self.sweep(&mut shard, now);
            // Also sweep another shard in turn, so idle keys of quiet shards go too. `try_lock`
            // never waits, so two shards sweeping each other cannot deadlock.
            let n = self.shards.len();
            if n > 1 {
                shard.cursor = shard.cursor % (n - 1) + 1;
                let other = (index + shard.cursor) % n;
                if let Ok(mut other) = self.shards[other].0.try_lock() {
                    self.sweep(&mut other, now);
                }
            }
        }
        if let Some(tats) = shard.map.get_mut(&key) {
            return gcra(tats.slots(quotas.len()), now, quotas, max_delay);
        }
        let mut tats = Tats::fresh(quotas.len());
        let decision = gcra(tats.slots_unchecked(), now, quotas, max_delay);
        if decision.allowed {
            if shard.map.len() >= self.shard_cap {
                self.make_room(&mut shard, now);
            }
            shard.map.insert(key, tats);
        }
        decision
    }

    /// Drops every key whose TATs are all in the past (it behaves like a new key).
    fn sweep(&self, shard: &mut Shard<K>, now: u64) {
        shard.checks = 0;
        #[cfg(feature = "metrics")]
        let before = shard.map.len();
        shard.map.retain(|_, tats| tats.latest() > now);
        #[cfg(feature = "metrics")]
        if let Some(c) = &self.evictions {
            c.idle.inc_by((before - shard.map.len()) as u64);
        }
    }

    /// Brings a full shard down to 7/8 of its cap: idle keys first, then those closest to idle.
    fn make_room(&self, shard: &mut Shard<K>, now: u64) {
        self.sweep(shard, now);
        let target = self.shard_cap - (self.shard_cap / 8).max(1);
        if shard.map.len() <= target {
            return;
        }
        let excess = shard.map.len() - target;
        let mut latest: Vec<u64> = shard.map.values().map(Tats::latest).collect();
        let (_, &mut threshold, _) = latest.select_nth_unstable(excess - 1);
        let mut removed = 0;
        shard.map.retain(|_, tats| {
            if removed < excess && tats.latest() <= threshold {
                removed += 1;
                false
            } else {
                true
            }
        });
        #[cfg(feature = "metrics")]
        if let Some(c) = &self.evictions {
            c.capacity.inc_by(removed as u64);
        }
    }

    /// How many keys are tracked now.
    pub(crate) fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.0.lock().unwrap_or_else(|p| p.into_inner()).map.len())
            .sum()
    }

    /// The hard cap actually enforced (the per-shard cap times the shards).
    pub(crate) fn capacity(&self) -> usize {
        self.shard_cap * self.shards.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Quota, Quotas};

    #[tokio::test(start_paused = true)]
    async fn a_flood_of_keys_stays_under_the_cap() {
        let store = Store::new(MemoryBackend::new().max_keys(1000).shards(8));
        let q: Quotas = Quota::per_minute(10).into();
        for key in 0..50_000u64 {
            assert!(store.check(key, q.compiled(), Duration::ZERO).allowed);
            assert!(store.len() <= 1000);
        }
        assert_eq!(store.capacity(), 1000);
        // The most recent keys are still tracked: a busy one is limited.
        for _ in 0..9 {
            assert!(store.check(49_999, q.compiled(), Duration::ZERO).allowed);
        }
        assert!(!store.check(49_999, q.compiled(), Duration::ZERO).allowed);
    }

    #[tokio::test(start_paused = true)]
    async fn idle_keys_are_swept_inline() {
        let store = Store::new(MemoryBackend::new().max_keys(1_000_000).shards(1));
        let q: Quotas = Quota::per_second(10).into();
        for key in 0..500u64 {
            store.check(key, q.compiled(), Duration::ZERO);
        }
        assert_eq!(store.len(), 500);
        tokio::time::advance(Duration::from_secs(1)).await;
        // Enough checks of one key to trigger a sweep of the shard.
        for _ in 0..MIN_SWEEP_INTERVAL {
            store.check(7, q.compiled(), Duration::from_secs(3600));
        }
        assert_eq!(store.len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn the_fast_clock_ignores_paused_time() {
        let store = Store::new(MemoryBackend::new().fast_clock(true));
        let q: Quotas = Quota::per_minute(1).into();
        assert!(store.check(1u8, q.compiled(), Duration::ZERO).allowed);
        assert!(!store.check(1u8, q.compiled(), Duration::ZERO).allowed);
        // An hour of tokio time is nothing to the CPU's clock.
        tokio::time::advance(Duration::from_secs(3600)).await;
        assert!(!store.check(1u8, q.compiled(), Duration::ZERO).allowed);
    }

    #[tokio::test(start_paused = true)]
    async fn refused_new_keys_are_not_stored() {
        let store = Store::new(MemoryBackend::new());
        let q: Quotas = Quota::per_second(0).into();
        assert!(!store.check("banned", q.compiled(), Duration::ZERO).allowed);
        assert_eq!(store.len(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn changing_the_number_of_quotas_keeps_history() {
        let store = Store::new(MemoryBackend::new());
        let one: Quotas = Quota::per_second(1).into();
        let two: Quotas = [Quota::per_second(1), Quota::per_hour(100)].into();
        assert!(store.check(1u8, one.compiled(), Duration::ZERO).allowed);
        assert!(!store.check(1u8, two.compiled(), Duration::ZERO).allowed);
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(store.check(1u8, two.compiled(), Duration::ZERO).allowed);
        assert!(!store.check(1u8, one.compiled(), Duration::ZERO).allowed);
    }
}
