//! The closed sets and parsed strings of the config file, checked when the file is read.
//!
//! Each type keeps the spelling the file uses, so the effective config prints back exactly as
//! an operator would write it.

use espresso_rate_limit::{Cidr, ConfigKey, ForwardedHeader, Header, PeerIp};
use http::HeaderName;
use serde::{Deserialize, Deserializer, Serialize, Serializer, de};
use std::{fmt, net::SocketAddr, str::FromStr};

/// `rate_limit.key`: what a request is counted against.
///
/// ```
/// use espresso_server::config::RateLimitKey;
///
/// let key: RateLimitKey = "header:x-api-key".parse().unwrap();
/// assert_eq!(key.to_string(), "header:x-api-key");
/// assert!("ipp".parse::<RateLimitKey>().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum RateLimitKey {
    /// `"ip"`: the client address (the peer, or what a trusted proxy reports).
    #[default]
    Ip,
    /// `"global"`: one bucket for every request.
    Global,
    /// `"header:<name>"`: the value of this request header; requests without it share one bucket.
    Header(HeaderName),
}

/// The values `rate_limit.key` accepts, for error messages and docs.
const RATE_LIMIT_KEYS: &str = "\"ip\", \"global\" or \"header:<name>\"";

impl RateLimitKey {
    /// The rate-limit layer's key extractor, trusting `proxies` to report the client address
    /// in `header` when keyed by IP.
    pub(crate) fn extractor(
        &self,
        proxies: &[ProxyNetwork],
        header: RateLimitForwardedHeader,
    ) -> ConfigKey {
        match self {
            Self::Ip => ConfigKey::Ip(
                PeerIp::new()
                    .trust_all(proxies.iter().map(|p| p.network))
                    .forwarded_header(header.into()),
            ),
            Self::Global => ConfigKey::Global,
            Self::Header(name) => ConfigKey::Header(Header::new(name.clone())),
        }
    }
}

impl FromStr for RateLimitKey {
    type Err = String;

    /// Blanks around the value and around the header name are ignored.
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "ip" => Ok(Self::Ip),
            "global" => Ok(Self::Global),
            other => match other.strip_prefix("header:").map(str::trim) {
                Some(name) => HeaderName::try_from(name)
                    .map(Self::Header)
                    .map_err(|_| format!("{name:?} in {s:?} is not a valid HTTP header name")),
                None => Err(format!("{s:?}: expected {RATE_LIMIT_KEYS}")),
            },
        }
    }
}

impl fmt::Display for RateLimitKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ip => f.write_str("ip"),
            Self::Global => f.write_str("global"),
            Self::Header(name) => write!(f, "header:{name}"),
        }
    }
}

/// `rate_limit.backend`: where the buckets live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RateLimitBackend {
    /// `"memory"`: in this process, at most `rate_limit.max_keys` of them.
    #[default]
    Memory,
    /// `"redis"`: shared by every instance through `rate_limit.redis_url`.
    Redis,
}

/// `rate_limit.global_mode`: how the `redis` backend spends a global limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GlobalMode {
    /// `"exact"`: one Redis call per request.
    #[default]
    Exact,
    /// `"leased"`: each instance leases a share of a key's budget and spends it locally; at
    /// most one lease per instance per window over the limit.
    Leased,
}

impl From<GlobalMode> for espresso_rate_limit::GlobalMode {
    fn from(value: GlobalMode) -> Self {
        match value {
            GlobalMode::Exact => Self::Exact,
            GlobalMode::Leased => Self::Leased,
        }
    }
}

/// `rate_limit.missing_key`: what a request the key finds nothing in gets (a `key =
/// "header:<name>"` request without the header, a request with no peer address).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RateLimitMissingKey {
    /// `"refuse"`: 500 `rate_limit_key_missing` naming the cause, one WARN line, counted.
    #[default]
    Refuse,
    /// `"shared-bucket"`: every such request counts against one bucket.
    SharedBucket,
    /// `"allow"`: such requests are not limited.
    Allow,
}

impl From<RateLimitMissingKey> for espresso_rate_limit::MissingKey {
    fn from(value: RateLimitMissingKey) -> Self {
        match value {
            RateLimitMissingKey::Refuse => Self::Refuse,
            RateLimitMissingKey::SharedBucket => Self::SharedBucket,
            RateLimitMissingKey::Allow => Self::Allow,
        }
    }
}

/// `rate_limit.forwarded_header`: where a trusted proxy reports the client's address. One is
/// read, never both: a proxy that writes one passes the other on as its client sent it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RateLimitForwardedHeader {
    /// `"x-forwarded-for"`: `X-Forwarded-For: client, proxy1`.
    #[default]
    XForwardedFor,
    /// `"forwarded"`: RFC 7239 `Forwarded: for=client, for=proxy1`.
    Forwarded,
}

impl From<RateLimitForwardedHeader> for ForwardedHeader {
    fn from(value: RateLimitForwardedHeader) -> Self {
        match value {
            RateLimitForwardedHeader::XForwardedFor => Self::XForwardedFor,
            RateLimitForwardedHeader::Forwarded => Self::Forwarded,
        }
    }
}

