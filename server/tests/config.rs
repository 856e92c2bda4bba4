//! The config file from the outside: `--check-config` as an operator's CI runs it, a bad value
//! at start-up, and reloads that apply a key or say it waits for a restart.
//!
//! The server is the real binary (see `server/harness.rs`).

#[allow(dead_code)]
#[path = "server/harness.rs"]
mod harness;

use espresso_server::config::Config;
use espresso_test_support::eventually;
use harness::{Server, write_atomically};
use http::StatusCode;
use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
    time::Duration,
};

fn shipped_config() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("espresso.toml")
}

fn check_config(file: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_espresso-server"))
        .arg("--check-config")
        .arg(file)
        .output()
        .expect("the server binary runs")
}

/// A config whose `rate_limit.key` is misspelt on line 4.
const MISSPELT_KEY: &str = "[server]\nlisten = \"127.0.0.1:0\"\n[rate_limit]\nkey = \"ipp\"\n";

fn assert_names_the_misspelt_key(stderr: &[u8], file: &Path) {
    let stderr = String::from_utf8_lossy(stderr);
    assert!(stderr.contains(&file.display().to_string()), "{stderr}");
    assert!(stderr.contains("line 4"), "{stderr}");
    assert!(stderr.contains("key `rate_limit.key`"), "{stderr}");
    assert!(
        stderr.contains(r#"expected "ip", "global" or "header:<name>""#),
        "{stderr}"
    );
}

#[test]
fn check_config_prints_the_effective_config_of_the_shipped_file() {
    let file = shipped_config();
    let output = check_config(&file);
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // Every section, the defaults the file leaves out included, as TOML that reads back as the
    // config the server would run.
    for section in [
        "[server]",
        "[request_id]",
        "[rate_limit]",
        "[slow_call]",
        "[classifier]",
        "[cache]",
        "[degrade]",
        "[filter]",
        "[debug]",
        "[log]",
    ] {
        assert!(stdout.contains(section), "{section} missing:\n{stdout}");
    }
    assert!(
        stdout.contains("limit = \"gradient-controller\""),
        "{stdout}"
    );
    assert!(stdout.contains("key = \"ip\""), "{stdout}");
    let effective = Config::parse(&stdout).unwrap();
    assert_eq!(effective, Config::load(&file).unwrap());
}

#[test]
fn check_config_fills_in_what_a_file_leaves_out() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("espresso.toml");
    std::fs::write(&file, "[rate_limit]\nkey = \"header:x-api-key\"\n").unwrap();
    let output = check_config(&file);
    assert!(output.status.success());
    let effective = Config::parse(&String::from_utf8(output.stdout).unwrap()).unwrap();
    let mut expected = Config::default();
    expected.rate_limit.key = "header:x-api-key".parse().unwrap();
    // relative paths are shown resolved against the config's folder
    expected.lists.dir = dir.path().join("lists");
    assert_eq!(effective, expected);
}

#[test]
fn check_config_on_a_misspelt_value_names_the_key_its_line_and_the_allowed_values() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("espresso.toml");
    std::fs::write(&file, MISSPELT_KEY).unwrap();
    let output = check_config(&file);
    assert_eq!(output.status.code(), Some(1));
    assert!(output.stdout.is_empty());
    assert_names_the_misspelt_key(&output.stderr, &file);
}

#[test]
fn check_config_reads_the_word_lists_the_file_names() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("espresso.toml");
    std::fs::write(
        &file,
        "[[filter.lists]]\npath = \"words/gone.txt\"\nlevel = \"danger\"\n",
    )
    .unwrap();
    let output = check_config(&file);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("words/gone.txt"), "{stderr}");
}

#[test]
fn check_config_reads_the_stored_lists_as_a_start_up_does() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("espresso.toml");
    std::fs::write(&file, "[lists]\ndir = \"lists\"\n").unwrap();
    std::fs::create_dir(dir.path().join("lists")).unwrap();
    std::fs::write(dir.path().join("lists/spam.json"), "{broken").unwrap();
    let output = check_config(&file);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("spam.json"), "{stderr}");
    // a folder that is a file
    std::fs::write(&file, "[lists]\ndir = \"espresso.toml\"\n").unwrap();
    let output = check_config(&file);
    assert_eq!(output.status.code(), Some(1));
}

#[test]
fn check_config_read_by_a_reader_that_stops_early_exits_0_without_a_panic() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_espresso-server"))
        .arg("--check-config")
        .arg(shipped_config())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // `| head -0`: the pipe is closed before anything is read
    drop(child.stdout.take());
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[tokio::test]
async fn starting_with_a_misspelt_value_exits_naming_the_key_its_line_and_the_allowed_values() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("espresso.toml");
    std::fs::write(&file, MISSPELT_KEY).unwrap();
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_espresso-server"))
        .arg("--config")
        .arg(&file)
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(20), output)
        .await
        .expect("the server gives up at once")
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert_names_the_misspelt_key(&output.stderr, &file);
}

const APPLIED: &str = r#"espresso_config_reloads_total{result="applied"}"#;
const MAX_KEYS_RESTART: &str =
    r#"espresso_config_restart_required_total{key="rate_limit.max_keys"}"#;

