//! Throw-away Redis topologies: a Redis Cluster (3 masters, 3 replicas) and a Sentinel setup
//! (a master, a replica, one Sentinel), for failover tests.

use crate::{
    redis_server::{RedisServer, Role, StartError},
    skip::{Policy, find_on_path},
};
use std::{
    net::TcpListener,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

/// How long a topology may take to settle (a busy machine is slow).
const SETTLE: Duration = Duration::from_secs(30);
/// `cluster-node-timeout` and Sentinel's `down-after-milliseconds`: how long a dead master
/// goes unnoticed. Short, so failover tests stay short.
const NODE_TIMEOUT_MS: u64 = 1000;

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + SETTLE;
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not within {SETTLE:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A Redis Cluster of its own on free ports of 127.0.0.1: 3 masters and 3 replicas (one each),
/// made with `redis-cli --cluster create … --cluster-replicas 1`, with a 1 s node timeout so a
/// killed master's replica takes over within a few seconds. Killed with its owner.
///
/// ```no_run
/// use espresso_test_support::RedisCluster;
///
/// let Some(mut cluster) = RedisCluster::start() else { return };
/// let master = cluster.master_of("some-key");
/// cluster.kill(master);
/// let promoted = cluster.wait_for_new_master_of("some-key", master);
/// assert_ne!(promoted, master);
/// ```
#[derive(Debug)]
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// Starts the six nodes, creates the cluster and waits until every slot is served and
    /// every master has its replica. Applies the skip policy when `redis-server` or
    /// `redis-cli` is missing; panics, saying why, when they are there but the cluster does
    /// not form.
    #[must_use = "the test must return when this is None"]
    pub fn start() -> Option<Self> {
        Self::start_or(|policy, what, install| policy.missing(what, install))
    }

    /// [`start`](Self::start) for code libtest does not run (a bench or harness program): a
    /// skip line names `name`.
    #[must_use = "the caller must return when this is None"]
    pub fn start_in(name: &str) -> Option<Self> {
        Self::start_or(|policy, what, install| policy.missing_in(name, what, install))
    }

    fn start_or(missing: impl Fn(Policy, &str, &str) -> Option<Self>) -> Option<Self> {
        let Some(cli) = find_on_path("redis-cli") else {
            return missing(
                Policy::from_env(),
                "redis-cli",
                "apt-get install redis-tools",
            );
        };
        let mut nodes = Vec::new();
        for _ in 0..6 {
            match start_cluster_node() {
                Ok(node) => nodes.push(node),
                Err(StartError::NotInstalled) => {
                    return missing(
                        Policy::from_env(),
                        "redis-server",
                        "apt-get install redis-server",
                    );
                }
                Err(e) => panic!("{e}"),
            }
        }
        let output = Command::new(cli)
            .args(["--cluster", "create"])
            .args(nodes.iter().map(|n| format!("127.0.0.1:{}", n.port())))
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .stdin(Stdio::null())
            .output()
            .expect("redis-cli runs");
        assert!(
            output.status.success(),
            "redis-cli --cluster create failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let cluster = Self { nodes };
        wait_until("cluster_state:ok on every node", || {
            cluster.nodes.iter().all(|n| {
                n.try_query::<String>(&["CLUSTER", "INFO"])
                    .is_ok_and(|info| info.contains("cluster_state:ok"))
            })
        });
        wait_until("every master's replica in sync", || {
            cluster.nodes.iter().all(|n| {
                let info: String = n.query(&["INFO", "replication"]);
                if info.contains("role:master") {
                    info.contains("connected_slaves:1") && info.contains("state=online")
                } else {
                    info.contains("master_link_status:up")
                }
            })
        });
        Some(cluster)
    }

    /// The nodes' URLs, to use as seeds.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(RedisServer::url).collect()
    }

    /// The nodes (0..6); some are masters, some replicas, and that changes on failover.
    pub fn nodes(&self) -> &[RedisServer] {
        &self.nodes
    }

    /// The index of the node now serving `key`'s slot as master, as a live node sees it.
    pub fn master_of(&self, key: &str) -> usize {
        self.try_master_of(key)
            .unwrap_or_else(|| panic!("no live master serves the slot of {key:?}"))
    }

    /// [`master_of`](Self::master_of), or `None` while no live master serves the slot (a
    /// failover under way).
    pub fn try_master_of(&self, key: &str) -> Option<usize> {
        let (node, slot) = self.live_view(key);
        let nodes: String = node.query(&["CLUSTER", "NODES"]);
        let port = nodes
            .lines()
            .find_map(|line| {
                let fields: Vec<&str> = line.split(' ').collect();
                let flags = fields.get(2)?;
                if !flags.contains("master") || flags.contains("fail") {
                    return None;
                }
                let serves = fields.iter().skip(8).any(|range| {
                    let (a, b) = range.split_once('-').unwrap_or((range, range));
                    matches!((a.parse::<u16>(), b.parse::<u16>()), (Ok(a), Ok(b)) if (a..=b).contains(&slot))
                });
                let addr = fields.get(1)?.split('@').next()?;
                serves.then(|| addr.rsplit(':').next()?.parse::<u16>().ok())?
            })?;
        self.nodes.iter().position(|n| n.port() == port)
    }

    /// Waits (bounded) until a node other than `old` serves `key`'s slot and the cluster is
    /// whole again; returns it.
    pub fn wait_for_new_master_of(&mut self, key: &str, old: usize) -> usize {
        let mut master = old;
        wait_until("a replica promoted", || {
            master = self.try_master_of(key).unwrap_or(old);
            master != old
        });
        wait_until("cluster_state:ok again", || {
            self.nodes.iter_mut().all(|n| {
                !n.is_running()
                    || n.try_query::<String>(&["CLUSTER", "INFO"])
                        .is_ok_and(|info| info.contains("cluster_state:ok"))
            })
        });
        master
    }

    /// Kills node `index` with `SIGKILL`.
    pub fn kill(&mut self, index: usize) {
        self.nodes[index].kill();
    }

    /// How many times `command` ran on every live node together (`INFO commandstats`).
    pub fn calls(&self, command: &str) -> u64 {
        self.nodes
            .iter()
            .filter(|n| n.try_query::<String>(&["PING"]).is_ok())
            .map(|n| n.calls(command))
            .sum()
    }

    /// `CONFIG RESETSTAT` on every live node, so [`calls`](Self::calls) counts from now.
    pub fn reset_stats(&self) {
        for node in &self.nodes {
            let _ = node.try_query::<()>(&["CONFIG", "RESETSTAT"]);
        }
    }

    /// A live node and `key`'s slot.
    fn live_view(&self, key: &str) -> (&RedisServer, u16) {
        self.nodes
            .iter()
            .find_map(|n| {
                let slot = n.try_query::<u16>(&["CLUSTER", "KEYSLOT", key]).ok()?;
                Some((n, slot))
            })
            .expect("a live node")
    }
}

/// A cluster node on a port whose bus port (+10000) is a valid, free port too.
fn start_cluster_node() -> Result<RedisServer, StartError> {
    let timeout = NODE_TIMEOUT_MS.to_string();
    let role = Role::Data(
        [
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            "nodes.conf",
            "--cluster-node-timeout",
            &timeout,
            // A replica takes over however long its link was down.
            "--cluster-replica-validity-factor",
            "0",
        ]
        .map(str::to_owned)
        .to_vec(),
    );
    RedisServer::try_start_on(role, cluster_port)
}

fn cluster_port() -> Result<u16, StartError> {
    for _ in 0..100 {
        let port = crate::redis_server::free_port()?;
        if port <= 55_535 && TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
            return Ok(port);
        }
    }
    Err(StartError::Failed {
        port: 0,
        reason: "no free port pair (port, port + 10000) on 127.0.0.1".into(),
    })
}

