//! Lists by name: `"lists"` on `POST /v1/filter`, `hits[].list`, `POST /v1/filter:batch` and
//! gRPC `CheckBatch`. The config's lists are named after their files (`danger`, `normal`).

use crate::harness::Server;
use espresso_server::pb::{CheckBatchRequest, CheckRequest, filter_client::FilterClient};
use http::StatusCode;
use serde_json::json;
use tonic::{Code, transport::Channel};

async fn filter_with(server: &Server, body: serde_json::Value) -> crate::harness::Reply {
    server.post_json("/v1/filter", body.to_string()).await
}

#[tokio::test]
async fn every_hit_names_its_list_and_a_check_may_name_the_lists_to_use() {
    let server = Server::start("").await;
    let reply = server.filter("badword and spam").await;
    let json = reply.json();
    assert_eq!(json["verdict"], "block", "{json}");
    assert_eq!(json["hits"][0]["list"], "danger");
    assert_eq!(json["hits"][1]["list"], "normal");

    let json = filter_with(
        &server,
        json!({"content": "badword and spam", "lists": ["normal"]}),
    )
    .await
    .json();
    assert_eq!(json["verdict"], "review", "{json}");
    assert_eq!(json["hits"].as_array().unwrap().len(), 1);
    assert_eq!(json["hits"][0]["word"], "spam");
    assert_eq!(json["masked"], "badword and ****");
}

#[tokio::test]
async fn an_unknown_or_malformed_list_selection_is_a_400() {
    let server = Server::start("").await;
    let reply = filter_with(
        &server,
        json!({"content": "x", "lists": ["normal", "nope"]}),
    )
    .await;
    assert_eq!(reply.error_code(StatusCode::BAD_REQUEST), "unknown_list");
    assert!(
        reply.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("\"nope\"")
    );
    for lists in [json!([]), json!("normal"), json!([1])] {
        let reply = filter_with(&server, json!({"content": "x", "lists": lists})).await;
        assert_eq!(
            reply.error_code(StatusCode::BAD_REQUEST),
            "invalid_lists",
            "{lists}"
        );
    }
}

#[tokio::test]
async fn a_batch_of_100_items_is_answered_in_order() {
    let server = Server::start("").await;
    let items: Vec<_> = (0..100)
        .map(|i| match i % 3 {
            0 => json!({"content": format!("{i} badword")}),
            1 => json!({"content": format!("{i} badword spam"), "lists": ["normal"]}),
            _ => json!({"content": format!("{i} fine")}),
        })
        .collect();
    let reply = server
        .post_json("/v1/filter:batch", json!({"items": items}).to_string())
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    let json = reply.json();
    assert_eq!(json["request_id"], reply.request_id());
    let results = json["results"].as_array().unwrap();
    assert_eq!(results.len(), 100);
    for (i, result) in results.iter().enumerate() {
        let expected = ["block", "review", "pass"][i % 3];
        assert_eq!(result["verdict"], expected, "item {i}: {result}");
        assert_eq!(result["request_id"], reply.request_id());
        assert_eq!(result["degraded"], false);
        assert!(
            result["masked"]
                .as_str()
                .unwrap()
                .starts_with(&i.to_string())
        );
    }
}

#[tokio::test]
async fn a_batch_over_100_items_or_with_a_bad_item_is_a_400() {
    let server = Server::start("").await;
    let items = vec![json!({"content": "x"}); 101];
    let reply = server
        .post_json("/v1/filter:batch", json!({"items": items}).to_string())
        .await;
    assert_eq!(reply.error_code(StatusCode::BAD_REQUEST), "invalid_items");
    let body = json!({"items": [{"content": "x"}, {"content": "y", "lists": ["nope"]}]});
    let reply = server.post_json("/v1/filter:batch", body.to_string()).await;
    assert_eq!(reply.error_code(StatusCode::BAD_REQUEST), "unknown_list");
    let message = reply.json()["error"]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(message.starts_with("items[1]: "), "{message}");
}

async fn channel(server: &Server) -> Channel {
    Channel::from_shared(server.url(""))
        .unwrap()
        .connect()
        .await
        .expect("gRPC connects")
}

#[tokio::test]
async fn grpc_checks_name_lists_and_batch_like_the_json_api() {
    let server = Server::start("").await;
    let mut client = FilterClient::new(channel(&server).await);
    let request = |content: &str, lists: &[&str]| CheckRequest {
        content: content.into(),
        lists: lists.iter().map(|l| l.to_string()).collect(),
    };
    let reply = client
        .check(request("badword spam", &["normal"]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reply.verdict, "review");
    assert_eq!(reply.hits[0].list, "normal");
    let status = client.check(request("x", &["nope"])).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);

    let items = (0..100)
        .map(|i| request(if i % 2 == 0 { "badword" } else { "fine" }, &[]))
        .collect();
    let reply = client
        .check_batch(CheckBatchRequest { items })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reply.results.len(), 100);
    assert!(!reply.request_id.is_empty());
    for (i, result) in reply.results.iter().enumerate() {
        assert_eq!(result.verdict, if i % 2 == 0 { "block" } else { "pass" });
        assert_eq!(result.request_id, reply.request_id);
    }
    let status = client
        .check_batch(CheckBatchRequest { items: vec![] })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
}
