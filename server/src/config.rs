//! The `--config` TOML file: every key has a default, unknown keys are errors, every closed set
//! of values is an enum, and an error names the file, the line and the key.
//!
//! ```
//! use espresso_server::config::{Config, DegradeLimit, RateLimitKey};
//!
//! let config = Config::parse("[rate_limit]\nkey = \"global\"\n").unwrap();
//! assert_eq!(config.rate_limit.key, RateLimitKey::Global);
//! assert_eq!(config.degrade.limit, DegradeLimit::GradientController);
//!
//! let error = Config::parse("[rate_limit]\nkey = \"ipp\"\n").unwrap_err().to_string();
//! assert!(error.contains("line 2") && error.contains("rate_limit.key"), "{error}");
//! assert!(error.contains(r#""ip", "global" or "header:<name>""#), "{error}");
//! ```

mod keys;
mod values;

pub use keys::{Applies, KEYS};
pub(crate) use keys::{changed, restart_only};
pub use values::{
    DegradeLimit, GlobalMode, LogFormat, LogRotation, OpsListen, ProxyNetwork, RateLimitBackend,
    RateLimitForwardedHeader, RateLimitKey, RateLimitMissingKey,
};

use espresso_filter_core::{DetectorMode, Level, Verdict};
use espresso_rate_limit::RedisTarget;
use serde::{Deserialize, Serialize};
use std::{
    fmt,
    net::SocketAddr,
    path::{Path, PathBuf},
};

/// The whole configuration, as `docs/config.md` documents it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Listener and request limits.
    pub server: ServerConfig,
    /// The request id header.
    pub request_id: RequestIdConfig,
    /// Rate limiting.
    pub rate_limit: RateLimitConfig,
    /// Slow-call logging.
    pub slow_call: SlowCallConfig,
    /// The remote classifier stage; absent or empty endpoint: no classifier.
    pub classifier: ClassifierConfig,
    /// The verdict cache in front of the remote stages.
    pub cache: CacheConfig,
    /// Overload protection of the filter routes.
    pub degrade: DegradeConfig,
    /// Word lists.
    pub filter: FilterConfig,
    /// The `/debug/*` operator endpoints.
    pub debug: DebugConfig,
    /// Log format and the optional rolling log file.
    pub log: LogConfig,
    /// Access to the lists API.
    pub admin: AdminConfig,
    /// Where the lists made through the API are kept.
    pub lists: ListsConfig,
}

/// `[admin]`: the token the lists API asks for (read at start-up only). With neither key set
/// the lists API is off.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdminConfig {
    /// The token (`Authorization: Bearer <token>`); empty: see `token_file`.
    pub token: String,
    /// A file holding the token (surrounding whitespace ignored), instead of `token`.
    pub token_file: PathBuf,
}

/// Where API lists are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ListStore {
    /// One JSON file per list under `lists.dir`, written atomically.
    File,
    /// In Redis (`redis_url`, `redis_cluster` or `redis_sentinel`), shared by every instance:
    /// a change made through one is applied by all within a second.
    Redis,
}

/// `[lists]`: the store of the lists made through the API (read at start-up only).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ListsConfig {
    /// `"file"` or `"redis"`.
    pub store: ListStore,
    /// The folder of the file store (created when missing).
    pub dir: PathBuf,
    /// The Redis of the `redis` store (one node; unused when `redis_cluster` or
    /// `redis_sentinel` is set).
    pub redis_url: String,
    /// Seed nodes of a Redis Cluster for the `redis` store, instead of `redis_url`.
    pub redis_cluster: Vec<String>,
    /// Sentinel nodes, with `redis_master`, instead of `redis_url`.
    pub redis_sentinel: Vec<String>,
    /// The master's name in Sentinel, with `redis_sentinel`.
    pub redis_master: String,
    /// Prefix of the `redis` store's keys and of its change channel.
    pub redis_prefix: String,
    /// Budget for one call to the `redis` store; past it a change is refused (503).
    pub redis_timeout_ms: u64,
}

impl Default for ListsConfig {
    fn default() -> Self {
        Self {
            store: ListStore::File,
            dir: PathBuf::from("lists"),
            redis_url: "redis://127.0.0.1:6379".into(),
            redis_cluster: Vec::new(),
            redis_sentinel: Vec::new(),
            redis_master: String::new(),
            redis_prefix: "espresso:lists:".into(),
            redis_timeout_ms: 1000,
        }
    }
}

impl ListsConfig {
    fn redis_keys(&self) -> RedisKeys<'_> {
        RedisKeys {
            section: "lists",
            url: &self.redis_url,
            cluster: &self.redis_cluster,
            sentinel: &self.redis_sentinel,
            master: &self.redis_master,
        }
    }

    /// Where the `redis` store lives: `redis_cluster`, else `redis_sentinel` with
    /// `redis_master`, else `redis_url`; `None` with the `file` store.
    pub fn redis_target(&self) -> Option<RedisTarget> {
        (self.store == ListStore::Redis).then(|| self.redis_keys().target())
    }
}

/// `[debug]`: the operator endpoints (read at start-up only).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DebugConfig {
    /// Serve the live dashboard at `/debug/dashboard`.
    pub dashboard: bool,
    /// Serve CPU profiles at `/debug/pprof/profile`.
    pub pprof: bool,
    /// Longest profile a request may ask for (also kept under `server.request_timeout_ms`).
    pub pprof_max_seconds: u64,
}

impl Default for DebugConfig {
    fn default() -> Self {
        Self {
            dashboard: true,
            pprof: false,
            pprof_max_seconds: 30,
        }
    }
}

/// `[log]`: where log lines go (read at start-up only).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// `"text"` or `"json"` (one JSON object a line), for stderr and the file.
    pub format: LogFormat,
    /// The log file; empty: stderr only. Rotated files are named `<stem>.<date>.<ext>`.
    pub file: PathBuf,
    /// `"daily"`, `"hourly"`, `"minutely"`, `"never"`, or `"size"` (at `max_size_bytes`).
    pub rotation: LogRotation,
    /// Rotated files kept; older ones are deleted.
    pub max_files: usize,
    /// With `rotation = "size"`: the file is rotated once it reaches this size. Rotated files
    /// are named `<file>.1` (newest) … `<file>.<max_files>`.
    pub max_size_bytes: u64,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            file: PathBuf::new(),
            rotation: LogRotation::Daily,
            max_files: 7,
            max_size_bytes: 100 * 1024 * 1024,
        }
    }
}

/// `[server]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to listen on (HTTP/1, HTTP/2 and gRPC on one port).
    pub listen: SocketAddr,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// A request still running after this long is answered with 408 (HTTP) or DEADLINE_EXCEEDED.
    pub request_timeout_ms: u64,
    /// On SIGTERM/SIGINT, in-flight requests get this long to finish.
    pub drain_timeout_ms: u64,
    /// On SIGTERM/SIGINT, how long the server keeps accepting before it closes the listener:
    /// `/readyz` answers 503 and HTTP/1 answers carry `Connection: close`, so a load balancer
    /// stops sending and clients leave their keep-alive connections between requests, instead
    /// of a request meeting a connection as it closes. 0: close at once.
    pub shutdown_delay_ms: u64,
    /// A client must send a request's headers within this long (slow-header protection).
    pub header_read_timeout_ms: u64,
    /// How often the config file and word lists are checked for changes; 0 turns reload off.
    pub reload_interval_ms: u64,
    /// A connection with no request in progress (HTTP/1 between requests, HTTP/2 with no open
    /// stream) is closed after this long.
    pub idle_timeout_ms: u64,
    /// An answer the client reads nothing of for this long is dropped: the HTTP/2 stream is
    /// reset, an HTTP/1 connection (or a connection whose socket stays full) is closed.
    pub send_timeout_ms: u64,
    /// Largest request head (request line and headers, HTTP/1; header list, HTTP/2): a larger
    /// one is answered 431. Also the cap of an HTTP/1 connection's read buffer.
    pub max_header_bytes: usize,
    /// Streams an HTTP/2 client may have open at once on one connection.
    pub http2_max_concurrent_streams: u32,
    /// Answer bytes one connection may have waiting for the client to read them; past it the
    /// connection's next requests wait before they are served.
    pub max_buffered_response_bytes: usize,
    /// Connections open at once at most; past it the server stops accepting until one closes.
    pub max_connections: usize,
    /// `ip:port` of the operator listener serving `/metrics`, `/debug/*`, `/healthz` and
    /// `/readyz` instead of the public one; empty: everything on `listen`.
    pub ops_listen: OpsListen,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            max_body_bytes: 65536,
            request_timeout_ms: 10_000,
            drain_timeout_ms: 10_000,
            shutdown_delay_ms: 0,
            header_read_timeout_ms: 10_000,
            reload_interval_ms: 1_000,
            idle_timeout_ms: 60_000,
            send_timeout_ms: 30_000,
            max_header_bytes: 32 * 1024,
            http2_max_concurrent_streams: 100,
            max_buffered_response_bytes: 1024 * 1024,
            max_connections: 10_000,
            ops_listen: OpsListen::default(),
        }
    }
}

/// `[request_id]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RequestIdConfig {
    /// The header that carries the id.
    pub header: String,
}

