//! Leased global limits: each instance takes a share of a key's budget from the shared GCRA
//! in one call and spends it locally (`GlobalMode::Leased`).
//!
//! # How a lease works
//!
//! - A **lease** is `n` admissions taken from the key's global GCRA at once (the Redis lease
//!   script, or [`gcra_take`](super::gcra_take) in the tests): the global state moves on by `n`
//!   intervals exactly as if `n` requests had been checked, so leased tokens are counted
//!   globally the moment they are handed out.
//! - The instance then admits from its tokens with no remote call. When a key's tokens fall to
//!   a quarter of its lease size, one background call renews it, asking for the difference up
//!   to the lease size, so an instance never holds more than one lease's worth of tokens. A
//!   request finding no token waits for a lease of its own (a fresh key, or a renewal that could
//!   not keep up).
//! - **Size** follows the instance's own recent rate: the demand it saw
//!   (the requests it saw since the last grant, admitted or not,
//!   over the time that took) times the lease interval (100 ms by default), at most twice the
//!   previous size plus one (a cold key ramps up 1, 3, 7, 15, …) and at most a quarter of the
//!   tightest quota's burst (leased tokens are taken ahead of use, so what the instances hold
//!   uses up the burst; small leases leave room for several instances).
//! - Unused tokens **expire** ten lease intervals after their grant: a key that goes quiet
//!   costs nothing (no timer, no call) and its leftovers are never spent late.
//! - A lease the GCRA cannot fully grant (the key is at its limit, or other instances want it
//!   too) holds the key's next lease call back for a random quarter to half of the lease
//!   interval (less when the quota's burst refills faster); a request finding no token
//!   meanwhile is refused locally. A key over its limit costs a few calls a second per
//!   instance, not one per request, and the random hold lets contending instances take turns,
//!   so each gets about its share. Because leases are at most a quarter of the burst, a lease
//!   comes back short only when the instances together hold most of the burst: at the limit,
//!   not below it.
//!
//! # Accuracy
//!
//! Tokens are counted globally when granted, so in any window the admissions of all instances
//! are at most the window's limit plus the tokens the instances held when it began: the
//! over-admission is at most **one lease per instance per window**. Tokens that expire unspent
//! are the opposite error (under-admission), at most one lease per instance per ten lease
//! intervals, and only on keys whose traffic stops.

