//! Where log lines go: stderr always, plus an optional rolling file, as text or JSON lines.
//!
//! The file is written by a background thread
//! ([`tracing_appender::non_blocking`](mod@tracing_appender::non_blocking)): a request that logs
//! only pushes the line into a bounded queue (128 000 lines). When the disk cannot keep
//! up, new lines are dropped rather than slowing requests down, and counted in
//! `espresso_log_dropped_lines_total`. The [`LogGuard`] flushes the queue when dropped, so keep
//! it alive for the whole process.
//!
//! ```toml
//! [log]
//! format = "json"          # "text" | "json"
//! file = "logs/espresso.log"  # empty: stderr only
//! rotation = "daily"       # "daily" | "hourly" | "minutely" | "never" | "size"
//! max_files = 7            # rotated files kept, oldest deleted first
//! max_size_bytes = 104857600  # with rotation = "size"
//! ```
//!
//! With `rotation = "daily"` the file `logs/espresso.log` is written as
//! `logs/espresso.2026-11-25.log`, a new one each day. With `rotation = "size"` it is written
//! as `logs/espresso.log` until it passes `max_size_bytes`, then moved to `logs/espresso.log.1`
//! (the previous `.1` to `.2`, and so on up to `max_files`).

use crate::config::{LogConfig, LogFormat, LogRotation};
use file_rotate::{ContentLimit, FileRotate, compression::Compression, suffix::AppendCount};
use prometheus::{
    IntCounter, Opts,
    core::{Collector, Desc},
    proto::MetricFamily,
};
use std::{
    io::{self, IsTerminal},
    path::Path,
    sync::OnceLock,
};
use tracing::Subscriber;
use tracing_appender::{
    non_blocking::{ErrorCounter, NonBlockingBuilder, WorkerGuard},
    rolling::{Builder, Rotation},
};
use tracing_subscriber::{EnvFilter, Layer, filter::Targets, fmt, registry::LookupSpan};

/// The dropped-line counter of the process' log file, once one is open.
static DROPPED: OnceLock<ErrorCounter> = OnceLock::new();

