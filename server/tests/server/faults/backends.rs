//! The backends the faults are injected into: the test classifier, which can also die and come
//! back on its port, and a private `redis-server` that can be killed and restarted.

use espresso_filter_stages::classifier::rules::RuleClassifier;
use std::{
    net::SocketAddr,
    process::Stdio,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};
use tokio::{
    net::TcpListener,
    process::{Child, Command},
    task::JoinHandle,
};

/// The rule-based TextClassifier on a fixed port. Its knobs make it slow or failing
/// ([`RuleClassifier::set_delay`], [`RuleClassifier::set_failing`]); [`Classifier::die`] stops
/// it so connections are refused, [`Classifier::come_back`] serves again on the same port.
pub(crate) struct Classifier {
    pub(crate) rules: RuleClassifier,
    addr: SocketAddr,
    serving: Option<(Arc<AtomicBool>, JoinHandle<()>)>,
}

impl Classifier {
    pub(crate) async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut classifier = Self {
            rules: RuleClassifier::default(),
            addr,
            serving: None,
        };
        classifier.serve(listener);
        classifier
    }

    pub(crate) fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn serve(&mut self, listener: TcpListener) {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = {
            let stop = stop.clone();
            async move {
                while !stop.load(Ordering::Relaxed) {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
        };
        let server = self.rules.clone().serve_with_shutdown(listener, stopped);
        let task = tokio::spawn(async move {
            let _ = server.await;
        });
        self.serving = Some((stop, task));
    }

    /// Stops listening and closes every connection (the server's channel is told to go away
    /// and finds nobody when it reconnects).
    pub(crate) async fn die(&mut self) {
        let (stop, mut task) = self.serving.take().expect("serving");
        stop.store(true, Ordering::Relaxed);
        // The graceful stop waits for calls in flight; a stuck one must not keep it alive.
        if tokio::time::timeout(Duration::from_secs(3), &mut task)
            .await
            .is_err()
        {
            task.abort();
        }
    }

    /// Serves again on the same port.
    pub(crate) async fn come_back(&mut self) {
        let listener = TcpListener::bind(self.addr).await.unwrap();
        self.serve(listener);
    }
}

/// A private `redis-server` (no persistence) on a free port.
pub(crate) struct Redis {
    port: u16,
    child: Option<Child>,
}

impl Redis {
    pub(crate) async fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut redis = Self { port, child: None };
        redis.restart().await;
        redis
    }

    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts it (again) on its port and waits until it answers.
    pub(crate) async fn restart(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("redis-server is installed");
        self.child = Some(child);
        for _ in 0..250 {
            if self.cli(&["PING"]).await.trim() == "PONG" {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("redis-server did not start on port {}", self.port);
    }

    /// `kill -9`: no goodbye to its clients.
    pub(crate) async fn kill(&mut self) {
        let mut child = self.child.take().expect("running");
        child.kill().await.unwrap();
    }

    /// How many keys match `pattern`.
    pub(crate) async fn keys(&self, pattern: &str) -> usize {
        self.cli(&["--scan", "--pattern", pattern])
            .await
            .lines()
            .count()
    }

    /// How many times a command ran since this Redis started (`INFO commandstats`).
    pub(crate) async fn calls(&self, command: &str) -> u64 {
        let stats = self.cli(&["INFO", "commandstats"]).await;
        let prefix = format!("cmdstat_{}:calls=", command.to_ascii_lowercase());
        stats
            .lines()
            .find_map(|line| line.strip_prefix(&prefix)?.split(',').next()?.parse().ok())
            .unwrap_or(0)
    }

    async fn cli(&self, args: &[&str]) -> String {
        let output = Command::new("redis-cli")
            .args(["-p", &self.port.to_string()])
            .args(args)
            .output()
            .await
            .expect("redis-cli is installed");
        String::from_utf8_lossy(&output.stdout).into_owned()
    }
}
