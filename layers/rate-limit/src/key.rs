//! Which bucket a request counts against: [`KeyExtractor`] and the usual keys.
//!
//! A key extractor reads the request head ([`http::request::Parts`]) and returns the key, or
//! `None` when the request has none (no peer address, missing header). What happens then is the
//! layer's [`MissingKey`](crate::MissingKey) policy: by default such a request is refused with a
//! 500 naming the cause (a server that cannot tell its clients apart is misconfigured), a WARN
//! line says how to fix it, and a metric counts it. Sharing one bucket, or not limiting such
//! requests, are explicit choices.
//!
//! | extractor | key | `None` when |
//! |---|---|---|
//! | [`Global`] | `()` | never |
//! | [`PeerIp`] | client IP | no peer address in the extensions |
//! | [`Header`] | the header's value | header absent |
//! | [`Route`] | method and path (axum's matched route with feature `axum`) | never |
//! | `(A, B)` | both keys | either is `None` |
//! | any `Fn(&Parts) -> Option<K>` | `K` | the closure says so |
//! | [`ConfigKey`] | one of the above, chosen by a config string | as the chosen one |

use http::{HeaderName, HeaderValue, Method, Request, Uri, request::Parts};
use std::{
    borrow::Cow,
    fmt,
    hash::Hash,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    str::FromStr,
    sync::Arc,
};

/// Derives the rate-limit key of a request.
///
/// Implemented by the extractors of this module and by closures:
///
/// ```
/// use espresso_rate_limit::{KeyExtractor, Quota, RateLimitLayer};
/// use http::request::Parts;
///
/// // One bucket per API token, taken from a header; a request without one is refused with a
/// // 500 naming the cause (see `MissingKey` for the alternatives).
/// let by_token = |parts: &Parts| {
///     parts.headers.get("x-api-token")?.to_str().ok().map(str::to_owned)
/// };
/// let layer = RateLimitLayer::new(Quota::per_second(10)).key(by_token);
/// ```
pub trait KeyExtractor: Send + Sync + 'static {
    /// The key type.
    type Key: LimitKey;

    /// The key of this request, or `None` when it has none.
    fn extract(&self, parts: &Parts) -> Option<Self::Key>;

    /// [`extract`](Self::extract) on a whole request, for extractors that can read it in place:
    /// `Some` with the key `extract` would give, or `None` (the default) to have the layer take
    /// the request apart and call `extract` on its parts. The extractors of this crate read in
    /// place, which spares the layer moving a few hundred bytes twice per request.
    #[inline]
    fn extract_in_place<B>(&self, request: &Request<B>) -> Option<Option<Self::Key>>
    where
        Self: Sized,
    {
        let _ = request;
        None
    }

    /// Why a request can have no key, and what fixes it: the message of the 500 answered and
    /// of the WARN line logged when [`extract`](Self::extract) returns `None`.
    fn missing_key_cause(&self) -> Cow<'static, str> {
        Cow::Borrowed("the key extractor found no key in the request")
    }
}

impl<F, K> KeyExtractor for F
where
    F: Fn(&Parts) -> Option<K> + Send + Sync + 'static,
    K: LimitKey,
{
    type Key = K;

    fn extract(&self, parts: &Parts) -> Option<K> {
        self(parts)
    }
}

impl<A: KeyExtractor, B: KeyExtractor> KeyExtractor for (A, B) {
    type Key = (A::Key, B::Key);

    fn extract(&self, parts: &Parts) -> Option<Self::Key> {
        Some((self.0.extract(parts)?, self.1.extract(parts)?))
    }

    fn missing_key_cause(&self) -> Cow<'static, str> {
        Cow::Owned(format!(
            "{}, or {}",
            self.0.missing_key_cause(),
            self.1.missing_key_cause()
        ))
    }
}

/// A value usable as a rate-limit key: hashable for the in-memory store, and with a stable byte
/// form for the Redis backend.
pub trait LimitKey: Hash + Eq + Clone + Send + Sync + 'static {
    /// Appends the key's stable byte form (part of the Redis key).
    fn write_bytes(&self, out: &mut Vec<u8>);
}

