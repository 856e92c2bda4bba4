//! The lists API's operations, whatever the transport: HTTP (`routes.rs`) and gRPC
//! (`crate::grpc`) parse their input, call these, and shape what comes back.
//!
//! Each operation validates its input (the limits of `super`), applies a change through
//! [`Lists::change`](super::Lists::change), counts it in `espresso_lists_changes_total{op}` and
//! logs it; a refusal is one [`OpError`], whose [`ErrorKind`] gives the HTTP status and the gRPC
//! code.

use super::{
    ApiList, ChangeError, Kind, Lists, MAX_DESCRIPTION_CHARS, MAX_WORDS_PER_CALL,
    MAX_WORDS_PER_LIST, WordMeta, check_category, check_name, check_word,
};
use crate::App;
use espresso_filter_core::Level;
use http::StatusCode;
use subtle::ConstantTimeEq;

/// Requests of the lists API (HTTP bodies, gRPC messages) may be this large: 10,000 words do
/// not fit the filter's limit.
pub(crate) const MAX_REQUEST_BYTES: usize = 4 << 20;
/// Words one page of [`page_words`] holds by default and at most.
pub(crate) const DEFAULT_PAGE: usize = 100;
pub(crate) const MAX_PAGE: usize = 1000;

/// What kind of refusal an [`OpError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ErrorKind {
    /// No admin token is configured: the lists API is off.
    Disabled,
    /// The call carries no bearer token.
    Unauthenticated,
    /// The call carries a token that is not the admin token.
    Forbidden,
    /// The input breaks a rule.
    Invalid,
    /// No API list of that name.
    NotFound,
    /// A list of the config file.
    ReadOnly,
    /// The change could not be built or stored.
    StoreFailed,
    /// The shared store did not answer.
    StoreUnavailable,
}

impl ErrorKind {
    /// The HTTP status of this kind.
    pub(crate) fn status(self) -> StatusCode {
        match self {
            Self::Disabled | Self::NotFound => StatusCode::NOT_FOUND,
            Self::Unauthenticated => StatusCode::UNAUTHORIZED,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::Invalid => StatusCode::BAD_REQUEST,
            Self::ReadOnly => StatusCode::CONFLICT,
            Self::StoreFailed => StatusCode::INTERNAL_SERVER_ERROR,
            Self::StoreUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The gRPC status code of this kind.
    pub(crate) fn grpc(self) -> tonic::Code {
        match self {
            // the service is there but turned off, as an unknown route would be
            Self::Disabled => tonic::Code::Unimplemented,
            Self::Unauthenticated => tonic::Code::Unauthenticated,
            Self::Forbidden => tonic::Code::PermissionDenied,
            Self::Invalid => tonic::Code::InvalidArgument,
            Self::NotFound => tonic::Code::NotFound,
            Self::ReadOnly => tonic::Code::FailedPrecondition,
            Self::StoreFailed => tonic::Code::Internal,
            Self::StoreUnavailable => tonic::Code::Unavailable,
        }
    }
}

/// A refused operation: its kind, its stable code (the `code` of the HTTP error JSON) and a
/// message for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OpError {
    pub(crate) kind: ErrorKind,
    pub(crate) code: &'static str,
    pub(crate) message: String,
}

impl OpError {
    pub(crate) fn new(kind: ErrorKind, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            kind,
            code,
            message: message.into(),
        }
    }

    /// Input that breaks a rule (`code`: `invalid_list`, `invalid_words`, `invalid_query` ...).
    pub(crate) fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Invalid, code, message)
    }

    fn not_found(name: &str) -> Self {
        Self::new(
            ErrorKind::NotFound,
            "list_not_found",
            format!(
                "no list {} (GET /v1/lists or Lists/ListLists shows the lists)",
                crate::quoted(name)
            ),
        )
    }

    /// The gRPC status carrying this error.
    pub(crate) fn into_status(self) -> tonic::Status {
        tonic::Status::new(self.kind.grpc(), self.message)
    }
}

impl From<ChangeError> for OpError {
    fn from(error: ChangeError) -> Self {
        tracing::error!(%error, "lists: change not applied");
        let (kind, code) = match error {
            ChangeError::Unavailable(_) => (ErrorKind::StoreUnavailable, "store_unavailable"),
            ChangeError::Store(_) | ChangeError::Build(_) => {
                (ErrorKind::StoreFailed, "store_failed")
            }
        };
        Self::new(kind, code, format!("the change was not applied: {error}"))
    }
}