impl Default for RequestIdConfig {
    fn default() -> Self {
        Self {
            header: "x-request-id".into(),
        }
    }
}

/// `[rate_limit]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Whether requests are rate limited at all.
    pub enabled: bool,
    /// Sustained rate per key.
    pub per_second: u32,
    /// Requests a key may send at once.
    pub burst: u32,
    /// `"ip"`, `"global"` or `"header:<name>"`.
    pub key: RateLimitKey,
    /// `"refuse"`, `"shared-bucket"` or `"allow"`: what a request without a key gets.
    pub missing_key: RateLimitMissingKey,
    /// `"memory"` or `"redis"`.
    pub backend: RateLimitBackend,
    /// Redis for the `redis` backend (one node; unused when `redis_cluster` or
    /// `redis_sentinel` is set).
    pub redis_url: String,
    /// Seed nodes of a Redis Cluster for the `redis` backend; empty: not a cluster.
    pub redis_cluster: Vec<String>,
    /// Sentinel nodes for the `redis` backend, with `redis_master`; empty: no Sentinel.
    pub redis_sentinel: Vec<String>,
    /// The master's name in Sentinel (`sentinel monitor <name> …`), with `redis_sentinel`.
    pub redis_master: String,
    /// `"exact"` (one Redis call per request) or `"leased"` (shares of each key's budget
    /// spent locally) for the `redis` backend.
    pub global_mode: GlobalMode,
    /// Proxy networks (CIDR) whose `X-Forwarded-For` is believed for `key = "ip"`; from any
    /// other peer the header is ignored.
    pub trusted_proxies: Vec<ProxyNetwork>,
    /// `"x-forwarded-for"` or `"forwarded"` (RFC 7239): the header the trusted proxies report
    /// the client in; the other is ignored.
    pub forwarded_header: RateLimitForwardedHeader,
    /// Most keys the in-memory limiter remembers; past it, the least limited are forgotten
    /// first, so a flood of distinct clients cannot grow memory without bound.
    pub max_keys: usize,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            per_second: 1000,
            burst: 2000,
            key: RateLimitKey::Ip,
            missing_key: RateLimitMissingKey::Refuse,
            backend: RateLimitBackend::Memory,
            redis_url: "redis://127.0.0.1:6379".into(),
            redis_cluster: Vec::new(),
            redis_sentinel: Vec::new(),
            redis_master: String::new(),
            global_mode: GlobalMode::Exact,
            trusted_proxies: Vec::new(),
            forwarded_header: RateLimitForwardedHeader::XForwardedFor,
            max_keys: 100_000,
        }
    }
}

/// `[slow_call]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SlowCallConfig {
    /// Requests slower than this are logged with their call tree.
    pub threshold_ms: u64,
    /// Upper bounds of the request latency histogram, in seconds, increasing.
    pub latency_buckets_seconds: Vec<f64>,
}

impl Default for SlowCallConfig {
    fn default() -> Self {
        Self {
            threshold_ms: 200,
            latency_buckets_seconds: espresso_slow_call::DEFAULT_BUCKETS.to_vec(),
        }
    }
}

/// `[classifier]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClassifierConfig {
    /// The TextClassifier's address; empty: no classifier stage.
    pub endpoint: String,
    /// Budget for one classifier call.
    pub timeout_ms: u64,
    /// Calls in flight at most; beyond it requests skip the classifier (degraded). 0: no bound.
    pub max_in_flight: usize,
    /// Classifier label (or type name) → verdict, on top of the defaults
    /// (PORN and ABUSIVE block, ADVERTISEMENT review, NORMAL pass).
    pub labels: std::collections::BTreeMap<String, Verdict>,
}

impl Default for ClassifierConfig {
    fn default() -> Self {
        Self {
            endpoint: String::new(),
            timeout_ms: 50,
            max_in_flight: 0,
            labels: Default::default(),
        }
    }
}

/// `[cache]`: verdicts of the remote stages, in process and optionally shared in Redis. Used
/// only when there is something to cache (a classifier or a shared Redis): matching the word
/// lists alone is faster than a cache lookup.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CacheConfig {
    /// Whether verdicts are cached at all.
    pub enabled: bool,
    /// Verdicts kept in process at most.
    pub max_entries: u64,
    /// How long a verdict is kept.
    pub ttl_ms: u64,
    /// A Redis shared by every instance; empty (and no cluster or Sentinel): in process only.
    pub redis_url: String,
    /// Seed nodes of a Redis Cluster shared by every instance, instead of `redis_url`.
    pub redis_cluster: Vec<String>,
    /// Sentinel nodes, with `redis_master`, instead of `redis_url`.
    pub redis_sentinel: Vec<String>,
    /// The master's name in Sentinel, with `redis_sentinel`.
    pub redis_master: String,
    /// Budget for one Redis call; past it the cache answers from process memory only.
    pub redis_timeout_ms: u64,
    /// Prefix of the Redis keys.
    pub redis_prefix: String,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            max_entries: 10_000,
            ttl_ms: 300_000,
            redis_url: String::new(),
            redis_cluster: Vec::new(),
            redis_sentinel: Vec::new(),
            redis_master: String::new(),
            redis_timeout_ms: 25,
            redis_prefix: "espresso:filter:verdict:".into(),
        }
    }
}

/// `[degrade]`: an adaptive concurrency limit in front of the filter. Requests beyond it (or
/// all of them while `force` is on) are answered from the word lists alone, with
/// `degraded: true`, skipping the cache and the classifier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DegradeConfig {
    /// Whether the limit applies at all.
    pub enabled: bool,
    /// `"gradient-controller"` (Envoy's, with a probed min RTT), `"gradient2"`, `"aimd"`,
    /// `"vegas"` or `"fixed"`.
    pub limit: DegradeLimit,
    /// The adaptive limit never goes below this (64 by default: on a busy machine a latency
    /// blip shrinks an adaptive limit, and a few dozen requests in flight are not overload for
    /// a filter that answers in microseconds).
    pub min_limit: usize,
    /// The adaptive limit never goes above this; the limit itself for `"fixed"`.
    pub max_limit: usize,
    /// Requests that may wait for a slot (under a CoDel-style delay rule); 0 sheds at once.
    pub queue: usize,
    /// Degrade every request now (a manual switch; applies on reload).
    pub force: bool,
}

impl Default for DegradeConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            limit: DegradeLimit::GradientController,
            min_limit: 64,
            max_limit: 1000,
            queue: 0,
            force: false,
        }
    }
}

/// `[filter]`: word lists and allow lists. With neither, the built-in lists are used.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FilterConfig {
    /// Allow-list files.
    pub allow: Vec<PathBuf>,
    /// Word-list files.
    pub lists: Vec<ListConfig>,
    /// Hits an answer lists at most; the others are counted in `hits_truncated` (the verdict
    /// and the masked text still account for every hit).
    pub max_hits: usize,
    /// Texts of at least this many bytes are checked in the large lane: at most
    /// `large_max_in_flight` of them at once, the others wait their turn, so costly texts can
    /// never take every core from short ones.
    pub large_content_bytes: usize,
    /// Large texts checked at once; 0: half the cores, at least 1.
    pub large_max_in_flight: usize,
    /// `[filter.detectors]`: the contact and ad detectors.
    pub detectors: DetectorsConfig,
}

impl Default for FilterConfig {
    fn default() -> Self {
        Self {
            allow: Vec::new(),
            lists: Vec::new(),
            max_hits: 1000,
            large_content_bytes: 16384,
            large_max_in_flight: 0,
            detectors: DetectorsConfig::default(),
        }
    }
}

/// `[filter.detectors]`: URL, email, phone and IM-id detectors, each `"off"` (default),
/// `"review"` (hits are normal level) or `"block"` (hits are danger level).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DetectorsConfig {
    /// URLs and bare domains.
    pub url: DetectorMode,
    /// Email addresses.
    pub email: DetectorMode,
    /// Phone numbers.
    pub phone: DetectorMode,
    /// QQ, WeChat and Telegram ids after their keywords.
    pub im: DetectorMode,
    /// Domains (and their subdomains) never reported as URLs or email addresses.
    pub allow_domains: Vec<String>,
    /// Files of more IM keywords (`keyword<TAB>qq|wechat|telegram` lines), added to the
    /// shipped ones.
    pub im_keywords: Vec<PathBuf>,
}

/// One `[[filter.lists]]` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListConfig {
    /// The file.
    pub path: PathBuf,
    /// `"danger"` or `"normal"`.
    pub level: Level,
    /// The category of its entries; default: the file stem.
    #[serde(default)]
    pub category: Option<String>,
    /// Whether its Chinese words of two or more characters also match written in pinyin
    /// (`ListSource::pinyin`); default: off.
    #[serde(default)]
    pub pinyin: bool,
    /// The most characters the parts of each of its combination rules may span
    /// (`ListSource::rule_window`); default: none (the whole text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule_window: Option<std::num::NonZeroUsize>,
}

