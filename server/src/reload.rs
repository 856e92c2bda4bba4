//! Hot reload: the config file and the word lists it names are checked for changes; a valid
//! change applies without a restart, an invalid one keeps the running config (log + metric).
//! [`KEYS`](crate::config::KEYS) says which keys a reload applies; a change to any other is
//! logged and counted as waiting for a restart.

use crate::{
    App,
    config::{self, Applies, Config},
};
use espresso_filter_core::{Dictionary, ListSource, Sources};
use std::{
    hash::{DefaultHasher, Hash, Hasher},
    path::{Path, PathBuf},
    time::Duration,
};

/// Logs what a build of the word lists left out or kept other than its line says, one WARN
/// each (the first few; `--check-config` prints them all): an entry that is only noise, a word
/// listed twice with two categories. The lists are in use either way.
pub(crate) fn warn_lists(dictionary: &Dictionary) {
    const SHOWN: usize = 10;
    let warnings = dictionary.warnings();
    for warning in warnings.iter().take(SHOWN) {
        tracing::warn!("word lists: {warning}");
    }
    if let Some(more) = warnings.len().checked_sub(SHOWN).filter(|&n| n > 0) {
        tracing::warn!(
            "word lists: {more} more warnings like these; `espresso-server --check-config FILE` \
             prints them all"
        );
    }
}

/// The word lists a config names, or the built-in lists when it names none.
pub(crate) fn filter_sources(config: &Config) -> Sources {
    let filter = &config.filter;
    if filter.lists.is_empty() && filter.allow.is_empty() {
        return Sources::builtin();
    }
    if filter.lists.is_empty() {
        tracing::warn!(
            "filter.allow is set and filter.lists is empty: no config list blocks a word (the \
             built-in lists are used only when both are empty); add [[filter.lists]], or remove \
             filter.allow to use the built-in lists"
        );
    }
    let mut sources = Sources::new();
    for list in &filter.lists {
        let mut source = ListSource::file(&list.path, list.level).pinyin(list.pinyin);
        if let Some(category) = &list.category {
            source = source.category(category);
        }
        if let Some(window) = list.rule_window {
            source = source.rule_window(window);
        }
        sources = sources.list(source);
    }
    filter
        .allow
        .iter()
        .fold(sources, |s, path| s.allow_file(path))
}

/// The engine options a config asks for: every normalization on (the defaults) and the
/// `[filter.detectors]` settings, with the extra IM keyword files read.
pub(crate) fn filter_options(
    config: &Config,
) -> Result<espresso_filter_core::Options, espresso_filter_core::LoadError> {
    use espresso_filter_core::{Detectors, LoadError, Options};
    let d = &config.filter.detectors;
    let mut detectors = Detectors::new()
        .url(d.url)
        .email(d.email)
        .phone(d.phone)
        .im(d.im)
        .allow_domains(&d.allow_domains);
    for path in &d.im_keywords {
        let text = std::fs::read_to_string(path).map_err(|source| LoadError::Io {
            path: path.clone(),
            source,
        })?;
        detectors = detectors.im_keywords(&path.display().to_string(), &text)?;
    }
    Ok(Options::default().detectors(detectors))
}

/// Loads the config at start-up, with the fingerprint of what was loaded for [`watch`].
///
/// The files are fingerprinted *before* the word lists are read to build, here and on every
/// reload, so a change that lands in between is seen by the next poll, never lost.
pub(crate) async fn load(path: &Path) -> Result<(Config, u64), crate::config::ConfigError> {
    let text = tokio::fs::read(path).await.ok();
    let config = Config::from_text(
        path,
        &String::from_utf8_lossy(text.as_deref().unwrap_or_default()),
    );
    let config = match (config, &text) {
        (Ok(config), Some(_)) => config,
        // Unreadable: let `Config::load` word the error.
        _ => Config::load(path)?,
    };
    let fingerprint = Snapshot::with_text(text, &config).await.fingerprint;
    warn_unread(&config);
    Ok((config, fingerprint))
}

/// Logs what `config` sets that is not read ([`Config::warnings`]).
fn warn_unread(config: &Config) {
    for warning in config.warnings() {
        tracing::warn!("config: {warning}");
    }
}

