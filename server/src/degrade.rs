//! The `[degrade]` section as a [`DegradeLayer`] whose fallback answers from the word lists.

use crate::config::{DegradeConfig, DegradeLimit};
use axum::Router;
use espresso_common::refusal::Fallback;
use espresso_degrade::{
    DegradeLayer, DegradeMetrics, DegradeSwitch, PriorityHeader,
    limit::{Aimd, Fixed, Gradient2, GradientController, Vegas},
};
use prometheus::Registry;

/// Builds the layer, or `None` when `[degrade] enabled = false`. `fallback` serves the same
/// routes from the word lists alone. Requests marked `x-priority: sheddable` go first. Fails
/// when the degrade metrics cannot be registered into `registry`.
pub(crate) fn layer(
    config: &DegradeConfig,
    switch: DegradeSwitch,
    fallback: Router,
    registry: &Registry,
) -> Result<Option<DegradeLayer<Fallback<Router>, PriorityHeader>>, prometheus::Error> {
    if !config.enabled {
        return Ok(None);
    }
    let (min, max) = (config.min_limit, config.max_limit);
    let layer = match config.limit {
        DegradeLimit::GradientController => DegradeLayer::new(
            GradientController::new()
                .min_concurrency(min)
                .max_limit(max),
        ),
        DegradeLimit::Gradient2 => {
            DegradeLayer::new(Gradient2::new().min_limit(min).max_limit(max))
        }
        DegradeLimit::Aimd => DegradeLayer::new(Aimd::new().min_limit(min).max_limit(max)),
        DegradeLimit::Vegas => DegradeLayer::new(Vegas::new().max_limit(max)),
        DegradeLimit::Fixed => DegradeLayer::new(Fixed::new(max)),
    };
    Ok(Some(
        layer
            .name("filter")
            .queue(config.queue)
            .switch(switch)
            .priority(PriorityHeader::x_priority())
            .metrics(DegradeMetrics::register(registry)?)
            .fallback(fallback),
    ))
}
