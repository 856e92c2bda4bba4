//! The TextClassifier contract (`proto/textclassifier.proto`, package `textclassifier`):
//! messages, the tonic client and the server trait, generated at build time.
//!
//! ```proto
//! service TextClassifier { rpc Analyse (AnalyseRequest) returns (AnalyseReply) {} }
//! message AnalyseRequest { string content = 1; string requestId = 2; }
//! message AnalyseReply { string label = 1;
//!   enum ContentType { NORMAL = 0; ADVERTISEMENT = 1; ABUSIVE = 2; PORN = 3; }
//!   ContentType type = 2; string requestId = 3; }
//! ```
#![allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic)]

tonic::include_proto!("textclassifier");
