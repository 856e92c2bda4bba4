//! The manual switch.

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

/// A handle that forces degradation on or off at run time (from a config reload, an admin
/// endpoint, a signal handler...).
///
/// Cloning is cheap and every clone flips the same switch. While it is on, every request goes to
/// the fallback (reason [`DegradeReason::Switch`](crate::DegradeReason::Switch)), whatever the
/// limit says. Flipping it emits a `tracing` event at `INFO`.
///
/// ```
/// use espresso_degrade::{DegradeLayer, DegradeSwitch, limit::Fixed};
///
/// let switch = DegradeSwitch::new();
/// let layer = DegradeLayer::new(Fixed::new(100)).switch(switch.clone());
/// # let _ = layer;
/// switch.set(true); // from now on, the fallback answers
/// assert!(switch.is_on());
/// ```
#[derive(Debug, Clone, Default)]
pub struct DegradeSwitch {
    on: Arc<AtomicBool>,
}

impl DegradeSwitch {
    /// A switch that is off.
    pub fn new() -> Self {
        Self::default()
    }

    /// `true` while degradation is forced on.
    pub fn is_on(&self) -> bool {
        self.on.load(Ordering::Relaxed)
    }

    /// Forces degradation on (`true`) or lets the limit decide again (`false`); answers the
    /// previous position.
    pub fn set(&self, on: bool) -> bool {
        let was = self.on.swap(on, Ordering::Relaxed);
        if was != on {
            tracing::info!(degraded = on, "degrade switch flipped");
        }
        was
    }
}