/// Keeps the log file's writer thread running; dropping it flushes the lines still queued.
#[derive(Debug)]
#[must_use = "dropping the guard stops the log file writer"]
pub struct LogGuard(#[allow(dead_code)] Option<WorkerGuard>);

/// A boxed layer over any subscriber that has span storage.
pub type BoxedLayer<S> = Box<dyn Layer<S> + Send + Sync + 'static>;

/// Which log lines `RUST_LOG` lets through (the default: `info`).
#[derive(Debug, Clone)]
pub enum LogFilter {
    /// Levels per target only (`warn`, `info,espresso_server=debug`): decided once per call
    /// site, nothing to do when a span is entered or left, which is every poll of every
    /// instrumented future.
    Targets(Targets),
    /// Directives that look at spans or fields (`[request{method=POST}]=debug`):
    /// tracing-subscriber's `EnvFilter`, which checks every span entered and left.
    Env(String),
}

impl LogFilter {
    /// The filter `RUST_LOG` asks for. Directives that do not parse are said on stderr (no log
    /// is set up yet), and `info` is used.
    pub fn from_env() -> Self {
        let filter = Self::parse(&std::env::var("RUST_LOG").unwrap_or_default());
        if let Self::Env(directives) = &filter
            && let Err(error) = EnvFilter::try_new(directives)
        {
            eprintln!(
                "espresso-server: RUST_LOG={directives:?} is not valid ({error}); logging at info"
            );
            return Self::parse("");
        }
        filter
    }

    /// The filter for `directives` in `RUST_LOG` syntax; empty or invalid: `info`.
    pub fn parse(directives: &str) -> Self {
        let directives = directives.trim();
        if directives.is_empty() {
            return Self::Targets(Targets::new().with_default(tracing::Level::INFO));
        }
        match directives.parse::<Targets>() {
            Ok(targets) if !directives.contains(['[', '{']) => Self::Targets(targets),
            _ => Self::Env(directives.to_owned()),
        }
    }

    fn apply<S, L>(&self, layer: L) -> BoxedLayer<S>
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
        L: Layer<S> + Send + Sync + 'static,
    {
        match self {
            Self::Targets(targets) => layer.with_filter(targets.clone()).boxed(),
            Self::Env(directives) => {
                let env = EnvFilter::try_new(directives).unwrap_or_else(|_| EnvFilter::new("info"));
                layer.with_filter(env).boxed()
            }
        }
    }
}

/// The log layers `log` asks for: stderr, and the rolling file when `log.file` is set, each
/// filtered by `filter`. Fails when the file's folder cannot be created or opened.
pub fn layers<S>(log: &LogConfig, filter: &LogFilter) -> io::Result<(Vec<BoxedLayer<S>>, LogGuard)>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let json = log.format == LogFormat::Json;
    let stderr = fmt::layer()
        .with_writer(io::stderr)
        .with_ansi(!json && io::stderr().is_terminal());
    let mut layers = vec![if json {
        filter.apply(stderr.json())
    } else {
        filter.apply(stderr)
    }];
    if log.file.as_os_str().is_empty() {
        return Ok((layers, LogGuard(None)));
    }
    let builder = NonBlockingBuilder::default()
        .lossy(true)
        .thread_name("espresso-log-writer");
    let named =
        |e: io::Error| io::Error::new(e.kind(), format!("log.file {}: {e}", log.file.display()));
    let (writer, guard) = match rolling_every(log.rotation) {
        Some(rotation) => builder.finish(rolling(log, rotation).map_err(named)?),
        None => builder.finish(by_size(log).map_err(named)?),
    };
    let _ = DROPPED.set(writer.error_counter());
    // Fields of its own: two layers with one field formatter share the text a span's fields
    // were formatted to, and each appended a field recorded later (`request_id`) to it.
    let file = fmt::layer()
        .fmt_fields(FileFields::default())
        .with_writer(writer)
        .with_ansi(false);
    layers.push(if json {
        filter.apply(file.json())
    } else {
        filter.apply(file)
    });
    Ok((layers, LogGuard(Some(guard))))
}

/// The log file's field formatter: the default one, as a type of its own (see [`layers`]).
#[derive(Default)]
struct FileFields(fmt::format::DefaultFields);

impl<'w> fmt::FormatFields<'w> for FileFields {
    fn format_fields<R: tracing_subscriber::field::RecordFields>(
        &self,
        writer: fmt::format::Writer<'w>,
        fields: R,
    ) -> std::fmt::Result {
        self.0.format_fields(writer, fields)
    }
}

/// A file rotated when it reaches `max_size_bytes`: `<file>.1` is the newest rotated file, and
/// at most `max_files` of them are kept.
fn by_size(log: &LogConfig) -> io::Result<FileRotate<AppendCount>> {
    if let Some(dir) = log.file.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    // `FileRotate` opens the file lazily and drops every line it cannot write: open it here,
    // so that a file that cannot be written stops the start as the time-rotated one does.
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log.file)?;
    Ok(FileRotate::new(
        &log.file,
        AppendCount::new(log.max_files.max(1)),
        ContentLimit::BytesSurpassed(log.max_size_bytes as usize),
        Compression::None,
        None,
    ))
}

/// The time-based rotation `rotation` asks for; `None` for `"size"`.
fn rolling_every(rotation: LogRotation) -> Option<Rotation> {
    match rotation {
        LogRotation::Daily => Some(Rotation::DAILY),
        LogRotation::Hourly => Some(Rotation::HOURLY),
        LogRotation::Minutely => Some(Rotation::MINUTELY),
        LogRotation::Never => Some(Rotation::NEVER),
        LogRotation::Size => None,
    }
}

