//! Which keys a reload applies and which wait for a restart: the one table that reload, its
//! warnings and metric, and `docs/config.md` follow.

use super::Config;

/// When a change to a key takes effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applies {
    /// On the next reload, while the server runs.
    OnReload,
    /// When the server restarts; a reload that changes it logs a warning and counts it in
    /// `espresso_config_restart_required_total{key}`.
    OnRestart,
}

impl Applies {
    /// The word `docs/config.md` uses: `reload` or `restart`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OnReload => "reload",
            Self::OnRestart => "restart",
        }
    }
}

use Applies::{OnReload, OnRestart};

/// Every key of the config file, dotted (`section.key`), and when a change to it takes effect.
///
/// A reload applies the `OnReload` keys in `reload::watch`; a key added to the config without a
/// row here fails the tests below.
pub const KEYS: &[(&str, Applies)] = &[
    ("server.listen", OnRestart),
    ("server.max_body_bytes", OnRestart),
    ("server.request_timeout_ms", OnRestart),
    ("server.drain_timeout_ms", OnRestart),
    ("server.shutdown_delay_ms", OnRestart),
    ("server.header_read_timeout_ms", OnRestart),
    ("server.reload_interval_ms", OnRestart),
    ("server.idle_timeout_ms", OnRestart),
    ("server.send_timeout_ms", OnRestart),
    ("server.max_header_bytes", OnRestart),
    ("server.http2_max_concurrent_streams", OnRestart),
    ("server.max_buffered_response_bytes", OnRestart),
    ("server.max_connections", OnRestart),
    ("server.ops_listen", OnRestart),
    ("request_id.header", OnRestart),
    ("rate_limit.enabled", OnRestart),
    ("rate_limit.per_second", OnReload),
    ("rate_limit.burst", OnReload),
    ("rate_limit.key", OnRestart),
    ("rate_limit.missing_key", OnRestart),
    ("rate_limit.backend", OnRestart),
    ("rate_limit.redis_url", OnRestart),
    ("rate_limit.redis_cluster", OnRestart),
    ("rate_limit.redis_sentinel", OnRestart),
    ("rate_limit.redis_master", OnRestart),
    ("rate_limit.global_mode", OnRestart),
    ("rate_limit.trusted_proxies", OnRestart),
    ("rate_limit.forwarded_header", OnRestart),
    ("rate_limit.max_keys", OnRestart),
    ("slow_call.threshold_ms", OnReload),
    ("slow_call.latency_buckets_seconds", OnRestart),
    ("classifier.endpoint", OnRestart),
    ("classifier.timeout_ms", OnRestart),
    ("classifier.max_in_flight", OnRestart),
    ("classifier.labels", OnRestart),
    ("cache.enabled", OnRestart),
    ("cache.max_entries", OnRestart),
    ("cache.ttl_ms", OnRestart),
    ("cache.redis_url", OnRestart),
    ("cache.redis_cluster", OnRestart),
    ("cache.redis_sentinel", OnRestart),
    ("cache.redis_master", OnRestart),
    ("cache.redis_timeout_ms", OnRestart),
    ("cache.redis_prefix", OnRestart),
    ("degrade.enabled", OnRestart),
    ("degrade.limit", OnRestart),
    ("degrade.min_limit", OnRestart),
    ("degrade.max_limit", OnRestart),
    ("degrade.queue", OnRestart),
    ("degrade.force", OnReload),
    ("filter.allow", OnReload),
    // every key of a `[[filter.lists]]` table (path, level, category, pinyin) is part of
    // this one value
    ("filter.lists", OnReload),
    ("filter.max_hits", OnRestart),
    ("filter.large_content_bytes", OnRestart),
    ("filter.large_max_in_flight", OnRestart),
    ("filter.detectors.url", OnReload),
    ("filter.detectors.email", OnReload),
    ("filter.detectors.phone", OnReload),
    ("filter.detectors.im", OnReload),
    ("filter.detectors.allow_domains", OnReload),
    ("filter.detectors.im_keywords", OnReload),
    ("debug.dashboard", OnRestart),
    ("debug.pprof", OnRestart),
    ("debug.pprof_max_seconds", OnRestart),
    ("admin.token", OnRestart),
    ("admin.token_file", OnRestart),
    ("lists.store", OnRestart),
    ("lists.dir", OnRestart),
    ("lists.redis_url", OnRestart),
    ("lists.redis_cluster", OnRestart),
    ("lists.redis_sentinel", OnRestart),
    ("lists.redis_master", OnRestart),
    ("lists.redis_prefix", OnRestart),
    ("lists.redis_timeout_ms", OnRestart),
    ("log.format", OnRestart),
    ("log.file", OnRestart),
    ("log.rotation", OnRestart),
    ("log.max_files", OnRestart),
    ("log.max_size_bytes", OnRestart),
];

