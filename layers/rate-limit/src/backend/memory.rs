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
//! - The map is split into shards, each a `Mutex` around a `hashbrown` table of entries that are
//!   the key and one 8-byte state word: the TAT of a key's single quota, in absolute
//!   nanoseconds since the store was created, or (keys checked against several quotas) the
//!   index of a TAT vector in a small side table of the shard. The word is stored as bytes, so
//!   an entry has its key's alignment: an `Option<IpAddr>` key and its state take 25 bytes,
//!   about 56 bytes per key with 1 M keys (governor: 69). An absolute TAT means the same thing
//!   under any quota, so overrides and runtime quota changes keep each key's history.
//! - Each key is hashed once, with foldhash seeded at random per store (clients cannot aim keys
//!   at one bucket without the seed, and a shard's cap bounds what a collision attack could
//!   cost); the hash picks the shard and probes the table.
//! - **Idle eviction, inline:** a key whose TATs are all in the past is exactly as good as
//!   a key never seen, so dropping it loses nothing. Each shard sweeps such keys after as many
//!   checks as it holds keys (at least 1024), which costs at most one visited entry per check,
//!   and then sweeps one other shard in turn, so traffic anywhere drains idle keys everywhere.
//! - **Hard cap:** each shard holds at most `max_keys / shards` keys, rounded down. A new key
//!   arriving at a full shard first sweeps idle keys; if the shard is still full, the eighth of
//!   its keys closest to idle (lowest TAT) are evicted, so the cost is amortised over the next
//!   inserts. An evicted busy key restarts with a full burst: under a flood larger than the cap
//!   the limiter forgets the least-limited keys first, and memory stays bounded.
//! - A refused request never inserts a key, so keys that only ever get refused cost nothing.

