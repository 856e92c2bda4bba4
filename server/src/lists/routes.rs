//! The lists API: `GET /v1/lists`, `PUT`/`DELETE /v1/lists/{name}`,
//! `POST /v1/lists/{name}/words`, `POST /v1/lists/{name}/words:remove` and
//! `GET /v1/lists/{name}/words`, behind `Authorization: Bearer <admin token>`.

use super::{
    ApiList, ChangeError, Kind, MAX_DESCRIPTION_CHARS, MAX_WORDS_PER_CALL, MAX_WORDS_PER_LIST,
    WordMeta, check_category, check_name, check_word,
};
use crate::{
    App,
    http_api::{ApiError, json_body, json_object_text, method_not_allowed},
};
use axum::{
    Router,
    body::Body,
    extract::{Path, RawQuery, State},
    http::{HeaderMap, Request, StatusCode, header::AUTHORIZATION},
    response::{IntoResponse, Response},
    routing::{get, post, put},
};
use espresso_common::RequestId;
use espresso_filter_core::Level;
use serde::Deserialize;
use serde_json::json;
use subtle::ConstantTimeEq;

/// Bodies of the lists API may be this large (10,000 words do not fit the filter's limit).
pub(crate) const MAX_LIST_BODY_BYTES: usize = 4 << 20;
/// Words one page of `GET /v1/lists/{name}/words` holds by default and at most.
const DEFAULT_PAGE: usize = 100;
const MAX_PAGE: usize = 1000;

/// The routes; the caller adds the state.
pub(crate) fn routes() -> Router<App> {
    Router::new()
        .route("/v1/lists", get(list_all))
        .route("/v1/lists/{name}", put(put_list).delete(delete_list))
        .route("/v1/lists/{name}/words", post(add_words).get(get_words))
        .route("/v1/lists/{name}/words:remove", post(remove_words))
        .method_not_allowed_fallback(method_not_allowed)
}

type Answer = Result<Response, ApiError>;

/// Runs `handler` after the token check, shaping its error with the request id.
async fn guarded<F>(
    app: &App,
    request: Request<Body>,
    handler: impl FnOnce(Request<Body>) -> F,
) -> Response
where
    F: Future<Output = Answer>,
{
    let id = request.extensions().get::<RequestId>().cloned();
    let answer = match authorize(app, request.headers()) {
        Ok(()) => handler(request).await,
        Err(error) => Err(error),
    };
    answer.unwrap_or_else(|error| error.into_response_for(app, id.as_ref()))
}

/// `404 admin_disabled` without a token configured, `401` without a bearer token, `403` with a
/// wrong one; the comparison takes the same time wherever the tokens differ.
fn authorize(app: &App, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(expected) = app.admin_token.as_deref() else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "admin_disabled",
            "the lists API is off: set [admin] token (or token_file) to turn it on",
        ));
    };
    let given = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim);
    match given {
        None => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "the lists API needs `Authorization: Bearer <admin token>`",
        )),
        // `subtle`: no early exit at the first difference (the length is not secret)
        Some(given) if bool::from(given.as_bytes().ct_eq(expected.as_bytes())) => Ok(()),
        Some(_) => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "the bearer token is not the admin token",
        )),
    }
}

fn bad(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, code, message)
}

fn not_found(name: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "list_not_found",
        format!("no list {name:?} (GET /v1/lists shows the lists)"),
    )
}

fn json_answer(status: StatusCode, body: serde_json::Value) -> Response {
    (status, axum::Json(body)).into_response()
}

fn summary(list: &ApiList) -> serde_json::Value {
    json!({
        "name": list.name, "description": list.description, "level": list.level,
        "kind": list.kind, "words": list.words.len(), "version": list.version,
        "source": "api",
    })
}

fn change_failed(error: ChangeError) -> ApiError {
    tracing::error!(%error, "lists: change not applied");
    let (status, code) = match error {
        ChangeError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "store_unavailable"),
        ChangeError::Store(_) | ChangeError::Build(_) => {
            (StatusCode::INTERNAL_SERVER_ERROR, "store_failed")
        }
    };
    ApiError::new(status, code, format!("the change was not applied: {error}"))
}

/// The name from the path, checked, and not a config list.
async fn writable(app: &App, name: &str) -> Result<(), ApiError> {
    check_name(name).map_err(|m| bad("invalid_list", m))?;
    if app.lists.is_config_list(name).await {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "read_only_list",
            format!("list {name:?} comes from the config file and is read-only here"),
        ));
    }
    Ok(())
}

