//! The server's `--config` parser (`espresso_server::config::Config`) on any text.
//!
//! Checked:
//! - no panic, whatever the text (invalid UTF-8 is read lossily, as a file would be refused
//!   before parsing);
//! - parsing is deterministic: the same text gives an equal config (or an equal error text);
//! - an accepted config keeps the value rules the parser promises (non-zero sizes and rates,
//!   `min_limit <= max_limit`, keys and networks that print back as they parse);
//! - the effective config an accepted one prints (`--check-config`) parses back equal;
//! - `from_text` agrees with `parse`, names the file in its errors, and resolves every list
//!   path against the config file's folder;
//! - an error's line number, when it gives one, is a line of the text.
#![no_main]

use std::path::Path;

use espresso_server::config::{Config, ProxyNetwork, RateLimitKey};
use libfuzzer_sys::fuzz_target;

const MAX_BYTES: usize = 16 * 1024;

/// The line number in the text of an error of `Config::parse` (no file name):
/// `invalid config, line N, …`.
fn error_line(message: &str) -> Option<usize> {
    let rest = message.strip_prefix("invalid config, line ")?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

fn check_accepted(config: &Config) {
    assert!(config.server.max_body_bytes > 0);
    assert!(http::HeaderName::try_from(config.request_id.header.as_str()).is_ok());
    let rl = &config.rate_limit;
    assert!(rl.per_second > 0 && rl.burst > 0);
    assert_eq!(
        rl.key.to_string().parse::<RateLimitKey>().as_ref(),
        Ok(&rl.key)
    );
    for network in &rl.trusted_proxies {
        assert_eq!(
            network.to_string().parse::<ProxyNetwork>().as_ref(),
            Ok(network)
        );
    }
    assert!(config.debug.pprof_max_seconds > 0);
    assert!(config.log.max_files > 0 && config.log.max_size_bytes > 0);
    let degrade = &config.degrade;
    assert!(degrade.min_limit >= 1 && degrade.min_limit <= degrade.max_limit);
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(&data[..data.len().min(MAX_BYTES)]);
    let text = text.as_ref();
    let file = Path::new("/etc/espresso/espresso.toml");
    let parsed = Config::parse(text);
    let from_file = Config::from_text(file, text);
    match (&parsed, &from_file) {
        (Ok(config), Ok(resolved)) => {
            check_accepted(config);
            let effective = config.to_toml().expect("an accepted config prints");
            assert_eq!(&Config::parse(&effective).unwrap(), config, "{effective}");
            assert_eq!(
                &Config::parse(text).unwrap(),
                config,
                "parsing twice differs"
            );
            assert_eq!(config.filter.lists.len(), resolved.filter.lists.len());
            let base = Path::new("/etc/espresso");
            assert_eq!(config.filter.allow.len(), resolved.filter.allow.len());
            for (path, resolved) in config.filter.allow.iter().zip(&resolved.filter.allow) {
                assert_eq!(resolved, &base.join(path));
            }
            for (list, resolved) in config.filter.lists.iter().zip(&resolved.filter.lists) {
                assert_eq!(resolved.path, base.join(&list.path));
                assert_eq!(
                    (list.level, &list.category),
                    (resolved.level, &resolved.category)
                );
            }
        }
        (Err(err), Err(file_err)) => {
            let message = err.to_string();
            assert!(message.starts_with("invalid config"), "{message}");
            assert_eq!(
                Config::parse(text).unwrap_err().to_string(),
                message,
                "parsing twice differs"
            );
            let file_message = file_err.to_string();
            assert!(
                file_message.starts_with("invalid config /etc/espresso/espresso.toml"),
                "{file_message}"
            );
            if let Some(line) = error_line(&message) {
                let lines = text.split('\n').count();
                assert!(
                    line >= 1 && line <= lines,
                    "line {line} of {lines}: {message}"
                );
            }
        }
        (parsed, from_file) => panic!(
            "parse and from_text disagree: {:?} / {:?}",
            parsed.as_ref().map(|_| ()),
            from_file.as_ref().map(|_| ())
        ),
    }
});