/// A master, its replica and one Sentinel watching them (quorum 1, a master is down after
/// 1 s), all of its own on free ports of 127.0.0.1. Killed with its owner.
///
/// ```no_run
/// use espresso_test_support::RedisSentinel;
///
/// let Some(mut sentinel) = RedisSentinel::start() else { return };
/// let url = sentinel.sentinel_url(); // what a client is given, with the master's name
/// sentinel.kill_master();
/// sentinel.wait_for_failover();
/// ```
#[derive(Debug)]
pub struct RedisSentinel {
    master: RedisServer,
    replica: RedisServer,
    sentinel: RedisServer,
}

impl RedisSentinel {
    /// The master's name in the Sentinel's configuration.
    pub const MASTER: &'static str = "espresso";

    /// Starts the three and waits until the replica is in sync and the Sentinel knows it.
    /// Applies the skip policy when `redis-server` is missing.
    #[must_use = "the test must return when this is None"]
    pub fn start() -> Option<Self> {
        let master = RedisServer::start()?;
        let master_port = master.port().to_string();
        let replica = RedisServer::start_with(&["--replicaof", "127.0.0.1", &master_port])?;
        wait_until("the replica in sync", || {
            replica
                .try_query::<String>(&["INFO", "replication"])
                .is_ok_and(|info| info.contains("master_link_status:up"))
        });
        let name = Self::MASTER;
        let lines = format!(
            "sentinel monitor {name} 127.0.0.1 {master_port} 1\n\
             sentinel down-after-milliseconds {name} {NODE_TIMEOUT_MS}\n\
             sentinel failover-timeout {name} 5000\n"
        );
        let sentinel = RedisServer::try_start_as(Role::Sentinel(lines))
            .unwrap_or_else(|e| panic!("the Sentinel: {e}"));
        wait_until("the Sentinel knows the replica", || {
            sentinel
                .try_query::<Vec<redis::Value>>(&["SENTINEL", "REPLICAS", name])
                .is_ok_and(|replicas| !replicas.is_empty())
        });
        Some(Self {
            master,
            replica,
            sentinel,
        })
    }

