//! The Redis store: every API list of the fleet in one Redis hash, with a version counter and
//! a change channel.
//!
//! - `<prefix>{lists}:data`: a hash, list name → the list's JSON;
//! - `<prefix>{lists}:version`: counts the changes of the whole set;
//! - `<prefix>changes`: each change publishes the new version there.
//!
//! - `<prefix>{lists}:lock`: held by the instance making a change, so changes through
//!   different instances take turns instead of racing.
//!
//! The braces are a cluster hash tag: the keys live in one slot, so one script reads or
//! changes them together (a snapshot is never half of one change). A change is written only
//! on top of the version it was computed from, so even a writer whose lock expired cannot undo
//! another's change: it picks that change up and computes its own again. Instances learn of
//! changes from the channel and, as a safety net for lost messages, by reading the version
//! every [`POLL`].

use super::ApiList;
use espresso_common::redis::{RedisConnection, RedisTarget};
use futures_util::StreamExt;
use redis::{RedisResult, Script};
use std::time::Duration;
use tokio::sync::mpsc;

/// How often each instance reads the version, in case a change message was lost.
pub(crate) const POLL: Duration = Duration::from_millis(500);

/// How long a change waits for another instance's change to finish.
const LOCK_WAIT: Duration = Duration::from_secs(5);
/// How long the lock lasts if its holder dies mid-change.
const LOCK_TTL: Duration = Duration::from_secs(10);

/// What the store holds: the lists and the version of the whole set (0: never changed).
pub(crate) struct Snapshot {
    pub(crate) version: u64,
    pub(crate) lists: Vec<ApiList>,
}

/// Why a Redis call failed: Redis itself, or what it holds.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RedisStoreError {
    /// No answer, or an error answer: nothing was changed.
    #[error("{target}: {error}")]
    Unavailable {
        target: String,
        error: redis::RedisError,
    },
    /// Another instance's change held the lock for all of [`LOCK_WAIT`].
    #[error("{target}: another instance has been changing the lists for {LOCK_WAIT:?}; retry")]
    Busy { target: String },
    /// A stored list that does not parse (written by something else than espresso).
    #[error("{target}: list {name:?} in {key} is not a list: {reason}")]
    Corrupt {
        target: String,
        key: String,
        name: String,
        reason: String,
    },
}

/// The lists in Redis.
#[derive(Debug, Clone)]
pub(crate) struct RedisStore {
    connection: RedisConnection,
    data_key: String,
    version_key: String,
    lock_key: String,
    channel: String,
}

/// The lock a change holds: its key's value, unique to the holder.
pub(crate) struct Lock(String);

/// Deletes the lock only if it is still the caller's (it may have expired and been taken).
const UNLOCK: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
";

/// Reads the version and every list in one step.
const LOAD: &str = r"
return {redis.call('GET', KEYS[1]) or '0', redis.call('HGETALL', KEYS[2])}
";

/// Writes one list (or deletes it, without ARGV[3]) on top of version ARGV[1]; -1 when the
/// set has moved on since, else the new version (also published on ARGV[4]).
const WRITE: &str = r"
local version = tonumber(redis.call('GET', KEYS[1]) or '0')
if version ~= tonumber(ARGV[1]) then
  return -1
end
if ARGV[3] == '' then
  redis.call('HDEL', KEYS[2], ARGV[2])
else
  redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
end
version = redis.call('INCR', KEYS[1])
redis.call('PUBLISH', ARGV[4], version)
return version
";

impl RedisStore {
    /// A store at `target` whose calls give up after `timeout`; connects on first use.
    pub(crate) fn new(target: &RedisTarget, prefix: &str, timeout: Duration) -> RedisResult<Self> {
        Ok(Self {
            connection: RedisConnection::new(target, timeout)?,
            data_key: format!("{prefix}{{lists}}:data"),
            version_key: format!("{prefix}{{lists}}:version"),
            lock_key: format!("{prefix}{{lists}}:lock"),
            channel: format!("{prefix}changes"),
        })
    }

    fn unavailable(&self, error: redis::RedisError) -> RedisStoreError {
        RedisStoreError::Unavailable {
            target: self.connection.target().to_string(),
            error,
        }
    }

