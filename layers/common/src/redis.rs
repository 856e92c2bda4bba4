//! Where a Redis lives (one node, a Redis Cluster, or a master Sentinel watches) and one
//! connection type for all three (feature `redis`).
//!
//! The topology work is the `redis` crate's: its cluster client follows slots, `MOVED`/`ASK`
//! and failovers, and its Sentinel client finds the current master. [`RedisConnection`] adds
//! what both the rate limiter and the verdict cache need on top:
//!
//! - **Lazy**: building one parses the URLs only; the first call connects, so a Redis that is
//!   down at start-up is a failed call (a fallback for the caller), not a start-up error.
//! - **Bounded**: every call, connecting included, gives up after the connection's timeout.
//! - **Back by itself**: a single node reconnects in the background (`ConnectionManager`); a
//!   cluster connection refreshes its slot map when a node fails; a Sentinel connection is
//!   dropped after an I/O error, a timeout or a `READONLY` answer (the old master came back
//!   as a replica), and the next call asks Sentinel for the master again.
//!
//! ```
//! use espresso_common::redis::{RedisConnection, RedisTarget};
//! use std::time::Duration;
//!
//! let one = RedisTarget::node("redis://127.0.0.1:6379");
//! let cluster = RedisTarget::cluster(["redis://127.0.0.1:7000", "redis://127.0.0.1:7001"]);
//! let sentinel = RedisTarget::sentinel(["redis://127.0.0.1:26379"], "mymaster");
//! assert_eq!(sentinel.to_string(), "Sentinel master `mymaster` via redis://127.0.0.1:26379");
//! for target in [one, cluster, sentinel] {
//!     // Parses only: nothing listens on these ports, and nothing needs to yet.
//!     let _connection = RedisConnection::new(&target, Duration::from_millis(50)).unwrap();
//! }
//! assert!(RedisConnection::new(&RedisTarget::node("http://x"), Duration::from_millis(50)).is_err());
//! ```

use redis::{
    AsyncConnectionConfig, Cmd, ErrorKind, FromRedisValue, Pipeline, RedisError, RedisFuture,
    RedisResult, ScriptInvocation, ServerErrorKind, Value,
    aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig, MultiplexedConnection},
    cluster::{ClusterClient, ClusterClientBuilder},
    cluster_async::ClusterConnection,
    sentinel::{SentinelClient, SentinelServerType},
};
use std::{
    fmt,
    sync::{Arc, Mutex},
    time::Duration,
};

/// Where a Redis lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedisTarget {
    /// One node: `redis://host:port/db`, `rediss://…` or `unix://…`.
    Node(String),
    /// A Redis Cluster, found from these seed nodes (any reachable one is enough).
    Cluster(Vec<String>),
    /// The master Sentinel knows as `master`, found through these Sentinel nodes.
    Sentinel {
        /// The Sentinel nodes' URLs.
        nodes: Vec<String>,
        /// The master's name in Sentinel's configuration (`sentinel monitor <name> …`).
        master: String,
    },
}

impl RedisTarget {
    /// One node at `url`.
    pub fn node(url: impl Into<String>) -> Self {
        Self::Node(url.into())
    }

    /// A cluster found from `seeds`.
    pub fn cluster<S: Into<String>>(seeds: impl IntoIterator<Item = S>) -> Self {
        Self::Cluster(seeds.into_iter().map(Into::into).collect())
    }

    /// The master named `master`, found through the Sentinel `nodes`.
    pub fn sentinel<S: Into<String>>(
        nodes: impl IntoIterator<Item = S>,
        master: impl Into<String>,
    ) -> Self {
        Self::Sentinel {
            nodes: nodes.into_iter().map(Into::into).collect(),
            master: master.into(),
        }
    }
}

impl fmt::Display for RedisTarget {
    /// For log lines: the URL, ``cluster <seeds>`` or ``Sentinel master `<name>` via <nodes>``.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Node(url) => f.write_str(url),
            Self::Cluster(seeds) => write!(f, "cluster {}", seeds.join(", ")),
            Self::Sentinel { nodes, master } => {
                write!(f, "Sentinel master `{master}` via {}", nodes.join(", "))
            }
        }
    }
}

/// A lazy, self-healing connection to a [`RedisTarget`]; cheap to clone, clones share it.
///
/// Every call is bounded by the timeout given to [`new`](Self::new), connecting included; a
/// call that runs out of time fails with an I/O error of kind `TimedOut`.
#[derive(Clone)]
pub struct RedisConnection {
    inner: Arc<Inner>,
}

struct Inner {
    target: RedisTarget,
    source: Source,
    cached: Mutex<Option<Conn>>,
    /// Held while connecting, so a burst of first calls makes one connection.
    connecting: tokio::sync::Mutex<()>,
    timeout: Duration,
}

enum Source {
    Node(redis::Client),
    Cluster(ClusterClient),
    Sentinel(tokio::sync::Mutex<SentinelClient>),
}

#[derive(Clone)]
enum Conn {
    Node(ConnectionManager),
    Cluster(ClusterConnection),
    Sentinel(MultiplexedConnection),
}

impl fmt::Debug for RedisConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConnection")
            .field("target", &self.inner.target)
            .field("timeout", &self.inner.timeout)
            .finish_non_exhaustive()
    }
}