macro_rules! display_key {
    ($($t:ty),*) => {$(
        impl LimitKey for $t {
            fn write_bytes(&self, out: &mut Vec<u8>) {
                use std::io::Write;
                let _ = write!(out, "{self}");
            }
        }
    )*};
}
display_key!(
    u8, u16, u32, u64, u128, usize, i8, i16, i32, i64, i128, isize, bool, char, IpAddr, Ipv4Addr,
    Ipv6Addr, SocketAddr, Method, Uri
);

macro_rules! bytes_key {
    ($($t:ty),*) => {$(
        impl LimitKey for $t {
            fn write_bytes(&self, out: &mut Vec<u8>) {
                out.extend_from_slice(AsRef::<[u8]>::as_ref(self));
            }
        }
    )*};
}
bytes_key!(Vec<u8>, Box<[u8]>, Arc<[u8]>);

macro_rules! str_key {
    ($($t:ty),*) => {$(
        impl LimitKey for $t {
            fn write_bytes(&self, out: &mut Vec<u8>) {
                out.extend_from_slice(AsRef::<str>::as_ref(self).as_bytes());
            }
        }
    )*};
}
str_key!(String, Box<str>, Arc<str>, &'static str);

impl LimitKey for HeaderValue {
    fn write_bytes(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.as_bytes());
    }
}

impl LimitKey for () {
    fn write_bytes(&self, _out: &mut Vec<u8>) {}
}

impl<T: LimitKey> LimitKey for Option<T> {
    fn write_bytes(&self, out: &mut Vec<u8>) {
        if let Some(v) = self {
            out.push(b'=');
            v.write_bytes(out);
        } else {
            out.push(b'~');
        }
    }
}

impl<A: LimitKey, B: LimitKey> LimitKey for (A, B) {
    fn write_bytes(&self, out: &mut Vec<u8>) {
        self.0.write_bytes(out);
        out.push(0x1f);
        self.1.write_bytes(out);
    }
}

impl<A: LimitKey, B: LimitKey, C: LimitKey> LimitKey for (A, B, C) {
    fn write_bytes(&self, out: &mut Vec<u8>) {
        self.0.write_bytes(out);
        out.push(0x1f);
        self.1.write_bytes(out);
        out.push(0x1f);
        self.2.write_bytes(out);
    }
}

// === impl Global ===

/// One bucket for every request.
///
/// ```
/// use espresso_rate_limit::{Global, KeyExtractor};
///
/// let parts = http::Request::new(()).into_parts().0;
/// assert_eq!(Global::new().extract(&parts), Some(()));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Global {
    _private: (),
}

impl Global {
    /// Counts every request against one bucket.
    pub fn new() -> Self {
        Self::default()
    }
}

impl KeyExtractor for Global {
    type Key = ();

    fn extract(&self, _parts: &Parts) -> Option<()> {
        Some(())
    }

    #[inline]
    fn extract_in_place<B>(&self, _request: &Request<B>) -> Option<Option<()>> {
        Some(Some(()))
    }
}

// === impl Header ===

/// One bucket per value of a request header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header(HeaderName);

impl Header {
    /// Keys requests by the value of `name`; requests without it have no key.
    pub fn new(name: HeaderName) -> Self {
        Self(name)
    }
}

impl KeyExtractor for Header {
    type Key = HeaderValue;

    fn extract(&self, parts: &Parts) -> Option<HeaderValue> {
        parts.headers.get(&self.0).cloned()
    }

    #[inline]
    fn extract_in_place<B>(&self, request: &Request<B>) -> Option<Option<HeaderValue>> {
        Some(request.headers().get(&self.0).cloned())
    }

    fn missing_key_cause(&self) -> Cow<'static, str> {
        Cow::Owned(format!("the request has no `{}` header", self.0))
    }
}

// === impl Route ===

/// One bucket per method and route.
///
/// The route is axum's `MatchedPath` when the layer runs inside an axum router with feature
/// `axum` (so `/users/1` and `/users/2` share `/users/{id}`), the URI path otherwise. Keying by
/// raw path lets clients mint keys at will; the store's cap bounds the memory that costs.
///
/// ```
/// use espresso_rate_limit::{KeyExtractor, Route};
///
/// let parts = http::Request::post("/v1/filter?x=1").body(()).unwrap().into_parts().0;
/// assert_eq!(Route::new().extract(&parts), Some((http::Method::POST, "/v1/filter".into())));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Route {
    _private: (),
}

impl Route {
    /// Keys requests by method and route.
    pub fn new() -> Self {
        Self::default()
    }
}

