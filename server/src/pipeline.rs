//! The filter pipeline from config: verdict cache → classifier → word lists, each remote stage
//! optional and protected (timeouts, circuit breakers), so a sick backend degrades answers
//! instead of failing them.

use crate::config::Config;
use espresso_circuit_breaker::CircuitBreakerBuilder;
use espresso_filter_core::{Engine, FilterRequest, FilterResponse, FilterService};
use espresso_filter_stages::{
    CacheLayer, CacheMetrics, ClassifierLayer, ClassifierMetrics, LabelMap, RedisCache,
    default_breaker, default_redis_breaker,
};
use prometheus::Registry;
use std::{convert::Infallible, time::Duration};
use tower::{Service, ServiceBuilder, ServiceExt, util::BoxCloneSyncService};

/// The whole pipeline.
#[derive(Clone)]
pub(crate) enum Pipeline {
    /// The word lists alone: answered in place, with nothing boxed or cloned per request.
    Local(FilterService),
    /// Remote stages in front of the word lists, behind one cloneable service.
    Staged(BoxCloneSyncService<FilterRequest, FilterResponse, Infallible>),
}

impl Pipeline {
    /// The pipeline's answer to `request`.
    pub(crate) async fn check(&self, request: FilterRequest) -> FilterResponse {
        let answer = match self {
            Self::Local(words) => words.clone().call(request).into_inner(),
            Self::Staged(stages) => stages.clone().oneshot(request).await,
        };
        let Ok(response) = answer;
        response
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Builds the pipeline `config` asks for around `engine`. Must run inside the runtime (the
/// classifier's connection is made lazily by a background task).
pub(crate) fn build(
    config: &Config,
    engine: &Engine,
    registry: &Registry,
) -> Result<Pipeline, BoxError> {
    let classifier_config = &config.classifier;
    let has_classifier = !classifier_config.endpoint.is_empty();
    let redis_target = config.cache.redis_target();
    let has_redis = redis_target.is_some();
    // One set of breaker metrics (registered once) for every breaker built here.
    let breaker_metrics = (has_classifier || has_redis)
        .then(|| espresso_circuit_breaker::CircuitBreakerMetrics::register(registry))
        .transpose()?;
    let metered = |builder: CircuitBreakerBuilder| match &breaker_metrics {
        Some(metrics) => builder.metrics(metrics.clone()).build(),
        None => builder.build(),
    };

    let classifier = if has_classifier {
        let mut labels = LabelMap::default();
        labels.extend(
            classifier_config
                .labels
                .iter()
                .map(|(label, verdict)| (label, *verdict)),
        );
        let mut layer = ClassifierLayer::lazy(&classifier_config.endpoint)?
            .timeout(Duration::from_millis(classifier_config.timeout_ms))
            .labels(labels)
            .breaker(metered(default_breaker("classifier"))?)
            .metrics(ClassifierMetrics::register(registry)?);
        if classifier_config.max_in_flight > 0 {
            layer = layer.max_in_flight(classifier_config.max_in_flight);
        }
        Some(layer)
    } else {
        None
    };

    let cache_config = &config.cache;
    let cache = if cache_config.enabled && (has_classifier || has_redis) {
        let mut layer = CacheLayer::new(engine.clone())
            .max_entries(cache_config.max_entries)
            .ttl(Duration::from_millis(cache_config.ttl_ms))
            .metrics(CacheMetrics::register(registry)?);
        if let Some(target) = redis_target {
            let redis = RedisCache::target(target)?
                .timeout(Duration::from_millis(cache_config.redis_timeout_ms))
                .prefix(&cache_config.redis_prefix)
                .breaker(metered(default_redis_breaker("filter_cache_redis"))?);
            layer = layer.redis(redis);
        }
        Some(layer)
    } else {
        None
    };

    let words = FilterService::new(engine.clone());
    if cache.is_none() && classifier.is_none() {
        return Ok(Pipeline::Local(words));
    }
    let stages = ServiceBuilder::new()
        .option_layer(cache)
        .option_layer(classifier)
        .service(words);
    Ok(Pipeline::Staged(BoxCloneSyncService::new(stages)))
}