use crate::{
    backend::{Decision, gcra, gcra_one},
    quota::Compiled,
};
use governor::clock::{Clock, QuantaClock, QuantaInstant, Reference};
use hashbrown::{DefaultHashBuilder, HashTable};
// parking_lot: lock and unlock are one atomic each, without std's poison bookkeeping, which
// this store never acted on (a poisoned shard was used as it was).
use parking_lot::{Mutex, MutexGuard};
#[cfg(feature = "metrics")]
use prometheus::IntCounter;
use std::{
    hash::{BuildHasher, Hash},
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

    /// The hard cap on tracked keys (0 is taken as 1): never more are held, by the store nor by
    /// the leases of the leased mode. Each shard holds at most its share, rounded down (so up to
    /// one key per shard less in all: 1,000 keys in 64 shards hold 960), and a cap under the
    /// number of shards takes fewer shards.
    pub fn max_keys(mut self, max_keys: usize) -> Self {
        self.max_keys = max_keys;
        self
    }

    /// How many independently locked shards the keys are spread over (rounded up to a power of
    /// two, at least 1, at most `max_keys`). More shards mean less lock contention and a coarser
    /// per-shard cap.
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

/// The state word of an entry: one quota's TAT (ns since the store's epoch, below [`MANY`]), or
/// [`MANY`] plus the index of the key's TAT vector in its shard's [`Shard::many`].
///
/// Stored as bytes so that an entry has its key's alignment: an `Option<IpAddr>` key and its
/// state take 25 bytes, where a `u64` would pad them to 32.
type Word = [u8; 8];

/// Marks a [`Word`] holding an index into [`Shard::many`].
const MANY: u64 = 1 << 63;

/// The latest TAT a word can hold; TATs beyond it (quotas of centuries) are stored as it.
const MAX_TAT: u64 = MANY - 1;

struct Entry<K> {
    key: K,
    word: Word,
}

struct Shard<K> {
    table: HashTable<Entry<K>>,
    many: ManyTats,
    checks: usize,
    /// Which other shard this one's next sweep also visits.
    cursor: usize,
}

/// The TATs of a shard's keys checked against several quotas, one vector per such key; a slot
/// whose key is gone is empty and listed in `free`.
#[derive(Default)]
struct ManyTats {
    slots: Vec<Vec<u64>>,
    free: Vec<usize>,
}

impl ManyTats {
    /// The latest TAT of an entry's word (when that key is idle).
    fn latest(&self, word: Word) -> u64 {
        let w = u64::from_ne_bytes(word);
        if w & MANY == 0 {
            w
        } else {
            let slot = (w & !MANY) as usize;
            self.slots[slot].iter().copied().max().unwrap_or(0)
        }
    }

    /// Frees the TAT vector an entry's word points to, if any.
    fn release(&mut self, word: Word) {
        let w = u64::from_ne_bytes(word);
        if w & MANY != 0 {
            let slot = (w & !MANY) as usize;
            self.slots[slot] = Vec::new();
            self.free.push(slot);
        }
    }

    /// A word pointing to a new TAT vector holding `tats`.
    fn store(&mut self, tats: Vec<u64>) -> Word {
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slots[slot] = tats;
                slot
            }
            None => {
                self.slots.push(tats);
                self.slots.len() - 1
            }
        };
        (MANY | slot as u64).to_ne_bytes()
    }

    /// Runs the GCRA on an entry's state for `quotas`, keeping what is known when the number
    /// of quotas changed (the first TATs carry over, new ones start fresh).
    fn decide(
        &mut self,
        word: &mut Word,
        now: u64,
        quotas: &[Compiled],
        max_delay: u64,
    ) -> Decision {
        let w = u64::from_ne_bytes(*word);
        if w & MANY == 0 {
            if let [q] = quotas {
                let mut tat = w;
                let decision = gcra_one(&mut tat, now, q, max_delay);
                *word = tat.min(MAX_TAT).to_ne_bytes();
                return decision;
            }
            let mut tats = vec![0; quotas.len()];
            tats[0] = w;
            let decision = gcra(&mut tats, now, quotas, max_delay);
            *word = self.store(tats);
            return decision;
        }
        let slot = (w & !MANY) as usize;
        if let [q] = quotas {
            let mut tat = self.slots[slot].first().copied().unwrap_or(0);
            let decision = gcra_one(&mut tat, now, q, max_delay);
            self.release(*word);
            *word = tat.min(MAX_TAT).to_ne_bytes();
            return decision;
        }
        let tats = &mut self.slots[slot];
        tats.resize(quotas.len(), 0);
        gcra(tats, now, quotas, max_delay)
    }

    /// Moves an entry's TATs back by one interval of each of `quotas`: the admission a check
    /// against them took, given back.
    fn give_back(&mut self, word: &mut Word, quotas: &[Compiled]) {
        let back = |tat: u64, q: &Compiled| match q.t {
            u64::MAX => tat,
            t => tat.saturating_sub(t),
        };
        let w = u64::from_ne_bytes(*word);
        if w & MANY == 0 {
            if let Some(q) = quotas.first() {
                *word = back(w, q).to_ne_bytes();
            }
            return;
        }
        for (tat, q) in self.slots[(w & !MANY) as usize].iter_mut().zip(quotas) {
            *tat = back(*tat, q);
        }
    }
}