impl KeyExtractor for Route {
    type Key = (Method, Box<str>);

    fn extract(&self, parts: &Parts) -> Option<Self::Key> {
        Some(route_of(&parts.method, &parts.uri, &parts.extensions))
    }

    #[inline]
    fn extract_in_place<B>(&self, request: &Request<B>) -> Option<Option<Self::Key>> {
        Some(Some(route_of(
            request.method(),
            request.uri(),
            request.extensions(),
        )))
    }
}

/// The method and route of a request (see [`Route`]).
fn route_of(
    method: &Method,
    uri: &Uri,
    #[cfg_attr(not(feature = "axum"), allow(unused_variables))] extensions: &http::Extensions,
) -> (Method, Box<str>) {
    #[cfg(feature = "axum")]
    if let Some(path) = extensions.get::<axum::extract::MatchedPath>() {
        return (method.clone(), path.as_str().into());
    }
    (method.clone(), uri.path().into())
}

// === impl PeerIp ===

/// One bucket per client IP address.
///
/// The peer address is read from the request extensions, from the first of:
/// `std::net::SocketAddr` (insert it yourself under plain hyper), axum's
/// `ConnectInfo<SocketAddr>` (feature `axum`, served with `into_make_service_with_connect_info`),
/// tonic's `TcpConnectInfo` (feature `tonic`). IPv4-mapped IPv6 addresses count as IPv4.
///
/// # Proxies
///
/// `X-Forwarded-For` (or `Forwarded`, see [`PeerIp::forwarded_header`]) is read **only when
/// the peer is a trusted proxy**, and then walked from the right: each hop that is itself a
/// trusted proxy is skipped, and the first hop that is not is the client. A malformed hop (not
/// an IP address, `unknown`, an obfuscated identifier) is never trusted and never used as a key:
/// the walk stops and the last hop known good is the client. A client talking to the server
/// directly cannot choose its key by sending `X-Forwarded-For`.
///
/// ```
/// use espresso_rate_limit::PeerIp;
/// use http::Request;
/// use std::net::SocketAddr;
///
/// let key = PeerIp::new().trust("10.0.0.0/8".parse().unwrap());
/// let request = |peer: &str, xff: &str| {
///     let mut r = Request::builder().header("x-forwarded-for", xff).body(()).unwrap();
///     r.extensions_mut().insert(peer.parse::<SocketAddr>().unwrap());
///     r.into_parts().0
/// };
/// // Through our proxy: the client is the first untrusted hop from the right.
/// let via_proxy = request("10.0.0.1:5000", "1.1.1.1, 203.0.113.9, 10.0.0.7");
/// assert_eq!(key.client_ip(&via_proxy), Some("203.0.113.9".parse().unwrap()));
/// // Spoofed header from a direct client: ignored.
/// let direct = request("198.51.100.4:5000", "1.2.3.4");
/// assert_eq!(key.client_ip(&direct), Some("198.51.100.4".parse().unwrap()));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerIp {
    trusted: Vec<Cidr>,
    header: ForwardedHeader,
}

/// Which header a trusted proxy writes the client chain into.
///
/// Only one is read: a proxy that appends to `X-Forwarded-For` passes a client's own `Forwarded`
/// header through untouched, so honouring both would let clients choose their address.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ForwardedHeader {
    /// `X-Forwarded-For: client, proxy1, proxy2` (the default).
    #[default]
    XForwardedFor,
    /// RFC 7239 `Forwarded: for=client, for="[2001:db8::1]:80"`.
    Forwarded,
}

impl PeerIp {
    /// Keys by the peer address, trusting no proxy.
    pub fn new() -> Self {
        Self::default()
    }

    /// Trusts proxies in `network` to report the client address.
    pub fn trust(mut self, network: Cidr) -> Self {
        self.trusted.push(network);
        self
    }

    /// Trusts proxies in every one of `networks`.
    pub fn trust_all(mut self, networks: impl IntoIterator<Item = Cidr>) -> Self {
        self.trusted.extend(networks);
        self
    }

    /// Reads the client chain from `header` (default `X-Forwarded-For`).
    pub fn forwarded_header(mut self, header: ForwardedHeader) -> Self {
        self.header = header;
        self
    }

    fn is_trusted(&self, ip: IpAddr) -> bool {
        self.trusted.iter().any(|net| net.contains(ip))
    }

