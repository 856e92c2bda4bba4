//! Quotas in plain words: "N per period, with a burst of B".

use http::HeaderValue;
use std::{borrow::Cow, fmt, sync::Arc, time::Duration};

/// How many requests a key may make: `count` per `period`, with up to `burst` at once.
///
/// ```
/// use espresso_rate_limit::Quota;
/// use std::time::Duration;
///
/// // 100 requests per second on average; a quiet client may send 200 at once.
/// let api = Quota::per_second(100).burst(200);
/// // 10 per minute, at most 10 at once (the burst defaults to the count).
/// let login = Quota::per_minute(10);
/// // 5 per 250 ms.
/// let custom = Quota::new(5, Duration::from_millis(250));
/// assert_eq!(api.emission_interval(), Duration::from_millis(10));
/// assert_eq!(login.burst_size(), 10);
/// assert_eq!(custom.emission_interval(), Duration::from_millis(50));
/// ```
///
/// # Meaning
///
/// The limiter is GCRA (the generic cell rate algorithm, as in governor): one request is
/// admitted every `period / count` on average (the *emission interval*), and a key that has been
/// quiet may spend up to `burst` requests at once. After a burst the key refills at the steady
/// rate: `per_second(100).burst(200)` admits 200 requests at once, then one every 10 ms, and is
/// back to a full burst after 2 s of silence. This is exactly governor's
/// `Quota::with_period(period / count).allow_burst(burst)`.
///
/// # Edge cases
///
/// - `count == 0` blocks every request (useful as a per-key override that bans a key), whatever
///   the period; the `Retry-After` answered is the period, at least one second.
/// - A burst of 0 is taken as 1.
/// - A zero period admits everything (but with a count of 0).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Quota {
    count: u32,
    period: Duration,
    burst: Option<u32>,
    name: Option<Cow<'static, str>>,
}

impl Quota {
    /// `count` requests per `period`; the burst defaults to `count`.
    pub const fn new(count: u32, period: Duration) -> Self {
        Self {
            count,
            period,
            burst: None,
            name: None,
        }
    }

    /// `count` requests per second.
    pub const fn per_second(count: u32) -> Self {
        Self::new(count, Duration::from_secs(1))
    }

    /// `count` requests per minute.
    pub const fn per_minute(count: u32) -> Self {
        Self::new(count, Duration::from_secs(60))
    }

    /// `count` requests per hour.
    pub const fn per_hour(count: u32) -> Self {
        Self::new(count, Duration::from_secs(3600))
    }

    /// Lets a quiet key send up to `burst` requests at once (default: the count).
    pub const fn burst(mut self, burst: u32) -> Self {
        self.burst = Some(burst);
        self
    }

    /// Names the quota in the `RateLimit` / `RateLimit-Policy` headers (default `"default"`).
    /// Names are sent as structured-field keys, so they are lowercased and every character
    /// outside `a-z 0-9 _ - . *` becomes `-`.
    pub fn named(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// The number of requests per period.
    pub const fn count(&self) -> u32 {
        self.count
    }

    /// The period.
    pub const fn period(&self) -> Duration {
        self.period
    }

    /// How many requests may arrive at once.
    pub const fn burst_size(&self) -> u32 {
        match self.burst {
            Some(0) => 1,
            Some(b) => b,
            None if self.count == 0 => 1,
            None => self.count,
        }
    }

    /// The steady-state interval between two admitted requests (`period / count`);
    /// [`Duration::MAX`] for a blocking quota (`count == 0`).
    pub fn emission_interval(&self) -> Duration {
        if self.count == 0 {
            Duration::MAX
        } else {
            self.period / self.count
        }
    }

    /// The name used in headers, if one was given.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// The same quota with its rate and burst multiplied by `share` (0 < share ≤ 1), for the
    /// local fallback of a global limit. The burst never falls below 1.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn scaled(&self, share: f64) -> Self {
        let share = if share.is_finite() && share > 0.0 {
            share.min(1.0)
        } else {
            1.0
        };
        let scale = |n: u32| ((f64::from(n) * share).round() as u32).max(1);
        // Scale the period rather than the count so small counts keep their precision.
        let period =
            Duration::try_from_secs_f64(self.period.as_secs_f64() / share).unwrap_or(Duration::MAX);
        Self {
            count: self.count,
            period,
            burst: Some(scale(self.burst_size())),
            name: self.name.clone(),
        }
    }
}

impl fmt::Debug for Quota {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Quota")
            .field("count", &self.count)
            .field("period", &self.period)
            .field("burst", &self.burst_size())
            .field("name", &self.name)
            .finish()
    }
}