use super::Decision;
#[cfg(test)]
use super::gcra_take;
use crate::quota::Compiled;
use std::{
    collections::HashMap,
    hash::{BuildHasher, Hash, RandomState},
    sync::{
        Mutex, MutexGuard,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};
use tokio::time::Instant;

/// What a check on a leased key does next.
#[derive(Debug)]
pub(crate) enum Step {
    /// Decided locally (a token spent, or refused until the GCRA has room).
    Decided(Decision),
    /// No token: fetch a lease of this size for this request.
    Fetch(u64),
}

/// One key's lease on this instance.
#[derive(Debug, Clone, Default)]
struct Lease {
    /// Tokens left to spend.
    tokens: u64,
    /// When they expire (ns on the store's clock).
    expires: u64,
    /// The size of the last lease asked for.
    size: u64,
    /// When the last grant arrived, and requests seen since (admitted or not): the recent
    /// demand. Demand, not admissions, so an instance that got little under contention does
    /// not ask for less and less.
    granted_at: u64,
    seen: u64,
    /// A background renewal is under way.
    renewing: bool,
    /// The GCRA had no room: refused locally until then.
    refused_until: u64,
    /// The GCRA granted less than asked (the key is at its limit, or other instances want it
    /// too): no lease call for this key before then; with no token left, refused locally.
    not_before: u64,
}

/// The leases of one limiter, sharded like the memory store and capped.
pub(crate) struct Leases<K> {
    shards: Box<[Mutex<HashMap<K, Lease>>]>,
    hasher: RandomState,
    shard_cap: usize,
    interval: u64,
    epoch: Instant,
    /// State of the jitter drawn for each hold.
    jitter: AtomicU64,
}

const SHARDS: usize = 16;
/// Leases expire after this many lease intervals.
const TTL_INTERVALS: u64 = 10;

impl<K: Hash + Eq + Clone> Leases<K> {
    pub(crate) fn new(max_keys: usize, interval: Duration) -> Self {
        let (shards, shard_cap) = super::memory::split_cap(max_keys, SHARDS);
        Self {
            shards: (0..shards).map(|_| Mutex::new(HashMap::new())).collect(),
            hasher: RandomState::new(),
            shard_cap,
            interval: crate::quota::duration_nanos(interval).max(1),
            epoch: Instant::now(),
            jitter: AtomicU64::new(RandomState::new().hash_one(0u8) | 1),
        }
    }

    pub(crate) fn now(&self) -> u64 {
        crate::quota::duration_nanos(Instant::now().saturating_duration_since(self.epoch))
    }

    fn shard(&self, key: &K) -> MutexGuard<'_, HashMap<K, Lease>> {
        let index = self.hasher.hash_one(key) as usize % self.shards.len();
        self.shards[index]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Spends one of `key`'s tokens, or says a lease must be fetched first. The second value,
    /// when set, is the size of a background renewal the caller should start now.
    pub(crate) fn spend(&self, key: &K, quotas: &[Compiled]) -> (Step, Option<u64>) {
        let now = self.now();
        let mut shard = self.shard(key);
        if !shard.contains_key(key) && shard.len() >= self.shard_cap {
            make_room(&mut shard, now, self.shard_cap);
        }
        let lease = shard.entry(key.clone()).or_default();
        lease.seen += 1;
        if lease.expires <= now {
            lease.tokens = 0;
        }
        if lease.tokens == 0 {
            // tokens held are spent first: a renewal the GCRA refused says only that no more
            // come for now
            if lease.refused_until > now {
                let wait = Duration::from_nanos(lease.refused_until - now);
                return (Step::Decided(refused(wait)), None);
            }
            if lease.not_before > now {
                let wait = Duration::from_nanos(lease.not_before - now);
                return (Step::Decided(refused(wait)), None);
            }
            let size = self.next_size(lease, now, quotas);
            lease.size = size;
            return (Step::Fetch(size), None);
        }
        lease.tokens -= 1;
        let renew = (!lease.renewing && lease.tokens <= lease.size / 4 && lease.not_before <= now)
            .then(|| {
                lease.renewing = true;
                let size = self.next_size(lease, now, quotas);
                lease.size = size;
                size.saturating_sub(lease.tokens).max(1)
            });
        let decision = Decision::new(true, Duration::ZERO, lease.tokens, Duration::ZERO, 0);
        (Step::Decided(decision), renew)
    }

    /// The size of the next lease: the recent rate times the interval, ramping up at most
    /// twice the previous size plus one, within [1, a quarter of the tightest burst]: leases
    /// are taken ahead of use, so what instances hold fills the burst, and leases of a quarter
    /// leave room for several instances before a lease comes back short.
    fn next_size(&self, lease: &Lease, now: u64, quotas: &[Compiled]) -> u64 {
        let cap = quotas
            .iter()
            .filter(|q| q.t != 0)
            .map(|q| q.burst / 4)
            .min()
            .unwrap_or(u64::MAX)
            .max(1);
        let elapsed = now.saturating_sub(lease.granted_at).max(1);
        let by_rate = if lease.granted_at == 0 && lease.seen <= 1 {
            1
        } else {
            // seen / elapsed * interval, in u128 so a busy key cannot overflow.
            let rate = u128::from(lease.seen) * u128::from(self.interval) / u128::from(elapsed);
            u64::try_from(rate).unwrap_or(u64::MAX).max(1)
        };
        by_rate
            .min(lease.size.saturating_mul(2).saturating_add(1))
            .min(cap)
    }

    /// How long a key the GCRA could not fully serve waits before its next lease call: half
    /// the lease interval, at most half the time the tightest quota takes to refill
    /// its burst (so the GCRA keeps what accrues meanwhile and nothing is lost).
    ///
    /// Drawn at random between half and all of that: instances contending for a key then come
    /// back in a different order each time, so none keeps the head of the queue (with a fixed
    /// hold the first to ask after the refill would win every round).
    fn hold(&self, quotas: &[Compiled]) -> u64 {
        let hold = quotas
            .iter()
            .filter(|q| q.t != 0)
            .map(|q| q.tau / 2)
            .fold(self.interval / 2, u64::min)
            .max(2);
        // xorshift64: quality enough for a jitter, and no lock.
        let mut x = self.jitter.load(Ordering::Relaxed);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.jitter.store(x, Ordering::Relaxed);
        hold / 2 + x % (hold / 2)
    }

    /// Applies a lease of `granted` tokens out of `want` for `key` (`wait` ns: when the GCRA
    /// had none, how long until it would have one). For a request that waited on it
    /// (`foreground`), spends one token and returns its decision.
    pub(crate) fn granted(
        &self,
        key: &K,
        quotas: &[Compiled],
        (want, granted, wait): (u64, u64, u64),
        foreground: bool,
    ) -> Decision {
        let now = self.now();
        let hold = self.hold(quotas);
        let mut shard = self.shard(key);
        let lease = shard.entry(key.clone()).or_default();
        if !foreground {
            lease.renewing = false;
        }
        if granted < want {
            lease.not_before = now.saturating_add(hold);
        }
        if granted == 0 {
            let wait = wait.max(hold);
            lease.refused_until = now.saturating_add(wait);
            return refused(Duration::from_nanos(wait));
        }
        if lease.expires <= now {
            lease.tokens = 0;
        }
        lease.tokens = lease.tokens.saturating_add(granted);
        lease.expires = now.saturating_add(self.interval.saturating_mul(TTL_INTERVALS));
        lease.granted_at = now;
        lease.seen = 0;
        if foreground {
            lease.tokens -= 1;
        }
        Decision::new(true, Duration::ZERO, lease.tokens, Duration::ZERO, 0)
    }

    /// A background renewal failed: the next low-water mark may try again.
    pub(crate) fn renewal_failed(&self, key: &K) {
        if let Some(lease) = self.shard(key).get_mut(key) {
            lease.renewing = false;
        }
    }

    /// Keys with a lease or a refusal in force.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        let now = self.now();
        self.shards
            .iter()
            .map(|s| {
                let shard = s.lock().unwrap_or_else(|p| p.into_inner());
                shard.values().filter(|l| !idle(l, now)).count()
            })
            .sum()
    }
}

