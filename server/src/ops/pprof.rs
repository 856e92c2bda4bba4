//! `GET /debug/pprof/profile?seconds=N[&format=svg]`: a CPU profile of the whole process.
//!
//! Mounted only when `[debug] pprof = true` (otherwise the path answers 404). The profile samples
//! every thread 99 times a second for `seconds` (default 10; 1 up to `pprof_max_seconds`, and
//! never past the request timeout) and answers:
//!
//! - by default, the profile in pprof's protobuf format (`application/octet-stream`), readable by
//!   `pprof -http=: profile.pb` or `go tool pprof`;
//! - with `format=svg`, a flame graph (`image/svg+xml`) to open in a browser.
//!
//! One profile runs at a time: a second request meanwhile gets 409. A bad `seconds` or `format`
//! gets 400. A client that goes away mid-profile stops the profiler.

use axum::{
    Extension, Json,
    extract::{Query, State},
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use espresso_common::RequestId;
use pprof::protos::Message;
use serde::Deserialize;
use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

/// Samples per second.
const FREQUENCY: i32 = 99;

/// What the profile endpoint allows.
#[derive(Debug, Clone)]
pub(crate) struct Profiling {
    /// Longest profile a request may ask for (0: none fits in the request timeout).
    pub(crate) max_seconds: u64,
    /// Set while a profile runs.
    busy: Arc<AtomicBool>,
}

impl Profiling {
    pub(crate) fn new(max_seconds: u64) -> Self {
        Self {
            max_seconds,
            busy: Arc::default(),
        }
    }
}

/// The query string.
#[derive(Debug, Deserialize)]
pub(crate) struct ProfileQuery {
    seconds: Option<String>,
    format: Option<String>,
}

/// Clears the busy flag however the request ends.
struct Running(Arc<AtomicBool>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

/// The server's error JSON: `{"error": {"code", "message"}, "request_id"}`.
fn error_for(id: Option<&RequestId>) -> impl Fn(StatusCode, &str, String) -> Response + use<'_> {
    move |status, code, message| {
        let body = serde_json::json!({
            "error": {"code": code, "message": message},
            "request_id": id.map(RequestId::as_str),
        });
        (status, Json(body)).into_response()
    }
}

pub(crate) async fn profile(
    State(profiling): State<Profiling>,
    id: Option<Extension<RequestId>>,
    Query(query): Query<ProfileQuery>,
) -> Response {
    let error = error_for(id.as_ref().map(|Extension(id)| id));
    let max = profiling.max_seconds;
    if max == 0 {
        return error(
            StatusCode::BAD_REQUEST,
            "bad_seconds",
            "server.request_timeout_ms leaves no whole second for a profile (which must end a \
             second before it): raise it to 2000 or more to profile"
                .to_owned(),
        );
    }
    let seconds = match query.seconds.as_deref().map(str::parse::<u64>) {
        None => 10.min(max),
        Some(Ok(n)) if (1..=max).contains(&n) => n,
        Some(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                "bad_seconds",
                format!(
                    "seconds must be a whole number from 1 to {max} (debug.pprof_max_seconds, \
                     and a second under server.request_timeout_ms)"
                ),
            );
        }
    };
    let svg = match query.format.as_deref() {
        None | Some("pprof" | "proto" | "protobuf") => false,
        Some("svg" | "flamegraph") => true,
        Some(other) => {
            return error(
                StatusCode::BAD_REQUEST,
                "bad_format",
                format!("format {other:?}: expected \"pprof\" or \"svg\""),
            );
        }
    };
    if profiling
        .busy
        .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
        .is_err()
    {
        return error(
            StatusCode::CONFLICT,
            "profile_running",
            "another profile is running; try again when it ends".into(),
        );
    }
    let running = Running(profiling.busy.clone());
    let guard = match pprof::ProfilerGuardBuilder::default()
        .frequency(FREQUENCY)
        .blocklist(&["libc", "libgcc", "pthread", "vdso"])
        .build()
    {
        Ok(guard) => guard,
        Err(e) => {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "profiler",
                format!("cannot start the profiler: {e}"),
            );
        }
    };
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    // Symbolizing walks debug info: keep it off the request workers.
    let built = tokio::task::spawn_blocking(move || {
        let _running = running;
        let report = guard.report().build()?;
        drop(guard);
        if svg && report.data.is_empty() {
            // the flame graph of no sample is an empty file, not an image
            Ok::<_, pprof::Error>(no_samples_svg(seconds))
        } else if svg {
            let mut out = Vec::new();
            report.flamegraph(&mut out)?;
            Ok(out)
        } else {
            Ok(report.pprof()?.encode_to_vec())
        }
    })
    .await;
    match built {
        Ok(Ok(body)) => {
            let kind = if svg {
                "image/svg+xml"
            } else {
                "application/octet-stream"
            };
            ([(header::CONTENT_TYPE, kind)], body).into_response()
        }
        Ok(Err(e)) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "profiler",
            format!("cannot build the profile: {e}"),
        ),
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "profiler",
            format!("the profile task failed: {e}"),
        ),
    }
}

/// A valid flame graph of a profile without samples: one line saying so.
fn no_samples_svg(seconds: u64) -> Vec<u8> {
    format!(
        "<?xml version=\"1.0\" standalone=\"no\"?>\n\
         <svg version=\"1.1\" width=\"600\" height=\"40\" xmlns=\"http://www.w3.org/2000/svg\">\
         <text x=\"10\" y=\"25\" font-family=\"Verdana\" font-size=\"14\">\
         No samples in {seconds} s: the process used no CPU while it was profiled.</text></svg>\n"
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_profile_without_samples_is_still_an_image() {
        let svg = String::from_utf8(super::no_samples_svg(3)).unwrap();
        assert!(svg.starts_with("<?xml") && svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("No samples in 3 s"), "{svg}");
    }
}