    /// The client address of a request as this extractor sees it.
    #[inline]
    pub fn client_ip(&self, parts: &Parts) -> Option<IpAddr> {
        self.client_ip_in(&parts.extensions, &parts.headers)
    }

    // Always inlined: out of line, returning the address through memory cost a fifth more.
    #[inline(always)]
    fn client_ip_in(
        &self,
        extensions: &http::Extensions,
        headers: &http::HeaderMap,
    ) -> Option<IpAddr> {
        let peer = peer_ip(extensions)?;
        if self.trusted.is_empty() {
            return Some(peer);
        }
        Some(self.behind_proxy(peer, headers))
    }

    /// The client behind `peer`, when `peer` is a trusted proxy.
    fn behind_proxy(&self, peer: IpAddr, headers: &http::HeaderMap) -> IpAddr {
        if !self.is_trusted(peer) {
            return peer;
        }
        let mut client = peer;
        let name = match self.header {
            ForwardedHeader::XForwardedFor => "x-forwarded-for",
            ForwardedHeader::Forwarded => "forwarded",
        };
        for value in headers.get_all(name).iter().rev() {
            let Ok(value) = value.to_str() else {
                return client;
            };
            for hop in value.rsplit(',') {
                let hop = match self.header {
                    ForwardedHeader::XForwardedFor => parse_node(hop.trim()),
                    ForwardedHeader::Forwarded => forwarded_for(hop),
                };
                let Some(ip) = hop else {
                    return client;
                };
                client = ip;
                if !self.is_trusted(ip) {
                    return ip;
                }
            }
        }
        client
    }
}

impl KeyExtractor for PeerIp {
    type Key = IpAddr;

    #[inline]
    fn extract(&self, parts: &Parts) -> Option<IpAddr> {
        self.client_ip(parts)
    }

    #[inline]
    fn extract_in_place<B>(&self, request: &Request<B>) -> Option<Option<IpAddr>> {
        Some(self.client_ip_in(request.extensions(), request.headers()))
    }

    fn missing_key_cause(&self) -> Cow<'static, str> {
        Cow::Borrowed(NO_PEER_ADDRESS)
    }
}

/// What a request without a peer address means, and the fixes.
const NO_PEER_ADDRESS: &str = "the request carries no peer address: under axum, serve \
    `app.into_make_service_with_connect_info::<SocketAddr>()` and enable the `axum` feature \
    of espresso-rate-limit; under tonic, enable its `tonic` feature and serve over TCP (a Unix \
    socket or a custom transport carries no peer address: key such requests by something \
    else); under plain hyper, insert the connection's `SocketAddr` into the request extensions";

/// The connection's peer address from the request extensions.
// Always inlined: out of line, it cost about 20 instructions more per request in call and copies.
#[inline(always)]
fn peer_ip(extensions: &http::Extensions) -> Option<IpAddr> {
    if let Some(addr) = extensions.get::<SocketAddr>() {
        return Some(addr.ip().to_canonical());
    }
    #[cfg(feature = "axum")]
    if let Some(info) = extensions.get::<axum::extract::ConnectInfo<SocketAddr>>() {
        return Some(info.0.ip().to_canonical());
    }
    #[cfg(feature = "tonic")]
    if let Some(addr) = extensions
        .get::<tonic::transport::server::TcpConnectInfo>()
        .and_then(|info| info.remote_addr())
    {
        return Some(addr.ip().to_canonical());
    }
    None
}

/// An IP address, optionally with a port (`1.2.3.4`, `1.2.3.4:80`, `::1`, `[::1]:80`, `[::1]`).
fn parse_node(s: &str) -> Option<IpAddr> {
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    if let Ok(addr) = s.parse::<SocketAddr>() {
        return Some(addr.ip().to_canonical());
    }
    let inner = s.strip_prefix('[')?.strip_suffix(']')?;
    inner
        .parse::<Ipv6Addr>()
        .ok()
        .map(|ip| IpAddr::V6(ip).to_canonical())
}

