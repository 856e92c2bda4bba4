//! The operator surface, tested the way an operator uses it: the live dashboard opened in a real
//! (headless) browser while traffic runs, CPU profiles fetched over HTTP and parsed as pprof
//! protobuf, and JSON log lines read back from the rolling log file.
//!
//! The server is the real binary (see `server/harness.rs`). Traffic is real requests paced by
//! the test; nothing asserts speed, only that what the page and endpoints show matches the
//! traffic that was sent.

#[allow(dead_code)]
#[path = "server/harness.rs"]
mod harness;

use bytes::Bytes;
use espresso_test_support::eventually;
use harness::Server;
use http::{Request, StatusCode};
use http_body_util::Full;
use pprof::protos::Message;
use std::{path::Path, sync::Arc, time::Duration};
use tokio::{process::Command, task::JoinHandle};

/// Sends filter requests until aborted: a mix of verdicts from a well-behaved client, and bursts
/// from a greedy client that the rate limit refuses.
fn drive_traffic(server: &Arc<Server>) -> JoinHandle<()> {
    let server = server.clone();
    tokio::spawn(async move {
        let contents = [
            "hello there",
            "you badword",
            "buy spam now",
            "傻逼",
            "plain text",
        ];
        for i in 0usize.. {
            let client = if i % 4 == 0 { "greedy" } else { "calm" };
            let body = serde_json::json!({ "content": contents[i % contents.len()] }).to_string();
            let request = Request::post(server.url("/v1/filter"))
                .header("content-type", "application/json")
                .header("x-client", client)
                .body(Full::new(Bytes::from(body)))
                .unwrap();
            server.send(request).await;
            // Pacing only: a steady stream the charts can show.
            tokio::time::sleep(Duration::from_millis(4)).await;
        }
    })
}

