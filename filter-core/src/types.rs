//! The request and response shapes of the filter (the JSON of `docs/http-api.md`).

use serde::{Deserialize, Serialize};

/// How serious a listed word is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Hits make the verdict `review`.
    Normal,
    /// Hits make the verdict `block`.
    Danger,
}

impl Level {
    /// `"danger"` or `"normal"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Danger => "danger",
            Level::Normal => "normal",
        }
    }

    /// The verdict a hit of this level makes: `Block` for danger, `Review` for normal (a
    /// check's verdict is the highest of its hits', `Pass` without any).
    pub fn verdict(self) -> Verdict {
        match self {
            Level::Danger => Verdict::Block,
            Level::Normal => Verdict::Review,
        }
    }
}

impl std::fmt::Display for Level {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Level {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "danger" => Ok(Level::Danger),
            "normal" => Ok(Level::Normal),
            other => Err(format!(
                "unknown level {other:?} (expected \"danger\" or \"normal\")"
            )),
        }
    }
}

/// The outcome of a check. Ordered: `Pass < Review < Block`, so stages combine with `max`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Nothing was hit.
    Pass,
    /// Only normal-level words were hit.
    Review,
    /// A danger-level word was hit (or a later stage decided to block).
    Block,
}

impl Verdict {
    /// `"pass"`, `"review"` or `"block"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Review => "review",
            Verdict::Block => "block",
        }
    }
}

/// One matched word, with byte offsets into the ORIGINAL text (`content[start..end]` is what
/// matched, always on char boundaries).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hit {
    /// The listed word as written in its word list.
    pub word: String,
    /// The list's level.
    pub level: Level,
    /// The entry's category (its own, the list's, or the list file's stem).
    pub category: String,
    /// The name of the list the entry is in (see [`ListSource::name`](crate::ListSource::name));
    /// empty for hits that come from no list (the detectors', a later stage's).
    #[serde(default)]
    pub list: String,
    /// Start byte offset in the original text.
    pub start: usize,
    /// End byte offset (exclusive) in the original text.
    pub end: usize,
}

/// A request to the filter service.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilterRequest {
    /// The text to check.
    pub content: String,
    /// The caller's request id, echoed in the response.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// The lists to check against, by name; `None`: every list used by default (see
    /// [`ListSource::by_default`](crate::ListSource::by_default)). Allow lists always apply.
    ///
    /// [`FilterService`](crate::FilterService) cannot fail, so it leaves out a name the
    /// dictionary does not have (a list removed since the name was checked), and `Some` of no
    /// known name checks against no blocked list: check the names where the request is read,
    /// with [`Dictionary::has_list`](crate::Dictionary::has_list) or
    /// [`Engine::check_lists`](crate::Engine::check_lists) (an unknown name is `UnknownList`),
    /// as the demo server does (`400 unknown_list`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lists: Option<Vec<String>>,
}

impl FilterRequest {
    /// A request for `content` without a request id.
    pub fn new(content: impl Into<String>) -> Self {
        FilterRequest {
            content: content.into(),
            request_id: None,
            lists: None,
        }
    }

    /// Sets the request id.
    pub fn with_request_id(mut self, id: impl Into<String>) -> Self {
        self.request_id = Some(id.into());
        self
    }

    /// Restricts the check to the lists named `lists` (unknown names are left out: see
    /// [`lists`](Self::lists)).
    pub fn with_lists<S: Into<String>>(mut self, lists: impl IntoIterator<Item = S>) -> Self {
        self.lists = Some(lists.into_iter().map(Into::into).collect());
        self
    }
}

/// The answer of the filter: the JSON of `docs/http-api.md` (`request_id` is omitted when absent).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilterResponse {
    /// The request id of the request, if it had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// `block` if a danger word was hit, `review` if only normal words were, else `pass`.
    pub verdict: Verdict,
    /// The text with every hit replaced by mask characters (one per original character), and
    /// characters outside the charset allow-list (if one is configured) removed.
    pub masked: String,
    /// The hits, sorted by `start`, never overlapping.
    pub hits: Vec<Hit>,
    /// Set by later stages when they were skipped (cache or classifier down, shedding).
    pub degraded: bool,
}

impl FilterResponse {
    /// Raises the verdict to at least `verdict` (stages such as a classifier use this).
    pub fn escalate(&mut self, verdict: Verdict) {
        self.verdict = self.verdict.max(verdict);
    }

    /// Marks the response as produced without every stage.
    pub fn mark_degraded(&mut self) {
        self.degraded = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_shape() {
        let r = FilterResponse {
            request_id: Some("r1".into()),
            verdict: Verdict::Block,
            masked: "****".into(),
            hits: vec![Hit {
                word: "fuck".into(),
                level: Level::Danger,
                category: "profanity".into(),
                list: "danger".into(),
                start: 0,
                end: 4,
            }],
            degraded: false,
        };
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"request_id": "r1", "verdict": "block", "masked": "****",
                "hits": [{"word": "fuck", "level": "danger", "category": "profanity",
                          "list": "danger", "start": 0, "end": 4}], "degraded": false})
        );
        let mut r2 = r.clone();
        r2.request_id = None;
        assert!(
            serde_json::to_value(&r2)
                .unwrap()
                .get("request_id")
                .is_none()
        );
    }

    #[test]
    fn request_allows_extra_fields() {
        let r: FilterRequest = serde_json::from_str(r#"{"content": "hi", "lang": "en"}"#).unwrap();
        assert_eq!(r, FilterRequest::new("hi"));
    }

    #[test]
    fn verdict_order_and_escalate() {
        assert!(Verdict::Pass < Verdict::Review && Verdict::Review < Verdict::Block);
        let mut r = FilterResponse {
            request_id: None,
            verdict: Verdict::Review,
            masked: String::new(),
            hits: vec![],
            degraded: false,
        };
        r.escalate(Verdict::Pass);
        assert_eq!(r.verdict, Verdict::Review);
        r.escalate(Verdict::Block);
        assert_eq!(r.verdict, Verdict::Block);
        r.mark_degraded();
        assert!(r.degraded);
        assert_eq!("danger".parse::<Level>(), Ok(Level::Danger));
        assert!("x".parse::<Level>().is_err());
    }
}