impl From<governor::Quota> for Quota {
    /// Governor's quota `with_period(t).allow_burst(b)` as "1 per `t`, burst `b`".
    fn from(q: governor::Quota) -> Self {
        Self::new(1, q.replenish_interval()).burst(q.burst_size().get())
    }
}

/// One or more quotas enforced together, cheap to clone.
///
/// A request is admitted only when every quota admits it, and then it is counted against all of
/// them; a request refused by one quota is counted against none. Build it from a [`Quota`], an
/// array or a `Vec` of them:
///
/// ```
/// use espresso_rate_limit::{Quota, Quotas};
///
/// let quotas: Quotas = [Quota::per_second(10).burst(20), Quota::per_minute(300)].into();
/// assert_eq!(quotas.len(), 2);
/// assert_eq!(
///     quotas.policy_header(),
///     r#""default";q=10;w=1, "default-1";q=300;w=60"#
/// );
/// ```
#[derive(Clone)]
pub struct Quotas(Arc<QuotasInner>);

struct QuotasInner {
    quotas: Vec<Quota>,
    compiled: Vec<Compiled>,
    policy: HeaderValue,
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    scaled: std::sync::OnceLock<(u64, Quotas)>,
}

/// A quota in the nanosecond form the GCRA needs, plus what the headers report.
#[derive(Debug, Clone)]
pub(crate) struct Compiled {
    /// Emission interval, ns; `u64::MAX` blocks everything.
    pub(crate) t: u64,
    /// Burst capacity `burst * t`, ns.
    pub(crate) tau: u64,
    /// The burst, in requests.
    pub(crate) burst: u64,
    /// The period, ns (what a blocking quota answers as `Retry-After`).
    pub(crate) period: u64,
    /// Structured-field key of the policy.
    pub(crate) name: String,
}

impl Quotas {
    /// The quotas, in order.
    pub fn iter(&self) -> impl Iterator<Item = &Quota> {
        self.0.quotas.iter()
    }

    /// How many quotas there are.
    pub fn len(&self) -> usize {
        self.0.quotas.len()
    }

    /// `true` when there are none (every request is admitted).
    pub fn is_empty(&self) -> bool {
        self.0.quotas.is_empty()
    }

    /// The `RateLimit-Policy` header value describing these quotas.
    pub fn policy_header(&self) -> &HeaderValue {
        &self.0.policy
    }

    pub(crate) fn compiled(&self) -> &[Compiled] {
        &self.0.compiled
    }

    /// These quotas scaled by `share` (cached: a backend always asks with the same share).
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn scaled(&self, share: f64) -> Quotas {
        let bits = share.to_bits();
        let (cached_bits, quotas) = self.0.scaled.get_or_init(|| {
            (
                bits,
                Quotas::build(self.0.quotas.iter().map(|q| q.scaled(share)).collect()),
            )
        });
        if *cached_bits == bits {
            quotas.clone()
        } else {
            Quotas::build(self.0.quotas.iter().map(|q| q.scaled(share)).collect())
        }
    }

    fn build(quotas: Vec<Quota>) -> Self {
        let mut names: Vec<String> = Vec::with_capacity(quotas.len());
        let compiled = quotas
            .iter()
            .map(|q| {
                let base = sf_key(q.name().unwrap_or("default"));
                let mut name = base.clone();
                let mut n = 1;
                while names.contains(&name) {
                    name = format!("{base}-{n}");
                    n += 1;
                }
                names.push(name.clone());
                let t = if q.count == 0 {
                    u64::MAX
                } else {
                    duration_nanos(q.emission_interval())
                };
                // a blocked key's wait, answered in `Retry-After`: never 0
                let period = match q.count {
                    0 => duration_nanos(q.period).max(1_000_000_000),
                    _ => duration_nanos(q.period),
                };
                Compiled {
                    t,
                    tau: t.saturating_mul(u64::from(q.burst_size())),
                    burst: u64::from(q.burst_size()),
                    period,
                    name,
                }
            })
            .collect::<Vec<_>>();
        let policy = quotas
            .iter()
            .zip(&compiled)
            .map(|(q, c)| {
                let (quota, window) = ietf_quota(q);
                format!("\"{}\";q={quota};w={window}", c.name)
            })
            .collect::<Vec<_>>()
            .join(", ");
        let policy = HeaderValue::try_from(policy).unwrap_or(HeaderValue::from_static(""));
        Self(Arc::new(QuotasInner {
            quotas,
            compiled,
            policy,
            scaled: std::sync::OnceLock::new(),
        }))
    }
}