/// Checks the bearer token `given` against the admin token `expected`: the API is off without
/// one configured, and the comparison takes the same time wherever the tokens differ.
pub(crate) fn authorize(expected: Option<&str>, given: Option<&str>) -> Result<(), OpError> {
    let Some(expected) = expected else {
        return Err(OpError::new(
            ErrorKind::Disabled,
            "admin_disabled",
            "the lists API is off: set [admin] token (or token_file) to turn it on",
        ));
    };
    match given {
        None => Err(OpError::new(
            ErrorKind::Unauthenticated,
            "unauthorized",
            "the lists API needs `Authorization: Bearer <admin token>`",
        )),
        // `subtle`: no early exit at the first difference (the length is not secret)
        Some(given) if bool::from(given.as_bytes().ct_eq(expected.as_bytes())) => Ok(()),
        Some(_) => Err(OpError::new(
            ErrorKind::Forbidden,
            "forbidden",
            "the bearer token is not the admin token",
        )),
    }
}

/// The token of an `authorization` value `Bearer <token>` (`None`: not a bearer token).
pub(crate) fn bearer(value: &str) -> Option<&str> {
    value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .map(str::trim)
}

/// The name of a list that changes may write: checked, and not a config list.
#[derive(Debug, Clone)]
pub(crate) struct Writable(String);

impl Writable {
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

/// Checks that `name` is a valid list name and not one of the config file's lists.
pub(crate) async fn writable(app: &App, name: &str) -> Result<Writable, OpError> {
    check_name(name).map_err(|m| OpError::invalid("invalid_list", m))?;
    if app.lists.is_config_list(name).await {
        return Err(OpError::new(
            ErrorKind::ReadOnly,
            "read_only_list",
            format!(
                "list {} comes from the config file and is read-only here",
                crate::quoted(name)
            ),
        ));
    }
    Ok(Writable(name.to_owned()))
}

/// What a change reports in its log line and counter.
enum Count {
    Words(usize),
    Added(usize),
    Removed(usize),
}

/// Applies `change` to the list `name` through [`Lists::change`], then counts it under `op`
/// and logs it. `change` may run more than once (the store may hand it a newer list). A change
/// that leaves the list as it was is answered without storing, counting or a new version.
async fn apply<T>(
    lists: &Lists,
    name: &Writable,
    change: impl FnMut(Option<&ApiList>) -> Result<(Option<ApiList>, T), OpError>,
    describe: impl FnOnce(&T) -> (&'static str, Count),
) -> Result<T, OpError> {
    let mut change = change;
    let done = lists
        .change(name.as_str(), |old| match change(old) {
            Ok((new, answer)) if new.as_ref() == old => Err(Ok(answer)),
            Ok((new, answer)) => Ok((new, Ok(answer))),
            Err(refused) => Err(Err(refused)),
        })
        .await?;
    let answer = match done {
        Ok(changed) => changed?,
        Err(unchanged) => {
            let answer = unchanged?;
            tracing::debug!(
                who = "admin",
                list = name.as_str(),
                "lists: nothing to change"
            );
            return Ok(answer);
        }
    };
    let (op, count) = describe(&answer);
    lists.count(op);
    let list = name.as_str();
    match count {
        Count::Words(words) => {
            tracing::info!(who = "admin", op, list, words, "lists: change applied");
        }
        Count::Added(added) => {
            tracing::info!(who = "admin", op, list, added, "lists: change applied");
        }
        Count::Removed(removed) => {
            tracing::info!(who = "admin", op, list, removed, "lists: change applied");
        }
    }
    Ok(answer)
}

/// One list as `GET /v1/lists` and `Lists/ListLists` show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Summary {
    pub(crate) name: String,
    pub(crate) kind: Kind,
    /// Words (API lists) or entries as last loaded (config lists).
    pub(crate) words: usize,
    pub(crate) version: u64,
    pub(crate) source: Source,
}

/// Where a listed list comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Source {
    /// The config file (read-only).
    Config,
    /// The lists API.
    Api {
        description: String,
        level: Level,
        default: bool,
    },
}

impl Summary {
    fn of(list: &ApiList) -> Self {
        Self {
            name: list.name.clone(),
            kind: list.kind,
            words: list.words.len(),
            version: list.version,
            source: Source::Api {
                description: list.description.clone(),
                level: list.level,
                default: list.default,
            },
        }
    }
}

