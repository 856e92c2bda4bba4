//! The gRPC surface: `espresso.filter.v1.Filter/Check`, plus health and reflection.

use crate::{
    App,
    http_api::{FilterInput, MAX_BATCH_ITEMS},
};
use espresso_common::RequestId;
use espresso_filter_core::FilterRequest;
use tonic::{Request, Response, Status};
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
/// speak v1alpha only. Each lists `espresso.filter.v1.Filter`, `grpc.health.v1.Health` and both
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

/// tonic answers a message over `max_decoding_message_size` with `OUT_OF_RANGE`; gRPC's code
/// for a message over a size limit is `RESOURCE_EXHAUSTED` (what the JSON API's 413 maps to),
/// and `Filter/Check` itself never answers `OUT_OF_RANGE`. tonic sends that refusal as a
/// trailers-only answer, so the status is in the headers.
pub(crate) fn too_large_is_resource_exhausted<B>(
    mut response: http::Response<B>,
) -> http::Response<B> {
    let headers = response.headers_mut();
    let out_of_range = (tonic::Code::OutOfRange as i32).to_string();
    if headers
        .get("grpc-status")
        .is_some_and(|status| status.as_bytes() == out_of_range.as_bytes())
    {
        let exhausted = (tonic::Code::ResourceExhausted as i32).to_string();
        headers.insert(
            "grpc-status",
            http::HeaderValue::from_str(&exhausted).expect("digits"),
        );
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

    async fn reply(&self, input: FilterInput, id: Option<&RequestId>) -> pb::CheckReply {
        let request_id = id.map(|id| id.as_str().to_owned());
        let checked = self
            .app
            .check(FilterRequest {
                content: input.content,
                request_id,
                lists: input.lists,
            })
            .await;
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
        Ok(Response::new(self.reply(input, id.as_ref()).await))
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
        let replies = inputs
            .into_iter()
            .map(|input| self.reply(input, id.as_ref()));
        let results = futures_util::future::join_all(replies).await;
        Ok(Response::new(pb::CheckBatchReply {
            request_id: id.map(|id| id.to_string()).unwrap_or_default(),
            results,
        }))
    }
}
