//! The skip policy: what a test does when something it needs is not on the machine.

use std::{
    io::Write,
    path::{Path, PathBuf},
};

/// The environment variable that forbids skipping: set to `1`, a missing program or service
/// fails the test instead. CI sets it.
pub const REQUIRE_SERVICES: &str = "ESPRESSO_REQUIRE_SERVICES";

/// What to do when a test's program or service is missing.
///
/// ```
/// use espresso_test_support::Policy;
///
/// let skipped: Option<()> = Policy::Skip.missing("redis-server", "apt-get install redis-server");
/// assert!(skipped.is_none());
/// let required = std::panic::catch_unwind(|| {
///     Policy::Require.missing::<()>("redis-server", "apt-get install redis-server")
/// });
/// assert!(required.is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    /// Print one line to stderr and let the test return early.
    Skip,
    /// Panic with that line: the test fails.
    Require,
}

impl Policy {
    /// [`Require`](Self::Require) when [`REQUIRE_SERVICES`] is `1`, else [`Skip`](Self::Skip).
    pub fn from_env() -> Self {
        match std::env::var(REQUIRE_SERVICES) {
            Ok(value) if value == "1" => Self::Require,
            _ => Self::Skip,
        }
    }

    /// Applies the policy to `what` (a program or service) being absent, for the running test;
    /// `install` says how to get it. Returns `None`, for the test to return on, or panics.
    #[must_use = "the test must return when this is None"]
    pub fn missing<T>(self, what: &str, install: &str) -> Option<T> {
        self.missing_in(&current_test(), what, install)
    }

    /// [`missing`](Self::missing) for code libtest does not run, such as a bench group:
    /// the line names `name` rather than the running test.
    #[must_use = "the caller must return when this is None"]
    pub fn missing_in<T>(self, name: &str, what: &str, install: &str) -> Option<T> {
        let reason = format!("{what} not found (install: {install})");
        match self {
            Self::Skip => {
                // Straight to stderr: libtest captures `eprintln!` of passing tests, and a skip
                // must be seen.
                let line = format!("skipped {name}: {reason}\n");
                let _ = std::io::stderr().lock().write_all(line.as_bytes());
            }
            Self::Require => panic!("{name}: {reason}; {REQUIRE_SERVICES}=1 forbids skipping"),
        }
        None
    }
}

/// [`Policy::missing`] under the policy the environment chooses ([`Policy::from_env`]).
///
/// ```
/// // Where nothing forbids skipping, this prints
/// // `skipped <test>: a-tool not found (install: apt-get install a-tool)` and is None.
/// # if std::env::var(espresso_test_support::REQUIRE_SERVICES).as_deref() != Ok("1") {
/// let tool: Option<std::path::PathBuf> =
///     espresso_test_support::missing("a-tool", "apt-get install a-tool");
/// assert!(tool.is_none());
/// # }
/// ```
#[must_use = "the test must return when this is None"]
pub fn missing<T>(what: &str, install: &str) -> Option<T> {
    Policy::from_env().missing(what, install)
}

/// The executable `name` found on `PATH`, or [`missing`] with the `install` hint.
///
/// ```
/// let Some(sh) = espresso_test_support::program("sh", "apt-get install dash") else { return };
/// assert!(sh.ends_with("sh"));
/// ```
#[must_use = "the test must return when this is None"]
pub fn program(name: &str, install: &str) -> Option<PathBuf> {
    find_on_path(name).or_else(|| missing(name, install))
}

/// The first executable regular file `name` in a `PATH` directory.
pub(crate) fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    // A regular file only: a program hidden by mounting /dev/null over it counts as absent.
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The running test's name: libtest names each test's thread after it. A bench or program
/// without that harness runs on `main`, so its executable's name stands in.
fn current_test() -> String {
    let thread = std::thread::current();
    match thread.name() {
        Some(name) if name != "main" => name.to_owned(),
        _ => std::env::current_exe()
            .ok()
            .and_then(|exe| Some(exe.file_stem()?.to_string_lossy().into_owned()))
            // Cargo names built targets `<name>-<hash>`.
            .map(|stem| match stem.rsplit_once('-') {
                Some((name, hash)) if hash.chars().all(|c| c.is_ascii_hexdigit()) => {
                    name.to_owned()
                }
                _ => stem,
            })
            .unwrap_or_else(|| "main".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_program_on_path_is_found_and_an_absent_one_is_not() {
        assert!(find_on_path("sh").is_some());
        assert!(find_on_path("espresso-no-such-program").is_none());
    }

    #[test]
    fn a_non_executable_file_does_not_count_as_a_program() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let file = dir.path().join("tool");
        std::fs::write(&file, "").expect("a file in it");
        assert!(!is_executable(&file));
        assert!(!is_executable(Path::new("/dev/null")));
    }

    #[test]
    fn the_skip_line_names_this_test() {
        assert_eq!(current_test(), "skip::tests::the_skip_line_names_this_test");
    }

    #[test]
    #[should_panic(
        expected = "redis-server not found (install: apt-get install redis-server); \
                               ESPRESSO_REQUIRE_SERVICES=1 forbids skipping"
    )]
    fn required_services_panic_with_the_reason() {
        let _: Option<()> = Policy::Require.missing("redis-server", "apt-get install redis-server");
    }
}