/// The shards (a power of two, from `shards`) and the keys each holds for a hard cap of
/// `max_keys` (at least 1): each holds `max_keys / shards`, rounded down, so that the cap holds,
/// and a cap under the shard count takes fewer shards.
pub(crate) fn split_cap(max_keys: usize, shards: usize) -> (usize, usize) {
    let max_keys = max_keys.max(1);
    let fewest = 1 << (usize::BITS - 1 - max_keys.leading_zeros());
    let shards = shards.clamp(1, 1 << 16).next_power_of_two().min(fewest);
    (shards, max_keys / shards)
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
    hasher: DefaultHashBuilder,
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
        let (shards, shard_cap) = split_cap(config.max_keys, config.shards);
        Self {
            shards: (0..shards)
                .map(|_| {
                    Padded(Mutex::new(Shard {
                        table: HashTable::new(),
                        many: ManyTats::default(),
                        checks: 0,
                        cursor: 0,
                    }))
                })
                .collect(),
            hasher: DefaultHashBuilder::default(),
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

    #[inline]
    fn now(&self) -> u64 {
        match &self.clock {
            StoreClock::Tokio(epoch) => {
                crate::quota::duration_nanos(Instant::now().saturating_duration_since(*epoch))
            }
            StoreClock::Quanta(clock, epoch) => clock.now().duration_since(*epoch).as_u64(),
        }
    }

    fn lock(&self, index: usize) -> MutexGuard<'_, Shard<K>> {
        self.shards[index].0.lock()
    }

    /// Checks one request for `key` against `quotas`, all or nothing.
    // Inlined into the layer's `call`: a known key under one quota is the path every request
    // takes; sweeps and new keys are calls out.
    #[inline]
    pub(crate) fn check(&self, key: K, quotas: &[Compiled], max_delay: Duration) -> Decision {
        if quotas.is_empty() {
            return Decision::unlimited();
        }
        let max_delay = crate::quota::duration_nanos(max_delay);
        let now = self.now();
        let (hash, index) = self.place(&key);
        let mut guard = self.lock(index);
        let shard = &mut *guard;
        shard.checks += 1;
        if shard.checks >= shard.table.len().max(MIN_SWEEP_INTERVAL) {
            self.sweep_in_turn(shard, index, now);
        }
        if let Some(entry) = shard.table.find_mut(hash, |e| e.key == key) {
            // The common case inline: one quota, its TAT in the word.
            let w = u64::from_ne_bytes(entry.word);
            if let ([q], 0) = (quotas, w & MANY) {
                let mut tat = w;
                let decision = gcra_one(&mut tat, now, q, max_delay);
                entry.word = tat.min(MAX_TAT).to_ne_bytes();
                return decision;
            }
            return shard.many.decide(&mut entry.word, now, quotas, max_delay);
        }
        self.check_new(shard, hash, key, now, quotas, max_delay)
    }

    /// Gives back the admission a check of `key` against `quotas` took (a held request given up
    /// before it went on). A key evicted since has nothing to give back to.
    pub(crate) fn give_back(&self, key: &K, quotas: &[Compiled]) {
        let (hash, index) = self.place(key);
        let mut guard = self.lock(index);
        let shard = &mut *guard;
        if let Some(entry) = shard.table.find_mut(hash, |e| e.key == *key) {
            shard.many.give_back(&mut entry.word, quotas);
        }
    }

    /// The key's hash and its shard.
    #[inline]
    fn place(&self, key: &K) -> (u64, usize) {
        let hash = self.hasher.hash_one(key);
        // Bits 48.. pick the shard; the table uses the low bits for buckets and the top 7 as tags.
        (hash, (hash >> 48) as usize & (self.shards.len() - 1))
    }

    /// Sweeps `shard` (number `index`), then another shard in turn, so idle keys of quiet
    /// shards go too.
    #[inline(never)]
    fn sweep_in_turn(&self, shard: &mut Shard<K>, index: usize, now: u64) {
        self.sweep(shard, now);
        // `try_lock` never waits, so two shards sweeping each other cannot deadlock.
        let n = self.shards.len();
        if n > 1 {
            shard.cursor = shard.cursor % (n - 1) + 1;
            let other = (index + shard.cursor) % n;
            if let Some(mut other) = self.shards[other].0.try_lock() {
                self.sweep(&mut other, now);
            }
        }
    }

    /// Checks a key `shard` does not track; stores it if admitted.
    #[inline(never)]
    fn check_new(
        &self,
        shard: &mut Shard<K>,
        hash: u64,
        key: K,
        now: u64,
        quotas: &[Compiled],
        max_delay: u64,
    ) -> Decision {
        let mut word = 0u64.to_ne_bytes();
        let decision = shard.many.decide(&mut word, now, quotas, max_delay);
        if decision.allowed {
            if shard.table.len() >= self.shard_cap {
                self.make_room(shard, now);
            }
            shard
                .table
                .insert_unique(hash, Entry { key, word }, |e| self.hasher.hash_one(&e.key));
        } else {
            shard.many.release(word);
        }
        decision
    }

    /// Drops every key whose TATs are all in the past (it behaves like a new key).
    fn sweep(&self, shard: &mut Shard<K>, now: u64) {
        shard.checks = 0;
        #[cfg(feature = "metrics")]
        let before = shard.table.len();
        let Shard { table, many, .. } = shard;
        table.retain(|e| {
            let keep = many.latest(e.word) > now;
            if !keep {
                many.release(e.word);
            }
            keep
        });
        #[cfg(feature = "metrics")]
        if let Some(c) = &self.evictions {
            c.idle.inc_by((before - shard.table.len()) as u64);
        }
    }

    /// Brings a full shard down to 7/8 of its cap: idle keys first, then those closest to idle.
    fn make_room(&self, shard: &mut Shard<K>, now: u64) {
        self.sweep(shard, now);
        let target = self.shard_cap - (self.shard_cap / 8).max(1);
        if shard.table.len() <= target {
            return;
        }
        let excess = shard.table.len() - target;
        let Shard { table, many, .. } = shard;
        let mut latest: Vec<u64> = table.iter().map(|e| many.latest(e.word)).collect();
        let (_, &mut threshold, _) = latest.select_nth_unstable(excess - 1);
        let mut removed = 0;
        table.retain(|e| {
            if removed < excess && many.latest(e.word) <= threshold {
                removed += 1;
                many.release(e.word);
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
        (0..self.shards.len())
            .map(|i| self.lock(i).table.len())
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
    async fn the_cap_holds_when_it_does_not_divide_by_the_shards() {
        let q: Quotas = Quota::per_minute(10).into();
        for (max_keys, shards, capacity) in [(65, 64, 64), (1000, 64, 960), (10, 64, 8), (0, 4, 1)]
        {
            let store = Store::new(MemoryBackend::new().max_keys(max_keys).shards(shards));
            assert_eq!(
                store.capacity(),
                capacity,
                "{max_keys} keys in {shards} shards"
            );
            for key in 0..5_000u64 {
                store.check(key, q.compiled(), Duration::ZERO);
                assert!(store.len() <= capacity);
            }
        }
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
    async fn swept_keys_with_several_quotas_give_their_tat_vectors_back() {
        let store = Store::new(MemoryBackend::new().shards(1));
        let two: Quotas = [Quota::per_second(1), Quota::per_minute(100)].into();
        for key in 0..100u32 {
            assert!(store.check(key, two.compiled(), Duration::ZERO).allowed);
        }
        tokio::time::advance(Duration::from_secs(60)).await;
        for key in 100..(100 + MIN_SWEEP_INTERVAL as u32) {
            assert!(store.check(key, two.compiled(), Duration::ZERO).allowed);
        }
        let shard = store.lock(0);
        // The first 100 keys went idle and were swept; their vectors were reused.
        assert_eq!(shard.table.len(), MIN_SWEEP_INTERVAL);
        assert_eq!(shard.many.slots.len(), MIN_SWEEP_INTERVAL);
        assert!(shard.many.free.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_refused_new_key_with_several_quotas_leaves_nothing_behind() {
        let store = Store::new(MemoryBackend::new().shards(1));
        let banned: Quotas = [Quota::per_second(1), Quota::per_minute(0)].into();
        assert!(!store.check(1u8, banned.compiled(), Duration::ZERO).allowed);
        let shard = store.lock(0);
        assert_eq!(shard.table.len(), 0);
        assert_eq!(shard.many.slots.len() - shard.many.free.len(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_given_back_admission_is_free_again_under_every_quota() {
        let store = Store::new(MemoryBackend::new());
        let two: Quotas = [Quota::per_second(10), Quota::per_minute(2)].into();
        let wait = Duration::from_secs(60);
        assert!(store.check(1u8, two.compiled(), wait).allowed);
        let second = store.check(1u8, two.compiled(), wait);
        assert_eq!(second.delay(), Duration::ZERO, "the minute's burst is 2");
        let held = store.check(1u8, two.compiled(), wait);
        assert_eq!(held.delay(), Duration::from_secs(30));
        // Another request, held after it, is given up.
        let given_up = store.check(1u8, two.compiled(), wait);
        assert_eq!(given_up.delay(), Duration::from_secs(60));
        store.give_back(&1u8, two.compiled());
        let next = store.check(1u8, two.compiled(), wait);
        assert_eq!(
            next.delay(),
            Duration::from_secs(60),
            "the freed slot, not one after it"
        );
        // A key never seen, or gone, has nothing to give back to.
        store.give_back(&2u8, two.compiled());
        assert_eq!(store.len(), 1);
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
