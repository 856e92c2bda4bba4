//! Throw-away `redis-server`s: one per test, on a free port, gone with the test.

use crate::skip::{Policy, find_on_path};
use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpListener, TcpStream},
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};
use tempfile::TempDir;

/// How long a starting server may take to answer `PING` (a busy machine is slow).
const START_WAIT: Duration = Duration::from_secs(10);
/// How often a start may meet a port another process took between our pick and its bind.
const PORT_TRIES: usize = 3;
/// How to get `redis-server` where it is missing.
const INSTALL: &str = "apt-get install redis-server";

/// Why a [`RedisServer`] did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// `redis-server` is not on `PATH`.
    #[error("redis-server not found (install: {INSTALL})")]
    NotInstalled,
    /// It is installed but did not start or answer.
    #[error("redis-server on 127.0.0.1:{port}: {reason}")]
    Failed {
        /// The port it was given.
        port: u16,
        /// What went wrong, with the end of its log when it wrote one.
        reason: String,
    },
}

/// A `redis-server` of the caller's own on a free port of 127.0.0.1, without persistence
/// (`--save ""`, no AOF; its directory is a temporary one). Killed (`SIGKILL`) on drop.
///
/// [`kill`](Self::kill) and [`restart`](Self::restart) inject an outage: the server dies
/// without a goodbye to its clients and comes back, empty, on the same port. Several servers
/// are several `start`s, each on its own port.
///
/// ```
/// use espresso_test_support::RedisServer;
///
/// let Some(mut redis) = RedisServer::start() else { return };
/// let _: () = redis.query(&["SET", "k", "v"]);
/// assert_eq!(redis.keys("*"), ["k"]);
/// redis.kill();
/// assert!(!redis.is_running());
/// redis.restart();
/// assert!(redis.keys("*").is_empty(), "a restarted server starts empty");
/// ```
#[derive(Debug)]
pub struct RedisServer {
    program: PathBuf,
    port: u16,
    dir: TempDir,
    child: Option<Child>,
    role: Role,
}

/// What kind of server a [`RedisServer`] runs.
#[derive(Debug, Clone)]
pub(crate) enum Role {
    /// A data node, with these extra arguments (`--cluster-enabled yes`, `--replicaof …`).
    Data(Vec<String>),
    /// A Sentinel, with these lines of its config file (it rewrites the file as it learns).
    Sentinel(String),
}

impl RedisServer {
    /// Starts one and waits until it answers `PING`. When `redis-server` is not installed,
    /// applies the skip policy ([`crate::missing`]): `None` for the test to return on, or a
    /// panic under `ESPRESSO_REQUIRE_SERVICES=1`. Panics, saying why, when it is installed but
    /// does not start.
    #[must_use = "the test must return when this is None"]
    pub fn start() -> Option<Self> {
        Self::start_or(|policy| policy.missing("redis-server", INSTALL))
    }

    /// [`start`](Self::start) for code libtest does not run, such as a bench group: a skip
    /// line names `name`.
    #[must_use = "the caller must return when this is None"]
    pub fn start_in(name: &str) -> Option<Self> {
        Self::start_or(|policy| policy.missing_in(name, "redis-server", INSTALL))
    }

    fn start_or(missing: impl FnOnce(Policy) -> Option<Self>) -> Option<Self> {
        match Self::try_start() {
            Ok(redis) => Some(redis),
            Err(StartError::NotInstalled) => missing(Policy::from_env()),
            Err(e) => panic!("{e}"),
        }
    }

    /// Starts one and waits until it answers `PING`, or says why not: for programs that
    /// report errors rather than skip.
    pub fn try_start() -> Result<Self, StartError> {
        Self::try_start_as(Role::Data(Vec::new()))
    }

    /// [`start`](Self::start) with extra `redis-server` arguments, such as
    /// `["--replicaof", "127.0.0.1", "6379"]`.
    #[must_use = "the test must return when this is None"]
    pub fn start_with(args: &[&str]) -> Option<Self> {
        let role = Role::Data(args.iter().map(|a| (*a).to_owned()).collect());
        match Self::try_start_as(role) {
            Ok(redis) => Some(redis),
            Err(StartError::NotInstalled) => Policy::from_env().missing("redis-server", INSTALL),
            Err(e) => panic!("{e}"),
        }
    }