/// A config that could not be used, naming the file, line and key.
#[derive(Debug)]
pub struct ConfigError {
    file: PathBuf,
    line: Option<usize>,
    key: Option<String>,
    message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid config")?;
        if !self.file.as_os_str().is_empty() {
            write!(f, " {}", self.file.display())?;
        }
        if let Some(line) = self.line {
            write!(f, ", line {line}")?;
        }
        if let Some(key) = &self.key {
            write!(f, ", key `{key}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

impl ConfigError {
    /// `message` about the word list named `list` (a file's stem), at the line of `file` that
    /// names that file: a `path` of `[[filter.lists]]` (`filter.lists.path`), else an entry of
    /// `filter.allow`.
    pub(crate) fn at_list(file: &Path, list: &str, message: String) -> Self {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        // the quoted values of a line naming the list's file: every second piece between quotes
        let names_it = |line: &str| {
            line.split(['"', '\''])
                .skip(1)
                .step_by(2)
                .any(|value| Path::new(value).file_stem() == Some(std::ffi::OsStr::new(list)))
        };
        let key_of = |line: &str| line.split('=').next().unwrap_or("").trim().to_owned();
        let path = text
            .lines()
            .position(|line| key_of(line) == "path" && names_it(line))
            .map(|i| (i, "filter.lists.path"));
        // an `allow = [...]` array, on one line or over several
        let mut in_allow = false;
        let allow = text.lines().position(|line| {
            in_allow |= key_of(line) == "allow" && line.contains('[');
            let found = in_allow && names_it(line);
            in_allow &= !line.contains(']');
            found
        });
        let (line, key) = path.or(allow.map(|i| (i, "filter.allow"))).unzip();
        ConfigError {
            file: file.to_owned(),
            line: line.map(|i| i + 1),
            key: key.map(str::to_owned),
            message,
        }
    }
}

impl Config {
    /// Reads, parses and checks a config file. Relative paths inside it are made relative to
    /// the file's folder.
    pub fn load(file: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(file).map_err(|e| ConfigError {
            file: file.to_owned(),
            line: None,
            key: None,
            message: e.to_string(),
        })?;
        Self::from_text(file, &text)
    }

    /// Parses and checks the text of `file`, resolving relative paths against its folder.
    pub fn from_text(file: &Path, text: &str) -> Result<Self, ConfigError> {
        let mut config = Self::parse(text).map_err(|e| e.in_file(file))?;
        let base = file.parent().unwrap_or(Path::new("."));
        // The file is UTF-8, so with its folder every path is, and the config prints as TOML.
        if base.to_str().is_none() {
            return Err(ConfigError {
                file: file.to_owned(),
                line: None,
                key: None,
                message: "the config file's folder is not valid UTF-8".into(),
            });
        }
        config
            .check_files(base, text)
            .map_err(|e| e.in_file(file))?;
        config.resolve_paths(base);
        Ok(config)
    }

    /// Every file the config names (paths as written, read from `base`) is a readable file:
    /// an error names the key and the line that names the file, as a parse error does.
    fn check_files(&self, base: &Path, text: &str) -> Result<(), ConfigError> {
        let token = (!self.admin.token_file.as_os_str().is_empty())
            .then_some(("admin.token_file", &self.admin.token_file));
        let files = self
            .filter
            .lists
            .iter()
            .map(|list| ("filter.lists.path", &list.path))
            .chain(self.filter.allow.iter().map(|path| ("filter.allow", path)))
            .chain(
                self.filter
                    .detectors
                    .im_keywords
                    .iter()
                    .map(|path| ("filter.detectors.im_keywords", path)),
            )
            .chain(token);
        for (key, written) in files {
            let path = base.join(written);
            let readable = std::fs::metadata(&path).and_then(|meta| {
                if !meta.is_file() {
                    Err(std::io::Error::other("not a file"))
                } else if key == "admin.token_file"
                    && self.admin.token.is_empty()
                    && std::fs::read_to_string(&path)?.trim().is_empty()
                {
                    // the token is read at start-up, where an empty one is an error too
                    Err(std::io::Error::other("the file is empty"))
                } else {
                    std::fs::File::open(&path).map(drop)
                }
            });
            if let Err(e) = readable {
                // the line that writes the path, else the key's first line
                let quoted = written.to_string_lossy();
                let line = text
                    .lines()
                    .position(|line| {
                        line.contains(&format!("\"{quoted}\""))
                            || line.contains(&format!("'{quoted}'"))
                    })
                    .map(|i| i + 1)
                    .or_else(|| find_key_line(text, key));
                return Err(ConfigError {
                    file: PathBuf::new(),
                    line,
                    key: Some(key.to_owned()),
                    message: format!("cannot read {} {}: {e}", what_file(key), path.display()),
                });
            }
        }
        // the log file is written: it must not be a folder, nor lie below a file
        if !self.log.file.as_os_str().is_empty() {
            let path = base.join(&self.log.file);
            let problem = if path.is_dir() {
                Some("is a folder")
            } else {
                path.ancestors()
                    .skip(1)
                    .find(|dir| dir.exists())
                    .filter(|dir| !dir.is_dir())
                    .map(|_| "lies below a file, where its folder would be")
            };
            if let Some(problem) = problem {
                return Err(ConfigError {
                    file: PathBuf::new(),
                    line: find_key_line(text, "log.file"),
                    key: Some("log.file".into()),
                    message: format!("the log file {} {problem}", path.display()),
                });
            }
        }
        Ok(())
    }

    /// The effective config as TOML: every key, defaults filled in, paths as resolved.
    ///
    /// ```
    /// use espresso_server::config::Config;
    ///
    /// let toml = Config::parse("[rate_limit]\nburst = 5\n").unwrap().to_toml().unwrap();
    /// assert!(toml.contains("burst = 5\n") && toml.contains("per_second = 1000\n"));
    /// assert_eq!(Config::parse(&toml).unwrap(), Config::parse("[rate_limit]\nburst = 5").unwrap());
    /// ```
    pub fn to_toml(&self) -> Result<String, toml::ser::Error> {
        toml::to_string(self)
    }

    /// What the config sets that is not read, each with its fix: valid, but not what whoever
    /// wrote it meant. Logged as WARNs at start-up and on each reload, and printed by
    /// `--check-config`.
    ///
    /// ```
    /// use espresso_server::config::Config;
    ///
    /// let config = Config::parse("[rate_limit]\nredis_url = \"redis://10.0.0.5:6379\"\n").unwrap();
    /// let warnings = config.warnings();
    /// assert!(warnings[0].starts_with("rate_limit.redis_url is set"), "{warnings:?}");
    /// assert!(Config::parse("").unwrap().warnings().is_empty());
    /// ```
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        let rl = &self.rate_limit;
        let rl_default = RateLimitConfig::default().redis_url;
        if rl.backend == RateLimitBackend::Memory && rl.redis_url != rl_default {
            warnings.push(
                "rate_limit.redis_url is set but rate_limit.backend is \"memory\": each \
                 instance limits on its own; set backend = \"redis\" to share the limits, or \
                 remove redis_url"
                    .into(),
            );
        }
        warnings.extend(rl.redis_keys().url_unread(&rl_default));
        let cache = &self.cache;
        if !cache.enabled && cache.redis_target().is_some() {
            warnings.push(
                "cache.enabled is false, so its Redis is not used; set enabled = true to share \
                 verdicts, or remove the cache's Redis keys"
                    .into(),
            );
        }
        warnings.extend(cache.redis_keys().url_unread(""));
        let lists = &self.lists;
        let lists_default = ListsConfig::default().redis_url;
        if lists.store == ListStore::File && lists.redis_url != lists_default {
            warnings.push(
                "lists.redis_url is set but lists.store is \"file\": the lists stay in \
                 lists.dir; set store = \"redis\" to share them, or remove redis_url"
                    .into(),
            );
        }
        warnings.extend(lists.redis_keys().url_unread(&lists_default));
        let pprof_max = self.pprof_max_seconds();
        if self.debug.pprof && pprof_max == 0 {
            warnings.push(format!(
                "debug.pprof is on but server.request_timeout_ms ({} ms) leaves no whole second \
                 for a profile, which must end a second before it: /debug/pprof/profile answers \
                 400; raise request_timeout_ms to 2000 or more to profile",
                self.server.request_timeout_ms
            ));
        } else if self.debug.pprof && pprof_max < self.debug.pprof_max_seconds {
            warnings.push(format!(
                "debug.pprof_max_seconds is {} but a profile must end within \
                 server.request_timeout_ms ({} ms): profiles are held to {pprof_max} s; raise \
                 request_timeout_ms to profile longer, or lower pprof_max_seconds",
                self.debug.pprof_max_seconds, self.server.request_timeout_ms
            ));
        }
        if !self.admin.token.is_empty() && !self.admin.token_file.as_os_str().is_empty() {
            warnings.push(
                "admin.token_file is not read: admin.token is set and is used instead; keep one \
                 of them"
                    .into(),
            );
        }
        warnings
    }

    /// The longest CPU profile `/debug/pprof/profile` takes: `debug.pprof_max_seconds`, and a
    /// second under the request timeout, which would cut it off.
    pub(crate) fn pprof_max_seconds(&self) -> u64 {
        // a whole second under the request timeout: 0 (no profile) below 2 s
        let room_s = self.server.request_timeout_ms.saturating_sub(1000) / 1000;
        self.debug.pprof_max_seconds.min(room_s)
    }

    /// Every Redis address in the config (`redis_url`, `redis_cluster`, `redis_sentinel` of each
    /// section that has them), for hiding the passwords in them.
    pub(crate) fn redis_addresses_mut(&mut self) -> impl Iterator<Item = &mut String> {
        let sections = [
            (
                &mut self.rate_limit.redis_url,
                &mut self.rate_limit.redis_cluster,
                &mut self.rate_limit.redis_sentinel,
            ),
            (
                &mut self.cache.redis_url,
                &mut self.cache.redis_cluster,
                &mut self.cache.redis_sentinel,
            ),
            (
                &mut self.lists.redis_url,
                &mut self.lists.redis_cluster,
                &mut self.lists.redis_sentinel,
            ),
        ];
        sections.into_iter().flat_map(|(url, cluster, sentinel)| {
            std::iter::once(url)
                .chain(cluster.iter_mut())
                .chain(sentinel.iter_mut())
        })
    }

    /// The config as a TOML table, for comparing key by key.
    fn to_table(&self) -> Result<toml::Table, toml::ser::Error> {
        toml::Table::try_from(self)
    }

    /// Parses and checks config text (paths left as written).
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let config: Self = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|span| line_of(text, span.start));
            ConfigError {
                file: PathBuf::new(),
                line,
                key: line.and_then(|line| {
                    key_at(text, line).or_else(|| field_key(text, line, e.message()))
                }),
                message: e.message().to_owned(),
            }
        })?;
        config.check().map_err(|(key, message)| ConfigError {
            file: PathBuf::new(),
            line: find_key_line(text, &key),
            key: Some(key),
            message,
        })?;
        Ok(config)
    }

    /// Value checks serde cannot express.
    fn check(&self) -> Result<(), (String, String)> {
        let err = |key: &str, message: String| Err((key.to_owned(), message));
        let server = &self.server;
        if server.max_body_bytes == 0 {
            return err("server.max_body_bytes", "must be greater than 0".into());
        }
        // a budget of 0 would refuse or degrade every request without a word
        for (key, value) in [
            ("server.request_timeout_ms", server.request_timeout_ms),
            ("classifier.timeout_ms", self.classifier.timeout_ms),
            ("cache.redis_timeout_ms", self.cache.redis_timeout_ms),
            ("server.idle_timeout_ms", server.idle_timeout_ms),
            ("server.send_timeout_ms", server.send_timeout_ms),
            (
                "server.header_read_timeout_ms",
                server.header_read_timeout_ms,
            ),
        ] {
            if value == 0 {
                return err(key, "must be greater than 0".into());
            }
        }
        // hyper's HTTP/1 read buffer is at least 8 KiB: a smaller head limit cannot be kept.
        if server.max_header_bytes < 8192 {
            return err(
                "server.max_header_bytes",
                "must be at least 8192 (the smallest read buffer the HTTP/1 server has)".into(),
            );
        }
        if server.http2_max_concurrent_streams == 0 {
            return err(
                "server.http2_max_concurrent_streams",
                "must be greater than 0".into(),
            );
        }
        if server.max_buffered_response_bytes == 0 {
            return err(
                "server.max_buffered_response_bytes",
                "must be greater than 0".into(),
            );
        }
        if server.max_connections == 0 {
            return err("server.max_connections", "must be greater than 0".into());
        }
        if server.ops_listen.addr() == Some(server.listen) {
            return err(
                "server.ops_listen",
                format!(
                    "{} is server.listen too: give the operator listener a port of its own, or \"\" to serve everything on server.listen",
                    server.listen
                ),
            );
        }
        // a list is named after its file stem: two of one name could not be told apart
        let mut names = std::collections::HashMap::new();
        for list in &self.filter.lists {
            if let Some(category) = &list.category
                && (category.trim().is_empty() || category.contains(['\t', '\n', '\r']))
            {
                return err(
                    "filter.lists.category",
                    format!(
                        "{category:?} (list {}) is not a category: give a name on one line, or remove the key to use the file stem",
                        list.path.display()
                    ),
                );
            }
            let stem = list.path.file_stem().unwrap_or_default();
            if let Some(other) = names.insert(stem, &list.path) {
                return err(
                    "filter.lists.path",
                    format!(
                        "{} and {} are both named {:?} (a list is named after its file stem): rename one of the files",
                        other.display(),
                        list.path.display(),
                        stem.to_string_lossy()
                    ),
                );
            }
        }
        if self.filter.max_hits == 0 {
            return err("filter.max_hits", "must be greater than 0".into());
        }
        if self.filter.large_content_bytes == 0 {
            return err(
                "filter.large_content_bytes",
                "must be greater than 0 (set it to server.max_body_bytes or more to check every text in place)".into(),
            );
        }
        for domain in &self.filter.detectors.allow_domains {
            let name = domain.trim().trim_matches('.');
            if name.is_empty()
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
            {
                return err(
                    "filter.detectors.allow_domains",
                    format!("{domain:?} is not a domain name (letters, digits, `-` and `.`)"),
                );
            }
        }
        if http::HeaderName::try_from(self.request_id.header.as_str()).is_err() {
            return err(
                "request_id.header",
                format!("{:?} is not a valid header name", self.request_id.header),
            );
        }
        let rl = &self.rate_limit;
        if rl.per_second == 0 {
            return err("rate_limit.per_second", "must be greater than 0".into());
        }
        if rl.burst == 0 {
            return err("rate_limit.burst", "must be greater than 0".into());
        }
        // a URL set is checked even where it is not read: a typo there is a typo still
        rl.redis_keys()
            .check(rl.backend == RateLimitBackend::Redis || !rl.redis_url.is_empty())?;
        if rl.backend == RateLimitBackend::Memory {
            let needs_redis = |key: &str, what: &str| {
                err(
                    key,
                    format!(
                        "{what} needs backend = \"redis\" (the \"memory\" backend keeps every limit in this process); set backend = \"redis\" or remove it"
                    ),
                )
            };
            if !rl.redis_cluster.is_empty() {
                return needs_redis("rate_limit.redis_cluster", "a Redis Cluster");
            }
            if !rl.redis_sentinel.is_empty() {
                return needs_redis("rate_limit.redis_sentinel", "Sentinel");
            }
            if rl.global_mode == GlobalMode::Leased {
                return needs_redis("rate_limit.global_mode", "global_mode = \"leased\"");
            }
        }
        if rl.max_keys == 0 {
            return err("rate_limit.max_keys", "must be greater than 0".into());
        }
        if !self.classifier.endpoint.is_empty()
            && let Err(why) =
                espresso_filter_stages::ClassifierLayer::check_endpoint(&self.classifier.endpoint)
        {
            return err(
                "classifier.endpoint",
                format!("{}: {why}", crate::quoted(&self.classifier.endpoint)),
            );
        }
        if let Err(why) = espresso_slow_call::SlowCallMetrics::check_buckets(
            &self.slow_call.latency_buckets_seconds,
        ) {
            return err("slow_call.latency_buckets_seconds", why);
        }
        if self.debug.pprof_max_seconds == 0 {
            return err("debug.pprof_max_seconds", "must be greater than 0".into());
        }
        if self.log.max_size_bytes == 0 {
            return err("log.max_size_bytes", "must be greater than 0".into());
        }
        if self.log.max_files == 0 {
            return err("log.max_files", "must be greater than 0".into());
        }
        let degrade = &self.degrade;
        if degrade.min_limit == 0 || degrade.min_limit > degrade.max_limit {
            return err(
                "degrade.min_limit",
                "must be at least 1 and at most degrade.max_limit".into(),
            );
        }
        let cache = &self.cache;
        cache.redis_keys().check(!cache.redis_url.is_empty())?;
        let lists = &self.lists;
        lists
            .redis_keys()
            .check(lists.store == ListStore::Redis || !lists.redis_url.is_empty())?;
        if lists.store == ListStore::File {
            for (key, set) in [
                ("redis_cluster", !lists.redis_cluster.is_empty()),
                ("redis_sentinel", !lists.redis_sentinel.is_empty()),
            ] {
                if set {
                    return err(
                        &format!("lists.{key}"),
                        "is only read with store = \"redis\" (the \"file\" store keeps the lists under lists.dir); set store = \"redis\" or remove it".into(),
                    );
                }
            }
        }
        if lists.redis_prefix.is_empty() {
            return err("lists.redis_prefix", "must not be empty".into());
        }
        if lists.redis_timeout_ms == 0 {
            return err("lists.redis_timeout_ms", "must be greater than 0".into());
        }
        Ok(())
    }

    fn resolve_paths(&mut self, base: &Path) {
        if !self.admin.token_file.as_os_str().is_empty() {
            self.admin.token_file = base.join(&self.admin.token_file);
        }
        self.lists.dir = base.join(&self.lists.dir);
        if !self.log.file.as_os_str().is_empty() {
            self.log.file = base.join(&self.log.file);
        }
        for path in &mut self.filter.allow {
            *path = base.join(&*path);
        }
        for list in &mut self.filter.lists {
            list.path = base.join(&list.path);
        }
        for path in &mut self.filter.detectors.im_keywords {
            *path = base.join(&*path);
        }
    }

    /// Every file whose change should trigger a reload besides the config itself.
    pub fn watched_files(&self) -> impl Iterator<Item = &Path> {
        let lists = self.filter.lists.iter().map(|l| l.path.as_path());
        let keywords = self
            .filter
            .detectors
            .im_keywords
            .iter()
            .map(PathBuf::as_path);
        self.filter
            .allow
            .iter()
            .map(PathBuf::as_path)
            .chain(lists)
            .chain(keywords)
    }
}

