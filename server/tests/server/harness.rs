//! Starting the binary and talking to it.

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::{client::legacy::Client, rt::TokioExecutor};
use std::{net::SocketAddr, path::PathBuf, process::Stdio, time::Duration};
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
};

/// Word lists every test server starts with.
pub(crate) const DANGER: &str = "# test danger list\nbadword\n傻逼\tinsult\n";
pub(crate) const NORMAL: &str = "spam\n";
pub(crate) const ALLOW: &str = "";

/// A running espresso-server with its own temp folder.
pub(crate) struct Server {
    pub(crate) addr: SocketAddr,
    pub(crate) dir: tempfile::TempDir,
    child: Child,
    logs: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    client: Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
}

/// A whole HTTP response.
pub(crate) struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }

    pub(crate) fn request_id(&self) -> &str {
        self.headers
            .get("x-request-id")
            .expect("every response carries x-request-id")
            .to_str()
            .unwrap()
    }

    /// Asserts the error shape of `docs/http-api.md` and returns the error code.
    pub(crate) fn error_code(&self, status: StatusCode) -> String {
        assert_eq!(
            self.status,
            status,
            "body: {:?}",
            String::from_utf8_lossy(&self.body)
        );
        let json = self.json();
        assert_eq!(json["request_id"], self.request_id(), "{json}");
        assert!(json["error"]["message"].is_string(), "{json}");
        json["error"]["code"]
            .as_str()
            .expect("error.code")
            .to_owned()
    }
}

impl Server {
    /// Starts the server with the default test lists and `extra` appended to its config.
    pub(crate) async fn start(extra: &str) -> Self {
        Self::start_with("", extra).await
    }

    /// Like [`Server::start`], with `server_keys` added to the `[server]` section.
    pub(crate) async fn start_with(server_keys: &str, extra: &str) -> Self {
        Self::start_in(folder(&config(server_keys, extra))).await
    }

    /// Like [`Server::start`], with `filter_keys` added to the `[filter]` section.
    pub(crate) async fn start_with_filter(filter_keys: &str) -> Self {
        let dir = folder(&config("", "").replacen(
            "[filter]\n",
            &format!("[filter]\n{filter_keys}\n"),
            1,
        ));
        Self::start_in(dir).await
    }

