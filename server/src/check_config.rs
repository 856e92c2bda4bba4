//! `espresso-server --check-config FILE`: the checks a start-up or a reload makes, without
//! serving, for an operator's CI.

use crate::{BoxError, config::Config, reload};
use espresso_filter_core::Engine;
use std::path::Path;

/// Checks the config `file` and the word lists it names, and returns the effective config as
/// TOML: every key, defaults filled in, paths resolved against the file's folder.
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
/// ```
pub fn check_config(file: &Path) -> Result<String, BoxError> {
    let config = Config::load(file)?;
    Engine::load(
        &reload::filter_sources(&config),
        reload::filter_options(&config)?,
    )?;
    Ok(config.to_toml()?)
}
