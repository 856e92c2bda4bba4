//! The `[rate_limit]` section as a [`RateLimitLayer`].

use crate::config::{RateLimitBackend, RateLimitConfig};
use espresso_rate_limit::{
    ConfigKey, MemoryBackend, Quota, QuotaHandle, RateLimitLayer, RateLimitMetrics, RedisBackend,
    key::ConfigKeyValue,
};
use prometheus::Registry;

/// The server's rate-limit layer.
pub(crate) type Layer = RateLimitLayer<ConfigKey>;

/// The limiter the server runs, and the handle that changes its quota on reload.
pub(crate) struct ServerRateLimit {
    pub(crate) layer: Layer,
    pub(crate) quota: QuotaHandle<ConfigKeyValue>,
}

/// The quota a config asks for.
pub(crate) fn quota(config: &RateLimitConfig) -> Quota {
    Quota::per_second(config.per_second).burst(config.burst)
}

/// Builds the layer; `None` when rate limiting is off.
pub(crate) fn layer(
    config: &RateLimitConfig,
    registry: &Registry,
) -> Result<Option<ServerRateLimit>, Box<dyn std::error::Error + Send + Sync>> {
    if !config.enabled {
        return Ok(None);
    }
    let layer = RateLimitLayer::new(quota(config))
        .key(
            config
                .key
                .extractor(&config.trusted_proxies, config.forwarded_header),
        )
        .on_missing_key(config.missing_key.into())
        .missing_key_fix(
            "set rate_limit.missing_key = \"shared-bucket\" or \"allow\" to accept them",
        )
        .metrics(RateLimitMetrics::register(registry)?);
    let layer = match config.backend {
        RateLimitBackend::Redis => layer.backend(
            RedisBackend::target(config.redis_target())?
                .global_mode(config.global_mode.into())
                .local_backend(MemoryBackend::new().max_keys(config.max_keys)),
        ),
        RateLimitBackend::Memory => layer.backend(MemoryBackend::new().max_keys(config.max_keys)),
    };
    let quota = layer.quota_handle();
    Ok(Some(ServerRateLimit { layer, quota }))
}

/// Whether `path` is a probe or the metrics scrape: never rate limited, so an orchestrator's
/// health checks and a Prometheus server are not refused like a client over its quota.
pub(crate) fn is_probe(path: &str) -> bool {
    matches!(path, "/healthz" | "/readyz" | "/metrics")
        || path.starts_with("/grpc.health.v1.Health/")
}

/// Whether the rate limit applies to `path`: everything but the probes and the scrape.
pub(crate) fn is_limited(path: &str) -> bool {
    !is_probe(path)
}

#[cfg(test)]
mod tests {
    use super::is_probe;

    #[test]
    fn probes_and_the_scrape_are_never_limited() {
        for path in [
            "/healthz",
            "/readyz",
            "/metrics",
            "/grpc.health.v1.Health/Check",
        ] {
            assert!(is_probe(path), "{path}");
        }
        for path in [
            "/v1/filter",
            "/healthz/x",
            "/espresso.filter.v1.Filter/Check",
            "/debug/dashboard",
            // Reflection is a client's tool, not a probe: limited like the filter.
            "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
            "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        ] {
            assert!(!is_probe(path), "{path}");
        }
    }
}