/// Why `url` is no Redis address the server can use, read as the `redis` crate reads it at
/// start-up (host, port, database number); `None` when it is one. The URL is not repeated: it
/// may hold a password.
fn redis_url_error(url: &str) -> Option<String> {
    if !(url.starts_with("redis://") || url.starts_with("rediss://") || url.starts_with("unix://"))
    {
        return Some(format!("{url:?} is not a redis:// URL"));
    }
    redis::IntoConnectionInfo::into_connection_info(url)
        .err()
        .map(|e| format!("is not a Redis URL the server can use: {e}"))
}

/// The Redis keys a section shares (`redis_url`, `redis_cluster`, `redis_sentinel` with
/// `redis_master`), read the same way in `[rate_limit]`, `[cache]` and `[lists]`.
struct RedisKeys<'a> {
    section: &'static str,
    url: &'a str,
    cluster: &'a [String],
    sentinel: &'a [String],
    master: &'a str,
}

impl RedisKeys<'_> {
    /// Where the section's Redis lives: the cluster, else Sentinel, else the URL.
    fn target(&self) -> RedisTarget {
        if !self.cluster.is_empty() {
            RedisTarget::cluster(self.cluster.iter().cloned())
        } else if !self.sentinel.is_empty() {
            RedisTarget::sentinel(self.sentinel.iter().cloned(), self.master)
        } else {
            RedisTarget::node(self.url)
        }
    }

    /// `url_used`: whether `redis_url` is read when neither a cluster nor Sentinel is set.
    fn check(&self, url_used: bool) -> Result<(), (String, String)> {
        let section = self.section;
        let err = |key: &str, message: String| Err((format!("{section}.{key}"), message));
        if !self.cluster.is_empty() && !self.sentinel.is_empty() {
            return err(
                "redis_cluster",
                "is set together with redis_sentinel: a Redis is either a cluster or watched by Sentinel; keep one of them".into(),
            );
        }
        for (key, urls) in [
            ("redis_cluster", self.cluster),
            ("redis_sentinel", self.sentinel),
        ] {
            for (i, url) in urls.iter().enumerate() {
                if let Some(why) = redis_url_error(url) {
                    return err(key, format!("entry {}: {why}", i + 1));
                }
            }
        }
        if !self.sentinel.is_empty() && self.master.trim().is_empty() {
            return err(
                "redis_sentinel",
                format!(
                    "Sentinel needs the master's name: add {section}.redis_master = \"<name>\" (the name in the Sentinels' `sentinel monitor <name> …`)"
                ),
            );
        }
        if self.sentinel.is_empty() && !self.master.is_empty() {
            return err(
                "redis_master",
                format!(
                    "is only read with Sentinel: set {section}.redis_sentinel = [\"redis://<host>:26379\", …] or remove redis_master"
                ),
            );
        }
        if url_used
            && self.cluster.is_empty()
            && self.sentinel.is_empty()
            && let Some(why) = redis_url_error(self.url)
        {
            return err("redis_url", why);
        }
        Ok(())
    }

    /// A `redis_url` other than the section's `default` beside a cluster or Sentinel, which
    /// win: a WARN, since the URL is not read.
    fn url_unread(&self, default: &str) -> Option<String> {
        let section = self.section;
        let other = if !self.cluster.is_empty() {
            "redis_cluster"
        } else if !self.sentinel.is_empty() {
            "redis_sentinel"
        } else {
            return None;
        };
        (self.url != default).then(|| {
            format!(
                "{section}.redis_url is not read: {section}.{other} is set and is used instead; \
                 remove redis_url"
            )
        })
    }
}