    pub(crate) fn try_start_as(role: Role) -> Result<Self, StartError> {
        Self::try_start_on(role, free_port)
    }

    /// Starts one on a port `pick` chooses.
    pub(crate) fn try_start_on(
        role: Role,
        pick: impl Fn() -> Result<u16, StartError>,
    ) -> Result<Self, StartError> {
        let program = find_on_path("redis-server").ok_or(StartError::NotInstalled)?;
        let mut last = None;
        for _ in 0..PORT_TRIES {
            let mut redis = Self {
                program: program.clone(),
                port: pick()?,
                dir: tempfile::tempdir().map_err(|e| StartError::Failed {
                    port: 0,
                    reason: format!("no temporary directory: {e}"),
                })?,
                child: None,
                role: role.clone(),
            };
            match redis.spawn() {
                Ok(()) => return Ok(redis),
                // Someone else bound the port between our pick and the server's bind.
                Err(e) if redis.log().contains("Address already in use") => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.expect("at least one try"))
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Its port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its address, 127.0.0.1 and [`port`](Self::port).
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Whether it runs (it was not [`kill`](Self::kill)ed and has not exited).
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|child| matches!(child.try_wait(), Ok(None)))
    }

    /// Kills it with `SIGKILL` (no goodbye to its clients) and waits for it to exit. Its port
    /// then refuses connections. Does nothing when it is not running.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            // An error here means it had already exited, which is what we want.
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again, empty, on the same port and waits until it answers `PING`; kills it
    /// first if it runs. Panics, saying why, when it does not come back.
    pub fn restart(&mut self) {
        self.try_restart().unwrap_or_else(|e| panic!("{e}"));
    }

    /// [`restart`](Self::restart), returning the failure instead of panicking.
    pub fn try_restart(&mut self) -> Result<(), StartError> {
        self.kill();
        self.spawn()
    }

    /// Runs one command (`args[0]` and its arguments) and converts the reply. Panics, naming the
    /// command and the server, when it cannot connect, the command fails or the reply does not
    /// convert.
    pub fn query<T: redis::FromRedisValue>(&self, args: &[&str]) -> T {
        self.try_query(args)
            .unwrap_or_else(|e| panic!("{args:?} on {}: {e}", self.url()))
    }

    /// The keys matching `pattern` (`KEYS`), sorted.
    pub fn keys(&self, pattern: &str) -> Vec<String> {
        let mut keys: Vec<String> = self.query(&["KEYS", pattern]);
        keys.sort();
        keys
    }

    /// How many times `command` ran since the server (re)started, from `INFO commandstats`.
    pub fn calls(&self, command: &str) -> u64 {
        let stats: String = self.query(&["INFO", "commandstats"]);
        let prefix = format!("cmdstat_{}:calls=", command.to_ascii_lowercase());
        stats
            .lines()
            .find_map(|line| line.strip_prefix(&prefix)?.split(',').next()?.parse().ok())
            .unwrap_or(0)
    }

    pub(crate) fn try_query<T: redis::FromRedisValue>(
        &self,
        args: &[&str],
    ) -> redis::RedisResult<T> {
        let client = redis::Client::open(self.url())?;
        let mut connection = client.get_connection_with_timeout(Duration::from_secs(2))?;
        connection.set_read_timeout(Some(Duration::from_secs(5)))?;
        let mut cmd = redis::cmd(args.first().copied().unwrap_or("PING"));
        for arg in args.iter().skip(1) {
            cmd.arg(*arg);
        }
        cmd.query(&mut connection)
    }

