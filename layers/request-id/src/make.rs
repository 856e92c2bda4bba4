//! Generating request ids: the [`MakeRequestId`] policy and the generators that ship with it.
//!
//! A generator is asked for an id only when a request has no acceptable one (none sent, an
//! invalid one, or always at a trust boundary). What it returns is trusted: it is server code,
//! not client input, so it is not checked against the layer's validation rules. It must still
//! return a [`RequestId`], which can only hold visible ASCII.
//!
//! | generator          | example                                | cost   | properties                  |
//! |--------------------|----------------------------------------|--------|-----------------------------|
//! | [`UuidV4`] (default) | `67e55044-10b1-426f-9247-bb680e5fe0c8` | fast   | random, unguessable         |
//! | [`UuidV7`]         | `019abc34-5a6b-7c8d-9e0f-112233445566` | fast   | time-ordered, sorts by start |
//! | [`PrefixCounter`]  | `k3v9q2m7xa-000042`                    | fastest| process prefix + counter, like chi's `hostname/random-counter` |
//! | a closure          | anything                               | yours  | `FnMut(&Parts) -> RequestId` |

use bytes::Bytes;
use espresso_common::RequestId;
use http::{HeaderValue, Request, request::Parts};
use std::{
    fmt,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};
use uuid::Uuid;

/// Makes a new id for a request that has no acceptable one.
///
/// Any `FnMut(&http::request::Parts) -> RequestId` is a generator too:
///
/// ```
/// use espresso_request_id::{RequestId, RequestIdLayer};
/// use http::{HeaderValue, request::Parts};
///
/// // Reuse the W3C trace id when the caller sent one, else fall back to a fixed-format id.
/// let layer = RequestIdLayer::new().generator(|parts: &Parts| {
///     parts
///         .headers
///         .get("traceparent")
///         .and_then(|tp| tp.to_str().ok()?.split('-').nth(1))
///         .and_then(|trace_id| RequestId::new(HeaderValue::from_str(trace_id).ok()?))
///         .unwrap_or_else(|| espresso_request_id::UuidV4.make())
/// });
/// # let _ = layer;
/// ```
pub trait MakeRequestId {
    /// Makes an id for the request whose head is `request`.
    ///
    /// The head still holds whatever the client sent in the id header (nothing, an invalid value,
    /// or an untrusted one); the layer replaces it with the returned id afterwards.
    fn make_request_id(&mut self, request: &Parts) -> RequestId;

    /// Makes an id reading `request` where it is, when this generator can: the layer then
    /// spares taking the request apart to lend [`make_request_id`](Self::make_request_id) its
    /// head, which moves a few hundred bytes twice per request. The default, `None`, asks
    /// `make_request_id`; the generators of this crate, which read nothing of the request,
    /// answer here.
    #[inline]
    fn make_request_id_in_place<B>(&mut self, request: &Request<B>) -> Option<RequestId>
    where
        Self: Sized,
    {
        let _ = request;
        None
    }
}

impl<F> MakeRequestId for F
where
    F: FnMut(&Parts) -> RequestId,
{
    fn make_request_id(&mut self, request: &Parts) -> RequestId {
        self(request)
    }
}

// === impl IdBuf ===

/// Capacity of the inline buffer the built-in generators format into.
const ID_CAPACITY: usize = 64;

/// A formatted id on the stack. Turned into [`Bytes`] with [`Bytes::from_owner`], so the id costs
/// one allocation and every later clone (request header, extensions, task-local, response header)
/// is a reference-count increment.
struct IdBuf {
    bytes: [u8; ID_CAPACITY],
    len: usize,
}

impl IdBuf {
    fn new() -> Self {
        Self {
            bytes: [0; ID_CAPACITY],
            len: 0,
        }
    }

    fn push_slice(&mut self, s: &[u8]) {
        self.bytes[self.len..self.len + s.len()].copy_from_slice(s);
        self.len += s.len();
    }

