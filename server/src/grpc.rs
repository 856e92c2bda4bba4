//! The gRPC surface: `espresso.filter.v1.Filter` (`Check`, `CheckBatch`),
//! `espresso.filter.v1.Lists` (the lists API), plus health and reflection.

use crate::{
    App, Checked,
    by_path::EitherFuture,
    http_api::{ApiError, FilterInput, MAX_BATCH_ITEMS},
    lists::{
        Kind,
        ops::{self, NewWord, OpError, PutInput, Source, Summary},
    },
};
use espresso_common::RequestId;
use espresso_filter_core::{FilterRequest, Level};
use tonic::{Request, Response, Status, server::NamedService};
use tonic_reflection::server::{Builder, Error, v1, v1alpha};

/// Code generated from `proto/espresso/filter/v1/filter.proto`.
#[allow(missing_docs, unreachable_pub, clippy::all)]
pub mod pb {
    tonic::include_proto!("espresso.filter.v1");

    /// The encoded descriptors of every espresso proto, for gRPC reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        include_bytes!(concat!(env!("OUT_DIR"), "/espresso_descriptor.bin"));
}

/// Server reflection, `grpc.reflection.v1` and `grpc.reflection.v1alpha`, over the same
/// descriptors.
///
/// Both versions are served because common clients (grpcurl, Python's grpcio-reflection) still
/// speak v1alpha only. Each lists `espresso.filter.v1.Filter` and `Lists`, `grpc.health.v1.Health` and both
/// reflection services, and resolves their files by symbol.
pub(crate) fn reflection() -> Result<
    (
        v1::ServerReflectionServer<impl v1::ServerReflection>,
        v1alpha::ServerReflectionServer<impl v1alpha::ServerReflection>,
    ),
    Error,
> {
    // The builder is consumed by `build_*` and is not `Clone`: one per version.
    let builder = || {
        Builder::configure()
            .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            // Each `build_*` adds its own version's descriptor; registering both lets a client
            // of either version see that the other is served too.
            .register_encoded_file_descriptor_set(tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(
                tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
            )
    };
    Ok((builder().build_v1()?, builder().build_v1alpha()?))
}

/// The route of every method of the tonic service `service`, `/<package.Service>/{*method}`,
/// with its answers made plain by [`plain_answers`].
pub(crate) fn route<S, B>(app: &App, service: S) -> axum::Router<App>
where
    S: NamedService
        + tower::Service<
            http::Request<axum::body::Body>,
            Response = http::Response<B>,
            Error = std::convert::Infallible,
        >,
    S: Clone + Send + Sync + 'static,
    S::Future: Send + 'static,
    B: axum::body::HttpBody<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    let service = GrpcOnly {
        inner: tower::ServiceBuilder::new()
            .map_response(plain_answers::<S, B> as fn(_) -> _)
            .service(service),
        app: app.clone(),
    };
    axum::Router::new().route_service(
        &format!("/{}/{{*method}}", S::NAME),
        axum::routing::any_service(service),
    )
}

/// A gRPC route's service, in front of tonic: a request that is not gRPC (`application/grpc`,
/// `application/grpc+<codec>`) is answered `415 unsupported_media_type` with the error JSON.
/// tonic answered whatever came: a JSON `POST` got a gRPC `INTERNAL` ("invalid compression
/// flag"), and a gRPC-Web call a gRPC answer its client cannot read, while the layers in front
/// answered its refusals as HTTP.
#[derive(Clone)]
struct GrpcOnly<S> {
    inner: S,
    app: App,
}

