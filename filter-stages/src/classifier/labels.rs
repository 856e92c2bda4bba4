//! [`LabelMap`]: which verdict a classifier's answer stands for.

use std::collections::HashMap;

use espresso_filter_core::Verdict;

use crate::proto::AnalyseReply;
use crate::proto::analyse_reply::ContentType;

/// Maps the classifier's answers to verdicts.
///
/// A reply is looked up first by its free-form `label` (when the map lists it), then by the
/// name of its `type` (`NORMAL`, `ADVERTISEMENT`, `ABUSIVE`, `PORN`); names compare
/// case-insensitively. A reply matching neither gets the [`unknown`](Self::unknown) verdict,
/// [`Verdict::Pass`] unless set.
///
/// The [`Default`] map blocks `PORN` and `ABUSIVE`, sends `ADVERTISEMENT` to review and passes
/// `NORMAL`:
///
/// ```
/// use espresso_filter_core::Verdict;
/// use espresso_filter_stages::LabelMap;
///
/// let labels = LabelMap::default().label("ADVERTISEMENT", Verdict::Block);
/// assert_eq!(labels.get("advertisement"), Some(Verdict::Block));
/// assert_eq!(labels.get("PORN"), Some(Verdict::Block));
/// assert_eq!(labels.get("gambling"), None);
///
/// // from configuration, e.g. a TOML table deserialized into a map
/// let labels: LabelMap = [("porn", Verdict::Block), ("advertisement", Verdict::Review)]
///     .into_iter()
///     .collect();
/// assert_eq!(labels.get("ABUSIVE"), None);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LabelMap {
    labels: HashMap<String, Verdict>,
    unknown: Verdict,
}

impl Default for LabelMap {
    fn default() -> Self {
        LabelMap::new()
            .label("PORN", Verdict::Block)
            .label("ABUSIVE", Verdict::Block)
            .label("ADVERTISEMENT", Verdict::Review)
            .label("NORMAL", Verdict::Pass)
    }
}

impl LabelMap {
    /// An empty map: every reply gets the `unknown` verdict ([`Verdict::Pass`]).
    pub fn new() -> Self {
        LabelMap {
            labels: HashMap::new(),
            unknown: Verdict::Pass,
        }
    }

    /// Maps `label` (a `label` value or a content type name, any case) to `verdict`.
    pub fn label(mut self, label: impl AsRef<str>, verdict: Verdict) -> Self {
        self.labels.insert(label.as_ref().to_uppercase(), verdict);
        self
    }

    /// The verdict for replies the map does not list.
    pub fn unknown(mut self, verdict: Verdict) -> Self {
        self.unknown = verdict;
        self
    }

    /// The verdict listed for `label`, if any.
    pub fn get(&self, label: &str) -> Option<Verdict> {
        if let Some(v) = self.labels.get(label) {
            return Some(*v);
        }
        self.labels.get(&label.to_uppercase()).copied()
    }

    /// The verdict a reply stands for.
    pub fn verdict(&self, reply: &AnalyseReply) -> Verdict {
        if !reply.label.is_empty()
            && let Some(v) = self.get(&reply.label)
        {
            return v;
        }
        ContentType::try_from(reply.r#type)
            .ok()
            .and_then(|t| self.get(t.as_str_name()))
            .unwrap_or(self.unknown)
    }
}

impl<K: AsRef<str>> FromIterator<(K, Verdict)> for LabelMap {
    fn from_iter<I: IntoIterator<Item = (K, Verdict)>>(iter: I) -> Self {
        let mut map = LabelMap::new();
        map.extend(iter);
        map
    }
}

impl<K: AsRef<str>> Extend<(K, Verdict)> for LabelMap {
    fn extend<I: IntoIterator<Item = (K, Verdict)>>(&mut self, iter: I) {
        for (k, v) in iter {
            self.labels.insert(k.as_ref().to_uppercase(), v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(label: &str, ty: ContentType) -> AnalyseReply {
        AnalyseReply {
            label: label.to_owned(),
            r#type: ty as i32,
            request_id: String::new(),
        }
    }

    #[test]
    fn default_map() {
        let m = LabelMap::default();
        assert_eq!(m.verdict(&reply("", ContentType::Porn)), Verdict::Block);
        assert_eq!(m.verdict(&reply("", ContentType::Abusive)), Verdict::Block);
        assert_eq!(
            m.verdict(&reply("", ContentType::Advertisement)),
            Verdict::Review
        );
        assert_eq!(m.verdict(&reply("", ContentType::Normal)), Verdict::Pass);
    }

    #[test]
    fn label_wins_over_type_when_listed() {
        let m = LabelMap::default().label("gambling", Verdict::Block);
        assert_eq!(
            m.verdict(&reply("Gambling", ContentType::Advertisement)),
            Verdict::Block
        );
        // an unlisted label falls back to the type
        assert_eq!(
            m.verdict(&reply("cars", ContentType::Advertisement)),
            Verdict::Review
        );
    }

    #[test]
    fn labels_of_any_script_compare_case_insensitively() {
        let m = LabelMap::new()
            .label("ÜBEL", Verdict::Review)
            .label("спам", Verdict::Block);
        assert_eq!(m.get("übel"), Some(Verdict::Review));
        assert_eq!(m.get("СПАМ"), Some(Verdict::Block));
        assert_eq!(m.get("Спам"), Some(Verdict::Block));
    }

    #[test]
    fn unknown_types_and_labels() {
        let m = LabelMap::new()
            .label("porn", Verdict::Block)
            .unknown(Verdict::Review);
        let mut r = reply("", ContentType::Normal);
        assert_eq!(m.verdict(&r), Verdict::Review);
        r.r#type = 42; // a type this build does not know
        assert_eq!(m.verdict(&r), Verdict::Review);
        r.r#type = ContentType::Porn as i32;
        assert_eq!(m.verdict(&r), Verdict::Block);
    }
}
