//! `espresso-server [--config FILE] [--listen ADDR]`, or `espresso-server --check-config FILE`

// The whole server is one future (`espresso_server::run`), and computing its layout nests
// deeper than rustc's default limit of 128 allows with every feature of the workspace on.
#![recursion_limit = "256"]

use espresso_server::{
    Options,
    ops::logfile::{self, LogFilter},
};
use espresso_slow_call::{SlowCallRecorder, otel};
use std::{
    io::Write,
    path::{Path, PathBuf},
    process::ExitCode,
};

// Every request allocates (bodies, headers, spans, JSON): mimalloc's thread-local free lists
// cost a fraction of glibc's malloc here (figures in BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use tracing_subscriber::{filter::LevelFilter, prelude::*};

const USAGE: &str = "\
usage: espresso-server [--config FILE] [--listen ADDR]
       espresso-server --check-config FILE

  --config FILE        TOML config (every key has a default; see docs/config.md)
  --listen ADDR        address to listen on, overrides server.listen (default 127.0.0.1:8080)
  --check-config FILE  check FILE and the word lists it names, print the effective config
                       (defaults filled in) and exit: 0 when valid, 1 otherwise

Logs go to stderr (and to [log] file when set); RUST_LOG sets the level (default: info).";

/// What the command line asks for.
#[derive(Debug)]
enum Command {
    Serve(Options),
    CheckConfig(PathBuf),
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Command, String> {
    let mut options = Options::default();
    let mut check = None;
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) => (flag.to_owned(), Some(value.to_owned())),
            None => (arg, None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        match flag.as_str() {
            "--config" | "-c" => options.config = Some(value()?.into()),
            "--check-config" => check = Some(PathBuf::from(value()?)),
            "--listen" | "-l" => {
                let addr = value()?;
                let addr = addr
                    .parse()
                    .map_err(|e| format!("--listen {addr:?}: {e}"))?;
                options.listen = Some(addr);
            }
            "--help" | "-h" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    match check {
        Some(_) if options.config.is_some() || options.listen.is_some() => {
            Err("--check-config takes no other flag".into())
        }
        Some(file) => Ok(Command::CheckConfig(file)),
        None => Ok(Command::Serve(options)),
    }
}

/// `--check-config FILE`: the effective config on stdout, or the error on stderr.
fn check_config(file: &Path) -> ExitCode {
    match espresso_server::check_config(file) {
        Ok(effective) => {
            let text = format!(
                "# {}: valid. The effective config, every default filled in:\n\n{effective}\n",
                file.display()
            );
            match std::io::stdout().lock().write_all(text.as_bytes()) {
                // a reader that stopped early (`| head`) is no failure of the check
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                    eprintln!("espresso-server: writing the effective config: {e}");
                    ExitCode::FAILURE
                }
                _ => ExitCode::SUCCESS,
            }
        }
        Err(e) => {
            eprintln!("espresso-server: {e}");
            ExitCode::FAILURE
        }
    }
}

fn main() -> ExitCode {
    let options = match parse_args(std::env::args().skip(1)) {
        Ok(Command::Serve(options)) => options,
        Ok(Command::CheckConfig(file)) => return check_config(&file),
        Err(message) if message.is_empty() => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("espresso-server: {message}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("espresso-server: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(options)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("espresso-server: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Sets up logs, slow-call trees and (when the OTEL_EXPORTER_OTLP_* variables say where) trace
/// export, runs the server, then flushes what the exporter still holds.
async fn serve(options: Options) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let otel = otel::init_from_env()?;
    // RUST_LOG filters the log output only: the slow-call trees and exported traces keep every
    // INFO span whatever the log level.
    // `[log]` is read here, before anything logs; a bad config is reported by `run` below.
    let log = (options.config.as_deref())
        .and_then(|file| espresso_server::config::Config::load(file).ok())
        .map(|config| config.log)
        .unwrap_or_default();
    let filter = LogFilter::from_env();
    // The guard flushes the log file's queue when `serve` returns.
    let (mut layers, _log_guard) = logfile::layers(&log, &filter)?;
    // In the list, not as an `Option` layer: a `None` layer enables every span and event for
    // the whole subscriber, so each request would create a root span nobody wants.
    if let Some(otel) = &otel {
        layers.push(otel.layer().with_filter(LevelFilter::INFO).boxed());
    }
    tracing_subscriber::registry()
        .with(SlowCallRecorder::new().filtered(LevelFilter::INFO))
        .with(layers)
        .init();
    let result = espresso_server::run(options).await;
    if let Some(otel) = otel {
        // Flushing blocks on the exporter: keep it off the runtime's workers.
        match tokio::task::spawn_blocking(move || otel.shutdown()).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::warn!(%error, "could not flush traces"),
            Err(error) => tracing::warn!(%error, "could not flush traces"),
        }
    }
    result
}