/// The keys that wait for a restart, for the metric's labels.
pub(crate) fn restart_only() -> impl Iterator<Item = &'static str> {
    KEYS.iter()
        .filter(|(_, applies)| *applies == OnRestart)
        .map(|(key, _)| *key)
}

/// The keys whose values differ between `a` and `b`, with when each applies.
pub(crate) fn changed(
    a: &Config,
    b: &Config,
) -> Result<Vec<(&'static str, Applies)>, toml::ser::Error> {
    let (a, b) = (a.to_table()?, b.to_table()?);
    Ok(KEYS
        .iter()
        .filter(|(key, _)| lookup(&a, key) != lookup(&b, key))
        .copied()
        .collect())
}

/// The value at a dotted key (`filter.max_hits`, `filter.detectors.url`).
fn lookup<'a>(table: &'a toml::Table, dotted: &str) -> Option<&'a toml::Value> {
    let mut parts = dotted.split('.');
    let mut value = table.get(parts.next()?)?;
    for part in parts {
        value = value.as_table()?.get(part)?;
    }
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// Every dotted key of `table`: a nested table is walked unless the table of keys names it
    /// (`classifier.labels` is one value), and an empty one it does not name is a key missing.
    fn leaves(table: &toml::Table, prefix: &str, out: &mut BTreeSet<String>) {
        for (name, value) in table {
            let path = if prefix.is_empty() {
                name.clone()
            } else {
                format!("{prefix}.{name}")
            };
            match value.as_table() {
                Some(inner) if !KEYS.iter().any(|(key, _)| *key == path) => {
                    assert!(!inner.is_empty(), "{path} is an empty table with no row");
                    leaves(inner, &path, out);
                }
                _ => {
                    out.insert(path);
                }
            }
        }
    }

    #[test]
    fn the_table_names_every_key_of_the_config_once() {
        let mut config = BTreeSet::new();
        leaves(&Config::default().to_table().unwrap(), "", &mut config);
        let table: BTreeSet<String> = KEYS.iter().map(|(key, _)| (*key).to_owned()).collect();
        assert_eq!(table.len(), KEYS.len(), "a key is listed twice");
        assert_eq!(config, table);
    }

    #[test]
    fn changed_keys_are_found_with_when_they_apply() {
        let running = Config::default();
        let mut new = running.clone();
        assert_eq!(changed(&running, &new).unwrap(), []);
        new.rate_limit.max_keys = 10;
        new.rate_limit.burst = 10;
        new.classifier
            .labels
            .insert("SPAM".into(), espresso_filter_core::Verdict::Review);
        assert_eq!(
            changed(&running, &new).unwrap(),
            [
                ("rate_limit.burst", OnReload),
                ("rate_limit.max_keys", OnRestart),
                ("classifier.labels", OnRestart),
            ]
        );
    }

    /// `docs/config.md` has one row per key, `| \`key\` | type | default | … | applies |`, with
    /// the default and when it applies as the table and `Config::default()` say.
    #[test]
    fn the_config_reference_documents_every_key_as_the_table_says() {
        let file = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/config.md");
        let docs = std::fs::read_to_string(file).unwrap();
        let rows: Vec<Vec<&str>> = docs
            .lines()
            .filter(|line| line.starts_with("| `"))
            .map(|line| line.trim_matches('|').split(" | ").map(str::trim).collect())
            .collect();
        let defaults = Config::default().to_table().unwrap();
        for (key, applies) in KEYS {
            let row = rows
                .iter()
                .find(|row| row[0] == format!("`{key}`"))
                .unwrap_or_else(|| panic!("docs/config.md has no row for `{key}`"));
            assert_eq!(row.len(), 5, "{row:?}");
            let default = lookup(&defaults, key).unwrap();
            let default = match default.as_table() {
                Some(table) if table.is_empty() => "{}".to_owned(),
                _ => default.to_string(),
            };
            assert_eq!(row[2], format!("`{default}`"), "default of {key}");
            assert_eq!(row[4], applies.as_str(), "when {key} applies");
        }
        for row in &rows {
            let key = row[0].trim_matches('`');
            assert!(
                KEYS.iter().any(|(k, _)| *k == key),
                "docs/config.md documents `{key}`, which the config does not have"
            );
        }
    }
}