/// One `rate_limit.trusted_proxies` entry: a network in CIDR notation (`"10.0.0.0/8"`), or a
/// bare address (a /32 or /128).
///
/// ```
/// use espresso_server::config::ProxyNetwork;
///
/// let net: ProxyNetwork = "10.0.0.0/8".parse().unwrap();
/// assert_eq!(net.to_string(), "10.0.0.0/8");
/// assert!("10.0.0.0/33".parse::<ProxyNetwork>().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyNetwork {
    /// As written, so the effective config prints it back unchanged.
    text: String,
    network: Cidr,
}

impl FromStr for ProxyNetwork {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let network = s
            .parse::<Cidr>()
            .map_err(|_| format!("{s:?} is not a network like \"10.0.0.0/8\" or \"::1/128\""))?;
        Ok(Self {
            text: s.to_owned(),
            network,
        })
    }
}

impl fmt::Display for ProxyNetwork {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// `degrade.limit`: the algorithm that sets the concurrency limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DegradeLimit {
    /// `"gradient-controller"`: Envoy's, with a probed no-load RTT; the default, the one that
    /// kept admitted latency within 2x of the no-load RTT under 3x and 5x overload.
    #[default]
    GradientController,
    /// `"gradient2"`: Netflix's, against a long-term RTT average.
    Gradient2,
    /// `"aimd"`: additive increase, multiplicative decrease on slow or failed requests.
    Aimd,
    /// `"vegas"`: TCP Vegas' queue estimate.
    Vegas,
    /// `"fixed"`: `degrade.max_limit`, never adjusted.
    Fixed,
}

/// `log.format`: how each log line is written, to stderr and the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LogFormat {
    /// `"text"`: human-readable lines.
    #[default]
    Text,
    /// `"json"`: one JSON object a line.
    Json,
}

/// `log.rotation`: when the log file is rotated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LogRotation {
    /// `"daily"`: a new dated file each day.
    #[default]
    Daily,
    /// `"hourly"`: a new dated file each hour.
    Hourly,
    /// `"minutely"`: a new dated file each minute.
    Minutely,
    /// `"never"`: one file, never rotated.
    Never,
    /// `"size"`: rotated once the file passes `log.max_size_bytes`.
    Size,
}

/// `server.ops_listen`: the operator listener's address, or `""` for none (everything is
/// served on `server.listen`).
///
/// ```
/// use espresso_server::config::OpsListen;
///
/// let ops: OpsListen = "127.0.0.1:9090".parse().unwrap();
/// assert_eq!(ops.addr(), Some(([127, 0, 0, 1], 9090).into()));
/// assert_eq!("".parse::<OpsListen>().unwrap().addr(), None);
/// assert!("localhost".parse::<OpsListen>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OpsListen(Option<SocketAddr>);

impl OpsListen {
    /// The address to listen on; `None`: no operator listener.
    pub fn addr(self) -> Option<SocketAddr> {
        self.0
    }
}

impl FromStr for OpsListen {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "" => Ok(Self(None)),
            addr => addr.parse().map(|addr| Self(Some(addr))).map_err(|_| {
                format!("{s:?} is not an address like \"127.0.0.1:9090\" (or \"\" for none)")
            }),
        }
    }
}

impl fmt::Display for OpsListen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(addr) => write!(f, "{addr}"),
            None => Ok(()),
        }
    }
}

/// Parsed from and written as a string: the types above that are not plain enums.
macro_rules! string_serde {
    ($($ty:ty),*) => {$(
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                text.parse().map_err(de::Error::custom)
            }
        }

        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }
    )*};
}

string_serde!(RateLimitKey, ProxyNetwork, OpsListen);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limit_keys_round_trip_through_their_spelling() {
        for text in ["ip", "global", "header:x-api-key"] {
            let key: RateLimitKey = text.parse().unwrap();
            assert_eq!(key.to_string(), text);
        }
        let key: RateLimitKey = " header: X-Api-Key ".parse().unwrap();
        assert_eq!(key.to_string(), "header:x-api-key");
        let error = "header:bad name".parse::<RateLimitKey>().unwrap_err();
        assert!(error.contains("not a valid HTTP header name"), "{error}");
        let error = "ipp".parse::<RateLimitKey>().unwrap_err();
        assert!(error.contains(RATE_LIMIT_KEYS), "{error}");
    }

    #[test]
    fn a_key_becomes_the_matching_extractor() {
        let proxies = ["10.0.0.0/8".parse().unwrap()];
        let xff = RateLimitForwardedHeader::XForwardedFor;
        assert_eq!(
            RateLimitKey::Global.extractor(&proxies, xff),
            ConfigKey::Global
        );
        let trusted = PeerIp::new().trust("10.0.0.0/8".parse().unwrap());
        assert_eq!(
            RateLimitKey::Ip.extractor(&proxies, xff),
            ConfigKey::Ip(trusted.clone())
        );
        assert_eq!(
            RateLimitKey::Ip.extractor(&proxies, RateLimitForwardedHeader::Forwarded),
            ConfigKey::Ip(trusted.forwarded_header(ForwardedHeader::Forwarded))
        );
        let name = HeaderName::from_static("x-api-key");
        assert_eq!(
            RateLimitKey::Header(name.clone()).extractor(&proxies, xff),
            ConfigKey::Header(Header::new(name))
        );
    }
}