/// Reads a JSON body of the lists API.
async fn body<T: for<'de> Deserialize<'de>>(
    request: Request<Body>,
    example: &str,
) -> Result<T, ApiError> {
    let bytes = json_body(request, MAX_LIST_BODY_BYTES).await?;
    let text = json_object_text(&bytes, example)?;
    serde_json::from_str(text).map_err(|e| bad("invalid_json", format!("invalid JSON: {e}")))
}

async fn list_all(State(app): State<App>, request: Request<Body>) -> Response {
    guarded(&app.clone(), request, |_| async move {
        let dictionary = app.filter.dictionary();
        let (config_lists, version) = app.lists.config_lists().await;
        let mut lists: Vec<serde_json::Value> = config_lists
            .into_iter()
            .map(|(name, allow)| {
                // the running dictionary's count: what the config's files held when last loaded
                let words = dictionary.list_entries(&name).unwrap_or(0);
                json!({"name": name, "kind": if allow { "allow" } else { "deny" },
                       "words": words, "version": version,
                       "source": "config", "read_only": true})
            })
            .collect();
        lists.extend(app.lists.all().await.iter().map(summary));
        Ok(json_answer(StatusCode::OK, json!({ "lists": lists })))
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PutBody {
    #[serde(default)]
    description: String,
    #[serde(default)]
    level: Option<Level>,
    kind: Kind,
}

async fn put_list(
    State(app): State<App>,
    Path(name): Path<String>,
    request: Request<Body>,
) -> Response {
    guarded(&app.clone(), request, |request| async move {
        writable(&app, &name).await?;
        let body: PutBody = body(request, "{\"description\": \"...\", \"kind\": \"deny\"}").await?;
        if body.description.chars().count() > MAX_DESCRIPTION_CHARS
            || body.description.chars().any(char::is_control)
        {
            return Err(bad(
                "invalid_list",
                format!("description: at most {MAX_DESCRIPTION_CHARS} characters, no control characters"),
            ));
        }
        let level = body.level.unwrap_or(Level::Danger);
        let done = app
            .lists
            .change(&name, |old| {
                let list = match old {
                    Some(old) => ApiList {
                        description: body.description.clone(),
                        level,
                        kind: body.kind,
                        version: old.version + 1,
                        ..old.clone()
                    },
                    None => ApiList::new(name.clone(), body.description.clone(), level, body.kind),
                };
                let status = if old.is_some() { StatusCode::OK } else { StatusCode::CREATED };
                Ok((Some(list.clone()), (status, list)))
            })
            .await
            .map_err(change_failed)?;
        let (Ok((status, list)) | Err((status, list))) = done;
        let op = if status == StatusCode::CREATED { "create" } else { "update" };
        app.lists.count(op);
        tracing::info!(who = "admin", op, list = %name, words = list.words.len(), "lists: change applied");
        Ok(json_answer(status, summary(&list)))
    })
    .await
}

async fn delete_list(
    State(app): State<App>,
    Path(name): Path<String>,
    request: Request<Body>,
) -> Response {
    guarded(&app.clone(), request, |_| async move {
        writable(&app, &name).await?;
        let done = app
            .lists
            .change(&name, |old| match old {
                Some(old) => Ok((None, old.words.len())),
                None => Err(0),
            })
            .await
            .map_err(change_failed)?;
        let words = done.map_err(|_| not_found(&name))?;
        app.lists.count("delete");
        tracing::info!(who = "admin", op = "delete", list = %name, words, "lists: change applied");
        Ok(StatusCode::NO_CONTENT.into_response())
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewWord {
    word: String,
    #[serde(default)]
    level: Option<Level>,
    #[serde(default)]
    category: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AddBody {
    words: Vec<NewWord>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RemoveBody {
    words: Vec<String>,
}

fn check_count(n: usize) -> Result<(), ApiError> {
    if n == 0 || n > MAX_WORDS_PER_CALL {
        return Err(bad(
            "invalid_words",
            format!("\"words\" must hold 1 to {MAX_WORDS_PER_CALL} entries (it holds {n})"),
        ));
    }
    Ok(())
}

async fn add_words(
    State(app): State<App>,
    Path(name): Path<String>,
    request: Request<Body>,
) -> Response {
    guarded(&app.clone(), request, |request| async move {
        writable(&app, &name).await?;
        let body: AddBody = body(request, "{\"words\": [{\"word\": \"...\"}]}").await?;
        check_count(body.words.len())?;
        let mut words = Vec::with_capacity(body.words.len());
        for (i, new) in body.words.into_iter().enumerate() {
            let word = new.word.trim().to_owned();
            check_word(&word).map_err(|m| bad("invalid_words", format!("words[{i}]: {m}")))?;
            let category = new.category.map(|c| c.trim().to_owned());
            if let Some(category) = &category {
                check_category(category).map_err(|m| bad("invalid_words", format!("words[{i}]: {m}")))?;
            }
            words.push((word, WordMeta { level: new.level, category }));
        }
        let done = app
            .lists
            .change(&name, |old| {
                let Some(old) = old else { return Err(Err(not_found(&name))) };
                let mut list = old.clone();
                let before = list.words.len();
                list.words.extend(words.iter().cloned());
                let added = list.words.len() - before;
                if list.words.len() > MAX_WORDS_PER_LIST {
                    return Err(Err(bad(
                        "invalid_words",
                        format!("a list holds at most {MAX_WORDS_PER_LIST} words"),
                    )));
                }
                list.version += 1;
                Ok((Some(list.clone()), Ok((list, added))))
            })
            .await
            .map_err(change_failed)?;
        let (list, added) = done.unwrap_or_else(|refused| refused)?;
        app.lists.count("add_words");
        tracing::info!(who = "admin", op = "add_words", list = %name, added, "lists: change applied");
        Ok(json_answer(
            StatusCode::OK,
            json!({"added": added, "words": list.words.len(), "version": list.version}),
        ))
    })
    .await
}

async fn remove_words(
    State(app): State<App>,
    Path(name): Path<String>,
    request: Request<Body>,
) -> Response {
    guarded(&app.clone(), request, |request| async move {
        writable(&app, &name).await?;
        let body: RemoveBody = body(request, "{\"words\": [\"...\"]}").await?;
        check_count(body.words.len())?;
        let done = app
            .lists
            .change(&name, |old| {
                let Some(old) = old else { return Err(Err(not_found(&name))) };
                let mut list = old.clone();
                let removed = body
                    .words
                    .iter()
                    .filter(|w| list.words.remove(w.trim()).is_some())
                    .count();
                list.version += 1;
                Ok((Some(list.clone()), Ok((list, removed))))
            })
            .await
            .map_err(change_failed)?;
        let (list, removed) = done.unwrap_or_else(|refused| refused)?;
        app.lists.count("remove_words");
        tracing::info!(who = "admin", op = "remove_words", list = %name, removed, "lists: change applied");
        Ok(json_answer(
            StatusCode::OK,
            json!({"removed": removed, "words": list.words.len(), "version": list.version}),
        ))
    })
    .await
}

async fn get_words(
    State(app): State<App>,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
    request: Request<Body>,
) -> Response {
    guarded(&app.clone(), request, |_| async move {
        let mut limit = DEFAULT_PAGE;
        let mut cursor: Option<String> = None;
        for (key, value) in form_pairs(query.as_deref().unwrap_or("")) {
            match key.as_str() {
                "limit" => {
                    limit = value
                        .parse()
                        .ok()
                        .filter(|n| (1..=MAX_PAGE).contains(n))
                        .ok_or_else(|| {
                            bad("invalid_query", format!("limit: expected 1 to {MAX_PAGE}"))
                        })?;
                }
                "cursor" => cursor = Some(value),
                other => return Err(bad("invalid_query", format!("unknown parameter {other:?}"))),
            }
        }
        let list = app.lists.get(&name).await.ok_or_else(|| not_found(&name))?;
        let start = match &cursor {
            Some(after) => std::ops::Bound::Excluded(after.clone()),
            None => std::ops::Bound::Unbounded,
        };
        let page: Vec<(&String, &WordMeta)> = list
            .words
            .range((start, std::ops::Bound::Unbounded))
            .take(limit + 1)
            .collect();
        let next = (page.len() > limit).then(|| page[limit - 1].0.clone());
        let words: Vec<serde_json::Value> = page
            .iter()
            .take(limit)
            .map(|(word, meta)| {
                let mut entry = json!({ "word": word });
                if let Some(level) = meta.level {
                    entry["level"] = json!(level);
                }
                if let Some(category) = &meta.category {
                    entry["category"] = json!(category);
                }
                entry
            })
            .collect();
        Ok(json_answer(
            StatusCode::OK,
            json!({"words": words, "next_cursor": next, "total": list.words.len()}),
        ))
    })
    .await
}

/// `application/x-www-form-urlencoded` pairs of a query string (invalid escapes stay as
/// written).
fn form_pairs(query: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_pairs_are_percent_decoded() {
        assert_eq!(
            form_pairs("limit=5&cursor=cheap+pills%21&x"),
            [
                ("limit".to_owned(), "5".to_owned()),
                ("cursor".to_owned(), "cheap pills!".to_owned()),
                ("x".to_owned(), String::new()),
            ]
        );
        assert_eq!(
            form_pairs("cursor=%E5%82%BB%&limit=%zz"),
            [
                ("cursor".to_owned(), "傻%".to_owned()),
                ("limit".to_owned(), "%zz".to_owned()),
            ]
        );
    }
}