    /// Takes the change lock, waiting up to [`LOCK_WAIT`] for another instance's change.
    pub(crate) async fn lock(&self) -> Result<Lock, RedisStoreError> {
        static TAKEN: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let since_epoch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let token = format!(
            "{}:{}:{}",
            std::process::id(),
            since_epoch.as_nanos(),
            TAKEN.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let deadline = tokio::time::Instant::now() + LOCK_WAIT;
        loop {
            let taken: Option<String> = self
                .connection
                .query(
                    redis::cmd("SET")
                        .arg(&self.lock_key)
                        .arg(&token)
                        .arg("NX")
                        .arg("PX")
                        .arg(LOCK_TTL.as_millis() as u64),
                )
                .await
                .map_err(|e| self.unavailable(e))?;
            if taken.is_some() {
                return Ok(Lock(token));
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(RedisStoreError::Busy {
                    target: self.connection.target().to_string(),
                });
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Gives the lock back (if this fails, it expires after [`LOCK_TTL`]).
    pub(crate) async fn unlock(&self, lock: Lock) {
        let script = Script::new(UNLOCK);
        let mut invocation = script.key(&self.lock_key);
        invocation.arg(lock.0);
        if let Err(error) = self.connection.invoke::<i64>(&invocation).await {
            tracing::debug!(%error, "lists: the change lock was not given back; it expires by itself");
        }
    }

    /// The version of the stored set.
    pub(crate) async fn version(&self) -> Result<u64, RedisStoreError> {
        let version: Option<u64> = self
            .connection
            .query(redis::cmd("GET").arg(&self.version_key))
            .await
            .map_err(|e| self.unavailable(e))?;
        Ok(version.unwrap_or(0))
    }

    /// The stored set, read in one step.
    pub(crate) async fn load(&self) -> Result<Snapshot, RedisStoreError> {
        let script = Script::new(LOAD);
        let (version, pairs): (u64, Vec<(String, String)>) = self
            .connection
            .invoke(script.key(&self.version_key).key(&self.data_key))
            .await
            .map_err(|e| self.unavailable(e))?;
        let mut lists = Vec::with_capacity(pairs.len());
        for (name, json) in pairs {
            let list: ApiList =
                serde_json::from_str(&json).map_err(|e| RedisStoreError::Corrupt {
                    target: self.connection.target().to_string(),
                    key: self.data_key.clone(),
                    name,
                    reason: e.to_string(),
                })?;
            lists.push(list);
        }
        lists.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(Snapshot { version, lists })
    }

    /// Writes list `name` (`None`: deletes it) on top of version `base`: `Some(new version)`,
    /// or `None` when the set is no longer at `base` (nothing written).
    pub(crate) async fn write(
        &self,
        base: u64,
        name: &str,
        list: Option<&ApiList>,
    ) -> Result<Option<u64>, RedisStoreError> {
        let json = match list {
            Some(list) => serde_json::to_string(list).expect("a list serializes"),
            None => String::new(),
        };
        let script = Script::new(WRITE);
        let mut invocation = script.key(&self.version_key);
        invocation
            .key(&self.data_key)
            .arg(base)
            .arg(name)
            .arg(json)
            .arg(&self.channel);
        let version: i64 = self
            .connection
            .invoke(&invocation)
            .await
            .map_err(|e| self.unavailable(e))?;
        Ok(u64::try_from(version).ok())
    }

    /// Sends `()` on the returned receiver for each change message on the channel, for as long
    /// as the receiver lives; reconnects after an outage (the version poll covers the gap).
    pub(crate) fn changes(&self) -> mpsc::Receiver<()> {
        let (tx, rx) = mpsc::channel(1);
        let target = self.connection.target().clone();
        let channel = self.channel.clone();
        let timeout = self.connection.timeout();
        tokio::spawn(async move {
            while !tx.is_closed() {
                let subscribed = tokio::time::timeout(timeout, subscribe(&target, &channel)).await;
                if let Ok(Ok(pubsub)) = subscribed {
                    let mut messages = pubsub.into_on_message();
                    while messages.next().await.is_some() {
                        // full: a sync is already due, which reads the latest version anyway
                        if let Err(mpsc::error::TrySendError::Closed(())) = tx.try_send(()) {
                            return;
                        }
                    }
                }
                tokio::time::sleep(POLL).await;
            }
        });
        rx
    }
}

/// A subscription to `channel`. On a cluster any node will do: a message published on one is
/// delivered by every node. With Sentinel, on the current master.
async fn subscribe(target: &RedisTarget, channel: &str) -> RedisResult<redis::aio::PubSub> {
    let clients = match target {
        RedisTarget::Node(url) => vec![redis::Client::open(url.as_str())?],
        RedisTarget::Cluster(seeds) => seeds
            .iter()
            .map(|seed| redis::Client::open(seed.as_str()))
            .collect::<RedisResult<_>>()?,
        RedisTarget::Sentinel { nodes, master } => {
            let mut sentinel = redis::sentinel::SentinelClient::build(
                nodes.iter().map(String::as_str).collect(),
                master.clone(),
                None,
                redis::sentinel::SentinelServerType::Master,
            )?;
            vec![sentinel.async_get_client().await?]
        }
    };
    let mut last = None;
    for client in clients {
        match client.get_async_pubsub().await {
            Ok(mut pubsub) => match pubsub.subscribe(channel).await {
                Ok(()) => return Ok(pubsub),
                Err(e) => last = Some(e),
            },
            Err(e) => last = Some(e),
        }
    }
    Err(last.expect("a target has at least one node"))
}
