//! Which threshold a request gets, and which route label it is counted under.

use http::Method;
use std::{borrow::Cow, fmt, sync::Arc, time::Duration};

/// The route label of a request whose path matches no known route.
///
/// Metrics keep a low label cardinality: a client can send any path, so only routes the layer was
/// told about (or that a [`SlowCallLayer::route_label`](crate::SlowCallLayer::route_label)
/// closure names) get their own label. The slow-call log line always carries the raw path too.
pub const UNMATCHED_ROUTE: &str = "unmatched";

type RouteFn = dyn Fn(&Method, &str) -> Option<Cow<'static, str>> + Send + Sync;
type ThresholdFn = dyn Fn(&Method, &str) -> Option<Duration> + Send + Sync;

/// A known route: a path prefix matched on `/` boundaries, with an optional own threshold.
#[derive(Debug, Clone)]
struct Route {
    prefix: Arc<str>,
    threshold: Option<Duration>,
}

impl Route {
    fn matches(&self, path: &str) -> bool {
        let prefix = &*self.prefix;
        match path.strip_prefix(prefix) {
            Some(rest) => rest.is_empty() || rest.starts_with('/') || prefix.ends_with('/'),
            None => false,
        }
    }
}

/// The route label of one request.
#[derive(Debug, Clone)]
pub(crate) enum RouteLabel {
    Known(Arc<str>),
    Named(Cow<'static, str>),
    /// The route axum's router matched (feature `axum`), for a path no known route matches.
    #[cfg(feature = "axum")]
    Matched(axum::extract::MatchedPath),
    Unmatched,
}

impl RouteLabel {
    /// Whether both are the same label; a shared name is recognised by its address alone.
    #[cfg(feature = "metrics")]
    pub(crate) fn same(&self, other: &RouteLabel) -> bool {
        match (self, other) {
            (RouteLabel::Known(a), RouteLabel::Known(b)) if Arc::ptr_eq(a, b) => true,
            _ => self.as_str() == other.as_str(),
        }
    }

    pub(crate) fn as_str(&self) -> &str {
        match self {
            RouteLabel::Known(s) => s,
            RouteLabel::Named(s) => s,
            #[cfg(feature = "axum")]
            RouteLabel::Matched(path) => path.as_str(),
            RouteLabel::Unmatched => UNMATCHED_ROUTE,
        }
    }
}

/// Thresholds and route labels, shared by every service a layer makes.
#[derive(Clone)]
pub(crate) struct Policy {
    default: Duration,
    /// Longest prefix first.
    routes: Vec<Route>,
    route_fn: Option<Arc<RouteFn>>,
    threshold_fn: Option<Arc<ThresholdFn>>,
}

impl fmt::Debug for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Policy")
            .field("default", &self.default)
            .field("routes", &self.routes)
            .field("route_fn", &self.route_fn.as_ref().map(|_| ".."))
            .field("threshold_fn", &self.threshold_fn.as_ref().map(|_| ".."))
            .finish()
    }
}

impl Policy {
    pub(crate) fn new(default: Duration) -> Self {
        Self {
            default,
            routes: Vec::new(),
            route_fn: None,
            threshold_fn: None,
        }
    }

    pub(crate) fn add_route(&mut self, prefix: &str, threshold: Option<Duration>) {
        if let Some(route) = self.routes.iter_mut().find(|r| &*r.prefix == prefix) {
            route.threshold = threshold.or(route.threshold);
            return;
        }
        self.routes.push(Route {
            prefix: prefix.into(),
            threshold,
        });
        self.routes
            .sort_by_key(|r| std::cmp::Reverse(r.prefix.len()));
    }

    /// The prefixes of the known routes, which are route labels.
    #[cfg(feature = "metrics")]
    pub(crate) fn known_routes(&self) -> impl Iterator<Item = &str> {
        self.routes.iter().map(|r| &*r.prefix)
    }

    pub(crate) fn set_route_fn(&mut self, f: Arc<RouteFn>) {
        self.route_fn = Some(f);
    }

    pub(crate) fn set_threshold_fn(&mut self, f: Arc<ThresholdFn>) {
        self.threshold_fn = Some(f);
    }

    /// The route label and the threshold for a request.
    pub(crate) fn resolve(&self, method: &Method, path: &str) -> (RouteLabel, Duration) {
        let known = self.routes.iter().find(|r| r.matches(path));
        let label = match self.route_fn.as_ref().and_then(|f| f(method, path)) {
            Some(name) => RouteLabel::Named(name),
            None => match known {
                Some(route) => RouteLabel::Known(route.prefix.clone()),
                None => RouteLabel::Unmatched,
            },
        };
        let threshold = self
            .threshold_fn
            .as_ref()
            .and_then(|f| f(method, path))
            .or_else(|| known.and_then(|r| r.threshold))
            .unwrap_or(self.default);
        (label, threshold)
    }
}

/// The method label: the standard methods by name, anything else as `_OTHER` (as OpenTelemetry's
/// HTTP conventions do), so a client cannot grow the label set.
#[cfg(any(feature = "metrics", test))]
pub(crate) fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "_OTHER",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn longest_known_prefix_wins_on_segment_boundaries() {
        let mut p = Policy::new(200 * MS);
        p.add_route("/v1", None);
        p.add_route("/v1/filter", Some(50 * MS));
        p.add_route("/espresso.filter.v1.Filter/Check", Some(20 * MS));
        let get = |path| {
            let (label, t) = p.resolve(&Method::POST, path);
            (label.as_str().to_owned(), t)
        };
        assert_eq!(get("/v1/filter"), ("/v1/filter".into(), 50 * MS));
        assert_eq!(get("/v1/filter/x"), ("/v1/filter".into(), 50 * MS));
        assert_eq!(get("/v1/filterx"), ("/v1".into(), 200 * MS));
        assert_eq!(get("/v2"), (UNMATCHED_ROUTE.into(), 200 * MS));
        assert_eq!(
            get("/espresso.filter.v1.Filter/Check"),
            ("/espresso.filter.v1.Filter/Check".into(), 20 * MS)
        );
    }

    #[test]
    fn closures_override_labels_and_thresholds() {
        let mut p = Policy::new(200 * MS);
        p.add_route("/v1/filter", Some(50 * MS));
        p.set_route_fn(Arc::new(|_: &Method, path: &str| {
            path.starts_with("/users/")
                .then_some(Cow::Borrowed("/users/{id}"))
        }));
        p.set_threshold_fn(Arc::new(|m: &Method, _: &str| {
            (m == Method::DELETE).then_some(MS)
        }));
        let (label, t) = p.resolve(&Method::GET, "/users/42");
        assert_eq!((label.as_str(), t), ("/users/{id}", 200 * MS));
        let (label, t) = p.resolve(&Method::DELETE, "/v1/filter");
        assert_eq!((label.as_str(), t), ("/v1/filter", MS));
    }

    #[test]
    fn unknown_methods_share_one_label() {
        assert_eq!(method_label(&Method::GET), "GET");
        let custom = Method::from_bytes(b"PURGE").unwrap();
        assert_eq!(method_label(&custom), "_OTHER");
    }
}
