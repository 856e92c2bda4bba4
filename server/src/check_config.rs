//! `espresso-server --check-config FILE`: the checks a start-up or a reload makes, without
//! serving, for an operator's CI.

use crate::{BoxError, config::Config, reload};
use espresso_filter_core::Engine;
use std::path::Path;

/// Checks the config `file` and the word lists it names, and returns the effective config as
/// TOML: every key, defaults filled in, paths resolved against the file's folder (absolute).
/// Secrets are left out, each with a comment that says so: a set `admin.token` is shown empty
/// (an output used as a config then leaves the lists API off rather than open to a known
/// token), and a password in a Redis address as `REDACTED` (such an output fails to
/// authenticate, loudly).
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// let file = dir.path().join("espresso.toml");
/// std::fs::write(&file, "[rate_limit]\nburst = 5\n").unwrap();
/// let effective = espresso_server::check_config(&file).unwrap();
/// assert!(effective.contains("burst = 5\n") && effective.contains("per_second = 1000\n"));
///
/// std::fs::write(&file, "[[filter.lists]]\npath = \"missing.txt\"\nlevel = \"danger\"\n").unwrap();
/// let error = espresso_server::check_config(&file).unwrap_err().to_string();
/// assert!(error.contains("missing.txt"), "{error}");
///
/// std::fs::write(&file, "[admin]\ntoken = \"s3cret-token\"\n").unwrap();
/// let effective = espresso_server::check_config(&file).unwrap();
/// assert!(!effective.contains("s3cret-token"));
/// assert!(effective.starts_with("# admin.token is set"));
///
/// std::fs::write(&file, "[admin]\ntoken_file = \"no-such-token.txt\"\n").unwrap();
/// let error = espresso_server::check_config(&file).unwrap_err().to_string();
/// assert!(error.contains("admin.token_file"), "{error}");
///
/// std::fs::write(&file, "[cache]\nredis_url = \"redis://app:pa55@10.0.0.7:6379/2\"\n").unwrap();
/// let effective = espresso_server::check_config(&file).unwrap();
/// assert!(!effective.contains("pa55"));
/// assert!(effective.contains("redis_url = \"redis://app:REDACTED@10.0.0.7:6379/2\""));
/// assert!(effective.starts_with("# passwords in Redis addresses"));
///
/// // valid, but not read: said at the top
/// std::fs::write(&file, "[lists]\nredis_url = \"redis://10.0.0.7:6379\"\n").unwrap();
/// let effective = espresso_server::check_config(&file).unwrap();
/// assert!(effective.starts_with("# warning: lists.redis_url is set"), "{effective}");
///
/// // a word list's entry that can never match, or a word listed with two categories: said
/// std::fs::write(dir.path().join("danger.txt"), "idiot\n🙂\n").unwrap();
/// std::fs::write(&file, "[[filter.lists]]\npath = \"danger.txt\"\nlevel = \"danger\"\n").unwrap();
/// let effective = espresso_server::check_config(&file).unwrap();
/// assert!(effective.starts_with("# warning: word lists: "), "{effective}");
/// assert!(effective.contains("danger.txt:2: `🙂` normalizes to nothing"), "{effective}");
///
/// // an address the redis crate cannot use is an error naming the key
/// std::fs::write(&file, "[cache]\nredis_url = \"redis://\"\n").unwrap();
/// let error = espresso_server::check_config(&file).unwrap_err().to_string();
/// assert!(error.contains("cache.redis_url"), "{error}");
/// ```
pub fn check_config(file: &Path) -> Result<String, BoxError> {
    // Absolute paths in the output: paths resolved against a relative `file`'s folder would
    // only work from the folder this ran in.
    let file = std::fs::canonicalize(file).unwrap_or_else(|_| file.to_owned());
    let mut config = Config::load(&file)?;
    let lists = Engine::load(
        &reload::filter_sources(&config),
        reload::filter_options(&config)?,
    )?;
    // the token file is read at start-up: missing or empty is an error there, so here too
    crate::admin_token(&config.admin)?;
    // and so are the stored API lists (whether the lists API is on or not, they are applied)
    crate::lists::check_stored(&reload::filter_sources(&config), &config.lists)
        .map_err(|error| crate::lists::NameClash::in_config(error, &file))?;
    let mut notes = String::new();
    for warning in config.warnings() {
        notes.push_str(&format!("# warning: {warning}\n"));
    }
    for warning in lists.dictionary().warnings() {
        notes.push_str(&format!("# warning: word lists: {warning}\n"));
    }
    if !config.admin.token.is_empty() {
        config.admin.token.clear();
        notes.push_str("# admin.token is set in the file and left out here (a secret)\n");
    }
    let mut redacted = false;
    for address in config.redis_addresses_mut() {
        redacted |= redact_password(address);
    }
    if redacted {
        notes.push_str("# passwords in Redis addresses are shown as REDACTED (secrets)\n");
    }
    Ok(notes + &config.to_toml()?)
}

/// Replaces the password in a URL with `REDACTED`; whether there was one.
fn redact_password(address: &mut String) -> bool {
    match url::Url::parse(address) {
        Ok(mut url) if url.password().is_some() => {
            let _ = url.set_password(Some("REDACTED"));
            *address = url.to_string();
            true
        }
        _ => false,
    }
}
