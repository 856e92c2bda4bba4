//! The `[rate_limit]` section as a [`RateLimitLayer`].

use crate::config::RateLimitConfig;
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

/// Builds the layer; `None` when rate limiting is off. The config was checked at load time.
pub(crate) fn layer(
    config: &RateLimitConfig,
    registry: &Registry,
) -> Result<Option<ServerRateLimit>, Box<dyn std::error::Error + Send + Sync>> {
    if !config.enabled {
        return Ok(None);
    }
    let networks = config
        .trusted_proxies
        .iter()
        .map(|net| net.parse())
        .collect::<Result<Vec<_>, _>>()?;
    let key = config.key.parse::<ConfigKey>()?.trust_proxies(networks);
    let layer = RateLimitLayer::new(quota(config))
        .key(key)
        .metrics(&RateLimitMetrics::register(registry)?);
    let layer = match config.backend.as_str() {
        "redis" => layer.backend(RedisBackend::new(&config.redis_url)?),
        _ => layer.backend(MemoryBackend::new()),
    };
    let quota = layer.handle();
    Ok(Some(ServerRateLimit { layer, quota }))
}