impl<S, B> tower::Service<http::Request<axum::body::Body>> for GrpcOnly<S>
where
    S: tower::Service<http::Request<axum::body::Body>, Response = http::Response<B>>,
{
    type Response = http::Response<http_body_util::Either<B, axum::body::Body>>;
    type Error = S::Error;
    type Future =
        EitherFuture<S::Future, std::future::Ready<Result<axum::response::Response, S::Error>>>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<axum::body::Body>) -> Self::Future {
        if espresso_common::grpc::is_grpc(request.headers()) {
            return EitherFuture::Left {
                future: self.inner.call(request),
            };
        }
        let web = request
            .headers()
            .get(http::header::CONTENT_TYPE)
            .is_some_and(|t| t.as_bytes().starts_with(b"application/grpc-web"));
        let message = if web {
            "gRPC-Web is not served: call with gRPC over HTTP/2 (content-type: application/grpc), \
             or use the JSON API"
        } else {
            "a gRPC method: call it with gRPC over HTTP/2 (content-type: application/grpc), or \
             use the JSON API (POST /v1/filter)"
        };
        let error = ApiError::new(
            http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            message,
        );
        let id = request.extensions().get::<RequestId>();
        EitherFuture::Right {
            future: std::future::ready(Ok(error.into_response_for(&self.app, id))),
        }
    }
}

/// Two of tonic's answers, made plain:
/// - tonic answers a message over `max_decoding_message_size` with `OUT_OF_RANGE`; gRPC's code
///   for a message over a size limit is `RESOURCE_EXHAUSTED` (what the JSON API's 413 maps
///   to), and no method here answers `OUT_OF_RANGE` itself;
/// - an unknown method of a known service is `UNIMPLEMENTED` without a message; it now says
///   so, as the answer to an unknown service does.
///
/// tonic sends both as trailers-only answers, so the status is in the headers.
pub(crate) fn plain_answers<S: NamedService, B>(
    mut response: http::Response<B>,
) -> http::Response<B> {
    let headers = response.headers_mut();
    let status = headers
        .get("grpc-status")
        .and_then(|s| s.to_str().ok()?.parse::<i32>().ok())
        .map(tonic::Code::from);
    match status {
        Some(tonic::Code::OutOfRange) => {
            let exhausted = (tonic::Code::ResourceExhausted as i32).to_string();
            headers.insert(
                "grpc-status",
                http::HeaderValue::from_str(&exhausted).expect("digits"),
            );
        }
        Some(tonic::Code::Unimplemented) if !headers.contains_key("grpc-message") => {
            let message = format!(
                "{} has no such method (reflection lists its methods)",
                S::NAME
            );
            if let Ok(message) = http::HeaderValue::from_str(&message) {
                headers.insert("grpc-message", message);
            }
        }
        _ => {}
    }
    response
}

/// Serves `Filter/Check` from the same pipeline as `POST /v1/filter`.
#[derive(Clone)]
pub(crate) struct FilterGrpc {
    app: App,
}

impl FilterGrpc {
    pub(crate) fn new(app: App) -> Self {
        Self { app }
    }
}

impl FilterGrpc {
    /// One check: the names of `request.lists` must be known (INVALID_ARGUMENT otherwise).
    fn input(&self, request: pb::CheckRequest) -> Result<FilterInput, Status> {
        let input = FilterInput {
            content: request.content,
            lists: (!request.lists.is_empty()).then_some(request.lists),
        };
        input
            .known_to(&self.app)
            .map_err(|error| Status::invalid_argument(error.message()))
    }

    async fn check_input(&self, input: FilterInput, id: Option<&RequestId>) -> Checked {
        self.app
            .check(FilterRequest {
                content: input.content,
                request_id: id.map(|id| id.as_str().to_owned()),
                lists: input.lists,
            })
            .await
    }

    fn reply(checked: Checked, id: Option<&RequestId>) -> pb::CheckReply {
        let reply = checked.response;
        pb::CheckReply {
            request_id: id.map(|id| id.to_string()).unwrap_or_default(),
            verdict: reply.verdict.as_str().to_owned(),
            masked: reply.masked,
            degraded: reply.degraded,
            hits_truncated: checked.hits_truncated as u64,
            hits: reply
                .hits
                .into_iter()
                .map(|hit| pb::Hit {
                    level: hit.level.as_str().to_owned(),
                    word: hit.word,
                    category: hit.category,
                    start: hit.start as u64,
                    end: hit.end as u64,
                    list: hit.list,
                })
                .collect(),
        }
    }
}