    /// The Sentinel's URL.
    pub fn sentinel_url(&self) -> String {
        self.sentinel.url()
    }

    /// The first master.
    pub fn master(&self) -> &RedisServer {
        &self.master
    }

    /// Its replica, the master after [`wait_for_failover`](Self::wait_for_failover).
    pub fn replica(&self) -> &RedisServer {
        &self.replica
    }

    /// Kills the first master with `SIGKILL`.
    pub fn kill_master(&mut self) {
        self.master.kill();
    }

    /// Waits (bounded) until the Sentinel names the replica as master and it accepts writes.
    pub fn wait_for_failover(&self) {
        let replica = self.replica.port().to_string();
        wait_until("the Sentinel promotes the replica", || {
            self.sentinel
                .try_query::<Vec<String>>(&["SENTINEL", "GET-MASTER-ADDR-BY-NAME", Self::MASTER])
                .is_ok_and(|addr| addr.get(1) == Some(&replica))
                && self
                    .replica
                    .try_query::<String>(&["INFO", "replication"])
                    .is_ok_and(|info| info.contains("role:master"))
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_killed_cluster_master_is_replaced_by_its_replica() {
        let Some(mut cluster) = RedisCluster::start() else {
            return;
        };
        let old = cluster.master_of("k");
        assert_eq!(cluster.urls().len(), 6);
        cluster.kill(old);
        let new = cluster.wait_for_new_master_of("k", old);
        assert_ne!(new, old);
    }

    #[test]
    fn sentinel_promotes_the_replica() {
        let Some(mut sentinel) = RedisSentinel::start() else {
            return;
        };
        let _: () = sentinel.master().query(&["SET", "k", "v"]);
        sentinel.kill_master();
        sentinel.wait_for_failover();
        let _: () = sentinel.replica().query(&["SET", "k", "w"]);
    }
}
