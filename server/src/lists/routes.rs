//! The lists API: `GET /v1/lists`, `PUT`/`DELETE /v1/lists/{name}`,
//! `POST /v1/lists/{name}/words`, `POST /v1/lists/{name}/words:remove` and
//! `GET /v1/lists/{name}/words`, behind `Authorization: Bearer <admin token>`.

use super::{
    Kind,
    ops::{self, NewWord, OpError, PutInput, Source, Summary},
};
use crate::{
    App,
    http_api::{ApiError, json_body, json_object_text, method_not_allowed},
};
use axum::{
    Router,
    body::Body,
    extract::{Path, RawQuery, State, rejection::PathRejection},
    http::{HeaderMap, Request, StatusCode, header::AUTHORIZATION},
    response::{IntoResponse, Response},
    routing::{get, post, put},
};
use espresso_common::RequestId;
use espresso_filter_core::Level;
use serde::Deserialize;
use serde_json::json;

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

impl From<OpError> for ApiError {
    fn from(error: OpError) -> Self {
        ApiError::new(error.kind.status(), error.code, error.message)
    }
}

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
/// wrong one ([`ops::authorize`]).
fn authorize(app: &App, headers: &HeaderMap) -> Result<(), ApiError> {
    let given = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(ops::bearer);
    Ok(ops::authorize(app.admin_token.as_deref(), given)?)
}

/// The `{name}` of the path. One that is not UTF-8 once percent-decoded is a bad name like any
/// other, answered after the token check (axum's own answer would be plain text, before it).
fn path_name(name: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    name.map(|Path(name)| name)
        .map_err(|e| bad("invalid_list", format!("list name: {}", e.body_text())))
}

fn bad(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, code, message)
}

fn json_answer(status: StatusCode, body: serde_json::Value) -> Response {
    (status, axum::Json(body)).into_response()
}

fn summary_json(list: &Summary) -> serde_json::Value {
    match &list.source {
        Source::Config => json!({
            "name": list.name, "kind": list.kind, "words": list.words,
            "version": list.version, "source": "config", "read_only": true,
        }),
        Source::Api {
            description,
            level,
            default,
        } => json!({
            "name": list.name, "description": description, "level": level,
            "kind": list.kind, "default": default, "words": list.words,
            "version": list.version, "source": "api",
        }),
    }
}

/// Reads a JSON body of the lists API.
async fn body<T: for<'de> Deserialize<'de>>(
    request: Request<Body>,
    example: &str,
) -> Result<T, ApiError> {
    let bytes = json_body(request, ops::MAX_REQUEST_BYTES).await?;
    let text = json_object_text(&bytes, example)?;
    serde_json::from_str(text).map_err(|e| bad("invalid_json", format!("invalid JSON: {e}")))
}

async fn list_all(
    State(app): State<App>,
    RawQuery(query): RawQuery,
    request: Request<Body>,
) -> Response {
    guarded(&app.clone(), request, |_| async move {
        if let Some((key, _)) = form_pairs(query.as_deref().unwrap_or("")).first() {
            return Err(bad("invalid_query", format!("unknown parameter {key:?}")));
        }
        let lists: Vec<serde_json::Value> =
            ops::list_all(&app).await.iter().map(summary_json).collect();
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
    #[serde(default)]
    default: Option<bool>,
}

async fn put_list(
    State(app): State<App>,
    name: Result<Path<String>, PathRejection>,
    request: Request<Body>,
) -> Response {
    guarded(&app.clone(), request, |request| async move {
        // the name is checked before the body is read
        let name = ops::writable(&app, &path_name(name)?).await?;
        let body: PutBody = body(request, "{\"description\": \"...\", \"kind\": \"deny\"}").await?;
        let input = PutInput {
            description: body.description,
            level: body.level,
            kind: body.kind,
            default: body.default,
        };
        let put = ops::put(&app, &name, input).await?;
        let status = if put.created {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        };
        Ok(json_answer(status, summary_json(&put.summary)))
    })
    .await
}

async fn delete_list(
    State(app): State<App>,
    name: Result<Path<String>, PathRejection>,
    request: Request<Body>,
) -> Response {
    guarded(&app.clone(), request, |_| async move {
        let name = ops::writable(&app, &path_name(name)?).await?;
        ops::delete(&app, &name).await?;
        Ok(StatusCode::NO_CONTENT.into_response())
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WordBody {
    word: String,
    #[serde(default)]
    level: Option<Level>,
    #[serde(default)]
    category: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AddBody {
    words: Vec<WordBody>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RemoveBody {
    words: Vec<String>,
}

async fn add_words(
    State(app): State<App>,
    name: Result<Path<String>, PathRejection>,
    request: Request<Body>,
) -> Response {
    guarded(&app.clone(), request, |request| async move {
        let name = ops::writable(&app, &path_name(name)?).await?;
        let body: AddBody = body(request, "{\"words\": [{\"word\": \"...\"}]}").await?;
        let words = body
            .words
            .into_iter()
            .map(|w| NewWord {
                word: w.word,
                level: w.level,
                category: w.category,
            })
            .collect();
        let done = ops::add_words(&app, &name, words).await?;
        Ok(json_answer(
            StatusCode::OK,
            json!({"added": done.changed, "words": done.words, "version": done.version}),
        ))
    })
    .await
}

async fn remove_words(
    State(app): State<App>,
    name: Result<Path<String>, PathRejection>,
    request: Request<Body>,
) -> Response {
    guarded(&app.clone(), request, |request| async move {
        let name = ops::writable(&app, &path_name(name)?).await?;
        let body: RemoveBody = body(request, "{\"words\": [\"...\"]}").await?;
        let done = ops::remove_words(&app, &name, body.words).await?;
        Ok(json_answer(
            StatusCode::OK,
            json!({"removed": done.changed, "words": done.words, "version": done.version}),
        ))
    })
    .await
}

async fn get_words(
    State(app): State<App>,
    name: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
    request: Request<Body>,
) -> Response {
    guarded(&app.clone(), request, |_| async move {
        let mut limit = None;
        let mut cursor: Option<String> = None;
        for (key, value) in form_pairs(query.as_deref().unwrap_or("")) {
            let twice = || bad("invalid_query", format!("parameter {key:?} given twice"));
            match key.as_str() {
                "limit" if limit.is_some() => return Err(twice()),
                "cursor" if cursor.is_some() => return Err(twice()),
                "limit" => limit = Some(value.parse().map_err(|_| ops::bad_limit())?),
                "cursor" => cursor = Some(value),
                other => return Err(bad("invalid_query", format!("unknown parameter {other:?}"))),
            }
        }
        let page = ops::page_words(&app, &path_name(name)?, limit, cursor).await?;
        let words: Vec<serde_json::Value> = page
            .words
            .iter()
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
            json!({"words": words, "next_cursor": page.next_cursor, "total": page.total}),
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
    use crate::lists::ChangeError;

    #[test]
    fn a_store_that_does_not_answer_is_a_503_store_unavailable() {
        let error = OpError::from(ChangeError::Unavailable("connection refused".into()));
        assert_eq!(error.kind.status(), StatusCode::SERVICE_UNAVAILABLE);
        // `ApiError::new` checks (in debug builds) that the code is one of `ERROR_CODES`
        let error = ApiError::from(error);
        assert!(
            error.message().ends_with("connection refused"),
            "{}",
            error.message()
        );
    }

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