    /// Starts the server with `dir/espresso.toml`.
    pub(crate) async fn start_in(dir: tempfile::TempDir) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_espresso-server"))
            .arg("--config")
            .arg(dir.path().join("espresso.toml"))
            .args(["--listen", "127.0.0.1:0"])
            .env("RUST_LOG", "warn")
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("the server binary starts");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("the server says where it listens")
            .unwrap()
            .expect("a listening line");
        let addr = line
            .rsplit(' ')
            .next()
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
        // Keep draining stdout so the server never blocks on a full pipe; keep its logs.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let logs = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
        let sink = logs.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = stderr.next_line().await {
                sink.lock().unwrap().push(line);
            }
        });
        let client = Client::builder(TokioExecutor::new()).build_http();
        Self {
            addr,
            dir,
            child,
            logs,
            client,
        }
    }

    /// The log lines the server wrote so far.
    pub(crate) fn logs(&self) -> Vec<String> {
        self.logs.lock().unwrap().clone()
    }

    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// A gRPC channel to the server (gRPC shares the HTTP port).
    pub(crate) async fn channel(&self) -> tonic::transport::Channel {
        tonic::transport::Channel::from_shared(self.url(""))
            .unwrap()
            .connect()
            .await
            .expect("gRPC connects")
    }

    /// Sends a request and reads the whole response.
    pub(crate) async fn send(&self, request: Request<Full<Bytes>>) -> Reply {
        let response = tokio::time::timeout(Duration::from_secs(10), self.client.request(request))
            .await
            .expect("the server answers in time")
            .expect("the server answers");
        let (parts, body) = response.into_parts();
        Reply {
            status: parts.status,
            headers: parts.headers,
            body: body.collect().await.unwrap().to_bytes(),
        }
    }

    pub(crate) async fn get(&self, path: &str) -> Reply {
        let request = Request::get(self.url(path)).body(Full::default()).unwrap();
        self.send(request).await
    }

    /// `POST /v1/filter` with a JSON body.
    pub(crate) async fn filter(&self, content: &str) -> Reply {
        let body = serde_json::json!({ "content": content }).to_string();
        self.post_json("/v1/filter", body).await
    }

    pub(crate) async fn post_json(&self, path: &str, body: impl Into<Bytes>) -> Reply {
        let request = Request::post(self.url(path))
            .header("content-type", "application/json")
            .body(Full::new(body.into()))
            .unwrap();
        self.send(request).await
    }

    /// A lists API request: `method path` with an optional JSON body and bearer token.
    pub(crate) async fn admin(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<serde_json::Value>,
    ) -> Reply {
        let mut request = Request::builder()
            .method(method)
            .uri(self.url(path))
            .header("content-type", "application/json");
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        self.send(request.body(Full::new(Bytes::from(body))).unwrap())
            .await
    }

    /// The value of one sample in `/metrics`, e.g. `espresso_config_reloads_total{result="applied"}`.
    pub(crate) async fn metric(&self, sample: &str) -> Option<f64> {
        let text = String::from_utf8(self.get("/metrics").await.body.to_vec()).unwrap();
        text.lines()
            .find_map(|line| line.strip_prefix(sample)?.trim().parse().ok())
    }

    /// Gives the metrics that count events something to count: a blocked and a passed filter
    /// request, a bad-JSON error, and a config reload (waited for, up to 5 s).
    pub(crate) async fn touch_every_counter(&self) {
        self.filter("a badword").await;
        self.filter("plain text").await;
        self.post_json("/v1/filter", "{").await;
        let config = self.path("espresso.toml");
        let text = std::fs::read_to_string(&config).unwrap();
        write_atomically(&config, format!("{text}\n# touched\n"));
        let applied = r#"espresso_config_reloads_total{result="applied"}"#;
        for _ in 0..100 {
            if self.metric(applied).await.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Sends SIGTERM.
    pub(crate) fn terminate(&self) {
        self.signal("TERM");
    }

    /// Sends the signal `name` (`TERM`, `HUP`).
    pub(crate) fn signal(&self, name: &str) {
        let pid = self.child.id().expect("still running");
        let status = std::process::Command::new("kill")
            .args([&format!("-{name}"), &pid.to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the process to exit and returns whether it exited cleanly.
    pub(crate) async fn wait(&mut self) -> bool {
        tokio::time::timeout(Duration::from_secs(20), self.child.wait())
            .await
            .expect("the server exits in time")
            .unwrap()
            .success()
    }
}

/// A temp folder with the test word lists and `config` as `espresso.toml`.
pub(crate) fn folder(config: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("words")).unwrap();
    std::fs::write(dir.path().join("words/danger.txt"), DANGER).unwrap();
    std::fs::write(dir.path().join("words/normal.txt"), NORMAL).unwrap();
    std::fs::write(dir.path().join("words/allow.txt"), ALLOW).unwrap();
    std::fs::write(dir.path().join("espresso.toml"), config).unwrap();
    dir
}

/// The test config: the documented layout with the test lists, plus `extra` sections.
pub(crate) fn config(server_keys: &str, extra: &str) -> String {
    format!(
        r#"[server]
reload_interval_ms = 100
{server_keys}

[filter]
allow = ["words/allow.txt"]
[[filter.lists]]
path = "words/danger.txt"
level = "danger"
category = "abuse"
[[filter.lists]]
path = "words/normal.txt"
level = "normal"

{extra}
"#
    )
}

/// Replaces a file the way editors and config managers do (write aside, then rename), so the
/// server's poll never sees a half-written file.
pub(crate) fn write_atomically(path: &std::path::Path, contents: impl AsRef<[u8]>) {
    let aside = path.with_extension("tmp~");
    std::fs::write(&aside, contents).unwrap();
    std::fs::rename(&aside, path).unwrap();
}