fn idle(lease: &Lease, now: u64) -> bool {
    !lease.renewing && lease.expires <= now && lease.refused_until <= now
}

/// Drops idle leases; if the shard is still full, the eighth closest to expiry.
fn make_room<K: Hash + Eq>(shard: &mut HashMap<K, Lease>, now: u64, cap: usize) {
    shard.retain(|_, lease| !idle(lease, now));
    if shard.len() < cap {
        return;
    }
    let excess = shard.len() - (cap - (cap / 8).max(1).min(cap));
    let mut expiries: Vec<u64> = shard.values().map(|l| l.expires).collect();
    let (_, &mut threshold, _) = expiries.select_nth_unstable(excess.saturating_sub(1));
    let mut removed = 0;
    shard.retain(|_, lease| {
        if removed < excess && lease.expires <= threshold {
            removed += 1;
            false
        } else {
            true
        }
    });
}

fn refused(wait: Duration) -> Decision {
    Decision::new(false, wait, 0, wait, 0)
}

/// What a lease call costs the global state: `gcra_take` on a shared TAT vector, for tests.
#[cfg(test)]
pub(crate) fn take_shared(
    tats: &Mutex<Vec<u64>>,
    now: u64,
    quotas: &[Compiled],
    want: u64,
) -> (u64, u64) {
    let mut tats = tats.lock().unwrap();
    tats.resize(quotas.len(), 0);
    gcra_take(&mut tats, now, quotas, want)
}