    /// Appends `n` in decimal, zero-padded to at least `width` digits.
    fn push_decimal(&mut self, mut n: u64, width: usize) {
        let mut digits = [b'0'; 20];
        let mut i = digits.len();
        loop {
            i -= 1;
            digits[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        let start = i.min(digits.len() - width.min(digits.len()));
        self.push_slice(&digits[start..]);
    }

    fn into_request_id(self) -> RequestId {
        let value = HeaderValue::from_maybe_shared(Bytes::from_owner(self))
            .expect("built-in generators write visible ASCII only");
        RequestId::new(value).expect("built-in generators write visible ASCII only")
    }
}

impl AsRef<[u8]> for IdBuf {
    fn as_ref(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

// === impl UuidV4 ===

/// Random UUID v4 ids in lowercase hyphenated form (`67e55044-10b1-426f-9247-bb680e5fe0c8`).
/// The default generator.
#[derive(Debug, Clone, Copy, Default)]
pub struct UuidV4;

impl UuidV4 {
    /// Makes one id.
    pub fn make(&self) -> RequestId {
        uuid_id(Uuid::new_v4())
    }
}

impl MakeRequestId for UuidV4 {
    fn make_request_id(&mut self, _: &Parts) -> RequestId {
        self.make()
    }

    #[inline]
    fn make_request_id_in_place<B>(&mut self, _: &Request<B>) -> Option<RequestId> {
        Some(self.make())
    }
}

// === impl UuidV7 ===

/// Time-ordered UUID v7 ids (RFC 9562): ids made later sort later, so they double as a coarse
/// start time and index well in databases. Ids made by one process are strictly increasing.
#[derive(Debug, Clone, Copy, Default)]
pub struct UuidV7;

impl UuidV7 {
    /// Makes one id.
    pub fn make(&self) -> RequestId {
        uuid_id(Uuid::now_v7())
    }
}

impl MakeRequestId for UuidV7 {
    fn make_request_id(&mut self, _: &Parts) -> RequestId {
        self.make()
    }

    #[inline]
    fn make_request_id_in_place<B>(&mut self, _: &Request<B>) -> Option<RequestId> {
        Some(self.make())
    }
}

fn uuid_id(uuid: Uuid) -> RequestId {
    let mut buf = IdBuf::new();
    let len = uuid.hyphenated().encode_lower(&mut buf.bytes).len();
    buf.len = len;
    buf.into_request_id()
}

// === impl PrefixCounter ===

/// The longest prefix [`PrefixCounter::with_prefix`] accepts.
pub const MAX_PREFIX_LEN: usize = 32;

/// `prefix-counter` ids (`k3v9q2m7xa-000042`), like chi's `hostname/random-counter`: the cheapest
/// generator, and ids from one process sort in arrival order.
///
/// The prefix is random per generator (10 base-32 characters, 50 bits) unless you choose one,
/// e.g. a host or pod name; the counter starts at 1, is shared by clones, and is printed with at
/// least six digits. The ids are guessable (the next one is the last plus one); use [`UuidV4`]
/// where an id must not be.
///
/// ```
/// use espresso_request_id::PrefixCounter;
///
/// let ids = PrefixCounter::with_prefix("api-7").unwrap();
/// assert_eq!(ids.make().as_str(), "api-7-000001");
/// assert_eq!(ids.clone().make().as_str(), "api-7-000002");
/// ```
#[derive(Clone)]
pub struct PrefixCounter {
    shared: Arc<Counter>,
}

struct Counter {
    prefix: [u8; MAX_PREFIX_LEN],
    prefix_len: usize,
    next: AtomicU64,
}

impl PrefixCounter {
    /// A counter with a random prefix.
    pub fn new() -> Self {
        const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
        let random = Uuid::new_v4().as_u128();
        let mut prefix = [0u8; MAX_PREFIX_LEN];
        for (i, c) in prefix.iter_mut().take(10).enumerate() {
            *c = ALPHABET[(random >> (5 * i)) as usize & 31];
        }
        Self::from_parts(prefix, 10)
    }

    /// A counter with the given prefix, or `None` when the prefix is empty, longer than
    /// [`MAX_PREFIX_LEN`], or holds anything outside `[A-Za-z0-9._:-]` (so the ids pass the
    /// default validation of the next espresso service they are forwarded to).
    pub fn with_prefix(prefix: &str) -> Option<Self> {
        let ok = !prefix.is_empty()
            && prefix.len() <= MAX_PREFIX_LEN
            && prefix
                .bytes()
                .all(|b| crate::AllowedChars::DEFAULT.contains(b));
        ok.then(|| {
            let mut buf = [0u8; MAX_PREFIX_LEN];
            buf[..prefix.len()].copy_from_slice(prefix.as_bytes());
            Self::from_parts(buf, prefix.len())
        })
    }

    fn from_parts(prefix: [u8; MAX_PREFIX_LEN], prefix_len: usize) -> Self {
        Self {
            shared: Arc::new(Counter {
                prefix,
                prefix_len,
                next: AtomicU64::new(1),
            }),
        }
    }

    /// The prefix of every id this generator makes.
    pub fn prefix(&self) -> &str {
        let c = &self.shared;
        std::str::from_utf8(&c.prefix[..c.prefix_len]).unwrap_or_default()
    }

    /// Makes one id.
    pub fn make(&self) -> RequestId {
        let c = &self.shared;
        let n = c.next.fetch_add(1, Ordering::Relaxed);
        let mut buf = IdBuf::new();
        buf.push_slice(&c.prefix[..c.prefix_len]);
        buf.push_slice(b"-");
        buf.push_decimal(n, 6);
        buf.into_request_id()
    }
}

impl Default for PrefixCounter {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for PrefixCounter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrefixCounter")
            .field("prefix", &self.prefix())
            .field("next", &self.shared.next.load(Ordering::Relaxed))
            .finish()
    }
}

impl MakeRequestId for PrefixCounter {
    fn make_request_id(&mut self, _: &Parts) -> RequestId {
        self.make()
    }

    #[inline]
    fn make_request_id_in_place<B>(&mut self, _: &Request<B>) -> Option<RequestId> {
        Some(self.make())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts() -> Parts {
        http::Request::new(()).into_parts().0
    }

    #[test]
    fn uuid_v4_ids_are_lowercase_hyphenated_v4() {
        let id = UuidV4.make_request_id(&parts());
        let uuid = Uuid::parse_str(id.as_str()).unwrap();
        assert_eq!(uuid.get_version_num(), 4);
        assert_eq!(id.as_str(), uuid.hyphenated().to_string());
        assert_ne!(UuidV4.make(), UuidV4.make());
    }

    #[test]
    fn uuid_v7_ids_increase() {
        let ids: Vec<_> = (0..100).map(|_| UuidV7.make()).collect();
        for pair in ids.windows(2) {
            assert!(pair[0].as_str() < pair[1].as_str(), "{pair:?}");
        }
        assert_eq!(
            Uuid::parse_str(ids[0].as_str()).unwrap().get_version_num(),
            7
        );
    }

    #[test]
    fn counter_ids_count_up_across_clones() {
        let mut ids = PrefixCounter::new();
        let prefix = ids.prefix().to_owned();
        assert_eq!(prefix.len(), 10);
        assert!(prefix.bytes().all(|b| b.is_ascii_alphanumeric()));
        let mut clone = ids.clone();
        assert_eq!(
            ids.make_request_id(&parts()).as_str(),
            format!("{prefix}-000001")
        );
        assert_eq!(
            clone.make_request_id(&parts()).as_str(),
            format!("{prefix}-000002")
        );
        assert_ne!(PrefixCounter::new().prefix(), prefix);
    }

    #[test]
    fn counter_prints_wide_numbers_whole() {
        let ids = PrefixCounter::with_prefix("p").unwrap();
        ids.shared.next.store(1_234_567, Ordering::Relaxed);
        assert_eq!(ids.make().as_str(), "p-1234567");
        ids.shared.next.store(u64::MAX, Ordering::Relaxed);
        assert_eq!(ids.make().as_str(), format!("p-{}", u64::MAX));
        let longest = "x".repeat(MAX_PREFIX_LEN);
        let ids = PrefixCounter::with_prefix(&longest).unwrap();
        ids.shared.next.store(u64::MAX, Ordering::Relaxed);
        assert_eq!(ids.make().as_str(), format!("{longest}-{}", u64::MAX));
    }

    #[test]
    fn counter_rejects_bad_prefixes() {
        assert!(PrefixCounter::with_prefix("").is_none());
        assert!(PrefixCounter::with_prefix("host/1").is_none());
        assert!(PrefixCounter::with_prefix("héte").is_none());
        assert!(PrefixCounter::with_prefix(&"x".repeat(MAX_PREFIX_LEN + 1)).is_none());
    }

    #[test]
    fn closures_are_generators() {
        let mut n = 0;
        let mut make = |_: &Parts| {
            n += 1;
            RequestId::new(HeaderValue::from(n)).unwrap()
        };
        assert_eq!(make.make_request_id(&parts()).as_str(), "1");
        assert_eq!(make.make_request_id(&parts()).as_str(), "2");
    }
}
