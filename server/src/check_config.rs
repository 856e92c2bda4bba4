//! `espresso-server --check-config FILE`: the checks a start-up or a reload makes, without
//! serving, for an operator's CI.

use crate::{BoxError, config::Config, reload};
use espresso_filter_core::Engine;
use std::path::Path;

/// Checks the config `file` and the word lists it names, and returns the effective config as
/// TOML: every key, defaults filled in, paths resolved against the file's folder. A set
/// `admin.token` is a secret: it is shown empty, with a comment that says so (an output used as
/// a config then leaves the lists API off rather than open to a known token).
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
/// ```
pub fn check_config(file: &Path) -> Result<String, BoxError> {
    let mut config = Config::load(file)?;
    Engine::load(
        &reload::filter_sources(&config),
        reload::filter_options(&config)?,
    )?;
    if config.admin.token.is_empty() {
        return Ok(config.to_toml()?);
    }
    config.admin.token.clear();
    Ok(format!(
        "# admin.token is set in the file and left out here (a secret)\n{}",
        config.to_toml()?
    ))
}