/// The dashboard's JSON, once it has at least `min` samples with traffic in them.
async fn dashboard_data_with_traffic(server: &Server, min: usize) -> serde_json::Value {
    for _ in 0..100 {
        let reply = server.get("/debug/dashboard/data").await;
        assert_eq!(reply.status, StatusCode::OK);
        let data = reply.json();
        let busy = data["samples"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["rps"].as_f64().unwrap_or(0.0) > 0.0)
            .count();
        if busy >= min {
            return data;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("the dashboard never showed {min} samples with traffic");
}

// The dashboard's own requests (the browser's included) carry no `x-client`: let them through
// rather than refuse them for a missing key.
const RATE_LIMITED: &str = r#"
[rate_limit]
per_second = 40
burst = 10
key = "header:x-client"
missing_key = "allow"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_data_derives_rates_from_the_metrics() {
    let server = Arc::new(Server::start(RATE_LIMITED).await);
    let traffic = drive_traffic(&server);
    let data = dashboard_data_with_traffic(&server, 2).await;
    traffic.abort();

    assert_eq!(data["interval_ms"], 1000);
    let samples = data["samples"].as_array().unwrap();
    let latest_busy = samples
        .iter()
        .rev()
        .find(|s| s["rps"].as_f64().unwrap() > 0.0)
        .unwrap();
    assert!(
        latest_busy["p50_ms"].as_f64().unwrap() >= 0.0,
        "{latest_busy}"
    );
    assert!(latest_busy["p99_ms"].as_f64().unwrap() >= latest_busy["p50_ms"].as_f64().unwrap());
    assert!(
        latest_busy["status"]["200"].as_f64().unwrap() > 0.0,
        "{latest_busy}"
    );
    assert!(latest_busy["rss_bytes"].as_f64().unwrap() > 0.0);
    assert!(latest_busy["cpu_percent"].as_f64().is_some());
    // Every verdict the traffic produces is charted.
    let verdicts = |v: &str| {
        samples
            .iter()
            .any(|s| s["verdicts"][v].as_f64() > Some(0.0))
    };
    assert!(verdicts("pass") && verdicts("block") && verdicts("review"));
    // The greedy client's bursts are refused and show as rate-limited.
    let limited = samples
        .iter()
        .any(|s| s["rate_limited"].as_f64() > Some(0.0) && s["status"]["429"].as_f64() > Some(0.0));
    let top = data["top_categories"].as_array().unwrap();
    assert!(top.iter().any(|c| c["category"] == "abuse"), "{top:?}");
    assert!(data["requests_total"].as_f64().unwrap() > 0.0);
    if !limited {
        // The greedy client sends ~50 requests a second at most; wait for the bucket to empty.
        let traffic = drive_traffic(&server);
        let mut seen = false;
        for _ in 0..50 {
            let data = server.get("/debug/dashboard/data").await.json();
            seen = data["samples"]
                .as_array()
                .unwrap()
                .iter()
                .any(|s| s["rate_limited"].as_f64() > Some(0.0));
            if seen {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        traffic.abort();
        assert!(seen, "rate-limited requests never showed");
    }

    // `since` returns only newer samples.
    let last = samples.last().unwrap()["t"].as_u64().unwrap();
    let newer = server
        .get(&format!("/debug/dashboard/data?since={last}"))
        .await
        .json();
    assert!(
        newer["samples"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["t"].as_u64().unwrap() > last)
    );
    // The dropped-lines counter is exported even without a log file.
    assert_eq!(
        server.metric("espresso_log_dropped_lines_total").await,
        Some(0.0)
    );
}

/// Runs headless Chromium on `url` with `extra` arguments; returns (stdout, stderr).
async fn chromium(chromium: &Path, profile: &Path, extra: &[&str], url: &str) -> (String, String) {
    let output = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--hide-scrollbars",
            "--enable-logging=stderr",
            "--v=0",
            "--window-size=1280,900",
            "--virtual-time-budget=6000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(url)
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(120), output)
        .await
        .expect("chromium finishes")
        .expect("chromium runs");
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The value of `name="…"` on the page's `<body>`.
fn body_attribute<'a>(dom: &'a str, name: &str) -> Option<&'a str> {
    let body = &dom[dom.find("<body")?..];
    let body = &body[..body.find('>')?];
    let start = body.find(&format!("{name}=\""))? + name.len() + 2;
    Some(&body[start..start + body[start..].find('"')?])
}

/// Console messages Chromium logged that are errors (uncaught exceptions, failed loads).
fn console_errors(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| l.contains("CONSOLE"))
        .filter(|l| {
            let l = l.to_lowercase();
            l.contains("error") || l.contains("uncaught") || l.contains("failed")
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_shows_live_traffic_in_a_headless_browser() {
    let Some(browser) = espresso_test_support::program("chromium", "apt-get install chromium")
    else {
        return;
    };
    let server = Arc::new(Server::start(RATE_LIMITED).await);
    let traffic = drive_traffic(&server);
    dashboard_data_with_traffic(&server, 3).await;
    let profile = tempfile::tempdir().unwrap();
    let url = server.url("/debug/dashboard");

    // What a person sees: the page's script has fetched data and drawn non-zero traffic.
    let (dom, stderr) = chromium(&browser, profile.path(), &["--dump-dom"], &url).await;
    assert!(dom.contains("espresso-server"), "no page: {dom}\n{stderr}");
    let samples: usize = body_attribute(&dom, "data-samples")
        .unwrap_or_else(|| panic!("the script never rendered data:\n{dom}\n{stderr}"))
        .parse()
        .unwrap();
    assert!(samples >= 3, "{samples} samples");
    let peak: f64 = body_attribute(&dom, "data-peak-rps")
        .unwrap()
        .parse()
        .unwrap();
    assert!(peak > 0.0, "the requests chart shows no traffic");
    let max = |id: &str| -> f64 {
        let at = dom.find(&format!("id=\"{id}\"")).unwrap();
        let tag = &dom[at..at + dom[at..].find('>').unwrap()];
        let start = tag.find("data-max=\"").unwrap() + 10;
        tag[start..start + tag[start..].find('"').unwrap()]
            .parse()
            .unwrap()
    };
    for chart in ["c-rps", "c-latency", "c-status", "c-verdicts", "c-rss"] {
        assert!(max(chart) > 0.0, "chart {chart} is flat");
    }
    assert!(
        dom.contains(">abuse<"),
        "the top categories table lists the hits"
    );
    assert!(
        dom.contains("class=\"state live\""),
        "the page says it is live"
    );
    assert_eq!(
        body_attribute(&dom, "data-errors"),
        None,
        "page errors:\n{dom}"
    );
    assert!(
        console_errors(&stderr).is_empty(),
        "console errors: {:?}",
        console_errors(&stderr)
    );

    // And a picture of it, to look at.
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("ops");
    std::fs::create_dir_all(&dir).unwrap();
    let shot = dir.join("dashboard.png");
    let _ = std::fs::remove_file(&shot);
    let arg = format!("--screenshot={}", shot.display());
    let (_, stderr) = chromium(&browser, profile.path(), &[&arg], &url).await;
    traffic.abort();
    let png = std::fs::read(&shot).unwrap_or_else(|e| panic!("no screenshot ({e}):\n{stderr}"));
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 10_000);
    println!("dashboard screenshot: {}", shot.display());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debug_endpoints_follow_the_config() {
    // Defaults: dashboard on, profiling off.
    let server = Server::start("").await;
    let page = server.get("/debug/dashboard").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let body = String::from_utf8_lossy(&page.body);
    assert!(body.contains("/debug/dashboard/dashboard.js") && !body.contains("https://"));
    for asset in [
        "/debug/dashboard/dashboard.js",
        "/debug/dashboard/dashboard.css",
    ] {
        assert_eq!(server.get(asset).await.status, StatusCode::OK, "{asset}");
    }
    assert_eq!(
        server.get("/debug/pprof/profile?seconds=1").await.status,
        StatusCode::NOT_FOUND
    );

    let server = Server::start("[debug]\ndashboard = false\n").await;
    assert_eq!(
        server.get("/debug/dashboard").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        server.get("/debug/dashboard/data").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cpu_profiles_are_pprof_protobuf_or_flame_graphs_one_at_a_time() {
    let server = Arc::new(Server::start("[debug]\npprof = true\npprof_max_seconds = 5\n").await);
    for bad in [
        "seconds=0",
        "seconds=6",
        "seconds=abc",
        "seconds=1&format=gif",
    ] {
        let reply = server.get(&format!("/debug/pprof/profile?{bad}")).await;
        let code = reply.error_code(StatusCode::BAD_REQUEST);
        assert!(
            code == "bad_seconds" || code == "bad_format",
            "{bad}: {code}"
        );
    }

    let traffic = drive_traffic(&server);
    // Two at once: one profiles, the other is told to come back.
    let (a, b) = tokio::join!(
        server.get("/debug/pprof/profile?seconds=1"),
        server.get("/debug/pprof/profile?seconds=1"),
    );
    let (profile, busy) = if a.status == StatusCode::OK {
        (a, b)
    } else {
        (b, a)
    };
    assert_eq!(profile.status, StatusCode::OK);
    assert_eq!(busy.error_code(StatusCode::CONFLICT), "profile_running");
    assert_eq!(profile.headers["content-type"], "application/octet-stream");
    let decoded = pprof::protos::Profile::decode(profile.body.as_ref())
        .expect("the body is a pprof protobuf profile");
    assert!(!decoded.sample_type.is_empty());
    let strings = &decoded.string_table;
    assert_eq!(
        strings[0], "",
        "pprof string tables start with the empty string"
    );
    let kind = &strings[decoded.sample_type[0].ty as usize];
    assert!(!kind.is_empty());
    assert!(!decoded.sample.is_empty(), "a busy server yields samples");
    assert!(!decoded.function.is_empty() && !decoded.location.is_empty());
    assert!(decoded.duration_nanos > 0);

    // Free again: a flame graph.
    let svg = server
        .get("/debug/pprof/profile?seconds=1&format=svg")
        .await;
    traffic.abort();
    assert_eq!(svg.status, StatusCode::OK);
    assert_eq!(svg.headers["content-type"], "image/svg+xml");
    let svg = String::from_utf8_lossy(&svg.body);
    assert!(svg.contains("<svg") && svg.contains("</svg>"), "{svg:.200}");
}

#[tokio::test]
async fn a_request_timeout_with_no_whole_second_to_spare_refuses_profiles_saying_why() {
    // a profile must end a second before the request timeout: 1.5 s leaves no whole second
    let server = Server::start_with("request_timeout_ms = 1500\n", "[debug]\npprof = true\n").await;
    for query in ["", "?seconds=1"] {
        let reply = server.get(&format!("/debug/pprof/profile{query}")).await;
        assert_eq!(reply.error_code(StatusCode::BAD_REQUEST), "bad_seconds");
        let message = reply.json()["error"]["message"].to_string();
        assert!(message.contains("request_timeout_ms"), "{message}");
    }
    assert!(
        server
            .logs()
            .iter()
            .any(|l| l.contains("WARN") && l.contains("leaves no whole second for a profile")),
        "{:#?}",
        server.logs()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_log_lines_land_in_the_rolling_file() {
    let log = "[log]\nformat = \"json\"\nfile = \"logs/espresso.log\"\nrotation = \"daily\"\nmax_files = 2\n";
    let server = Server::start(log).await;
    // A rejected reload logs an error: break the config, keep the log section.
    harness::write_atomically(
        &server.path("espresso.toml"),
        format!(
            "{}\n[rate_limit]\nper_second = \"fast\"\n",
            harness::config("", log)
        ),
    );
    let dir = server.path("logs");
    let mut found = None;
    for _ in 0..100 {
        let lines: Vec<String> = std::fs::read_dir(&dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| std::fs::read_to_string(e.path()).ok())
            .flat_map(|text| text.lines().map(str::to_owned).collect::<Vec<_>>())
            .collect();
        found = lines
            .into_iter()
            .find(|l| l.contains("config reload rejected"));
        if found.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let line = found.expect("the reload error reaches the log file");
    let json: serde_json::Value = serde_json::from_str(&line).expect("one JSON object a line");
    assert_eq!(json["level"], "ERROR");
    assert_eq!(
        json["fields"]["message"],
        "config reload rejected; keeping the running config"
    );
    assert!(json["timestamp"].is_string());
    // Rotated names: <stem>.<date>.<ext>.
    let names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
    assert!(
        names[0].starts_with("espresso.") && names[0].ends_with(".log"),
        "{names:?}"
    );
    // stderr gets the same line as JSON too (read from the pipe on a thread of its own, so
    // it may come after the file's)
    eventually(|| async {
        server
            .logs()
            .iter()
            .any(|l| l.starts_with('{') && l.contains("config reload rejected"))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_files_beyond_max_files_are_deleted() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("words")).unwrap();
    std::fs::write(dir.path().join("words/danger.txt"), harness::DANGER).unwrap();
    std::fs::write(dir.path().join("words/normal.txt"), harness::NORMAL).unwrap();
    std::fs::write(dir.path().join("words/allow.txt"), harness::ALLOW).unwrap();
    let log = "[log]\nfile = \"logs/espresso.log\"\nrotation = \"daily\"\nmax_files = 3\n";
    std::fs::write(dir.path().join("espresso.toml"), harness::config("", log)).unwrap();
    // Files left by earlier runs, oldest first, plus one that is not a log file of ours.
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    for day in ["2020-01-01", "2020-01-02", "2020-01-03", "2020-01-04"] {
        std::fs::write(logs.join(format!("espresso.{day}.log")), "old\n").unwrap();
    }
    std::fs::write(logs.join("notes.txt"), "keep me\n").unwrap();

    let server = Server::start_in(dir).await;
    assert_eq!(server.get("/healthz").await.status, StatusCode::OK);
    let mut names: Vec<String> = std::fs::read_dir(server.path("logs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    // Today's file and `max_files` = 3 old ones (which old one goes is decided by file
    // creation time, the same instant here); other files are left alone.
    assert_eq!(names.len(), 5, "{names:?}");
    assert_eq!(names[4], "notes.txt");
    let old = names
        .iter()
        .filter(|n| n.starts_with("espresso.2020-"))
        .count();
    assert_eq!(old, 3, "{names:?}");
    assert!(names[3].starts_with("espresso.") && !names[3].starts_with("espresso.2020-"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_files_rotate_at_a_size_limit() {
    // Every request is a slow call, so every request writes a WARN line of a few hundred bytes.
    let log = "[log]\nfile = \"logs/espresso.log\"\nrotation = \"size\"\nmax_size_bytes = 2000\nmax_files = 2\n\
               [slow_call]\nthreshold_ms = 0\n";
    let server = Server::start(log).await;
    for _ in 0..40 {
        server.filter("fill the log").await;
    }
    let logs = server.path("logs");
    let mut names = Vec::new();
    for _ in 0..100 {
        names = std::fs::read_dir(&logs)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        if names.len() == 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // The live file and exactly `max_files` rotated ones; older ones were deleted.
    assert_eq!(names, ["espresso.log", "espresso.log.1", "espresso.log.2"]);

    for name in &names[1..] {
        let size = std::fs::metadata(logs.join(name)).unwrap().len();
        // Rotated once past the limit: at most one line over it.
        assert!((2000..4000).contains(&size), "{name}: {size} bytes");
    }
}