/// Every list: the config's first (file order), then the API's (name order).
pub(crate) async fn list_all(app: &App) -> Vec<Summary> {
    let dictionary = app.filter.dictionary();
    let (config_lists, version) = app.lists.config_lists().await;
    let mut lists: Vec<Summary> = config_lists
        .into_iter()
        .map(|(name, allow)| Summary {
            // the running dictionary's count: what the config's files held when last loaded
            words: dictionary.list_entries(&name).unwrap_or(0),
            name,
            kind: if allow { Kind::Allow } else { Kind::Deny },
            version,
            source: Source::Config,
        })
        .collect();
    lists.extend(app.lists.all().await.iter().map(Summary::of));
    lists
}

/// A list's settings, as `PUT /v1/lists/{name}` and `Lists/PutList` take them.
#[derive(Debug, Clone)]
pub(crate) struct PutInput {
    pub(crate) description: String,
    /// `None`: `danger`.
    pub(crate) level: Option<Level>,
    pub(crate) kind: Kind,
    /// `None`: used by default.
    pub(crate) default: Option<bool>,
}

/// A created or updated list.
#[derive(Debug, Clone)]
pub(crate) struct Put {
    pub(crate) created: bool,
    pub(crate) summary: Summary,
}

/// Creates the list `name` or updates its settings (its words stay).
pub(crate) async fn put(app: &App, name: &Writable, input: PutInput) -> Result<Put, OpError> {
    if input.description.chars().count() > MAX_DESCRIPTION_CHARS
        || input.description.chars().any(char::is_control)
    {
        return Err(OpError::invalid(
            "invalid_list",
            format!(
                "description: at most {MAX_DESCRIPTION_CHARS} characters, no control characters"
            ),
        ));
    }
    let default = input.default.unwrap_or(true);
    if input.kind == Kind::Allow && !default {
        return Err(OpError::invalid(
            "invalid_list",
            "an allow list applies to every check: \"default\": false is for deny lists only",
        ));
    }
    let level = input.level.unwrap_or(Level::Danger);
    // A list changing kind keeps its words: each must fit the new kind (a rule cannot be in an
    // allow list), refused here as the client's mistake rather than as a failed rebuild.
    if let Some(old) = app.lists.get(name.as_str()).await
        && old.kind != input.kind
        && !old.words.is_empty()
    {
        let words: Vec<String> = old.words.keys().cloned().collect();
        if let Err((i, why)) = app.lists.check_words(words.clone(), input.kind).await {
            let kind = match input.kind {
                Kind::Allow => "allow",
                Kind::Deny => "deny",
            };
            return Err(OpError::invalid(
                "invalid_list",
                format!(
                    "kind {kind:?}: the list's word {} cannot be in such a list ({why}); remove \
                     it first",
                    crate::quoted(&words[i])
                ),
            ));
        }
    }
    apply(
        &app.lists,
        name,
        |old| {
            let list = match old {
                Some(old) => ApiList {
                    description: input.description.clone(),
                    level,
                    kind: input.kind,
                    default,
                    ..old.clone()
                }
                .next_of(old),
                None => {
                    let mut list = ApiList::new(
                        name.as_str().to_owned(),
                        input.description.clone(),
                        level,
                        input.kind,
                    );
                    list.default = default;
                    list
                }
            };
            let put = Put {
                created: old.is_none(),
                summary: Summary::of(&list),
            };
            Ok((Some(list), put))
        },
        |put| {
            let op = if put.created { "create" } else { "update" };
            (op, Count::Words(put.summary.words))
        },
    )
    .await
}

/// Deletes the list `name`; returns the number of words it held.
pub(crate) async fn delete(app: &App, name: &Writable) -> Result<usize, OpError> {
    apply(
        &app.lists,
        name,
        |old| match old {
            Some(old) => Ok((None, old.words.len())),
            None => Err(OpError::not_found(name.as_str())),
        },
        |&words| ("delete", Count::Words(words)),
    )
    .await
}

/// A word to add, with its own level and category when it has them.
#[derive(Debug, Clone)]
pub(crate) struct NewWord {
    pub(crate) word: String,
    pub(crate) level: Option<Level>,
    pub(crate) category: Option<String>,
}

/// What adding or removing words did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WordsChanged {
    /// Words added (or replaced), or removed.
    pub(crate) changed: usize,
    /// Words the list holds now.
    pub(crate) words: usize,
    pub(crate) version: u64,
}

fn check_count(n: usize) -> Result<(), OpError> {
    if n == 0 || n > MAX_WORDS_PER_CALL {
        return Err(OpError::invalid(
            "invalid_words",
            format!("\"words\" must hold 1 to {MAX_WORDS_PER_CALL} entries (it holds {n})"),
        ));
    }
    Ok(())
}