impl RateLimitConfig {
    /// Where the `redis` backend's Redis lives: `redis_cluster`, else `redis_sentinel` with
    /// `redis_master`, else `redis_url`.
    pub fn redis_target(&self) -> RedisTarget {
        self.redis_keys().target()
    }

    fn redis_keys(&self) -> RedisKeys<'_> {
        RedisKeys {
            section: "rate_limit",
            url: &self.redis_url,
            cluster: &self.redis_cluster,
            sentinel: &self.redis_sentinel,
            master: &self.redis_master,
        }
    }
}

impl CacheConfig {
    /// The shared Redis of the cache: `redis_cluster`, else `redis_sentinel` with
    /// `redis_master`, else `redis_url`; `None` when all are empty (process memory only).
    pub fn redis_target(&self) -> Option<RedisTarget> {
        (!(self.redis_url.is_empty()
            && self.redis_cluster.is_empty()
            && self.redis_sentinel.is_empty()))
        .then(|| self.redis_keys().target())
    }

    fn redis_keys(&self) -> RedisKeys<'_> {
        RedisKeys {
            section: "cache",
            url: &self.redis_url,
            cluster: &self.redis_cluster,
            sentinel: &self.redis_sentinel,
            master: &self.redis_master,
        }
    }
}

impl ConfigError {
    fn in_file(mut self, file: &Path) -> Self {
        self.file = file.to_owned();
        self
    }
}

/// What the file a key names holds, for errors.
fn what_file(key: &str) -> &'static str {
    match key {
        "admin.token_file" => "token file",
        "filter.detectors.im_keywords" => "keyword list",
        _ => "word list",
    }
}

/// The dotted key a serde error on a table header names: `[[filter.lists]]` missing its
/// `level` is `filter.lists.level`; an unknown table `[servr]` is `servr`.
fn field_key(text: &str, line: usize, message: &str) -> Option<String> {
    let header = table_header(text.lines().nth(line.checked_sub(1)?)?.trim())?;
    let field = ["missing field `", "unknown field `"]
        .iter()
        .find_map(|start| message.strip_prefix(start))?
        .split('`')
        .next()?;
    Some(if header.rsplit('.').next() == Some(field) {
        header.to_owned()
    } else {
        format!("{header}.{field}")
    })
}

/// 1-based line number of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// The dotted key (`section.name`) set on a 1-based line, or on the nearest line above it that
/// sets one (a value spread over several lines); `None` when the line is a table header or
/// precedes every key.
fn key_at(text: &str, line: usize) -> Option<String> {
    let mut section = String::new();
    let mut key = None;
    for text in text.lines().take(line) {
        let text = text.trim();
        if let Some(header) = table_header(text) {
            section = header.to_owned();
            key = None;
        } else if let Some((name, _)) = text.split_once('=')
            && !name.trim().is_empty()
            && !name.contains(['"', '#'])
        {
            key = Some(name.trim().to_owned());
        }
    }
    let key = key?;
    Some(if section.is_empty() {
        key
    } else {
        format!("{section}.{key}")
    })
}

/// The table a trimmed line opens: `a.b` for `[a.b]` or `[[a.b]]`, a comment after it aside.
fn table_header(line: &str) -> Option<&str> {
    let header = line.strip_prefix('[')?;
    let header = header.strip_prefix('[').unwrap_or(header);
    Some(header.split(']').next().unwrap_or(header).trim())
}