#[cfg(test)]
mod tests {
    //! Three instances sharing one global GCRA, on paused time: tokio's clock moves only when
    //! the test advances it, so the admitted counts are exact and the run takes no real time.
    //! Each lease call costs 1 ms of (paused) latency, as a round trip to Redis would.
    use super::*;
    use crate::{Quota, Quotas};
    use std::sync::Arc;

    struct Instance {
        leases: Leases<u8>,
        admitted: u64,
        calls: u64,
        /// Background renewals in flight: (arrives at, size).
        pending: Vec<(Instant, u64)>,
    }

    /// Runs `instances` for `seconds` of paused time, each offered `offered` requests a second
    /// evenly, against a shared `quota`. Returns (admitted per instance, lease calls).
    async fn run(quota: Quota, instances: usize, offered: u64, seconds: u64) -> (Vec<u64>, u64) {
        let quotas: Quotas = quota.into();
        let c = quotas.compiled();
        let global = Arc::new(Mutex::new(vec![0u64; c.len()]));
        let epoch = Instant::now();
        let global_now = || crate::quota::duration_nanos(epoch.elapsed()) + 1;
        let mut fleet: Vec<Instance> = (0..instances)
            .map(|_| Instance {
                leases: Leases::new(1000, Duration::from_millis(100)),
                admitted: 0,
                calls: 0,
                pending: Vec::new(),
            })
            .collect();
        let step = Duration::from_nanos(1_000_000_000 / offered);
        let rtt = Duration::from_millis(1);
        let end = epoch + Duration::from_secs(seconds);
        // Which instance goes first changes every step, as arrival order would.
        let mut order: Vec<usize> = (0..instances).collect();
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        while Instant::now() < end {
            for i in (1..order.len()).rev() {
                seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                order.swap(i, (seed >> 33) as usize % (i + 1));
            }
            for &index in &order {
                let node = &mut fleet[index];
                // Renewals whose round trip is over land first.
                let now = Instant::now();
                let (ready, waiting): (Vec<_>, Vec<_>) =
                    node.pending.drain(..).partition(|(at, _)| *at <= now);
                node.pending = waiting;
                for (_, size) in ready {
                    let (granted, wait) = take_shared(&global, global_now(), c, size);
                    node.leases.granted(&0, c, (size, granted, wait), false);
                }
                let (step, renew) = node.leases.spend(&0, c);
                if let Some(size) = renew {
                    node.calls += 1;
                    node.pending.push((now + rtt, size));
                }
                match step {
                    Step::Decided(d) => node.admitted += u64::from(d.allowed),
                    Step::Fetch(size) => {
                        node.calls += 1;
                        let (granted, wait) = take_shared(&global, global_now(), c, size);
                        if node
                            .leases
                            .granted(&0, c, (size, granted, wait), true)
                            .allowed
                        {
                            node.admitted += 1;
                        }
                    }
                }
            }
            tokio::time::advance(step).await;
        }
        let calls = fleet.iter().map(|n| n.calls).sum();
        (fleet.into_iter().map(|n| n.admitted).collect(), calls)
    }