/// Adds `words` to the list `name` (trimmed; a word already listed is replaced).
pub(crate) async fn add_words(
    app: &App,
    name: &Writable,
    words: Vec<NewWord>,
) -> Result<WordsChanged, OpError> {
    check_count(words.len())?;
    let mut checked = Vec::with_capacity(words.len());
    for (i, new) in words.into_iter().enumerate() {
        let invalid = |m: String| OpError::invalid("invalid_words", format!("words[{i}]: {m}"));
        let word = new.word.trim().to_owned();
        check_word(&word).map_err(invalid)?;
        let category = new.category.map(|c| c.trim().to_owned());
        if let Some(category) = &category {
            check_category(category).map_err(invalid)?;
        }
        let meta = WordMeta {
            level: new.level,
            category,
        };
        checked.push((word, meta));
    }
    let kind = app
        .lists
        .get(name.as_str())
        .await
        .ok_or_else(|| OpError::not_found(name.as_str()))?
        .kind;
    let words = checked.iter().map(|(w, _)| w.clone()).collect();
    if let Err((i, why)) = app.lists.check_words(words, kind).await {
        return Err(OpError::invalid(
            "invalid_words",
            format!("words[{i}]: {why}"),
        ));
    }
    edit_words(app, name, "add_words", Count::Added, |list| {
        let before = list.words.len();
        list.words.extend(checked.iter().cloned());
        if list.words.len() > MAX_WORDS_PER_LIST {
            return Err(OpError::invalid(
                "invalid_words",
                format!("a list holds at most {MAX_WORDS_PER_LIST} words"),
            ));
        }
        Ok(list.words.len() - before)
    })
    .await
}

/// Removes `words` (trimmed) from the list `name`; words it does not hold are skipped.
pub(crate) async fn remove_words(
    app: &App,
    name: &Writable,
    words: Vec<String>,
) -> Result<WordsChanged, OpError> {
    check_count(words.len())?;
    edit_words(app, name, "remove_words", Count::Removed, |list| {
        Ok(words
            .iter()
            .filter(|w| list.words.remove(w.trim()).is_some())
            .count())
    })
    .await
}

/// Edits the words of the existing list `name` with `edit`, which answers how many words it
/// changed, and gives the list its next version (its own when nothing changed).
async fn edit_words(
    app: &App,
    name: &Writable,
    op: &'static str,
    count: fn(usize) -> Count,
    edit: impl Fn(&mut ApiList) -> Result<usize, OpError>,
) -> Result<WordsChanged, OpError> {
    apply(
        &app.lists,
        name,
        |old| {
            let Some(old) = old else {
                return Err(OpError::not_found(name.as_str()));
            };
            let mut list = old.clone();
            let changed = edit(&mut list)?;
            let list = list.next_of(old);
            let changed = WordsChanged {
                changed,
                words: list.words.len(),
                version: list.version,
            };
            Ok((Some(list), changed))
        },
        |changed| (op, count(changed.changed)),
    )
    .await
}

/// One page of a list's words, in code-point order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Page {
    pub(crate) words: Vec<(String, WordMeta)>,
    /// The last word of this page when more follow: the `cursor` of the next page.
    pub(crate) next_cursor: Option<String>,
    /// Words the list holds.
    pub(crate) total: usize,
}

/// The error of a page size out of range.
pub(crate) fn bad_limit() -> OpError {
    OpError::invalid("invalid_query", format!("limit: expected 1 to {MAX_PAGE}"))
}

/// The words of the API list `name` after `cursor` (`None`: from the first), at most `limit`
/// (`None`: [`DEFAULT_PAGE`]; 1 to [`MAX_PAGE`]).
pub(crate) async fn page_words(
    app: &App,
    name: &str,
    limit: Option<usize>,
    cursor: Option<String>,
) -> Result<Page, OpError> {
    let limit = match limit {
        None => DEFAULT_PAGE,
        Some(n) if (1..=MAX_PAGE).contains(&n) => n,
        Some(_) => return Err(bad_limit()),
    };
    let Some(list) = app.lists.get(name).await else {
        if app.lists.is_config_list(name).await {
            return Err(OpError::new(
                ErrorKind::NotFound,
                "list_not_found",
                format!(
                    "{} is a list of the config file, not of the lists API: its words are in its \
                     file",
                    crate::quoted(name)
                ),
            ));
        }
        // a name no list can have is the client's mistake, as in every other lists call
        check_name(name).map_err(|m| OpError::invalid("invalid_list", m))?;
        return Err(OpError::not_found(name));
    };
    Ok(page_of(list, limit, cursor))
}