/// Edits the server's config file as an editor saves it, `from` replaced by `to`; returns the
/// text before.
fn edit_config(server: &Server, from: &str, to: &str) -> String {
    let config = server.path("espresso.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(text.contains(from), "{from:?} is not in the config");
    write_atomically(&config, text.replace(from, to));
    text
}

fn restart_warnings(server: &Server) -> Vec<String> {
    server
        .logs()
        .into_iter()
        .filter(|line| line.contains("WARN") && line.contains("a restart applies it"))
        .collect()
}

#[tokio::test]
async fn a_reload_that_changes_the_rate_limit_quota_applies_it_without_a_warning() {
    let server = Server::start("[rate_limit]\nper_second = 1000\nburst = 2000\n").await;
    // Exported from the start, at 0, for every restart-only key.
    assert_eq!(server.metric(MAX_KEYS_RESTART).await, Some(0.0));
    assert_eq!(server.filter("hello").await.status, StatusCode::OK);

    edit_config(
        &server,
        "per_second = 1000\nburst = 2000",
        "per_second = 1\nburst = 1",
    );
    eventually(|| async { server.metric(APPLIED).await == Some(1.0) }).await;
    // One token a second now: of two requests in a row, the second is refused.
    server.filter("hello").await;
    assert_eq!(
        server.filter("hello").await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(restart_warnings(&server), Vec::<String>::new());
    assert_eq!(server.metric(MAX_KEYS_RESTART).await, Some(0.0));
}

#[tokio::test]
async fn a_reload_that_changes_a_restart_only_key_warns_once_and_counts_it() {
    let server = Server::start("[rate_limit]\nmax_keys = 100000\n").await;
    let text = edit_config(&server, "max_keys = 100000", "max_keys = 10");
    eventually(|| async { server.metric(MAX_KEYS_RESTART).await == Some(1.0) }).await;
    assert_eq!(server.metric(APPLIED).await, Some(1.0));
    let warnings = restart_warnings(&server);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("rate_limit.max_keys"), "{warnings:?}");

    // Back to the value the server runs with: applied, nothing waits for a restart any more.
    write_atomically(&server.path("espresso.toml"), &text);
    eventually(|| async { server.metric(APPLIED).await == Some(2.0) }).await;
    assert_eq!(server.metric(MAX_KEYS_RESTART).await, Some(1.0));
    assert_eq!(restart_warnings(&server).len(), 1);
}

#[tokio::test]
async fn a_quota_change_while_rate_limiting_was_off_at_start_waits_for_a_restart_and_says_so() {
    let server = Server::start("[rate_limit]\nenabled = false\nper_second = 1000\n").await;
    edit_config(&server, "per_second = 1000", "per_second = 5");
    let restart = r#"espresso_config_restart_required_total{key="rate_limit.per_second"}"#;
    eventually(|| async { server.metric(restart).await == Some(1.0) }).await;
    let warnings = restart_warnings(&server);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains("rate_limit.per_second"),
        "{warnings:?}"
    );
}

fn slow_call_logged(server: &Server, request_id: &str) -> bool {
    server
        .logs()
        .iter()
        .any(|line| line.contains("slow call") && line.contains(request_id))
}

#[tokio::test]
async fn a_reload_that_changes_the_slow_call_threshold_applies_it() {
    let server = Server::start("[slow_call]\nthreshold_ms = 60000\n").await;
    let before = server.filter("hello").await.request_id().to_owned();

    edit_config(&server, "threshold_ms = 60000", "threshold_ms = 0");
    eventually(|| async { server.metric(APPLIED).await == Some(1.0) }).await;
    // Every request is slow now.
    let after = server.filter("hello").await.request_id().to_owned();
    eventually(|| async { slow_call_logged(&server, &after) }).await;
    assert!(!slow_call_logged(&server, &before));
    assert_eq!(restart_warnings(&server), Vec::<String>::new());
}

#[tokio::test]
async fn a_reload_that_turns_a_detector_on_applies_it() {
    let server = Server::start("[filter.detectors]\nphone = \"off\"\n").await;
    let text = "call 138 0013 8000";
    let reply = server.filter(text).await.json();
    assert_eq!(reply["verdict"], "pass", "{reply}");

    edit_config(&server, "phone = \"off\"", "phone = \"block\"");
    eventually(|| async { server.metric(APPLIED).await == Some(1.0) }).await;
    let reply = server.filter(text).await.json();
    assert_eq!(reply["verdict"], "block", "{reply}");
    let hit = &reply["hits"][0];
    assert_eq!(hit["category"], "phone");
    assert_eq!(hit["level"], "danger");
    assert_eq!(hit["word"], "13800138000");
    assert_eq!(&text[5..18], "138 0013 8000");
    assert_eq!(
        (hit["start"].as_u64(), hit["end"].as_u64()),
        (Some(5), Some(18))
    );
    assert_eq!(reply["masked"], "call *************");
    assert_eq!(restart_warnings(&server), Vec::<String>::new());
}

#[test]
fn check_config_of_a_relative_path_prints_absolute_paths() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("conf")).unwrap();
    std::fs::write(dir.path().join("conf/espresso.toml"), "").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_espresso-server"))
        .args(["--check-config", "conf/espresso.toml"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(output.status.success());
    let effective = Config::parse(&String::from_utf8(output.stdout).unwrap()).unwrap();
    assert!(
        effective.lists.dir.is_absolute(),
        "{:?}",
        effective.lists.dir
    );
    assert!(effective.lists.dir.ends_with("conf/lists"));
}

#[test]
fn a_rust_log_that_does_not_parse_is_said_at_start() {
    use std::io::{BufRead, BufReader};
    let mut child = Command::new(env!("CARGO_BIN_EXE_espresso-server"))
        .args(["--listen", "127.0.0.1:0"])
        .env("RUST_LOG", "bogus=[[")
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let first = BufReader::new(child.stderr.take().unwrap())
        .lines()
        .next()
        .unwrap()
        .unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        first.contains("RUST_LOG=\"bogus=[[\" is not valid"),
        "{first}"
    );
}