/// The line that sets a dotted key (`section.key`), or the first that sets the last part.
fn find_key_line(text: &str, dotted: &str) -> Option<usize> {
    let (section, key) = dotted.rsplit_once('.').unwrap_or(("", dotted));
    let mut current = String::new();
    let mut fallback = None;
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if let Some(header) = table_header(line) {
            current = header.to_owned();
        } else if line.split('=').next().is_some_and(|k| k.trim() == key) {
            if current == section {
                return Some(i + 1);
            }
            fallback.get_or_insert(i + 1);
        }
    }
    fallback
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_has_a_default() {
        let config = Config::parse("").unwrap();
        assert_eq!(config, Config::default());
        assert_eq!(config.server.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(config.server.max_body_bytes, 65536);
        assert_eq!(config.request_id.header, "x-request-id");
        assert!(config.rate_limit.enabled);
        assert_eq!(config.rate_limit.per_second, 1000);
        assert_eq!(config.rate_limit.burst, 2000);
        assert_eq!(config.rate_limit.key, RateLimitKey::Ip);
        assert_eq!(config.rate_limit.backend, RateLimitBackend::Memory);
        assert_eq!(config.degrade.limit, DegradeLimit::GradientController);
        assert_eq!(config.slow_call.threshold_ms, 200);
        assert!(config.classifier.endpoint.is_empty());
        assert_eq!(config.classifier.timeout_ms, 50);
    }

    /// The spellings are a contract with every config file out there: each one parses to its
    /// enum value and prints back the same.
    #[test]
    fn every_closed_set_keeps_its_spellings() {
        use DegradeLimit::*;
        for (limit, value) in [
            ("gradient2", Gradient2),
            ("gradient-controller", GradientController),
            ("aimd", Aimd),
            ("vegas", Vegas),
            ("fixed", Fixed),
        ] {
            let text = format!("[degrade]\nlimit = \"{limit}\"\n");
            let config = Config::parse(&text).unwrap();
            assert_eq!(config.degrade.limit, value);
            assert!(
                config
                    .to_toml()
                    .unwrap()
                    .contains(&format!("limit = \"{limit}\""))
            );
        }
        for (text, backend) in [
            ("memory", RateLimitBackend::Memory),
            ("redis", RateLimitBackend::Redis),
        ] {
            let config = Config::parse(&format!("[rate_limit]\nbackend = \"{text}\"\n")).unwrap();
            assert_eq!(config.rate_limit.backend, backend);
        }
        for (text, missing) in [
            ("refuse", RateLimitMissingKey::Refuse),
            ("shared-bucket", RateLimitMissingKey::SharedBucket),
            ("allow", RateLimitMissingKey::Allow),
        ] {
            let config =
                Config::parse(&format!("[rate_limit]\nmissing_key = \"{text}\"\n")).unwrap();
            assert_eq!(config.rate_limit.missing_key, missing);
        }
        assert!(Config::parse("[rate_limit]\nmissing_key = \"shared\"\n").is_err());
        for (text, format) in [("text", LogFormat::Text), ("json", LogFormat::Json)] {
            let config = Config::parse(&format!("[log]\nformat = \"{text}\"\n")).unwrap();
            assert_eq!(config.log.format, format);
        }
        use LogRotation::*;
        for (text, rotation) in [
            ("daily", Daily),
            ("hourly", Hourly),
            ("minutely", Minutely),
            ("never", Never),
            ("size", Size),
        ] {
            let config = Config::parse(&format!("[log]\nrotation = \"{text}\"\n")).unwrap();
            assert_eq!(config.log.rotation, rotation);
        }
    }

    #[test]
    fn an_unknown_value_names_line_key_and_the_allowed_values() {
        for (text, key, allowed) in [
            (
                "[degrade]\nenabled = true\nlimit = \"gradient3\"\n",
                "degrade.limit",
                "`gradient-controller`, `gradient2`, `aimd`, `vegas`, `fixed`",
            ),
            (
                "[rate_limit]\n\nkey = \"ipp\"\n",
                "rate_limit.key",
                "\"ip\", \"global\" or \"header:<name>\"",
            ),
            (
                "[rate_limit]\n\nbackend = \"disk\"\n",
                "rate_limit.backend",
                "`memory` or `redis`",
            ),
            (
                "[log]\n\nformat = \"xml\"\n",
                "log.format",
                "`text` or `json`",
            ),
            (
                "[log]\n\nrotation = \"weekly\"\n",
                "log.rotation",
                "`daily`, `hourly`, `minutely`, `never`, `size`",
            ),
            (
                "[filter.detectors]\nurl = \"review\"\nphone = \"on\"\n",
                "filter.detectors.phone",
                "`off`, `review`, `block`",
            ),
        ] {
            let msg = Config::parse(text).unwrap_err().to_string();
            assert!(msg.contains("line 3"), "{msg}");
            assert!(msg.contains(&format!("key `{key}`")), "{msg}");
            assert!(msg.contains(allowed), "{msg}");
        }
    }

    #[test]
    fn the_detectors_section_reads_modes_domains_and_keyword_files() {
        use espresso_filter_core::DetectorMode;
        let text = "[filter.detectors]\nurl = \"review\"\nemail = \"block\"\nim = \"block\"\n\
                    allow_domains = [\"example.com\"]\nim_keywords = [\"kw.txt\"]\n";
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("kw.txt"), "vx\n").unwrap();
        let config = Config::from_text(&dir.path().join("espresso.toml"), text).unwrap();
        let d = &config.filter.detectors;
        assert_eq!(
            (d.url, d.email, d.phone, d.im),
            (
                DetectorMode::Review,
                DetectorMode::Block,
                DetectorMode::Off,
                DetectorMode::Block
            )
        );
        assert_eq!(d.allow_domains, ["example.com"]);
        assert_eq!(d.im_keywords, [dir.path().join("kw.txt")]);
        assert!(
            config
                .watched_files()
                .any(|p| p == dir.path().join("kw.txt"))
        );
        let msg = Config::parse("[filter.detectors]\nallow_domains = [\"a b\"]\n")
            .unwrap_err()
            .to_string();
        assert!(msg.contains("filter.detectors.allow_domains"), "{msg}");
    }

    #[test]
    fn a_comment_after_a_table_header_is_not_part_of_the_key() {
        let text = "[log]                    # read at start-up only\nformat = \"xml\"\n";
        let msg = Config::parse(text).unwrap_err().to_string();
        assert!(msg.contains("line 2, key `log.format`:"), "{msg}");
        let text = "[[filter.lists]] # danger\npath = \"a.txt\"\nlevel = \"bad\"\n";
        let msg = Config::parse(text).unwrap_err().to_string();
        assert!(msg.contains("line 3, key `filter.lists.level`:"), "{msg}");
        let text = "[debug] # operator endpoints\npprof_max_seconds = 0\n";
        let msg = Config::parse(text).unwrap_err().to_string();
        assert!(
            msg.contains("line 2, key `debug.pprof_max_seconds`:"),
            "{msg}"
        );
    }

    #[test]
    fn a_bad_network_in_a_list_spread_over_lines_names_the_key_and_its_line() {
        let text = "[rate_limit]\ntrusted_proxies = [\n  \"10.0.0.0/8\",\n  \"10.0.0.0/33\",\n]\n";
        let msg = Config::parse(text).unwrap_err().to_string();
        assert!(msg.contains("line 2"), "{msg}");
        assert!(msg.contains("key `rate_limit.trusted_proxies`"), "{msg}");
        assert!(msg.contains("\"10.0.0.0/33\" is not a network"), "{msg}");
    }

    #[test]
    fn the_documented_example_parses() {
        let text = r#"
[server]
listen = "127.0.0.1:8080"
max_body_bytes = 65536

[request_id]
header = "x-request-id"

[rate_limit]
enabled = true
per_second = 1000        # sustained rate per key
burst = 2000
key = "ip"               # "ip" | "global" | "header:<name>"
backend = "memory"       # "memory" | "redis"
redis_url = "redis://127.0.0.1:6379"

[slow_call]
threshold_ms = 200

[classifier]
endpoint = "http://127.0.0.1:50051"
timeout_ms = 50

[filter]
allow = ["words/allow.txt"]
[[filter.lists]]
path = "words/danger.txt"
level = "danger"
category = "abuse"
[[filter.lists]]
path = "words/normal.txt"
level = "normal"
"#;
        let config = Config::parse(text).unwrap();
        assert_eq!(config.filter.lists.len(), 2);
        assert_eq!(config.filter.lists[0].category.as_deref(), Some("abuse"));
        assert_eq!(config.filter.lists[1].category, None);
        assert!(!config.filter.lists[0].pinyin && !config.filter.lists[1].pinyin);
        assert_eq!(config.classifier.endpoint, "http://127.0.0.1:50051");
    }

    #[test]
    fn a_list_turns_pinyin_on_and_a_reload_applies_it() {
        let text = "[[filter.lists]]\npath = \"zh.txt\"\nlevel = \"danger\"\npinyin = true\n";
        let config = Config::parse(text).unwrap();
        assert!(config.filter.lists[0].pinyin);
        // the effective config shows it, and a change to it is a change to `filter.lists`
        assert!(config.to_toml().unwrap().contains("pinyin = true\n"));
        let mut off = config.clone();
        off.filter.lists[0].pinyin = false;
        assert!(off.to_toml().unwrap().contains("pinyin = false\n"));
        assert_eq!(
            keys::changed(&config, &off).unwrap(),
            [("filter.lists", Applies::OnReload)]
        );
        let err = Config::parse(&text.replace("true", "\"yes\"")).unwrap_err();
        assert!(err.to_string().contains("filter.lists.pinyin"), "{err}");
    }

    #[test]
    fn a_list_sets_a_rule_window_and_zero_is_an_error() {
        let text = "[[filter.lists]]\npath = \"r.txt\"\nlevel = \"normal\"\nrule_window = 20\n";
        let config = Config::parse(text).unwrap();
        assert_eq!(
            config.filter.lists[0].rule_window.map(|w| w.get()),
            Some(20)
        );
        assert!(config.to_toml().unwrap().contains("rule_window = 20\n"));
        let sources = crate::reload::filter_sources(&config);
        assert_eq!(sources.lists[0].rule_window.map(|w| w.get()), Some(20));
        let err = Config::parse(&text.replace("20", "0")).unwrap_err();
        assert!(
            err.to_string().contains("filter.lists.rule_window"),
            "{err}"
        );
        let none = Config::parse(&text.replace("rule_window = 20\n", "")).unwrap();
        assert_eq!(none.filter.lists[0].rule_window, None);
    }

    #[test]
    fn a_list_needs_a_category_on_one_line_and_a_name_of_its_own() {
        let list = |path: &str, extra: &str| {
            format!("[[filter.lists]]\npath = \"{path}\"\nlevel = \"danger\"\n{extra}")
        };
        for category in ["\"\"", "\"  \"", "\"a\\tb\""] {
            let err = Config::parse(&list("a.txt", &format!("category = {category}\n")));
            let msg = err.unwrap_err().to_string();
            assert!(msg.contains("filter.lists.category"), "{msg}");
        }
        let two = list("words/danger.txt", "") + &list("other/danger.txt", "");
        let msg = Config::parse(&two).unwrap_err().to_string();
        assert!(msg.contains("filter.lists.path"), "{msg}");
        assert!(msg.contains("both named \"danger\""), "{msg}");
        let distinct = list("words/danger.txt", "") + &list("words/normal.txt", "");
        assert!(Config::parse(&distinct).is_ok());
    }

    #[test]
    fn latency_buckets_are_refused_with_the_slow_call_layers_reason_at_their_key_and_line() {
        let text = |buckets: &str| format!("[slow_call]\n\nlatency_buckets_seconds = {buckets}\n");
        for (buckets, why) in [
            ("[]", "at least one bound"),
            ("[0.5, 0.1]", "0.5 is followed by 0.1"),
            ("[0.0, 1.0]", "0 is not greater than 0"),
            ("[-1.0]", "-1 is not greater than 0"),
            ("[0.1, inf]", "inf is not a finite number"),
            ("[nan]", "NaN is not a finite number"),
        ] {
            let msg = Config::parse(&text(buckets)).unwrap_err().to_string();
            assert!(msg.contains("slow_call.latency_buckets_seconds"), "{msg}");
            assert!(msg.contains("line 3"), "{msg}");
            assert!(msg.contains(why), "{buckets}: {msg}");
        }
        assert!(Config::parse(&text("[0.001, 0.01]")).is_ok());
    }

    #[test]
    fn type_errors_name_line_and_key() {
        let err = Config::parse("[rate_limit]\n\nper_second = \"fast\"\n").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("line 3"), "{msg}");
        assert!(msg.contains("per_second"), "{msg}");
    }

    #[test]
    fn a_profile_length_the_request_timeout_cuts_is_a_warning() {
        let config = Config::parse("[debug]\npprof = true\n").unwrap();
        assert_eq!(config.pprof_max_seconds(), 9);
        let warnings = config.warnings();
        assert!(
            warnings[0].contains("profiles are held to 9 s"),
            "{warnings:?}"
        );
        let text = "[debug]\npprof = true\n[server]\nrequest_timeout_ms = 60000\n";
        assert!(Config::parse(text).unwrap().warnings().is_empty());
        // a second under the timeout: 2 s leaves one, less leaves none (and the route says so)
        for (timeout_ms, max) in [(2000, 1), (1999, 0), (1000, 0)] {
            let text =
                format!("[debug]\npprof = true\n[server]\nrequest_timeout_ms = {timeout_ms}\n");
            let config = Config::parse(&text).unwrap();
            assert_eq!(config.pprof_max_seconds(), max, "{timeout_ms} ms");
            let warnings = config.warnings();
            assert_eq!(
                warnings[0].contains("leaves no whole second for a profile"),
                max == 0,
                "{warnings:?}"
            );
        }
    }

    #[test]
    fn a_missing_field_or_table_names_its_dotted_key() {
        let err = Config::parse("[server]\n\n[[filter.lists]]\npath = \"a.txt\"\n").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("key `filter.lists.level`"), "{msg}");
        let msg = Config::parse("[servr]\n").unwrap_err().to_string();
        assert!(msg.contains("line 1, key `servr`"), "{msg}");
    }

    #[test]
    fn a_file_the_config_names_must_be_readable_and_the_error_names_its_line_and_key() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.txt"), "x\n").unwrap();
        let file = dir.path().join("espresso.toml");
        let text = "[[filter.lists]]\npath = \"a.txt\"\nlevel = \"danger\"\n\n\
                    [[filter.lists]]\npath = \"none.txt\"\nlevel = \"normal\"\n";
        let msg = Config::from_text(&file, text).unwrap_err().to_string();
        assert!(
            msg.contains("espresso.toml, line 6, key `filter.lists.path`"),
            "{msg}"
        );
        assert!(
            msg.contains("cannot read word list") && msg.contains("none.txt"),
            "{msg}"
        );
        for (text, key) in [
            ("[filter]\nallow = [\".\"]\n", "line 2, key `filter.allow`"),
            (
                "[admin]\ntoken_file = 'nope'\n",
                "line 2, key `admin.token_file`",
            ),
            ("[log]\nfile = \"a.txt/x.log\"\n", "line 2, key `log.file`"),
            ("[log]\nfile = \".\"\n", "line 2, key `log.file`"),
            // a token file of white space only: no token
            (
                "[server]\n[admin]\ntoken_file = \"blank.txt\"\n",
                "line 3, key `admin.token_file`: cannot read token file",
            ),
        ] {
            std::fs::write(dir.path().join("blank.txt"), " \n\t\n").unwrap();
            let msg = Config::from_text(&file, text).unwrap_err().to_string();
            assert!(msg.contains(key), "{msg}");
        }
        std::fs::write(dir.path().join("blank.txt"), " \n").unwrap();
        let msg = Config::from_text(&file, "[admin]\ntoken_file = \"blank.txt\"\n")
            .unwrap_err()
            .to_string();
        assert!(msg.ends_with("blank.txt: the file is empty"), "{msg}");
        // not read when `admin.token` is set (a warning says so), so not an error
        let text = "[admin]\ntoken = \"t0ken\"\ntoken_file = \"blank.txt\"\n";
        assert!(Config::from_text(&file, text).is_ok());
    }

    #[test]
    fn unknown_keys_are_errors() {
        let err = Config::parse("[server]\nlisten_on = \"x\"\n").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("line 2"), "{msg}");
        assert!(msg.contains("key `server.listen_on`"), "{msg}");
        assert!(
            msg.contains("expected one of `listen`, `max_body_bytes`"),
            "{msg}"
        );
    }

    #[test]
    fn value_errors_name_line_and_key() {
        let err = Config::parse("[server]\n[rate_limit]\nkey = \"cookie\"\n").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("line 3"), "{msg}");
        assert!(msg.contains("rate_limit.key"), "{msg}");
        let err =
            Config::parse("[[filter.lists]]\npath = \"a.txt\"\nlevel = \"bad\"\n").unwrap_err();
        assert!(err.to_string().contains("line 3"), "{err}");
        let err = Config::parse("[classifier.labels]\nSPAM = \"maybe\"\n").unwrap_err();
        assert!(err.to_string().contains("line 2"), "{err}");
    }

    #[test]
    fn rate_limit_values_are_checked() {
        for (text, key) in [
            (
                "[rate_limit]\nkey = \"header:bad name\"\n",
                "rate_limit.key",
            ),
            ("[rate_limit]\nbackend = \"disk\"\n", "rate_limit.backend"),
            (
                "[rate_limit]\ntrusted_proxies = [\"10.0.0.0/33\"]\n",
                "rate_limit.trusted_proxies",
            ),
            (
                "[rate_limit]\nbackend = \"redis\"\nredis_url = \"http://x\"\n",
                "rate_limit.redis_url",
            ),
        ] {
            let msg = Config::parse(text).unwrap_err().to_string();
            assert!(msg.contains(key), "{msg}");
        }
        for (text, key) in [
            (
                "[server]\nrequest_timeout_ms = 0\n",
                "server.request_timeout_ms",
            ),
            ("[classifier]\ntimeout_ms = 0\n", "classifier.timeout_ms"),
            ("[cache]\nredis_timeout_ms = 0\n", "cache.redis_timeout_ms"),
        ] {
            let msg = Config::parse(text).unwrap_err().to_string();
            assert!(msg.contains(&format!("key `{key}`")), "{msg}");
            assert!(msg.contains("must be greater than 0"), "{msg}");
        }
        // an address left empty where it is not read is no typo
        assert!(Config::parse("[rate_limit]\nredis_url = \"\"\n").is_ok());
        let ok = "[rate_limit]\nkey = \"header:x-api-key\"\ntrusted_proxies = [\"10.0.0.0/8\", \"::1/128\"]\n";
        assert!(Config::parse(ok).is_ok());
    }

    #[test]
    fn redis_cluster_and_sentinel_are_read_alike_in_every_section() {
        let config = Config::parse(
            "[rate_limit]\nbackend = \"redis\"\nglobal_mode = \"leased\"\n\
             redis_cluster = [\"redis://127.0.0.1:7000\", \"redis://127.0.0.1:7001\"]\n\
             [cache]\nredis_sentinel = [\"redis://127.0.0.1:26379\"]\nredis_master = \"mymaster\"\n",
        )
        .unwrap();
        assert_eq!(config.rate_limit.global_mode, GlobalMode::Leased);
        assert_eq!(
            config.rate_limit.redis_target(),
            RedisTarget::cluster(["redis://127.0.0.1:7000", "redis://127.0.0.1:7001"])
        );
        assert_eq!(
            config.cache.redis_target(),
            Some(RedisTarget::sentinel(
                ["redis://127.0.0.1:26379"],
                "mymaster"
            ))
        );
        let toml = config.to_toml().unwrap();
        assert!(toml.contains("global_mode = \"leased\""), "{toml}");
        assert!(toml.contains("redis_master = \"mymaster\""), "{toml}");
        // Defaults: one node for the limiter, nothing shared for the cache.
        let default = Config::default();
        assert_eq!(default.rate_limit.global_mode, GlobalMode::Exact);
        assert_eq!(
            default.rate_limit.redis_target(),
            RedisTarget::node("redis://127.0.0.1:6379")
        );
        assert_eq!(default.cache.redis_target(), None);
        // the lists: a file store by default; the same keys as the other sections with "redis"
        assert_eq!(default.lists.redis_target(), None);
        let lists = Config::parse(
            "[lists]\nstore = \"redis\"\nredis_cluster = [\"redis://127.0.0.1:7000\"]\n",
        )
        .unwrap();
        assert_eq!(
            lists.lists.redis_target(),
            Some(RedisTarget::cluster(["redis://127.0.0.1:7000"]))
        );
        assert_eq!(
            Config::parse("[lists]\nstore = \"redis\"\n")
                .unwrap()
                .lists
                .redis_target(),
            Some(RedisTarget::node("redis://127.0.0.1:6379"))
        );
        assert!(Config::parse("[rate_limit]\nglobal_mode = \"lazy\"\n").is_err());
    }

    #[test]
    fn a_redis_misconfiguration_names_the_key_and_the_fix() {
        for (text, key, fix) in [
            (
                "[rate_limit]\nbackend = \"redis\"\nredis_sentinel = [\"redis://h:26379\"]\n",
                "rate_limit.redis_sentinel",
                "add rate_limit.redis_master = \"<name>\"",
            ),
            (
                "[cache]\nredis_sentinel = [\"redis://h:26379\"]\n",
                "cache.redis_sentinel",
                "add cache.redis_master = \"<name>\"",
            ),
            (
                "[cache]\nredis_master = \"m\"\n",
                "cache.redis_master",
                "set cache.redis_sentinel",
            ),
            (
                "[rate_limit]\nbackend = \"redis\"\nredis_cluster = [\"redis://a:1\"]\nredis_sentinel = [\"redis://b:2\"]\nredis_master = \"m\"\n",
                "rate_limit.redis_cluster",
                "keep one of them",
            ),
            (
                "[rate_limit]\nbackend = \"redis\"\nredis_cluster = [\"http://a:1\"]\n",
                "rate_limit.redis_cluster",
                "is not a redis:// URL",
            ),
            (
                "[rate_limit]\nglobal_mode = \"leased\"\n",
                "rate_limit.global_mode",
                "set backend = \"redis\"",
            ),
            (
                "[rate_limit]\nredis_cluster = [\"redis://a:1\"]\n",
                "rate_limit.redis_cluster",
                "set backend = \"redis\"",
            ),
            (
                "[lists]\nredis_cluster = [\"redis://a:1\"]\n",
                "lists.redis_cluster",
                "set store = \"redis\"",
            ),
            (
                "[lists]\nstore = \"redis\"\nredis_sentinel = [\"redis://h:26379\"]\n",
                "lists.redis_sentinel",
                "add lists.redis_master = \"<name>\"",
            ),
            (
                "[lists]\nstore = \"redis\"\nredis_url = \"localhost:6379\"\n",
                "lists.redis_url",
                "is not a redis:// URL",
            ),
            (
                "[lists]\nstore = \"redis\"\nredis_prefix = \"\"\n",
                "lists.redis_prefix",
                "must not be empty",
            ),
            // set but not read (the "memory" backend, the "file" store): checked all the same
            (
                "[rate_limit]\nredis_url = \"http://x\"\n",
                "rate_limit.redis_url",
                "is not a redis:// URL",
            ),
            (
                "[lists]\nredis_url = \"http://x\"\n",
                "lists.redis_url",
                "is not a redis:// URL",
            ),
            (
                "[lists]\nredis_prefix = \"\"\n",
                "lists.redis_prefix",
                "must not be empty",
            ),
            (
                "[lists]\nredis_timeout_ms = 0\n",
                "lists.redis_timeout_ms",
                "must be greater than 0",
            ),
            // a redis:// URL the redis crate refuses at start-up is refused here
            (
                "[rate_limit]\nbackend = \"redis\"\nredis_url = \"redis://\"\n",
                "rate_limit.redis_url",
                "is not a Redis URL the server can use",
            ),
            (
                "[cache]\nredis_url = \"redis://127.0.0.1:99999\"\n",
                "cache.redis_url",
                "is not a Redis URL the server can use",
            ),
            (
                "[cache]\nredis_cluster = [\"redis://a:1\", \"redis://b:2/abc\"]\n",
                "cache.redis_cluster",
                "entry 2: is not a Redis URL the server can use",
            ),
        ] {
            let msg = Config::parse(text).unwrap_err().to_string();
            assert!(msg.contains(&format!("key `{key}`")), "{msg}");
            assert!(msg.contains(fix), "{msg}");
        }
    }

    #[test]
    fn values_set_but_not_read_are_warned_of_with_their_fix() {
        for (text, warning) in [
            (
                "[rate_limit]\nredis_url = \"redis://10.0.0.5:6379\"\n",
                "rate_limit.redis_url is set but rate_limit.backend is \"memory\"",
            ),
            (
                "[rate_limit]\nbackend = \"redis\"\nredis_url = \"redis://10.0.0.5:6379\"\nredis_cluster = [\"redis://a:1\"]\n",
                "rate_limit.redis_url is not read: rate_limit.redis_cluster is set",
            ),
            (
                "[cache]\nredis_url = \"redis://a:1\"\nredis_sentinel = [\"redis://s:26379\"]\nredis_master = \"m\"\n",
                "cache.redis_url is not read: cache.redis_sentinel is set",
            ),
            (
                "[cache]\nenabled = false\nredis_url = \"redis://a:1\"\n",
                "cache.enabled is false",
            ),
            (
                "[lists]\nredis_url = \"redis://a:1\"\n",
                "lists.redis_url is set but lists.store is \"file\"",
            ),
            (
                "[admin]\ntoken = \"t0ken\"\ntoken_file = \"token.txt\"\n",
                "admin.token_file is not read",
            ),
        ] {
            let warnings = Config::parse(text).unwrap().warnings();
            assert_eq!(warnings.len(), 1, "{text}: {warnings:?}");
            assert!(warnings[0].starts_with(warning), "{text}: {warnings:?}");
        }
        // what is read says nothing
        for text in [
            "",
            "[rate_limit]\nbackend = \"redis\"\nredis_url = \"redis://10.0.0.5:6379\"\n",
            "[rate_limit]\nbackend = \"redis\"\nredis_cluster = [\"redis://a:1\"]\n",
            "[cache]\nredis_url = \"redis://a:1\"\n",
        ] {
            assert_eq!(
                Config::parse(text).unwrap().warnings(),
                Vec::<String>::new()
            );
        }
    }

    #[test]
    fn relative_paths_resolve_against_the_config_folder() {
        let dir = tempfile::tempdir().unwrap();
        let other = tempfile::tempdir().unwrap();
        let absolute = other.path().join("d.txt");
        std::fs::create_dir(dir.path().join("words")).unwrap();
        std::fs::write(dir.path().join("words/allow.txt"), "").unwrap();
        std::fs::write(&absolute, "").unwrap();
        let file = dir.path().join("espresso.toml");
        std::fs::write(
            &file,
            format!(
                "[filter]\nallow = [\"words/allow.txt\"]\n[[filter.lists]]\npath = {:?}\nlevel = \"danger\"\n",
                absolute.display().to_string()
            ),
        )
        .unwrap();
        let config = Config::load(&file).unwrap();
        assert_eq!(config.filter.allow[0], dir.path().join("words/allow.txt"));
        assert_eq!(config.filter.lists[0].path, absolute);
    }

    #[test]
    fn the_shipped_config_is_valid_and_names_real_lists() {
        let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("espresso.toml");
        let config = Config::load(&file).unwrap();
        assert_eq!(config.server, ServerConfig::default());
        assert_eq!(config.rate_limit, RateLimitConfig::default());
        assert!(!config.filter.lists.is_empty());
        for path in config.watched_files() {
            assert!(path.is_file(), "{} is missing", path.display());
        }
    }

    #[test]
    fn debug_and_log_sections_have_defaults_and_checks() {
        let config = Config::parse("").unwrap();
        assert!(config.debug.dashboard && !config.debug.pprof);
        assert_eq!(config.debug.pprof_max_seconds, 30);
        assert_eq!(config.log.format, LogFormat::Text);
        assert!(config.log.file.as_os_str().is_empty());
        assert_eq!(
            (config.log.rotation, config.log.max_files),
            (LogRotation::Daily, 7)
        );
        for (text, key) in [
            ("[log]\nformat = \"xml\"\n", "log.format"),
            ("[log]\nrotation = \"weekly\"\n", "log.rotation"),
            ("[log]\nmax_files = 0\n", "log.max_files"),
            (
                "[debug]\npprof_max_seconds = 0\n",
                "debug.pprof_max_seconds",
            ),
        ] {
            let msg = Config::parse(text).unwrap_err().to_string();
            assert!(msg.contains(key) && msg.contains("line 2"), "{msg}");
        }
    }

    #[test]
    fn a_missing_file_is_named() {
        let err = Config::load(Path::new("/nonexistent/espresso.toml")).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/espresso.toml"));
    }
}