/// Polls `path` and its word lists every `server.reload_interval_ms`, and on SIGHUP, and
/// applies changes;
/// `started` is the config as [`load`] read it from the file (before command-line overrides),
/// `seen` the fingerprint it returned.
pub(crate) fn watch(
    path: PathBuf,
    started: Config,
    mut seen: u64,
    app: App,
) -> impl Future<Output = ()> {
    let interval = Duration::from_millis(started.server.reload_interval_ms);
    // SIGHUP (`kill -HUP`, systemd's `ExecReload`) checks the files at once, polling on or off;
    // without a handler it would end the process.
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .inspect_err(|error| tracing::warn!(%error, "SIGHUP cannot be caught: it ends the process"))
        .ok();
    // caught from here on, before the caller spawns the watch
    async move {
        // The files named by the newest config that parsed, applied or not: a config whose lists
        // fail to load is retried when one of *its* files changes, not on every poll.
        let mut watched = started.clone();
        let mut running = started.clone();
        loop {
            next_check(interval, &mut hangup).await;
            let snapshot = Snapshot::take(&path, &watched).await;
            if snapshot.fingerprint == seen {
                continue;
            }
            seen = snapshot.fingerprint;
            let text = String::from_utf8_lossy(snapshot.config.as_deref().unwrap_or_default());
            let new = match Config::from_text(&path, &text) {
                Ok(new) if snapshot.config.is_some() => new,
                Ok(_) => {
                    reject(&app, &format!("cannot read {}", path.display()));
                    continue;
                }
                Err(error) => {
                    reject(&app, &error.to_string());
                    continue;
                }
            };
            let quota_live = app.rate_limit_quota.is_some();
            let restart = match restart_required(&started, &running, &new, quota_live) {
                Ok(keys) => keys,
                Err(error) => {
                    reject(&app, &error.to_string());
                    continue;
                }
            };
            if new.watched_files().ne(watched.watched_files()) {
                seen = Snapshot::with_text(snapshot.config, &new).await.fingerprint;
            }
            watched = new.clone();
            warn_unread(&new);
            // Building a dictionary takes milliseconds of CPU: keep it off the request workers.
            let options = match filter_options(&new) {
                Ok(options) => options,
                Err(error) => {
                    reject(&app, &error.to_string());
                    continue;
                }
            };
            // The lists made through the API stay as they are.
            let built = app.lists.set_config(filter_sources(&new), options).await;
            match built {
                Ok(version) => {
                    // The `Applies::OnReload` keys besides the word lists, built just above.
                    app.degrade_switch.set(new.degrade.force);
                    app.slow_call_threshold_ms.store(
                        new.slow_call.threshold_ms,
                        std::sync::atomic::Ordering::Relaxed,
                    );
                    if let Some(quota) = &app.rate_limit_quota {
                        quota.set(crate::rate_limit::quota(&new.rate_limit));
                    }
                    for key in restart {
                        app.metrics.restart_required.with_label_values(&[key]).inc();
                        tracing::warn!(key, "config key changed; a restart applies it");
                    }
                    running = new;
                    app.metrics.reloads.with_label_values(&["applied"]).inc();
                    app.metrics.dictionary_loaded(&app.filter);
                    warn_lists(&app.filter.dictionary());
                    tracing::info!(version, "config reloaded");
                }
                Err(error) => reject(
                    &app,
                    &crate::lists::NameClash::in_config(error, &path).to_string(),
                ),
            }
        }
    }
}

/// Waits for the next look at the files: `interval` (zero: polling off), or a SIGHUP.
async fn next_check(interval: Duration, hangup: &mut Option<tokio::signal::unix::Signal>) {
    let poll = async {
        if interval.is_zero() {
            std::future::pending::<()>().await;
        }
        tokio::time::sleep(interval).await;
    };
    match hangup {
        Some(hangup) => tokio::select! {
            () = poll => {}
            _ = hangup.recv() => tracing::info!("SIGHUP: checking the config and word lists now"),
        },
        None => poll.await,
    }
}

fn reject(app: &App, error: &str) {
    app.metrics.reloads.with_label_values(&["invalid"]).inc();
    tracing::error!(%error, "config reload rejected; keeping the running config");
}

/// The restart-only keys this reload changes (from `running`, the last config applied) that
/// now differ from `started`, what the process runs with: changing a key back is no warning.
/// Without a live limiter (`quota_live` false: rate limiting was off at start) its quota keys
/// are restart-only too: there is no limiter to give the new quota to.
fn restart_required(
    started: &Config,
    running: &Config,
    new: &Config,
    quota_live: bool,
) -> Result<Vec<&'static str>, toml::ser::Error> {
    let pending = config::changed(started, new)?;
    let needs_restart = |(key, applies): &(&str, Applies)| {
        *applies == Applies::OnRestart
            || (!quota_live && matches!(*key, "rate_limit.per_second" | "rate_limit.burst"))
    };
    Ok(config::changed(running, new)?
        .into_iter()
        .filter(|change| needs_restart(change) && pending.contains(change))
        .map(|(key, _)| key)
        .collect())
}

/// The config file's bytes and a hash of it and every file the config names; a missing file
/// hashes as missing, so deleting a list is a change too.
struct Snapshot {
    config: Option<Vec<u8>>,
    fingerprint: u64,
}

impl Snapshot {
    async fn take(path: &Path, config: &Config) -> Self {
        Self::with_text(tokio::fs::read(path).await.ok(), config).await
    }

    async fn with_text(text: Option<Vec<u8>>, config: &Config) -> Self {
        let mut hasher = DefaultHasher::new();
        text.hash(&mut hasher);
        for file in config.watched_files() {
            file.hash(&mut hasher);
            tokio::fs::read(file).await.ok().hash(&mut hasher);
        }
        Self {
            config: text,
            fingerprint: hasher.finish(),
        }
    }
}