/// The `for=` node of one `Forwarded` element, if it is an IP address.
fn forwarded_for(element: &str) -> Option<IpAddr> {
    let mut found = None;
    for pair in element.split(';') {
        let (name, value) = pair.trim().split_once('=')?;
        if name.trim().eq_ignore_ascii_case("for") {
            if found.is_some() {
                return None; // two `for` in one element: malformed
            }
            let value = value.trim();
            let value = match value.strip_prefix('"') {
                Some(rest) => rest.strip_suffix('"')?,
                None => value,
            };
            found = Some(parse_node(value)?);
        }
    }
    found
}

/// An IP network in CIDR notation (`10.0.0.0/8`, `2001:db8::/32`); a bare address is a /32 or
/// /128. Host bits below the prefix are ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// The network of `addr` with `prefix` leading bits; `None` when the prefix is too long.
    pub fn new(addr: IpAddr, prefix: u8) -> Option<Self> {
        let addr = addr.to_canonical();
        let max = if addr.is_ipv4() { 32 } else { 128 };
        (prefix <= max).then_some(Self { addr, prefix })
    }

    /// `true` when `ip` is in this network.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// An invalid network in CIDR notation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidCidr(String);

impl fmt::Display for InvalidCidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid network `{}`: expected `addr/prefix`", self.0)
    }
}

impl std::error::Error for InvalidCidr {}

impl FromStr for Cidr {
    type Err = InvalidCidr;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || InvalidCidr(s.to_owned());
        let (addr, prefix) = match s.trim().split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (s.trim(), None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| err())?;
        let addr = addr.to_canonical();
        let prefix = match prefix {
            Some(p) => p.parse().map_err(|_| err())?,
            None if addr.is_ipv4() => 32,
            None => 128,
        };
        Self::new(addr, prefix).ok_or_else(err)
    }
}

// === impl ConfigKey ===

/// A key chosen by a configuration string: `"ip"`, `"global"` or `"header:<name>"`.
///
/// ```
/// use espresso_rate_limit::{ConfigKey, Quota, RateLimitLayer};
///
/// let key: ConfigKey = "header:x-api-key".parse().unwrap();
/// let layer = RateLimitLayer::new(Quota::per_second(1000).burst(2000)).key(key);
/// assert!("cookie".parse::<ConfigKey>().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigKey {
    /// `"global"`: [`Global`].
    Global,
    /// `"ip"`: [`PeerIp`] (add trusted proxies with [`ConfigKey::trust_proxies`]).
    Ip(PeerIp),
    /// `"header:<name>"`: [`Header`].
    Header(Header),
}

impl ConfigKey {
    /// With `"ip"`, trusts these proxy networks to report the client; otherwise unchanged.
    pub fn trust_proxies(self, networks: impl IntoIterator<Item = Cidr>) -> Self {
        match self {
            ConfigKey::Ip(ip) => ConfigKey::Ip(ip.trust_all(networks)),
            other => other,
        }
    }
}

/// The key [`ConfigKey`] extracts.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ConfigKeyValue {
    /// The single global bucket.
    Global,
    /// A client address.
    Ip(IpAddr),
    /// A header value.
    Header(HeaderValue),
}

impl LimitKey for ConfigKeyValue {
    fn write_bytes(&self, out: &mut Vec<u8>) {
        match self {
            ConfigKeyValue::Global => out.extend_from_slice(b"global"),
            ConfigKeyValue::Ip(ip) => {
                out.extend_from_slice(b"ip:");
                ip.write_bytes(out);
            }
            ConfigKeyValue::Header(v) => {
                out.extend_from_slice(b"h:");
                v.write_bytes(out);
            }
        }
    }
}

impl KeyExtractor for ConfigKey {
    type Key = ConfigKeyValue;

    fn extract(&self, parts: &Parts) -> Option<ConfigKeyValue> {
        match self {
            ConfigKey::Global => Some(ConfigKeyValue::Global),
            ConfigKey::Ip(ip) => ip.extract(parts).map(ConfigKeyValue::Ip),
            ConfigKey::Header(h) => h.extract(parts).map(ConfigKeyValue::Header),
        }
    }

    #[inline]
    fn extract_in_place<B>(&self, request: &Request<B>) -> Option<Option<ConfigKeyValue>> {
        Some(match self {
            ConfigKey::Global => Some(ConfigKeyValue::Global),
            ConfigKey::Ip(ip) => ip.extract_in_place(request)?.map(ConfigKeyValue::Ip),
            ConfigKey::Header(h) => h.extract_in_place(request)?.map(ConfigKeyValue::Header),
        })
    }

