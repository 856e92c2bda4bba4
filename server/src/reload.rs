//! Hot reload: the config file and the word lists it names are checked for changes; a valid
//! change applies without a restart, an invalid one keeps the running config (log + metric).

use crate::{App, config::Config};
use espresso_filter_core::{Level, ListSource, Sources};
use std::{
    hash::{DefaultHasher, Hash, Hasher},
    path::{Path, PathBuf},
    time::Duration,
};

/// The word lists a config names, or the built-in lists when it names none.
pub(crate) fn filter_sources(config: &Config) -> Sources {
    let filter = &config.filter;
    if filter.lists.is_empty() && filter.allow.is_empty() {
        return Sources::builtin();
    }
    Sources {
        lists: filter
            .lists
            .iter()
            .map(|list| ListSource {
                path: list.path.clone(),
                level: if list.level == "danger" {
                    Level::Danger
                } else {
                    Level::Normal
                },
                category: list.category.clone(),
            })
            .collect(),
        allow: filter.allow.clone(),
    }
}

/// Polls `path` and its word lists every `server.reload_interval_ms` and applies changes.
pub(crate) async fn watch(path: PathBuf, mut config: Config, app: App) {
    let mut seen = fingerprint(&path, &config).await;
    loop {
        let interval = config.server.reload_interval_ms;
        if interval == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(interval)).await;
        let now = fingerprint(&path, &config).await;
        if now == seen {
            continue;
        }
        seen = now;
        match apply(&path, &config, &app) {
            Ok(new) => {
                config = new;
                // The new config may name other files: watch those from now on.
                seen = fingerprint(&path, &config).await;
                app.metrics.reloads.with_label_values(&["applied"]).inc();
                app.metrics
                    .dictionary_version
                    .set(app.filter.version() as i64);
                tracing::info!(version = app.filter.version(), "config reloaded");
            }
            Err(error) => {
                app.metrics.reloads.with_label_values(&["invalid"]).inc();
                tracing::error!(%error, "config reload rejected; keeping the running config");
            }
        }
    }
}

/// Loads and applies a changed config; on any error nothing changes.
fn apply(path: &Path, running: &Config, app: &App) -> Result<Config, Box<dyn std::error::Error>> {
    let new = Config::load(path)?;
    app.filter.reload(&filter_sources(&new))?;
    for (key, changed) in [
        ("server.listen", new.server.listen != running.server.listen),
        (
            "server.max_body_bytes",
            new.server.max_body_bytes != running.server.max_body_bytes,
        ),
        ("request_id", new.request_id != running.request_id),
    ] {
        if changed {
            tracing::warn!(key, "this key changed but only applies after a restart");
        }
    }
    Ok(new)
}

/// A hash of the contents of the config file and every file it names; a missing file hashes
/// as missing, so deleting a list is a change too.
async fn fingerprint(path: &Path, config: &Config) -> u64 {
    let mut hasher = DefaultHasher::new();
    let files = std::iter::once(path).chain(config.watched_files());
    for file in files {
        file.hash(&mut hasher);
        tokio::fs::read(file).await.ok().hash(&mut hasher);
    }
    hasher.finish()
}