/// The draft's `q` (units per window) and `w` (window, whole seconds ≥ 1) for a quota.
fn ietf_quota(q: &Quota) -> (u64, u64) {
    let secs = q.period.as_secs_f64();
    let window = (secs.ceil() as u64).max(1);
    if q.count == 0 {
        return (0, window);
    }
    if secs <= 0.0 {
        return (u64::from(u32::MAX), window);
    }
    let quota = (f64::from(q.count) * window as f64 / secs).round() as u64;
    (quota, window)
}

/// Lowercases and replaces what a structured-field key may not hold.
fn sf_key(name: &str) -> String {
    let mut key: String = name
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_lowercase() || c.is_ascii_digit() || "_-.*".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    if !key.starts_with(|c: char| c.is_ascii_lowercase() || c == '*') {
        key.insert(0, 'q');
    }
    key
}

/// `d` in nanoseconds, saturating at `u64::MAX` (584 years).
#[inline]
pub(crate) fn duration_nanos(d: Duration) -> u64 {
    // Without `as_nanos`'s 128-bit arithmetic: this runs twice per request.
    d.as_secs()
        .saturating_mul(1_000_000_000)
        .saturating_add(u64::from(d.subsec_nanos()))
}

impl fmt::Debug for Quotas {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(&self.0.quotas).finish()
    }
}

impl PartialEq for Quotas {
    fn eq(&self, other: &Self) -> bool {
        self.0.quotas == other.0.quotas
    }
}

impl From<Quota> for Quotas {
    fn from(q: Quota) -> Self {
        Self::build(vec![q])
    }
}

impl From<Vec<Quota>> for Quotas {
    fn from(q: Vec<Quota>) -> Self {
        Self::build(q)
    }
}

impl<const N: usize> From<[Quota; N]> for Quotas {
    fn from(q: [Quota; N]) -> Self {
        Self::build(q.into())
    }
}

impl From<governor::Quota> for Quotas {
    fn from(q: governor::Quota) -> Self {
        Quota::from(q).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_words() {
        let q = Quota::per_second(100).burst(200);
        assert_eq!(q.emission_interval(), Duration::from_millis(10));
        assert_eq!(q.burst_size(), 200);
        assert_eq!(
            Quota::per_minute(6).emission_interval(),
            Duration::from_secs(10)
        );
        assert_eq!(Quota::per_hour(3600).burst_size(), 3600);
        assert_eq!(Quota::per_second(5).burst(0).burst_size(), 1);
        assert_eq!(Quota::per_second(0).emission_interval(), Duration::MAX);
    }

    #[test]
    fn matches_governor_quota() {
        let g = governor::Quota::with_period(Duration::from_millis(10))
            .unwrap()
            .allow_burst(std::num::NonZeroU32::new(200).unwrap());
        let q = Quota::from(g);
        assert_eq!(q.emission_interval(), g.replenish_interval());
        assert_eq!(q.burst_size(), g.burst_size().get());
    }

    #[test]
    fn policy_header_follows_the_draft() {
        let q: Quotas = Quota::per_second(100).burst(200).into();
        assert_eq!(q.policy_header(), "\"default\";q=100;w=1");
        let q: Quotas = Quota::new(5, Duration::from_millis(500))
            .named("Fast Path")
            .into();
        assert_eq!(q.policy_header(), "\"fast-path\";q=10;w=1");
        let q: Quotas = Quota::per_minute(10).named("9lives").into();
        assert_eq!(q.policy_header(), "\"q9lives\";q=10;w=60");
        // a count of 0 blocks whatever the period, and says so; a zero period alone admits all
        let q: Quotas = Quota::new(0, Duration::ZERO).into();
        assert_eq!(q.policy_header(), "\"default\";q=0;w=1");
        assert_eq!(
            q.compiled()[0].period,
            1_000_000_000,
            "Retry-After is never 0"
        );
        let q: Quotas = Quota::new(5, Duration::ZERO).into();
        assert_eq!(q.policy_header(), "\"default\";q=4294967295;w=1");
    }

    #[test]
    fn scaling_keeps_at_least_one() {
        let q = Quota::per_second(300).burst(30).scaled(1.0 / 3.0);
        assert_eq!(q.burst_size(), 10);
        assert_eq!(q.emission_interval(), Duration::from_millis(10));
        let tiny = Quota::per_minute(1).scaled(0.01);
        assert_eq!(tiny.burst_size(), 1);
        let odd = Quota::per_second(10).scaled(f64::NAN);
        assert_eq!(odd.emission_interval(), Duration::from_millis(100));
    }
}