fn page_of(list: ApiList, limit: usize, cursor: Option<String>) -> Page {
    use std::ops::Bound::{Excluded, Unbounded};
    let total = list.words.len();
    let start = cursor.map_or(Unbounded, Excluded);
    let mut words: Vec<(String, WordMeta)> = list
        .words
        .range::<String, _>((start, Unbounded))
        .take(limit + 1)
        .map(|(word, meta)| (word.clone(), meta.clone()))
        .collect();
    let next_cursor = (words.len() > limit).then(|| {
        words.truncate(limit);
        words[limit - 1].0.clone()
    });
    Page {
        words,
        next_cursor,
        total,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_has_its_http_status_and_grpc_code() {
        use tonic::Code;
        let expected = [
            (ErrorKind::Disabled, 404, Code::Unimplemented),
            (ErrorKind::Unauthenticated, 401, Code::Unauthenticated),
            (ErrorKind::Forbidden, 403, Code::PermissionDenied),
            (ErrorKind::Invalid, 400, Code::InvalidArgument),
            (ErrorKind::NotFound, 404, Code::NotFound),
            (ErrorKind::ReadOnly, 409, Code::FailedPrecondition),
            (ErrorKind::StoreFailed, 500, Code::Internal),
            (ErrorKind::StoreUnavailable, 503, Code::Unavailable),
        ];
        for (kind, status, code) in expected {
            assert_eq!(kind.status().as_u16(), status, "{kind:?}");
            assert_eq!(kind.grpc(), code, "{kind:?}");
        }
    }

    #[test]
    fn change_errors_keep_their_code_and_message() {
        let error = OpError::from(ChangeError::Unavailable("redis: connection refused".into()));
        assert_eq!(error.kind, ErrorKind::StoreUnavailable);
        assert_eq!(error.code, "store_unavailable");
        assert_eq!(
            error.message,
            "the change was not applied: the list store is unavailable: redis: connection refused"
        );
        let error = OpError::from(ChangeError::Build("bad".into()));
        assert_eq!(
            (error.kind, error.code),
            (ErrorKind::StoreFailed, "store_failed")
        );
    }

    #[test]
    fn the_token_is_checked_whole() {
        let kind = |expected, given| authorize(expected, given).map_err(|e| e.kind);
        assert_eq!(kind(None, Some("x")), Err(ErrorKind::Disabled));
        assert_eq!(kind(Some("s3cret"), None), Err(ErrorKind::Unauthenticated));
        for wrong in ["s3creT", "s3cre", "s3crets", ""] {
            assert_eq!(kind(Some("s3cret"), Some(wrong)), Err(ErrorKind::Forbidden));
        }
        assert_eq!(kind(Some("s3cret"), Some("s3cret")), Ok(()));
        assert_eq!(bearer("Bearer  s3cret "), Some("s3cret"));
        assert_eq!(bearer("bearer s3cret"), Some("s3cret"));
        assert_eq!(bearer("Basic czNjcmV0"), None);
    }

    #[test]
    fn pages_follow_the_cursor_to_the_end() {
        let mut list = ApiList::new("l".into(), String::new(), Level::Normal, Kind::Deny);
        for word in ["a", "b", "c", "d", "e"] {
            list.words.insert(word.into(), WordMeta::default());
        }
        let words = |page: &Page| {
            page.words
                .iter()
                .map(|(w, _)| w.clone())
                .collect::<Vec<_>>()
        };
        let first = page_of(list.clone(), 2, None);
        assert_eq!(
            (words(&first), first.next_cursor.as_deref()),
            (vec!["a".to_owned(), "b".into()], Some("b"))
        );
        let second = page_of(list.clone(), 2, first.next_cursor);
        assert_eq!(words(&second), ["c", "d"]);
        let last = page_of(list.clone(), 2, second.next_cursor);
        assert_eq!(
            (words(&last), last.next_cursor, last.total),
            (vec!["e".to_owned()], None, 5)
        );
        let exact = page_of(list, 5, None);
        assert_eq!((exact.words.len(), exact.next_cursor), (5, None));
    }

    #[test]
    fn stored_lists_without_the_flag_are_used_by_default() {
        let stored = r#"{"name":"spam","description":"","level":"normal","kind":"deny",
                         "version":3,"words":{"cheap pills":{}}}"#;
        let list: ApiList = serde_json::from_str(stored).unwrap();
        assert!(list.default);
        let mut quiet = list.clone();
        quiet.default = false;
        let json = serde_json::to_string(&quiet).unwrap();
        assert!(json.contains("\"default\":false"), "{json}");
        assert_eq!(serde_json::from_str::<ApiList>(&json).unwrap(), quiet);
    }
}
