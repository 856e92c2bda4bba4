//! The processes of a fault run: the demo server (a release binary) and the test classifier (in
//! this process; it can turn slow or failing, die and come back on its port). The private
//! `redis-server` that is killed and restarted is `espresso_test_support::RedisServer`.

use espresso_filter_stages::classifier::rules::RuleClassifier;
use std::{
    fs::File,
    io::{BufRead, BufReader},
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};
use tokio::{net::TcpListener, task::JoinHandle, time::Instant};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

// === impl Classifier ===

/// The rule-based TextClassifier on a fixed port. Its knobs make it slow or failing
/// ([`RuleClassifier::set_delay`], [`RuleClassifier::set_failing`]); [`Classifier::die`] stops
/// it so connections are refused, [`Classifier::come_back`] serves again on the same port.
pub(crate) struct Classifier {
    pub(crate) rules: RuleClassifier,
    addr: SocketAddr,
    serving: Option<(Arc<AtomicBool>, JoinHandle<()>)>,
}

impl Classifier {
    pub(crate) async fn start() -> Result<Self, BoxError> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let mut classifier = Self {
            rules: RuleClassifier::default(),
            addr,
            serving: None,
        };
        classifier.serve(listener);
        Ok(classifier)
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
        let Some((stop, mut task)) = self.serving.take() else {
            return;
        };
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
    pub(crate) async fn come_back(&mut self) -> Result<(), BoxError> {
        let listener = TcpListener::bind(self.addr).await?;
        self.serve(listener);
        Ok(())
    }
}

// === impl Server ===

/// Word lists every run's server starts with.
const DANGER: &str = "# fault run danger list\nbadword\n傻逼\tinsult\n";
const NORMAL: &str = "spam\n";

/// A running espresso-server with its own folder (config, word lists, log).
pub(crate) struct Server {
    pub(crate) addr: SocketAddr,
    pub(crate) log: PathBuf,
    child: Child,
}

impl Server {
    /// Starts `binary` in `dir` with the word lists and `sections` as its config; its log
    /// (`RUST_LOG`, default `warn`) goes to `dir/server.log`.
    pub(crate) async fn start(binary: &Path, dir: &Path, sections: &str) -> Result<Self, BoxError> {
        std::fs::create_dir_all(dir.join("words"))?;
        std::fs::write(dir.join("words/danger.txt"), DANGER)?;
        std::fs::write(dir.join("words/normal.txt"), NORMAL)?;
        let config = format!(
            "[filter]\n[[filter.lists]]\npath = \"words/danger.txt\"\nlevel = \"danger\"\n\
             [[filter.lists]]\npath = \"words/normal.txt\"\nlevel = \"normal\"\n\n{sections}"
        );
        std::fs::write(dir.join("espresso.toml"), config)?;
        let log = dir.join("server.log");
        let mut child = Command::new(binary)
            .arg("--config")
            .arg(dir.join("espresso.toml"))
            .args(["--listen", "127.0.0.1:0"])
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
            .stdout(Stdio::piped())
            .stderr(File::create(&log)?)
            .spawn()
            .map_err(|e| format!("{}: {e}", binary.display()))?;
        let stdout = child.stdout.take().expect("piped");
        // The first line says where it listens; the rest is drained so it never blocks.
        let line = tokio::task::spawn_blocking(move || {
            let mut lines = BufReader::new(stdout).lines();
            let first = lines.next();
            std::thread::spawn(move || lines.for_each(drop));
            first
        });
        let line = match tokio::time::timeout(Duration::from_secs(30), line).await {
            Ok(Ok(Some(Ok(line)))) => line,
            _ => {
                let _ = child.kill();
                return Err(format!("the server did not start; see {}", log.display()).into());
            }
        };
        let addr = line
            .rsplit(' ')
            .next()
            .and_then(|a| a.parse().ok())
            .ok_or_else(|| format!("unexpected first line {line:?}"))?;
        Ok(Self { addr, log, child })
    }

    /// Sends SIGTERM.
    pub(crate) fn terminate(&self) -> Result<(), BoxError> {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()?;
        if status.success() {
            Ok(())
        } else {
            Err("kill -TERM failed".into())
        }
    }

    /// Waits at most `limit` for the process to exit.
    pub(crate) async fn wait(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        None
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
