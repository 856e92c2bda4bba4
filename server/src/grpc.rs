//! The gRPC surface: `espresso.filter.v1.Filter/Check`, plus health and reflection.

use crate::App;
use espresso_common::RequestId;
use espresso_filter_core::FilterRequest;
use tonic::{Request, Response, Status};

/// Code generated from `proto/espresso/filter/v1/filter.proto`.
#[allow(missing_docs, unreachable_pub, clippy::all)]
pub mod pb {
    tonic::include_proto!("espresso.filter.v1");

    /// The encoded descriptors of every espresso proto, for gRPC reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        include_bytes!(concat!(env!("OUT_DIR"), "/espresso_descriptor.bin"));
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

#[tonic::async_trait]
impl pb::filter_server::Filter for FilterGrpc {
    async fn check(
        &self,
        request: Request<pb::CheckRequest>,
    ) -> Result<Response<pb::CheckReply>, Status> {
        let id = request.extensions().get::<RequestId>().cloned();
        let content = request.into_inner().content;
        let request_id = id.as_ref().map(|id| id.as_str().to_owned());
        let reply = self
            .app
            .check(FilterRequest {
                content,
                request_id,
            })
            .await;
        Ok(Response::new(pb::CheckReply {
            request_id: id.map(|id| id.to_string()).unwrap_or_default(),
            verdict: reply.verdict.as_str().to_owned(),
            masked: reply.masked,
            degraded: reply.degraded,
            hits: reply
                .hits
                .into_iter()
                .map(|hit| pb::Hit {
                    level: hit.level.as_str().to_owned(),
                    word: hit.word,
                    category: hit.category,
                    start: hit.start as u64,
                    end: hit.end as u64,
                })
                .collect(),
        }))
    }
}