impl RedisConnection {
    /// A connection to `target` whose every call gives up after `timeout`. Only parses the
    /// URLs (an error names the bad one); the first call connects.
    pub fn new(target: &RedisTarget, timeout: Duration) -> RedisResult<Self> {
        let source = match target {
            RedisTarget::Node(url) => Source::Node(redis::Client::open(url.as_str())?),
            RedisTarget::Cluster(seeds) => {
                if seeds.is_empty() {
                    return Err(invalid("a Redis Cluster needs at least one seed node"));
                }
                Source::Cluster(
                    ClusterClientBuilder::new(seeds.iter().map(String::as_str))
                        .connection_timeout(timeout)
                        .response_timeout(timeout)
                        .retries(2)
                        .min_retry_wait(10)
                        .max_retry_wait(100)
                        .build()?,
                )
            }
            RedisTarget::Sentinel { nodes, master } => {
                if nodes.is_empty() || master.is_empty() {
                    return Err(invalid(
                        "Sentinel needs at least one Sentinel node and the master's name",
                    ));
                }
                Source::Sentinel(tokio::sync::Mutex::new(SentinelClient::build(
                    nodes.iter().map(String::as_str).collect(),
                    master.clone(),
                    None,
                    SentinelServerType::Master,
                )?))
            }
        };
        Ok(Self {
            inner: Arc::new(Inner {
                target: target.clone(),
                source,
                cached: Mutex::new(None),
                connecting: tokio::sync::Mutex::new(()),
                timeout,
            }),
        })
    }

    /// Where it connects.
    pub fn target(&self) -> &RedisTarget {
        &self.inner.target
    }

    /// The bound on every call.
    pub fn timeout(&self) -> Duration {
        self.inner.timeout
    }

    /// Runs `cmd` and converts its reply.
    pub async fn query<T: FromRedisValue>(&self, cmd: &Cmd) -> RedisResult<T> {
        self.bounded(|| async {
            let mut conn = self.connection().await?;
            cmd.query_async(&mut conn).await
        })
        .await
    }

    /// Runs the commands of `pipeline` in one round trip and converts their replies (on a
    /// cluster their keys must share one slot).
    pub async fn query_pipe<T: FromRedisValue>(&self, pipeline: &Pipeline) -> RedisResult<T> {
        self.bounded(|| async {
            let mut conn = self.connection().await?;
            pipeline.query_async(&mut conn).await
        })
        .await
    }

    /// Runs a script (`EVALSHA`, loading it first when the server does not know it; on a
    /// cluster it goes to the node owning its keys' slot, so its keys must share one).
    pub async fn invoke<T: FromRedisValue>(
        &self,
        invocation: &ScriptInvocation<'_>,
    ) -> RedisResult<T> {
        self.bounded(|| async {
            let mut conn = self.connection().await?;
            invocation.invoke_async(&mut conn).await
        })
        .await
    }

    /// Runs `call` within the timeout. A connection that died while idle (the server
    /// restarted, a proxy closed it) fails the first call made on it: that call is made once
    /// more, on a new connection, within the same bound, so a restart between calls is no
    /// outage. (A connection dropped while a script ran may have run it: a retried rate-limit
    /// check then takes one token more.)
    async fn bounded<T, F, Fut>(&self, call: F) -> RedisResult<T>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        let retried = async {
            match call().await {
                Err(error) if error.is_connection_dropped() => {
                    self.after_error(&error);
                    call().await
                }
                result => result,
            }
        };
        let result = match tokio::time::timeout(self.inner.timeout, retried).await {
            Ok(result) => result,
            Err(_) => Err(RedisError::from(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no answer within {:?}", self.inner.timeout),
            ))),
        };
        if let Err(e) = &result {
            self.after_error(e);
        }
        result
    }

    /// Forgets a connection that cannot recover by itself.
    fn after_error(&self, error: &RedisError) {
        let forget = match self.inner.source {
            // ConnectionManager reconnects in the background.
            Source::Node(_) => false,
            // The cluster connection refreshes its slots and reconnects nodes itself.
            Source::Cluster(_) => error.is_unrecoverable_error(),
            // A dead or demoted master: ask Sentinel again on the next call.
            Source::Sentinel(_) => {
                error.is_io_error()
                    || error.is_timeout()
                    || error.is_connection_dropped()
                    || error.is_connection_refusal()
                    || error.is_unrecoverable_error()
                    || error.kind() == ErrorKind::Server(ServerErrorKind::ReadOnly)
            }
        };
        if forget {
            *self.inner.cached.lock().unwrap_or_else(|p| p.into_inner()) = None;
        }
    }

    fn cached(&self) -> Option<Conn> {
        self.inner
            .cached
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    async fn connection(&self) -> RedisResult<Conn> {
        if let Some(conn) = self.cached() {
            return Ok(conn);
        }
        let _connecting = self.inner.connecting.lock().await;
        if let Some(conn) = self.cached() {
            return Ok(conn);
        }
        let timeout = Some(self.inner.timeout);
        let conn = match &self.inner.source {
            Source::Node(client) => {
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(timeout)
                    .set_response_timeout(timeout)
                    .set_number_of_retries(1)
                    .set_min_delay(Duration::from_millis(10))
                    .set_max_delay(Duration::from_millis(100));
                Conn::Node(ConnectionManager::new_lazy_with_config(
                    client.clone(),
                    config,
                )?)
            }
            Source::Cluster(client) => Conn::Cluster(client.get_async_connection().await?),
            Source::Sentinel(client) => {
                let config = AsyncConnectionConfig::new()
                    .set_connection_timeout(timeout)
                    .set_response_timeout(timeout);
                Conn::Sentinel(
                    client
                        .lock()
                        .await
                        .get_async_connection_with_config(&config)
                        .await?,
                )
            }
        };
        *self.inner.cached.lock().unwrap_or_else(|p| p.into_inner()) = Some(conn.clone());
        Ok(conn)
    }
}

fn invalid(message: &'static str) -> RedisError {
    RedisError::from((ErrorKind::InvalidClientConfig, message))
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Node(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
            Conn::Sentinel(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Node(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Sentinel(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Node(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
            Conn::Sentinel(c) => c.get_db(),
        }
    }
}
