//! Server reflection, v1 and v1alpha: what gRPC tooling sees of the server, and a real
//! grpcio-reflection client that calls it knowing nothing else.

use crate::harness::Server;
use prost::Message;
use prost_types::FileDescriptorProto;
use std::{process::Stdio, time::Duration};
use tokio::process::Command;
use tonic::Code;

/// The services every reflection version lists.
const SERVICES: [&str; 5] = [
    "espresso.filter.v1.Filter",
    "espresso.filter.v1.Lists",
    "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
];

/// What one reflection stream answered: the listed services, then the files that define each
/// asked-for symbol.
struct Reflected {
    services: Vec<String>,
    files: Vec<Vec<FileDescriptorProto>>,
}

/// Lists the services over reflection version `$pb` (`v1` or `v1alpha`, whose generated types
/// differ only by module) and asks for the file defining each of `$symbols`, on one stream.
macro_rules! reflect {
    ($pb:ident, $channel:expr, $symbols:expr) => {{
        use tonic_reflection::pb::$pb::{
            ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
            server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
        };
        let symbols: &[&str] = $symbols;
        let requests = std::iter::once(MessageRequest::ListServices(String::new()))
            .chain(
                symbols
                    .iter()
                    .map(|symbol| MessageRequest::FileContainingSymbol(symbol.to_string())),
            )
            .map(|request| ServerReflectionRequest {
                host: String::new(),
                message_request: Some(request),
            })
            .collect::<Vec<_>>();
        let mut client = ServerReflectionClient::new($channel);
        let mut answers = client
            .server_reflection_info(futures_util::stream::iter(requests))
            .await
            .expect("the reflection stream opens")
            .into_inner();
        let mut reflected = Reflected {
            services: Vec::new(),
            files: Vec::new(),
        };
        while let Some(answer) = answers.message().await.expect("the stream carries answers") {
            match answer.message_response.expect("every answer has a message") {
                MessageResponse::ListServicesResponse(list) => {
                    reflected.services = list.service.into_iter().map(|s| s.name).collect();
                }
                MessageResponse::FileDescriptorResponse(files) => reflected.files.push(
                    files
                        .file_descriptor_proto
                        .iter()
                        .map(|file| FileDescriptorProto::decode(file.as_slice()).unwrap())
                        .collect(),
                ),
                other => panic!("unexpected reflection answer: {other:?}"),
            }
        }
        reflected
    }};
}

/// Asserts what both reflection versions must answer for `Health` and `Filter`.
fn assert_lists_and_resolves(version: &str, reflected: &Reflected) {
    let mut services = reflected.services.clone();
    services.sort();
    assert_eq!(services, SERVICES, "{version}");
    let [health, filter] = reflected.files.as_slice() else {
        panic!(
            "{version}: one answer per symbol, got {}",
            reflected.files.len()
        );
    };
    let health = &health[0];
    assert_eq!(health.package(), "grpc.health.v1", "{version}");
    let service = &health.service[0];
    assert_eq!(service.name(), "Health", "{version}");
    let methods: Vec<_> = service.method.iter().map(|m| m.name()).collect();
    assert_eq!(methods, ["Check", "Watch"], "{version}");
    assert_eq!(
        filter[0].name(),
        "espresso/filter/v1/filter.proto",
        "{version}"
    );
    assert_eq!(filter[0].service[0].name(), "Filter", "{version}");
}

const SYMBOLS: &[&str] = &["grpc.health.v1.Health", "espresso.filter.v1.Filter.Check"];

#[tokio::test]
async fn reflection_v1alpha_lists_filter_and_health_and_resolves_them_by_symbol() {
    let server = Server::start("").await;
    let reflected = reflect!(v1alpha, server.channel().await, SYMBOLS);
    assert_lists_and_resolves("v1alpha", &reflected);
}

#[tokio::test]
async fn reflection_v1_lists_filter_and_health_and_resolves_them_by_symbol() {
    let server = Server::start("").await;
    let reflected = reflect!(v1, server.channel().await, SYMBOLS);
    assert_lists_and_resolves("v1", &reflected);
}

#[tokio::test]
async fn reflection_is_rate_limited_like_the_filter_while_health_stays_exempt() {
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
    use tonic_reflection::pb::{v1, v1alpha};
    let server = Server::start("[rate_limit]\nper_second = 1\nburst = 1\nkey = \"global\"\n").await;
    let channel = server.channel().await;
    let first = reflect!(v1alpha, channel.clone(), &[]);
    assert!(!first.services.is_empty(), "the first call is admitted");
    // The one token is spent: both reflection versions are refused, health still answers.
    let mut v1alpha =
        v1alpha::server_reflection_client::ServerReflectionClient::new(channel.clone());
    let mut v1 = v1::server_reflection_client::ServerReflectionClient::new(channel.clone());
    let mut health = HealthClient::new(channel);
    let (open_v1alpha, open_v1, health) = tokio::join!(
        v1alpha.server_reflection_info(futures_util::stream::empty()),
        v1.server_reflection_info(futures_util::stream::empty()),
        health.check(HealthCheckRequest::default()),
    );
    assert_eq!(open_v1alpha.unwrap_err().code(), Code::ResourceExhausted);
    assert_eq!(open_v1.unwrap_err().code(), Code::ResourceExhausted);
    health.expect("health is never rate limited");
}

/// Whether `python3` can import what `reflection_client.py` needs.
async fn python_grpcio_reflection() -> bool {
    Command::new("python3")
        .args([
            "-c",
            "import grpc, grpc_reflection.v1alpha.proto_reflection_descriptor_database; \
             from google.protobuf.message_factory import GetMessageClass",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await
        .is_ok_and(|status| status.success())
}

#[tokio::test]
async fn a_grpcio_reflection_client_calls_filter_and_health_from_reflected_descriptors() {
    if !python_grpcio_reflection().await {
        let install = "pip install grpcio grpcio-reflection";
        let _: Option<()> = espresso_test_support::missing("python3 grpcio-reflection", install);
        return;
    }
    let server = Server::start("").await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/reflection_client.py");
    let run = Command::new("python3")
        .arg(script)
        .arg(server.addr.to_string())
        .arg("a BADWORD here")
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("the client finishes in time")
        .expect("python3 runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{}: {stderr}", output.status);
    let printed: serde_json::Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}); stderr: {stderr}"));
    assert_eq!(
        printed["services"],
        serde_json::json!(SERVICES),
        "{printed}"
    );
    let check = &printed["check"];
    assert_eq!(check["verdict"], "block", "{printed}");
    assert_eq!(check["hits"][0]["word"], "badword", "{printed}");
    assert_eq!(check["hits"][0]["level"], "danger", "{printed}");
    assert!(
        !check["requestId"].as_str().unwrap().is_empty(),
        "{printed}"
    );
    assert_eq!(
        printed["health"],
        serde_json::json!({ "": "SERVING", "espresso.filter.v1.Filter": "SERVING" }),
        "{printed}"
    );
}
