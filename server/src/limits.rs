//! The process's open-file limit, and how many connections it leaves room for.
//!
//! Every connection is a file descriptor. Many systems start a process with a soft limit of
//! 1,024 open files and a much higher hard limit; like Go's runtime, the server raises its soft
//! limit to the hard one at start, and logs the figure. If `server.max_connections` still does
//! not fit, the server says so (WARN, with the fix) and accepts as many as fit.

use crate::config::ServerConfig;

/// Descriptors kept for everything but client connections: word lists, log files, the
/// operator listener and its clients, Redis and classifier connections.
const RESERVED_FDS: u64 = 128;

/// `server.max_connections`, or fewer if the open-file limit (raised first) has no room.
pub(crate) fn max_connections(server: &ServerConfig) -> usize {
    let wanted = server.max_connections;
    match open_file_limit() {
        Some(limit) => fit(wanted, limit),
        None => wanted,
    }
}

/// `wanted`, or what `limit` open files leave room for, with a WARN that says how to fix it.
fn fit(wanted: usize, limit: u64) -> usize {
    let room = usize::try_from(limit.saturating_sub(RESERVED_FDS).max(1)).unwrap_or(usize::MAX);
    if wanted <= room {
        return wanted;
    }
    tracing::warn!(
        max_connections = wanted,
        open_file_limit = limit,
        accepting = room,
        "server.max_connections does not fit the open-file limit ({RESERVED_FDS} kept for files \
         and outgoing connections): accepting at most {room} connections; raise the hard limit \
         (`ulimit -Hn`, systemd `LimitNOFILE=`) or lower server.max_connections"
    );
    room
}

/// Raises the soft open-file limit to the hard one and returns it; `None` where there is no
/// such limit.
#[cfg(unix)]
fn open_file_limit() -> Option<u64> {
    use rlimit::Resource;
    let (soft, hard) = Resource::NOFILE.get().ok()?;
    match rlimit::increase_nofile_limit(hard) {
        Ok(raised) => {
            tracing::info!(
                open_file_limit = raised,
                was = soft,
                hard_limit = hard,
                "open-file limit (soft limit raised to the hard limit)"
            );
            Some(raised)
        }
        Err(error) => {
            tracing::warn!(
                %error,
                open_file_limit = soft,
                "could not raise the open-file limit; connections are limited by it"
            );
            Some(soft)
        }
    }
}

#[cfg(not(unix))]
fn open_file_limit() -> Option<u64> {
    None
}

#[cfg(test)]
mod tests {
    use super::fit;

    #[test]
    fn max_connections_is_kept_when_the_open_file_limit_has_room() {
        assert_eq!(fit(10_000, 1_048_576), 10_000);
        assert_eq!(fit(10_000, 10_128), 10_000);
    }

    #[test]
    fn max_connections_shrinks_to_what_the_open_file_limit_leaves() {
        assert_eq!(fit(10_000, 1024), 1024 - 128);
        assert_eq!(fit(10_000, 100), 1);
    }

    #[test]
    fn the_soft_open_file_limit_is_raised_to_the_hard_one() {
        let raised = super::open_file_limit().unwrap();
        let (soft, hard) = rlimit::Resource::NOFILE.get().unwrap();
        assert_eq!((raised, soft), (hard, hard));
    }
}
