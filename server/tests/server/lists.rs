//! Lists by name: `"lists"` on `POST /v1/filter`, `hits[].list`, `POST /v1/filter:batch` and
//! gRPC `CheckBatch`. The config's lists are named after their files (`danger`, `normal`).

use crate::harness::Server;
use espresso_server::pb::{CheckBatchRequest, CheckRequest, filter_client::FilterClient};
use http::StatusCode;
use serde_json::json;
use tonic::Code;

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
    // the message repeats at most 64 characters of what the client sent
    let long = "n".repeat(60_000);
    let reply = filter_with(&server, json!({"content": "x", "lists": [long]})).await;
    assert_eq!(reply.error_code(StatusCode::BAD_REQUEST), "unknown_list");
    let message = reply.json()["error"]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(message.len() < 600, "{} bytes", message.len());
    assert!(message.contains("(60000 characters)"), "{message}");
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

#[tokio::test]
async fn grpc_checks_name_lists_and_batch_like_the_json_api() {
    let server = Server::start("").await;
    let mut client = FilterClient::new(server.channel().await);
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

// === the lists API ===

const ADMIN: &str = "[admin]\ntoken = \"s3cret\"\n";

#[tokio::test]
async fn a_list_is_created_filled_checked_emptied_and_deleted() {
    let server = Server::start(ADMIN).await;
    let t = Some("s3cret");
    let reply = server
        .admin(
            "PUT",
            "/v1/lists/spam",
            t,
            Some(json!({"description": "campaign spam", "level": "normal", "kind": "deny"})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
    let words = json!({"words": [{"word": "cheap pills"}, {"word": "casino", "level": "danger", "category": "gambling"}]});
    let reply = server
        .admin("POST", "/v1/lists/spam/words", t, Some(words))
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json()["added"], 2);

    // visible to the next request, with and without "lists"
    let json = server.filter("CHEAP pills at the casino").await.json();
    assert_eq!(json["verdict"], "block", "{json}");
    assert_eq!(json["hits"][0]["list"], "spam");
    assert_eq!(json["hits"][1]["category"], "gambling");
    let json = filter_with(
        &server,
        json!({"content": "badword, cheap pills", "lists": ["spam"]}),
    )
    .await
    .json();
    assert_eq!(json["verdict"], "review", "{json}");
    let json = filter_with(
        &server,
        json!({"content": "cheap pills", "lists": ["danger"]}),
    )
    .await
    .json();
    assert_eq!(json["verdict"], "pass", "{json}");

    let listed = server.admin("GET", "/v1/lists", t, None).await.json();
    let names: Vec<_> = listed["lists"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["name"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        names.contains(&"spam".to_owned()) && names.contains(&"danger".to_owned()),
        "{listed}"
    );
    // a config list shows its entries and the config lists' version, like an API list
    let danger = listed["lists"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["name"] == "danger")
        .unwrap();
    assert_eq!(danger["source"], "config", "{danger}");
    assert_eq!(
        danger["words"],
        crate::harness::DANGER
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
            .count(),
        "{danger}"
    );
    assert_eq!(danger["version"], 1, "{danger}");
    let page = server
        .admin("GET", "/v1/lists/spam/words?limit=1", t, None)
        .await
        .json();
    assert_eq!(
        page["words"],
        json!([{"word": "casino", "level": "danger", "category": "gambling"}])
    );
    let cursor = page["next_cursor"].as_str().unwrap().to_owned();
    let page = server
        .admin(
            "GET",
            &format!("/v1/lists/spam/words?limit=1&cursor={cursor}"),
            t,
            None,
        )
        .await
        .json();
    assert_eq!(page["words"], json!([{"word": "cheap pills"}]));
    assert_eq!(page["next_cursor"], serde_json::Value::Null);

    let reply = server
        .admin(
            "POST",
            "/v1/lists/spam/words:remove",
            t,
            Some(json!({"words": ["casino"]})),
        )
        .await;
    assert_eq!(reply.json()["removed"], 1);
    assert_eq!(server.filter("casino").await.json()["verdict"], "pass");
    let reply = server.admin("DELETE", "/v1/lists/spam", t, None).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    assert_eq!(server.filter("cheap pills").await.json()["verdict"], "pass");
    let reply = filter_with(&server, json!({"content": "x", "lists": ["spam"]})).await;
    assert_eq!(reply.error_code(StatusCode::BAD_REQUEST), "unknown_list");
    assert_eq!(
        server
            .metric(r#"espresso_lists_changes_total{op="add_words"}"#)
            .await,
        Some(1.0)
    );
    // the lists API is a route of its own in the latency histogram, not `unmatched`
    assert_eq!(
        server
            .metric(r#"http_server_request_duration_seconds_count{method="DELETE",route="/v1/lists",status="204"}"#)
            .await,
        Some(1.0)
    );
}

#[tokio::test]
async fn a_call_that_changes_nothing_keeps_the_version_and_counts_no_change() {
    let server = Server::start(ADMIN).await;
    let t = Some("s3cret");
    let spam = json!({"description": "spam", "level": "normal", "kind": "deny"});
    let put = server
        .admin("PUT", "/v1/lists/spam", t, Some(spam.clone()))
        .await;
    assert_eq!(put.json()["version"], 1, "{:?}", put.body);
    let words = json!({"words": [{"word": "casino", "category": "gambling"}]});
    let reply = server
        .admin("POST", "/v1/lists/spam/words", t, Some(words.clone()))
        .await;
    assert_eq!(reply.json(), json!({"added": 1, "words": 1, "version": 2}));

    // the same calls again: the list is as it was
    let reply = server
        .admin("POST", "/v1/lists/spam/words", t, Some(words))
        .await;
    assert_eq!(reply.json(), json!({"added": 0, "words": 1, "version": 2}));
    let put = server.admin("PUT", "/v1/lists/spam", t, Some(spam)).await;
    assert_eq!(put.status, StatusCode::OK);
    assert_eq!(put.json()["version"], 2, "{:?}", put.body);
    let gone = json!({"words": ["not listed"]});
    let reply = server
        .admin("POST", "/v1/lists/spam/words:remove", t, Some(gone))
        .await;
    assert_eq!(
        reply.json(),
        json!({"removed": 0, "words": 1, "version": 2})
    );
    for (op, count) in [
        ("create", 1.0),
        ("update", 0.0),
        ("add_words", 1.0),
        ("remove_words", 0.0),
    ] {
        let series = format!(r#"espresso_lists_changes_total{{op="{op}"}}"#);
        assert_eq!(server.metric(&series).await, Some(count), "{op}");
    }

    // a word's new category is a change
    let recategorized = json!({"words": [{"word": "casino", "category": "betting"}]});
    let reply = server
        .admin("POST", "/v1/lists/spam/words", t, Some(recategorized))
        .await;
    assert_eq!(reply.json(), json!({"added": 0, "words": 1, "version": 3}));
    let json = server.filter("casino").await.json();
    assert_eq!(json["hits"][0]["category"], "betting", "{json}");
}

#[tokio::test]
async fn the_lists_api_refuses_without_a_token_a_wrong_token_and_bad_input() {
    let off = Server::start("").await;
    let reply = off.admin("GET", "/v1/lists", Some("x"), None).await;
    assert_eq!(reply.error_code(StatusCode::NOT_FOUND), "admin_disabled");

    let server = Server::start(ADMIN).await;
    let t = Some("s3cret");
    assert_eq!(
        server
            .admin("GET", "/v1/lists", None, None)
            .await
            .error_code(StatusCode::UNAUTHORIZED),
        "unauthorized"
    );
    assert_eq!(
        server
            .admin("GET", "/v1/lists", Some("s3creT"), None)
            .await
            .error_code(StatusCode::FORBIDDEN),
        "forbidden"
    );
    let put = |kind: &str| Some(json!({"description": "", "kind": kind}));
    assert_eq!(
        server
            .admin("PUT", "/v1/lists/bad%20name", t, put("deny"))
            .await
            .error_code(StatusCode::BAD_REQUEST),
        "invalid_list"
    );
    // a name that is not UTF-8 once decoded is as bad a name, after the token check; GET words
    // refuses a bad name as the other calls do, not as an unknown list
    for (method, path) in [
        ("PUT", "/v1/lists/%FF"),
        ("DELETE", "/v1/lists/%FF"),
        ("GET", "/v1/lists/%FF/words"),
        ("POST", "/v1/lists/%C0%AE/words:remove"),
        ("GET", "/v1/lists/a.b/words"),
    ] {
        let reply = server.admin(method, path, t, put("deny")).await;
        assert_eq!(
            reply.error_code(StatusCode::BAD_REQUEST),
            "invalid_list",
            "{method} {path}"
        );
        let reply = server.admin(method, path, None, None).await;
        assert_eq!(reply.error_code(StatusCode::UNAUTHORIZED), "unauthorized");
        let reply = off.admin(method, path, t, None).await;
        assert_eq!(reply.error_code(StatusCode::NOT_FOUND), "admin_disabled");
    }
    assert_eq!(
        server
            .admin("PUT", "/v1/lists/x", t, put("maybe"))
            .await
            .error_code(StatusCode::BAD_REQUEST),
        "invalid_json"
    );
    assert_eq!(
        server
            .admin("PUT", "/v1/lists/danger", t, put("deny"))
            .await
            .error_code(StatusCode::CONFLICT),
        "read_only_list"
    );
    assert_eq!(
        server
            .admin("DELETE", "/v1/lists/nope", t, None)
            .await
            .error_code(StatusCode::NOT_FOUND),
        "list_not_found"
    );
    assert_eq!(
        server
            .admin(
                "POST",
                "/v1/lists/nope/words",
                t,
                Some(json!({"words": [{"word": "a"}]}))
            )
            .await
            .error_code(StatusCode::NOT_FOUND),
        "list_not_found"
    );
    server.admin("PUT", "/v1/lists/x", t, put("deny")).await;
    for word in ["", "a\tb", "#tag"] {
        let reply = server
            .admin(
                "POST",
                "/v1/lists/x/words",
                t,
                Some(json!({"words": [{"word": word}]})),
            )
            .await;
        assert_eq!(
            reply.error_code(StatusCode::BAD_REQUEST),
            "invalid_words",
            "{word:?}"
        );
    }
    let reply = server
        .admin("POST", "/v1/lists/x/words", t, Some(json!({"words": []})))
        .await;
    assert_eq!(reply.error_code(StatusCode::BAD_REQUEST), "invalid_words");
    for path in [
        "/v1/lists/x/words?limit=0",
        "/v1/lists/x/words?limit=1&limit=2",
        "/v1/lists/x/words?cursor=a&cursor=b",
        "/v1/lists/x/words?page=2",
        "/v1/lists?x=1",
    ] {
        let reply = server.admin("GET", path, t, None).await;
        assert_eq!(
            reply.error_code(StatusCode::BAD_REQUEST),
            "invalid_query",
            "{path}"
        );
    }
    // the log names the change, never the token
    assert!(server.logs().iter().all(|line| !line.contains("s3cret")));
}

#[tokio::test]
async fn ten_thousand_words_are_added_in_one_call_and_survive_a_restart_and_a_reload() {
    let server = Server::start(ADMIN).await;
    let t = Some("s3cret");
    server
        .admin(
            "PUT",
            "/v1/lists/bulk",
            t,
            Some(json!({"description": "", "kind": "deny", "level": "normal"})),
        )
        .await;
    let words: Vec<_> = (0..10_000)
        .map(|i| json!({"word": format!("zzword{i}")}))
        .collect();
    let reply = server
        .admin(
            "POST",
            "/v1/lists/bulk/words",
            t,
            Some(json!({"words": words})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    assert_eq!(reply.json()["words"], 10_000);
    assert_eq!(
        server.filter("a zzword9999 here").await.json()["verdict"],
        "review"
    );
    let too_many: Vec<_> = (0..10_001)
        .map(|i| json!({"word": format!("w{i}")}))
        .collect();
    let reply = server
        .admin(
            "POST",
            "/v1/lists/bulk/words",
            t,
            Some(json!({"words": too_many})),
        )
        .await;
    assert_eq!(reply.error_code(StatusCode::BAD_REQUEST), "invalid_words");

    // a reload of the config file keeps the API lists
    server.touch_every_counter().await;
    assert_eq!(server.filter("zzword5").await.json()["verdict"], "review");

    // a restart loads them from the store
    let dir = tempfile::tempdir().unwrap();
    for entry in ["espresso.toml", "words", "lists"] {
        let status = std::process::Command::new("cp")
            .arg("-r")
            .arg(server.path(entry))
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(status.success());
    }
    drop(server);
    let restarted = Server::start_in(dir).await;
    assert_eq!(
        restarted.filter("zzword42").await.json()["verdict"],
        "review"
    );
}

#[tokio::test]
async fn a_list_not_used_by_default_flags_only_when_a_check_names_it() {
    let server = Server::start(ADMIN).await;
    let t = Some("s3cret");
    let reply = server
        .admin(
            "PUT",
            "/v1/lists/game",
            t,
            Some(json!({"description": "", "kind": "deny", "level": "normal", "default": false})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
    assert_eq!(reply.json()["default"], false);
    let words = json!({"words": [{"word": "noob"}]});
    let reply = server
        .admin("POST", "/v1/lists/game/words", t, Some(words))
        .await;
    assert_eq!(reply.status, StatusCode::OK);

    assert_eq!(server.filter("gg noob").await.json()["verdict"], "pass");
    let json = filter_with(&server, json!({"content": "gg noob", "lists": ["game"]}))
        .await
        .json();
    assert_eq!(json["verdict"], "review", "{json}");
    assert_eq!(json["hits"][0]["list"], "game");
    let listed = server.admin("GET", "/v1/lists", t, None).await.json();
    let game = listed["lists"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["name"] == "game")
        .unwrap();
    assert_eq!(game["default"], false, "{game}");

    // an allow list applies to every check: it cannot be left out by default
    let reply = server
        .admin(
            "PUT",
            "/v1/lists/ok",
            t,
            Some(json!({"kind": "allow", "default": false})),
        )
        .await;
    assert_eq!(reply.error_code(StatusCode::BAD_REQUEST), "invalid_list");
    let reply = server
        .admin(
            "PUT",
            "/v1/lists/game",
            t,
            Some(json!({"kind": "deny", "default": "no"})),
        )
        .await;
    assert_eq!(reply.error_code(StatusCode::BAD_REQUEST), "invalid_json");

    // without the flag, a PUT makes it a default list again (its words stay)
    let reply = server
        .admin(
            "PUT",
            "/v1/lists/game",
            t,
            Some(json!({"description": "", "kind": "deny", "level": "normal"})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json()["default"], true);
    assert_eq!(server.filter("gg noob").await.json()["verdict"], "review");
}

#[tokio::test]
async fn a_rule_that_does_not_parse_or_a_word_of_noise_is_a_400_naming_its_item() {
    let server = Server::start(ADMIN).await;
    let t = Some("s3cret");
    for (name, kind) in [("spam", "deny"), ("fine", "allow")] {
        let list = json!({"description": "", "kind": kind, "level": "danger"});
        server
            .admin("PUT", &format!("/v1/lists/{name}"), t, Some(list))
            .await;
    }
    for (list, bad) in [("spam", "a&"), ("spam", "***"), ("fine", "foo&bar")] {
        let words = json!({"words": [{"word": "cheap pills"}, {"word": bad}]});
        let reply = server
            .admin("POST", &format!("/v1/lists/{list}/words"), t, Some(words))
            .await;
        assert_eq!(
            reply.error_code(StatusCode::BAD_REQUEST),
            "invalid_words",
            "{bad:?}"
        );
        let message = reply.json()["error"]["message"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(message.starts_with("words[1]: "), "{message}");
    }
    // nothing of a refused call was added, and a rule that parses is taken
    let words = json!({"words": [{"word": "cheap&pills"}]});
    let reply = server
        .admin("POST", "/v1/lists/spam/words", t, Some(words))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    assert_eq!(reply.json()["words"], 1);
    // a list that holds a rule cannot become an allow list
    let allow = json!({"description": "", "kind": "allow", "level": "danger"});
    let reply = server.admin("PUT", "/v1/lists/spam", t, Some(allow)).await;
    assert_eq!(reply.error_code(StatusCode::BAD_REQUEST), "invalid_list");
    let message = reply.json()["error"]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(message.contains("\"cheap&pills\""), "{message}");
}