    fn missing_key_cause(&self) -> Cow<'static, str> {
        match self {
            ConfigKey::Global => Global::new().missing_key_cause(),
            ConfigKey::Ip(ip) => ip.missing_key_cause(),
            ConfigKey::Header(h) => h.missing_key_cause(),
        }
    }
}

/// A key setting that is none of `ip`, `global`, `header:<name>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidKey(String);

impl fmt::Display for InvalidKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid rate-limit key `{}`: expected \"ip\", \"global\" or \"header:<name>\"",
            self.0
        )
    }
}

impl std::error::Error for InvalidKey {}

impl FromStr for ConfigKey {
    type Err = InvalidKey;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "ip" => Ok(ConfigKey::Ip(PeerIp::new())),
            "global" => Ok(ConfigKey::Global),
            other => other
                .strip_prefix("header:")
                .and_then(|name| HeaderName::try_from(name.trim()).ok())
                .map(|name| ConfigKey::Header(Header::new(name)))
                .ok_or_else(|| InvalidKey(s.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::Request;

    fn parts(peer: Option<&str>, headers: &[(&str, &str)]) -> Parts {
        let mut b = Request::builder();
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let mut r = b.body(()).unwrap();
        if let Some(p) = peer {
            r.extensions_mut().insert(p.parse::<SocketAddr>().unwrap());
        }
        r.into_parts().0
    }

    /// The layer keys requests with `extract_in_place` where an extractor offers it, which must
    /// answer as `extract` does on the parts.
    #[test]
    fn keying_a_whole_request_agrees_with_keying_its_parts() {
        fn agree<K: KeyExtractor>(key: &K, parts: &Parts)
        where
            K::Key: fmt::Debug,
        {
            let request = Request::from_parts(parts.clone(), ());
            if let Some(found) = key.extract_in_place(&request) {
                assert_eq!(found, key.extract(parts));
            }
        }
        let trusting = PeerIp::new().trust("10.0.0.0/8".parse().unwrap());
        for parts in [
            parts(Some("10.0.0.1:5000"), &[("x-forwarded-for", "203.0.113.9")]),
            parts(Some("198.51.100.4:5000"), &[("x-api-key", "k1")]),
            parts(None, &[]),
        ] {
            agree(&PeerIp::new(), &parts);
            agree(&trusting, &parts);
            agree(&Global::new(), &parts);
            agree(&Header::new(HeaderName::from_static("x-api-key")), &parts);
            agree(&Route::new(), &parts);
            for setting in ["ip", "global", "header:x-api-key"] {
                agree(&setting.parse::<ConfigKey>().unwrap(), &parts);
            }
            agree(&(Global::new(), PeerIp::new()), &parts);
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn proxy_aware() -> PeerIp {
        PeerIp::new()
            .trust("10.0.0.0/8".parse().unwrap())
            .trust("2001:db8::/32".parse().unwrap())
    }

    #[test]
    fn cidr_parsing_and_matching() {
        let net: Cidr = "10.1.0.0/16".parse().unwrap();
        assert!(net.contains(ip("10.1.200.3")));
        assert!(!net.contains(ip("10.2.0.1")));
        assert!(net.contains(ip("::ffff:10.1.0.9")));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(ip("8.8.8.8")));
        assert!(!all.contains(ip("::1")));
        let host: Cidr = "::1".parse().unwrap();
        assert!(host.contains(ip("::1")) && !host.contains(ip("::2")));
        for bad in ["10.0.0.0/33", "10.0.0/8", "x", "::/129", "1.2.3.4/-1", ""] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn spoofed_xff_from_an_untrusted_peer_is_ignored() {
        let p = parts(Some("203.0.113.5:4000"), &[("x-forwarded-for", "1.2.3.4")]);
        assert_eq!(proxy_aware().client_ip(&p), Some(ip("203.0.113.5")));
        // And with no trusted proxies at all.
        assert_eq!(PeerIp::new().client_ip(&p), Some(ip("203.0.113.5")));
    }

    #[test]
    fn trusted_hops_are_skipped_from_the_right() {
        let p = parts(
            Some("10.0.0.1:4000"),
            &[
                ("x-forwarded-for", "6.6.6.6, 198.51.100.7"),
                ("x-forwarded-for", "10.9.9.9, [2001:db8::5]:443"),
            ],
        );
        assert_eq!(proxy_aware().client_ip(&p), Some(ip("198.51.100.7")));
    }

    #[test]
    fn malformed_hops_are_never_trusted() {
        // The client wrote garbage before our proxy appended the real address.
        let p = parts(
            Some("10.0.0.1:4000"),
            &[("x-forwarded-for", "1.1.1.1, not-an-ip, 10.0.0.2")],
        );
        assert_eq!(proxy_aware().client_ip(&p), Some(ip("10.0.0.2")));
        let p = parts(Some("10.0.0.1:4000"), &[("x-forwarded-for", "")]);
        assert_eq!(proxy_aware().client_ip(&p), Some(ip("10.0.0.1")));
        let p = parts(
            Some("10.0.0.1:4000"),
            &[("x-forwarded-for", "1.2.3.4,,10.0.0.3")],
        );
        assert_eq!(proxy_aware().client_ip(&p), Some(ip("10.0.0.3")));
    }

    #[test]
    fn all_trusted_chain_yields_the_leftmost() {
        let p = parts(
            Some("10.0.0.1:4000"),
            &[("x-forwarded-for", "10.0.0.9, 10.0.0.8")],
        );
        assert_eq!(proxy_aware().client_ip(&p), Some(ip("10.0.0.9")));
    }

    #[test]
    fn forwarded_header() {
        let key = proxy_aware().forwarded_header(ForwardedHeader::Forwarded);
        let p = parts(
            Some("10.0.0.1:4000"),
            &[
                (
                    "forwarded",
                    r#"for=192.0.2.60;proto=http, For="[2001:db8:cafe::17]:4711""#,
                ),
                ("x-forwarded-for", "7.7.7.7"),
            ],
        );
        // 2001:db8:cafe::17 is inside the trusted 2001:db8::/32, so the walk continues; the
        // X-Forwarded-For header is not read at all.
        assert_eq!(key.client_ip(&p), Some(ip("192.0.2.60")));
        let key = PeerIp::new()
            .trust("10.0.0.0/8".parse().unwrap())
            .forwarded_header(ForwardedHeader::Forwarded);
        assert_eq!(key.client_ip(&p), Some(ip("2001:db8:cafe::17")));
        let p = parts(
            Some("10.0.0.1:4000"),
            &[("forwarded", "for=unknown, for=10.0.0.4")],
        );
        assert_eq!(key.client_ip(&p), Some(ip("10.0.0.4")));
        let p = parts(Some("10.0.0.1:4000"), &[("forwarded", "for=\"_hidden\"")]);
        assert_eq!(key.client_ip(&p), Some(ip("10.0.0.1")));
    }

    #[test]
    fn mapped_addresses_and_missing_peers() {
        let p = parts(Some("[::ffff:192.0.2.1]:80"), &[]);
        assert_eq!(PeerIp::new().client_ip(&p), Some(ip("192.0.2.1")));
        assert_eq!(PeerIp::new().client_ip(&parts(None, &[])), None);
    }

    #[test]
    fn config_keys() {
        let p = parts(Some("192.0.2.1:80"), &[("x-user", "alice")]);
        let extract = |s: &str| s.parse::<ConfigKey>().unwrap().extract(&p);
        assert_eq!(extract("global"), Some(ConfigKeyValue::Global));
        assert_eq!(extract("ip"), Some(ConfigKeyValue::Ip(ip("192.0.2.1"))));
        assert_eq!(
            extract("header:x-user"),
            Some(ConfigKeyValue::Header(HeaderValue::from_static("alice")))
        );
        assert_eq!(extract("header:x-other"), None);
        assert!("header:".parse::<ConfigKey>().is_err());
        assert!("header:bad name".parse::<ConfigKey>().is_err());
    }

    #[test]
    fn closures_tuples_and_routes() {
        let p = parts(Some("192.0.2.1:80"), &[("x-user", "bob")]);
        let by_user = |p: &Parts| p.headers.get("x-user").cloned();
        let both = (by_user, Route::new());
        let key = both.extract(&p).unwrap();
        assert_eq!(key.0, "bob");
        assert_eq!(key.1, (Method::GET, "/".into()));
        let mut bytes = Vec::new();
        key.write_bytes(&mut bytes);
        assert_eq!(bytes, b"bob\x1fGET\x1f/");
    }
}