    #[tokio::test(start_paused = true)]
    async fn three_instances_over_the_limit_admit_it_within_one_lease_each() {
        // 3 × 2000/s offered against 3000/s (burst 300) for 10 s.
        let (admitted, calls) = run(Quota::per_second(3000).burst(300), 3, 2000, 10).await;
        let total: u64 = admitted.iter().sum();
        let limit = 3000 * 10 + 300;
        // The bound: at most one lease (≤ burst = 300) per instance over the limit.
        assert!(total <= limit + 3 * 300, "{total} admitted, limit {limit}");
        assert!(total * 100 >= limit * 95, "{total} admitted, limit {limit}");
        eprintln!("admitted {admitted:?} = {total} of {limit}, {calls} lease calls");
        for a in &admitted {
            assert!(*a * 100 >= total * 20, "{admitted:?}");
        }
        let per_admitted = calls as f64 / total as f64;
        assert!(
            per_admitted <= 0.05,
            "{calls} lease calls for {total} admitted"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn under_the_limit_every_request_is_admitted_with_few_calls() {
        let (admitted, calls) = run(Quota::per_second(10_000).burst(1000), 3, 1000, 5).await;
        let total: u64 = admitted.iter().sum();
        assert_eq!(total, 3 * 1000 * 5);
        // 1000/s leased 100 ms at a time: 1 call per 100 admitted, plus the ramp-up.
        assert!(
            calls * 50 <= total,
            "{calls} lease calls for {total} admitted"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_key_costs_nothing_and_its_leftovers_expire() {
        let leases: Leases<u8> = Leases::new(1000, Duration::from_millis(100));
        let quotas: Quotas = Quota::per_second(100).into();
        let c = quotas.compiled();
        let (Step::Fetch(size), None) = leases.spend(&1, c) else {
            panic!("a fresh key fetches a lease");
        };
        assert_eq!(size, 1);
        assert!(leases.granted(&1, c, (1, 5, 0), true).allowed);
        assert_eq!(leases.len(), 1);
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(leases.len(), 0, "expired: the key is idle");
        let (Step::Fetch(_), _) = leases.spend(&1, c) else {
            panic!("the four tokens left expired with the lease");
        };
    }

    #[tokio::test(start_paused = true)]
    async fn a_key_the_gcra_refused_is_refused_locally_until_then() {
        let leases: Leases<u8> = Leases::new(1000, Duration::from_millis(100));
        let quotas: Quotas = Quota::per_second(10).into();
        let c = quotas.compiled();
        let d = leases.granted(&1, c, (1, 0, 100_000_000), true);
        assert!(!d.allowed);
        let (Step::Decided(d), None) = leases.spend(&1, c) else {
            panic!("refused locally");
        };
        assert_eq!(d.retry_after(), Some(Duration::from_millis(100)));
        tokio::time::advance(Duration::from_millis(100)).await;
        assert!(matches!(leases.spend(&1, c), (Step::Fetch(_), None)));
    }

    #[tokio::test(start_paused = true)]
    async fn the_leases_held_stay_within_max_keys() {
        let quotas: Quotas = Quota::per_second(100).into();
        let c = quotas.compiled();
        for max_keys in [1, 4, 10, 1000] {
            let leases: Leases<u32> = Leases::new(max_keys, Duration::from_millis(100));
            for key in 0..5_000 {
                leases.spend(&key, c);
                leases.granted(&key, c, (1, 5, 0), true);
                assert!(
                    leases.len() <= max_keys,
                    "{} leases, max_keys {max_keys}",
                    leases.len()
                );
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn tokens_held_are_spent_after_a_renewal_the_gcra_refused() {
        let leases: Leases<u8> = Leases::new(1000, Duration::from_millis(100));
        let quotas: Quotas = Quota::per_hour(100).into();
        let c = quotas.compiled();
        let (Step::Fetch(_), None) = leases.spend(&1, c) else {
            panic!("a fresh key fetches a lease");
        };
        assert!(leases.granted(&1, c, (1, 8, 0), true).allowed);
        // the background renewal comes back empty, the next token 36 s away
        leases.granted(&1, c, (8, 0, 36_000_000_000), false);
        for spent in 0..7 {
            let (Step::Decided(d), _) = leases.spend(&1, c) else {
                panic!("a token is held");
            };
            assert!(d.allowed, "token {spent} of the 7 held");
        }
        let (Step::Decided(d), None) = leases.spend(&1, c) else {
            panic!("none left: refused locally");
        };
        assert!(!d.allowed);
        assert_eq!(d.retry_after(), Some(Duration::from_secs(36)));
    }
}