    /// Spawns the process on `self.port` and waits (bounded) until it answers `PING`.
    fn spawn(&mut self) -> Result<(), StartError> {
        let port = self.port;
        let failed = move |reason: String| StartError::Failed { port, reason };
        // A fresh log per run, so a failure shows this run's lines.
        let _ = std::fs::remove_file(self.dir.path().join("redis.log"));
        let mut command = Command::new(&self.program);
        match &self.role {
            Role::Data(extra) => {
                command
                    .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
                    .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
                    .arg("--dir")
                    .arg(self.dir.path())
                    .args(["--logfile", "redis.log"])
                    .args(extra);
            }
            Role::Sentinel(lines) => {
                let conf = self.dir.path().join("sentinel.conf");
                let text = format!(
                    "port {}\nbind 127.0.0.1\ndir {}\nlogfile redis.log\n{lines}",
                    self.port,
                    self.dir.path().display()
                );
                std::fs::write(&conf, text)
                    .map_err(|e| failed(format!("cannot write {}: {e}", conf.display())))?;
                command.arg(&conf).arg("--sentinel");
            }
        }
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| failed(format!("{} did not run: {e}", self.program.display())))?;
        self.child = Some(child);
        let deadline = Instant::now() + START_WAIT;
        loop {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                self.child = None;
                return Err(failed(format!(
                    "exited with {status}; log:\n{}",
                    self.log()
                )));
            }
            if answers_ping(self.addr()) {
                return Ok(());
            }
            if Instant::now() > deadline {
                self.kill();
                return Err(failed(format!(
                    "no answer to PING within {START_WAIT:?}; log:\n{}",
                    self.log()
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The end of the server's log (it logs little at the default level).
    pub(crate) fn log(&self) -> String {
        let log = std::fs::read_to_string(self.dir.path().join("redis.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A port of 127.0.0.1 free at the time of asking.
pub(crate) fn free_port() -> Result<u16, StartError> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .map_err(|e| StartError::Failed {
            port: 0,
            reason: format!("no free port on 127.0.0.1: {e}"),
        })
}

/// Whether a Redis at `addr` answers an inline `PING` with `+PONG`.
fn answers_ping(addr: SocketAddr) -> bool {
    let probe = || -> std::io::Result<bool> {
        let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(200))?;
        stream.set_read_timeout(Some(Duration::from_millis(500)))?;
        stream.write_all(b"PING\r\n")?;
        let mut reply = [0; 7];
        stream.read_exact(&mut reply)?;
        Ok(&reply == b"+PONG\r\n")
    };
    probe().unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_servers_run_side_by_side_on_their_own_ports() {
        let Some(a) = RedisServer::start() else {
            return;
        };
        let b = RedisServer::start().expect("redis-server is installed: it just ran");
        assert_ne!(a.port(), b.port());
        let _: () = a.query(&["SET", "only-in-a", "1"]);
        assert_eq!(a.keys("*"), ["only-in-a"]);
        assert!(b.keys("*").is_empty());
    }

    #[test]
    fn a_killed_server_refuses_connections_and_is_gone_after_drop() {
        let Some(mut redis) = RedisServer::start() else {
            return;
        };
        let addr = redis.addr();
        redis.kill();
        assert!(!answers_ping(addr));
        redis.restart();
        assert!(answers_ping(addr));
        drop(redis);
        assert!(!answers_ping(addr), "drop kills the server");
    }

    #[test]
    fn calls_counts_the_commands_since_the_start() {
        let Some(redis) = RedisServer::start() else {
            return;
        };
        assert_eq!(redis.calls("get"), 0);
        let _: Option<String> = redis.query(&["GET", "k"]);
        let _: Option<String> = redis.query(&["GET", "k"]);
        assert_eq!(redis.calls("GET"), 2);
    }

    #[test]
    fn a_failed_query_names_the_command_and_the_server() {
        let Some(redis) = RedisServer::start() else {
            return;
        };
        let url = redis.url();
        let failed = std::panic::catch_unwind(|| redis.query::<String>(&["NO-SUCH-COMMAND"]));
        let message = *failed
            .expect_err("an unknown command fails")
            .downcast::<String>()
            .unwrap();
        assert!(
            message.starts_with(&format!("[\"NO-SUCH-COMMAND\"] on {url}: ")),
            "{message}"
        );
    }
}
