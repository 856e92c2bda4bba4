//! One process of the global-limit accuracy check (`scripts/redis_accuracy.sh` runs three).
//!
//! Hammers a Redis-backed limiter shared through `--prefix` for `--seconds`, with 16 concurrent
//! tasks, and prints how many checks were admitted and refused. Three of these sharing a
//! 300/s limit should together admit 300/s (plus the burst once).
//!
//! `cargo run --release -p espresso-rate-limit --features redis --example redis_accuracy -- \
//!     --url redis://127.0.0.1:6379 --prefix acc:1 --rate 300 --burst 30 --seconds 10`

use espresso_rate_limit::{Global, Quota, RateLimitLayer, RedisBackend};
use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

fn arg(name: &str, default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| default.to_owned())
}

#[tokio::main]
async fn main() {
    let url = arg("--url", "redis://127.0.0.1:6379");
    let prefix = arg("--prefix", "espresso-accuracy");
    let rate: u32 = arg("--rate", "300").parse().expect("--rate: a number");
    let burst: u32 = arg("--burst", "30").parse().expect("--burst: a number");
    let seconds: u64 = arg("--seconds", "10").parse().expect("--seconds: a number");
    let limiter = RateLimitLayer::new(Quota::per_second(rate).burst(burst))
        .key(Global::new())
        .name("accuracy")
        .backend(
            RedisBackend::new(&url)
                .expect("a valid Redis URL")
                .prefix(prefix)
                .timeout(Duration::from_millis(200)),
        )
        .limiter();
    let admitted = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let (limiter, admitted, refused) = (limiter.clone(), admitted.clone(), refused.clone());
            tokio::spawn(async move {
                while Instant::now() < deadline {
                    if limiter.check(&()).await.is_allowed() {
                        admitted.fetch_add(1, Ordering::Relaxed);
                    } else {
                        refused.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("a checking task");
    }
    println!(
        "admitted={} refused={} degraded={}",
        admitted.load(Ordering::Relaxed),
        refused.load(Ordering::Relaxed),
        limiter.is_degraded()
    );
}