fn rolling(
    log: &LogConfig,
    rotation: Rotation,
) -> io::Result<tracing_appender::rolling::RollingFileAppender> {
    let dir = match log.file.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir)?;
    let name = log.file.file_name().unwrap_or("espresso.log".as_ref());
    let name = Path::new(name);
    let prefix = name
        .file_stem()
        .map_or("espresso".into(), |s| s.to_string_lossy());
    let mut builder = Builder::new()
        .rotation(rotation)
        .filename_prefix(prefix.as_ref())
        // tracing-appender counts the file being written among the ones it keeps
        .max_log_files(log.max_files.max(1) + 1);
    if let Some(ext) = name.extension() {
        builder = builder.filename_suffix(ext.to_string_lossy().as_ref());
    }
    builder.build(dir).map_err(io::Error::other)
}

/// `espresso_log_dropped_lines_total`: lines the log file writer dropped because its queue was
/// full; 0 while no log file is open.
pub(crate) struct DroppedLines {
    desc: Desc,
}

impl DroppedLines {
    pub(crate) fn new() -> Self {
        Self {
            desc: Desc::new(
                DROPPED_NAME.into(),
                DROPPED_HELP.into(),
                Vec::new(),
                Default::default(),
            )
            .expect("valid metric description"),
        }
    }
}

const DROPPED_NAME: &str = "espresso_log_dropped_lines_total";
const DROPPED_HELP: &str = "Log lines dropped because the log file writer fell behind.";

impl Collector for DroppedLines {
    fn desc(&self) -> Vec<&Desc> {
        vec![&self.desc]
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let counter =
            IntCounter::with_opts(Opts::new(DROPPED_NAME, DROPPED_HELP)).expect("valid metric");
        counter.inc_by(DROPPED.get().map_or(0, |c| c.dropped_lines()) as u64);
        counter.collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_levels_use_targets_and_span_directives_use_env_filter() {
        assert!(matches!(LogFilter::parse(""), LogFilter::Targets(_)));
        assert!(matches!(LogFilter::parse("warn"), LogFilter::Targets(_)));
        assert!(matches!(
            LogFilter::parse("info,espresso_server=debug"),
            LogFilter::Targets(_)
        ));
        assert!(matches!(
            LogFilter::parse("[request{method=POST}]=debug"),
            LogFilter::Env(_)
        ));
        let LogFilter::Targets(targets) = LogFilter::parse("warn,espresso_server=debug") else {
            panic!("targets expected");
        };
        assert!(targets.would_enable("espresso_server::reload", &tracing::Level::DEBUG));
        assert!(!targets.would_enable("hyper", &tracing::Level::INFO));
        let LogFilter::Targets(default) = LogFilter::parse("") else {
            panic!("targets expected");
        };
        assert!(default.would_enable("anything", &tracing::Level::INFO));
        assert!(!default.would_enable("anything", &tracing::Level::DEBUG));
    }

    #[test]
    fn a_span_field_recorded_later_is_written_once_to_the_file() {
        use tracing_subscriber::prelude::*;
        let dir = tempfile::tempdir().unwrap();
        let log = LogConfig {
            file: dir.path().join("logs/espresso.log"),
            rotation: LogRotation::Size,
            ..LogConfig::default()
        };
        let (layers, guard) = layers(&log, &LogFilter::parse("info")).unwrap();
        let subscriber = tracing_subscriber::registry().with(layers);
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("request", request_id = tracing::field::Empty);
            span.record("request_id", "abc");
            span.in_scope(|| tracing::warn!("slow call"));
        });
        drop(guard);
        let text = std::fs::read_to_string(&log.file).unwrap();
        assert_eq!(text.matches("request_id=").count(), 1, "{text}");
    }

    #[test]
    fn a_size_rotated_file_that_cannot_be_opened_stops_the_start_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let log = LogConfig {
            file: dir.path().to_owned(),
            rotation: LogRotation::Size,
            ..LogConfig::default()
        };
        let error = layers::<tracing_subscriber::Registry>(&log, &LogFilter::parse("info"))
            .err()
            .expect("a folder is no log file");
        assert!(error.to_string().starts_with("log.file "), "{error}");
    }
}
