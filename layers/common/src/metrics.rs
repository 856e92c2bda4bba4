//! Registering a layer's Prometheus families: all of them or none.
//!
//! prometheus' `Registry::register` takes one collector at a time. A layer that registers four
//! and fails on the third (a family of that name is there already) would leave two behind, and
//! a second try would then fail on the first. [`register_all`] takes the ones it registered out
//! again, and its error names the family that clashed.
//!
//! ```
//! use espresso_common::metrics::register_all;
//! use prometheus::{IntCounter, Registry};
//!
//! let registry = Registry::new();
//! let theirs = IntCounter::new("b_total", "registered by someone else").unwrap();
//! registry.register(Box::new(theirs)).unwrap();
//!
//! let a = IntCounter::new("a_total", "ours").unwrap();
//! let b = IntCounter::new("b_total", "ours").unwrap();
//! let err = register_all(&registry, [Box::new(a.clone()) as _, Box::new(b) as _]).unwrap_err();
//! assert!(err.to_string().contains("`b_total`"), "{err}");
//! // `a_total` was taken out again: registering it now succeeds
//! registry.register(Box::new(a)).unwrap();
//! ```

use prometheus::{
    Error, Registry,
    core::{Collector, Desc},
    proto::MetricFamily,
};
use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError, Weak},
};

/// Registers every collector of `collectors` into `registry`, or none of them: on an error the
/// ones already registered are taken out again, and the error (an [`Error::Msg`]) names the
/// family that could not be registered and why.
pub fn register_all(
    registry: &Registry,
    collectors: impl IntoIterator<Item = Box<dyn Collector>>,
) -> Result<(), Error> {
    let mut done: Vec<Descs> = Vec::new();
    for collector in collectors {
        let descs = Descs(collector.desc().into_iter().cloned().collect());
        if let Err(e) = registry.register(collector) {
            for d in done {
                // registered a moment ago, so this cannot fail
                let _ = registry.unregister(Box::new(d));
            }
            let names: Vec<&str> = descs.0.iter().map(|d| d.fq_name.as_str()).collect();
            let why = match e {
                Error::AlreadyReg => "a collector of that name is registered already".to_string(),
                e => e.to_string(),
            };
            return Err(Error::Msg(format!(
                "could not register `{}`: {why}; none of the families registered with it stays \
                 registered",
                names.join("`, `")
            )));
        }
        done.push(descs);
    }
    Ok(())
}

/// The names the live layers report under into one set of metrics: two layers under one name
/// would merge their series, which their layer warns of. Clones share the names.
#[derive(Clone, Debug, Default)]
pub struct LiveNames(Arc<Mutex<HashMap<String, Vec<Weak<()>>>>>);

impl LiveNames {
    /// Claims `name` for as long as the returned token lives (the layer holds it); also whether
    /// another live token held it already.
    pub fn claim(&self, name: &str) -> (Arc<()>, bool) {
        let token = Arc::new(());
        let mut names = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let live = names.entry(name.to_owned()).or_default();
        live.retain(|t| t.strong_count() > 0);
        live.push(Arc::downgrade(&token));
        let shared = live.len() > 1;
        (token, shared)
    }
}

/// A stand-in with a registered collector's descriptors, which is all `unregister` reads.
struct Descs(Vec<Desc>);

impl Collector for Descs {
    fn desc(&self) -> Vec<&Desc> {
        self.0.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus::{IntCounter, IntGaugeVec, Opts};

    #[test]
    fn a_name_is_shared_while_an_earlier_claim_lives() {
        let names = LiveNames::default();
        let (first, shared) = names.claim("api");
        assert!(!shared);
        assert!(names.clone().claim("api").1, "a clone sees the same names");
        assert!(!names.claim("search").1);
        drop(first);
        assert!(!names.claim("api").1, "the dropped claims freed it");
    }

    #[test]
    fn a_clash_leaves_the_registry_as_it_was() {
        let registry = Registry::new();
        let theirs = IntCounter::new("c", "theirs").unwrap();
        registry.register(Box::new(theirs)).unwrap();
        let ours = || {
            [
                Box::new(IntCounter::new("a_total", "a").unwrap()) as Box<dyn Collector>,
                Box::new(IntCounter::new("b_total", "b").unwrap()),
                Box::new(IntGaugeVec::new(Opts::new("c", "ours"), &["y"]).unwrap()),
            ]
        };
        let err = register_all(&registry, ours()).unwrap_err().to_string();
        assert!(err.contains("`c`"), "{err}");
        let left: Vec<String> = registry.gather().iter().map(|f| f.name().into()).collect();
        assert_eq!(left, ["c"], "only theirs is left");
        // the same families register once the clash is gone
        let registry = Registry::new();
        register_all(&registry, ours()).unwrap();
        let again = register_all(&registry, ours()).unwrap_err().to_string();
        assert!(
            again.contains("`a_total`") && again.contains("registered already"),
            "{again}"
        );
    }
}
