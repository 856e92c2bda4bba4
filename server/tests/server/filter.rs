//! `POST /v1/filter`: verdicts, hits with offsets into the original text, masking.

use crate::harness::Server;
use http::StatusCode;

#[tokio::test]
async fn clean_text_passes() {
    let server = Server::start("").await;
    let reply = server.filter("hello world").await;
    assert_eq!(reply.status, StatusCode::OK);
    let json = reply.json();
    assert_eq!(json["request_id"], reply.request_id());
    assert_eq!(json["verdict"], "pass");
    assert_eq!(json["masked"], "hello world");
    assert_eq!(json["hits"], serde_json::json!([]));
    assert_eq!(json["degraded"], false);
}

#[tokio::test]
async fn danger_words_block_with_offsets_into_the_original() {
    let server = Server::start("").await;
    // Full-width and upper case: the offsets still point into the text as sent.
    let content = "say ＢＡＤword now";
    let json = server.filter(content).await.json();
    assert_eq!(json["verdict"], "block", "{json}");
    let hit = &json["hits"][0];
    assert_eq!(hit["word"], "badword");
    assert_eq!(hit["level"], "danger");
    assert_eq!(hit["category"], "abuse");
    let (start, end) = (hit["start"].as_u64().unwrap(), hit["end"].as_u64().unwrap());
    assert_eq!(&content[start as usize..end as usize], "ＢＡＤword");
    let masked = json["masked"].as_str().unwrap();
    assert!(
        masked.starts_with("say ") && masked.ends_with(" now"),
        "{masked}"
    );
    assert!(!masked.contains("word"), "{masked}");
}

#[tokio::test]
async fn category_from_the_list_line_wins() {
    let server = Server::start("").await;
    let content = "你是傻*逼吗";
    let json = server.filter(content).await.json();
    assert_eq!(json["verdict"], "block", "{json}");
    let hit = &json["hits"][0];
    assert_eq!(hit["category"], "insult");
    let (start, end) = (hit["start"].as_u64().unwrap(), hit["end"].as_u64().unwrap());
    assert_eq!(&content[start as usize..end as usize], "傻*逼");
}

#[tokio::test]
async fn normal_words_only_ask_for_review() {
    let server = Server::start("").await;
    let json = server.filter("buy spam today").await.json();
    assert_eq!(json["verdict"], "review", "{json}");
    assert_eq!(json["hits"][0]["level"], "normal");
    assert_eq!(json["hits"][0]["category"], "normal");
}

#[tokio::test]
async fn words_inside_other_words_do_not_match() {
    let server = Server::start("").await;
    let json = server.filter("spammer badwords").await.json();
    assert_eq!(json["verdict"], "pass", "{json}");
}

#[tokio::test]
async fn the_built_in_lists_work_without_config() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("espresso.toml"), "").unwrap();
    let server = Server::start_in(dir).await;
    let json = server
        .filter("what a classic assassin from Scunthorpe")
        .await
        .json();
    assert_eq!(json["verdict"], "pass", "{json}");
}