#[tonic::async_trait]
impl pb::filter_server::Filter for FilterGrpc {
    async fn check(
        &self,
        request: Request<pb::CheckRequest>,
    ) -> Result<Response<pb::CheckReply>, Status> {
        let id = request.extensions().get::<RequestId>().cloned();
        let input = self.input(request.into_inner())?;
        let checked = self.check_input(input, id.as_ref()).await;
        Ok(Response::new(Self::reply(checked, id.as_ref())))
    }

    async fn check_batch(
        &self,
        request: Request<pb::CheckBatchRequest>,
    ) -> Result<Response<pb::CheckBatchReply>, Status> {
        let id = request.extensions().get::<RequestId>().cloned();
        let items = request.into_inner().items;
        if items.is_empty() || items.len() > MAX_BATCH_ITEMS {
            return Err(Status::invalid_argument(format!(
                "items must hold 1 to {MAX_BATCH_ITEMS} entries (it holds {})",
                items.len()
            )));
        }
        let inputs = items
            .into_iter()
            .enumerate()
            .map(|(i, item)| {
                self.input(item).map_err(|status| {
                    Status::invalid_argument(format!("items[{i}]: {}", status.message()))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let checks = inputs
            .into_iter()
            .map(|input| self.check_input(input, id.as_ref()));
        let mut checked = futures_util::future::join_all(checks).await;
        self.app.share_max_hits(&mut checked);
        Ok(Response::new(pb::CheckBatchReply {
            request_id: id.as_ref().map(|id| id.to_string()).unwrap_or_default(),
            results: checked
                .into_iter()
                .map(|checked| Self::reply(checked, id.as_ref()))
                .collect(),
        }))
    }
}

/// `espresso.filter.v1.Lists` at its route, every method, with the lists API's message limit
/// (a message over it is `RESOURCE_EXHAUSTED`, as for `Filter`).
pub(crate) fn lists_routes(app: &App) -> axum::Router<App> {
    route(
        app,
        pb::lists_server::ListsServer::new(ListsGrpc { app: app.clone() })
            .max_decoding_message_size(ops::MAX_REQUEST_BYTES),
    )
}

/// Serves `Lists` from the same operations as the lists API over HTTP.
#[derive(Clone)]
pub(crate) struct ListsGrpc {
    app: App,
}

impl ListsGrpc {
    /// The metadata `authorization: Bearer <token>` checked like the HTTP header
    /// ([`ops::authorize`]): `UNIMPLEMENTED` when the lists API is off, `UNAUTHENTICATED`
    /// without a bearer token, `PERMISSION_DENIED` with a wrong one.
    fn authorize<T>(&self, request: &Request<T>) -> Result<(), Status> {
        let given = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(ops::bearer);
        ops::authorize(self.app.admin_token.as_deref(), given).map_err(OpError::into_status)
    }

    /// The name of a list that may be written (checked, not a config list).
    async fn writable(&self, name: &str) -> Result<ops::Writable, Status> {
        ops::writable(&self.app, name)
            .await
            .map_err(OpError::into_status)
    }
}

/// `""`: none; else `"danger"` or `"normal"` (`what` names the field in the error).
fn level(value: &str, what: &str, code: &'static str) -> Result<Option<Level>, Status> {
    if value.is_empty() {
        return Ok(None);
    }
    value
        .parse()
        .map(Some)
        .map_err(|e| OpError::invalid(code, format!("{what}: {e}")).into_status())
}

fn kind(value: &str) -> Result<Kind, Status> {
    match value {
        "deny" => Ok(Kind::Deny),
        "allow" => Ok(Kind::Allow),
        other => Err(OpError::invalid(
            "invalid_list",
            format!("kind: unknown kind {other:?} (expected \"deny\" or \"allow\")"),
        )
        .into_status()),
    }
}

fn kind_str(kind: Kind) -> String {
    match kind {
        Kind::Deny => "deny",
        Kind::Allow => "allow",
    }
    .to_owned()
}

fn summary(list: Summary) -> pb::ListSummary {
    let common = pb::ListSummary {
        name: list.name,
        kind: kind_str(list.kind),
        words: list.words as u64,
        version: list.version,
        ..Default::default()
    };
    match list.source {
        Source::Config => pb::ListSummary {
            source: "config".into(),
            read_only: true,
            default: true,
            ..common
        },
        Source::Api {
            description,
            level,
            default,
        } => pb::ListSummary {
            source: "api".into(),
            description,
            level: level.as_str().to_owned(),
            default,
            ..common
        },
    }
}

#[tonic::async_trait]
impl pb::lists_server::Lists for ListsGrpc {
    async fn list_lists(
        &self,
        request: Request<pb::ListListsRequest>,
    ) -> Result<Response<pb::ListListsReply>, Status> {
        self.authorize(&request)?;
        let lists = ops::list_all(&self.app).await;
        Ok(Response::new(pb::ListListsReply {
            lists: lists.into_iter().map(summary).collect(),
        }))
    }

    async fn put_list(
        &self,
        request: Request<pb::PutListRequest>,
    ) -> Result<Response<pb::PutListReply>, Status> {
        self.authorize(&request)?;
        let request = request.into_inner();
        let name = self.writable(&request.name).await?;
        let input = PutInput {
            description: request.description,
            level: level(&request.level, "level", "invalid_list")?,
            kind: kind(&request.kind)?,
            default: request.default,
        };
        let put = ops::put(&self.app, &name, input)
            .await
            .map_err(OpError::into_status)?;
        Ok(Response::new(pb::PutListReply {
            created: put.created,
            list: Some(summary(put.summary)),
        }))
    }

    async fn delete_list(
        &self,
        request: Request<pb::DeleteListRequest>,
    ) -> Result<Response<pb::DeleteListReply>, Status> {
        self.authorize(&request)?;
        let name = self.writable(&request.into_inner().name).await?;
        let words = ops::delete(&self.app, &name)
            .await
            .map_err(OpError::into_status)?;
        Ok(Response::new(pb::DeleteListReply {
            words: words as u64,
        }))
    }

    async fn add_words(
        &self,
        request: Request<pb::AddWordsRequest>,
    ) -> Result<Response<pb::AddWordsReply>, Status> {
        self.authorize(&request)?;
        let request = request.into_inner();
        let name = self.writable(&request.name).await?;
        let words = request
            .words
            .into_iter()
            .enumerate()
            .map(|(i, new)| {
                Ok(NewWord {
                    level: level(&new.level, &format!("words[{i}]: level"), "invalid_words")?,
                    category: (!new.category.is_empty()).then_some(new.category),
                    word: new.word,
                })
            })
            .collect::<Result<Vec<_>, Status>>()?;
        let done = ops::add_words(&self.app, &name, words)
            .await
            .map_err(OpError::into_status)?;
        Ok(Response::new(pb::AddWordsReply {
            added: done.changed as u64,
            words: done.words as u64,
            version: done.version,
        }))
    }

    async fn remove_words(
        &self,
        request: Request<pb::RemoveWordsRequest>,
    ) -> Result<Response<pb::RemoveWordsReply>, Status> {
        self.authorize(&request)?;
        let request = request.into_inner();
        let name = self.writable(&request.name).await?;
        let done = ops::remove_words(&self.app, &name, request.words)
            .await
            .map_err(OpError::into_status)?;
        Ok(Response::new(pb::RemoveWordsReply {
            removed: done.changed as u64,
            words: done.words as u64,
            version: done.version,
        }))
    }

    async fn list_words(
        &self,
        request: Request<pb::ListWordsRequest>,
    ) -> Result<Response<pb::ListWordsReply>, Status> {
        self.authorize(&request)?;
        let request = request.into_inner();
        let limit = (request.limit != 0).then_some(request.limit as usize);
        let cursor = (!request.cursor.is_empty()).then_some(request.cursor);
        let page = ops::page_words(&self.app, &request.name, limit, cursor)
            .await
            .map_err(OpError::into_status)?;
        Ok(Response::new(pb::ListWordsReply {
            words: page
                .words
                .into_iter()
                .map(|(word, meta)| pb::Word {
                    word,
                    level: meta
                        .level
                        .map(|l| l.as_str().to_owned())
                        .unwrap_or_default(),
                    category: meta.category.unwrap_or_default(),
                })
                .collect(),
            next_cursor: page.next_cursor.unwrap_or_default(),
            total: page.total as u64,
        }))
    }
}
