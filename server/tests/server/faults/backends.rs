//! The backend the classifier faults are injected into: the test classifier, which can also die
//! and come back on its port. (The Redis that is killed and restarted is
//! `espresso_test_support::RedisServer`.)

use espresso_filter_stages::classifier::rules::RuleClassifier;
use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};
use tokio::{net::TcpListener, task::JoinHandle};

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
