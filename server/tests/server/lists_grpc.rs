//! The lists API over gRPC: `espresso.filter.v1.Lists`, behind the same admin token as
//! `/v1/lists…`, changing the lists `Filter/Check` uses.

use crate::harness::Server;
use espresso_server::pb::{
    AddWordsRequest, CheckRequest, DeleteListRequest, ListListsRequest, ListWordsRequest, NewWord,
    PutListRequest, RemoveWordsRequest, filter_client::FilterClient, lists_client::ListsClient,
};
use tonic::{Code, transport::Channel};

const ADMIN: &str = "[admin]\ntoken = \"s3cret\"\n";

/// `message` with `authorization: Bearer <token>` when `token` is given.
fn with_token<T>(message: T, token: Option<&str>) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if let Some(token) = token {
        let value = format!("Bearer {token}").parse().unwrap();
        request.metadata_mut().insert("authorization", value);
    }
    request
}

fn admin<T>(message: T) -> tonic::Request<T> {
    with_token(message, Some("s3cret"))
}

fn put(name: &str, kind: &str, level: &str, default: Option<bool>) -> PutListRequest {
    PutListRequest {
        name: name.into(),
        description: format!("{name} words"),
        level: level.into(),
        kind: kind.into(),
        default,
    }
}

fn word(word: &str, level: &str, category: &str) -> NewWord {
    NewWord {
        word: word.into(),
        level: level.into(),
        category: category.into(),
    }
}

/// The code of a refused call.
fn code<T: std::fmt::Debug>(result: Result<T, tonic::Status>) -> Code {
    match result {
        Ok(reply) => panic!("the call was not refused: {reply:?}"),
        Err(status) => status.code(),
    }
}

async fn verdict(filter: &mut FilterClient<Channel>, content: &str, lists: &[&str]) -> String {
    filter
        .check(CheckRequest {
            content: content.into(),
            lists: lists.iter().map(|l| l.to_string()).collect(),
        })
        .await
        .unwrap_or_else(|status| panic!("Check {content:?} {lists:?}: {status:?}"))
        .into_inner()
        .verdict
}

#[tokio::test]
async fn a_list_is_created_filled_checked_emptied_and_deleted_over_grpc() {
    let server = Server::start(ADMIN).await;
    let channel = server.channel().await;
    let mut lists = ListsClient::new(channel.clone());
    let mut filter = FilterClient::new(channel);

    let reply = lists
        .put_list(admin(put("spam", "deny", "normal", None)))
        .await
        .unwrap()
        .into_inner();
    assert!(reply.created);
    let summary = reply.list.unwrap();
    assert_eq!(
        (
            summary.source.as_str(),
            summary.level.as_str(),
            summary.kind.as_str()
        ),
        ("api", "normal", "deny")
    );
    assert!(summary.default && !summary.read_only);
    assert_eq!((summary.words, summary.version), (0, 1));

    let words = vec![
        word("cheap pills", "", ""),
        word(" casino ", "danger", "gambling"),
    ];
    let reply = lists
        .add_words(admin(AddWordsRequest {
            name: "spam".into(),
            words,
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((reply.added, reply.words, reply.version), (2, 2, 2));

    // the next check sees the words, with and without naming lists
    let reply = filter
        .check(CheckRequest {
            content: "CHEAP pills at the casino".into(),
            lists: vec![],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reply.verdict, "block");
    let hits: Vec<_> = reply
        .hits
        .iter()
        .map(|h| (h.list.as_str(), h.level.as_str(), h.category.as_str()))
        .collect();
    assert_eq!(
        hits,
        [("spam", "normal", "spam"), ("spam", "danger", "gambling")]
    );
    assert_eq!(
        verdict(&mut filter, "badword, cheap pills", &["spam"]).await,
        "review"
    );
    assert_eq!(
        verdict(&mut filter, "cheap pills", &["danger"]).await,
        "pass"
    );

    let all = lists
        .list_lists(admin(ListListsRequest {}))
        .await
        .unwrap()
        .into_inner()
        .lists;
    let danger = all.iter().find(|l| l.name == "danger").expect("{all:?}");
    assert_eq!(
        (danger.source.as_str(), danger.kind.as_str()),
        ("config", "deny")
    );
    assert!(danger.read_only && danger.default);
    let spam = all.iter().find(|l| l.name == "spam").expect("{all:?}");
    assert_eq!((spam.words, spam.version), (2, 2));
    assert_eq!(spam.description, "spam words");

    let page = |limit: u32, cursor: &str| ListWordsRequest {
        name: "spam".into(),
        limit,
        cursor: cursor.into(),
    };
    let first = lists
        .list_words(admin(page(1, "")))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.total, 2);
    let listed: Vec<_> = first
        .words
        .iter()
        .map(|w| (w.word.as_str(), w.level.as_str(), w.category.as_str()))
        .collect();
    assert_eq!(listed, [("casino", "danger", "gambling")]);
    assert_eq!(first.next_cursor, "casino");
    let last = lists
        .list_words(admin(page(1, &first.next_cursor)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(last.words.len(), 1);
    assert_eq!(
        (last.words[0].word.as_str(), last.words[0].level.as_str()),
        ("cheap pills", "")
    );
    assert_eq!(last.next_cursor, "");
    // limit 0: the default page holds both
    let whole = lists
        .list_words(admin(page(0, "")))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((whole.words.len(), whole.next_cursor.as_str()), (2, ""));

    let reply = lists
        .remove_words(admin(RemoveWordsRequest {
            name: "spam".into(),
            words: vec!["casino".into(), "never listed".into()],
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((reply.removed, reply.words, reply.version), (1, 1, 3));
    assert_eq!(verdict(&mut filter, "casino", &[]).await, "pass");

    let reply = lists
        .put_list(admin(put("spam", "deny", "danger", None)))
        .await
        .unwrap()
        .into_inner();
    assert!(!reply.created);
    let summary = reply.list.unwrap();
    assert_eq!(
        (summary.words, summary.version, summary.level.as_str()),
        (1, 4, "danger")
    );
    assert_eq!(verdict(&mut filter, "cheap pills", &[]).await, "block");

    let reply = lists
        .delete_list(admin(DeleteListRequest {
            name: "spam".into(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reply.words, 1);
    assert_eq!(verdict(&mut filter, "cheap pills", &[]).await, "pass");
    let status = filter
        .check(CheckRequest {
            content: "x".into(),
            lists: vec!["spam".into()],
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");

    // counted like the HTTP API's changes
    for (op, count) in [
        ("create", 1.0),
        ("update", 1.0),
        ("add_words", 1.0),
        ("remove_words", 1.0),
        ("delete", 1.0),
    ] {
        let sample = format!("espresso_lists_changes_total{{op=\"{op}\"}}");
        assert_eq!(server.metric(&sample).await, Some(count), "{op}");
    }
}

#[tokio::test]
async fn a_list_not_used_by_default_applies_only_to_checks_that_name_it() {
    let server = Server::start(ADMIN).await;
    let channel = server.channel().await;
    let mut lists = ListsClient::new(channel.clone());
    let mut filter = FilterClient::new(channel);
    let summary = lists
        .put_list(admin(put("game", "deny", "normal", Some(false))))
        .await
        .unwrap()
        .into_inner()
        .list
        .unwrap();
    assert!(!summary.default);
    lists
        .add_words(admin(AddWordsRequest {
            name: "game".into(),
            words: vec![word("noob", "", "")],
        }))
        .await
        .unwrap();
    assert_eq!(verdict(&mut filter, "gg noob", &[]).await, "pass");
    assert_eq!(verdict(&mut filter, "gg noob", &["game"]).await, "review");
    let all = lists
        .list_lists(admin(ListListsRequest {}))
        .await
        .unwrap()
        .into_inner()
        .lists;
    let game = all.iter().find(|l| l.name == "game").expect("{all:?}");
    assert!(!game.default);

    // a PUT without the flag makes it a default list again
    let summary = lists
        .put_list(admin(put("game", "deny", "normal", None)))
        .await
        .unwrap()
        .into_inner()
        .list
        .unwrap();
    assert!(summary.default);
    assert_eq!(verdict(&mut filter, "gg noob", &[]).await, "review");
}

#[tokio::test]
async fn grpc_lists_calls_are_refused_without_the_token_and_with_bad_input() {
    let off = Server::start("").await;
    let mut client = ListsClient::new(off.channel().await);
    let status = client
        .list_lists(admin(ListListsRequest {}))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unimplemented, "{status:?}");
    assert!(
        status
            .message()
            .starts_with("the lists API is off: set [admin] token"),
        "{status:?}"
    );

    let server = Server::start(ADMIN).await;
    let mut lists = ListsClient::new(server.channel().await);
    let status = lists
        .list_lists(with_token(ListListsRequest {}, None))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    for wrong in ["s3creT", "s3cre", "s3crets"] {
        let status = lists
            .list_lists(with_token(ListListsRequest {}, Some(wrong)))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::PermissionDenied, "{wrong}: {status:?}");
    }
    // a change without the token changes nothing
    let status = lists
        .put_list(with_token(put("sneaky", "deny", "", None), Some("nope")))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");

    assert_eq!(
        code(
            lists
                .delete_list(admin(DeleteListRequest {
                    name: "nope".into()
                }))
                .await
        ),
        Code::NotFound
    );
    let add = |name: &str, words: Vec<NewWord>| {
        admin(AddWordsRequest {
            name: name.into(),
            words,
        })
    };
    assert_eq!(
        code(lists.add_words(add("nope", vec![word("a", "", "")])).await),
        Code::NotFound
    );
    assert_eq!(
        code(
            lists
                .list_words(admin(ListWordsRequest {
                    name: "nope".into(),
                    ..Default::default()
                }))
                .await
        ),
        Code::NotFound
    );
    assert_eq!(
        code(lists.put_list(admin(put("danger", "deny", "", None))).await),
        Code::FailedPrecondition
    );
    for bad in [
        put("bad name", "deny", "", None),
        put("", "deny", "", None),
        put("x", "maybe", "", None),
        put("x", "deny", "loud", None),
        put("x", "allow", "", Some(false)),
    ] {
        let status = lists.put_list(admin(bad.clone())).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{bad:?}: {status:?}");
    }
    let too_long = PutListRequest {
        description: "d".repeat(1025),
        ..put("x", "deny", "", None)
    };
    assert_eq!(
        code(lists.put_list(admin(too_long)).await),
        Code::InvalidArgument
    );

    lists
        .put_list(admin(put("x", "deny", "", None)))
        .await
        .unwrap();
    for bad in [
        vec![],
        vec![word("", "", "")],
        vec![word("a\tb", "", "")],
        vec![word("#tag", "", "")],
        vec![word("fine", "loud", "")],
        vec![word("fine", "", "a\u{7}")],
    ] {
        let status = lists.add_words(add("x", bad.clone())).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{bad:?}: {status:?}");
    }
    let status = lists
        .add_words(add("x", vec![word("fine", "", ""), word("#tag", "", "")]))
        .await
        .unwrap_err();
    assert!(status.message().starts_with("words[1]: "), "{status:?}");
    let status = lists
        .remove_words(admin(RemoveWordsRequest {
            name: "x".into(),
            words: vec![],
        }))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    let status = lists
        .list_words(admin(ListWordsRequest {
            name: "x".into(),
            limit: 1001,
            cursor: String::new(),
        }))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");

    // a message over the lists API's 4 MiB, like one over the filter's limit
    let huge = (0..10_000)
        .map(|i| word(&format!("{i:0>500}"), "", ""))
        .collect();
    let status = lists.add_words(add("x", huge)).await.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");

    // nothing refused was applied
    let all = lists
        .list_lists(admin(ListListsRequest {}))
        .await
        .unwrap()
        .into_inner()
        .lists;
    let api: Vec<_> = all
        .iter()
        .filter(|l| l.source == "api")
        .map(|l| (l.name.as_str(), l.words, l.version))
        .collect();
    assert_eq!(api, [("x", 0, 1)]);
    assert!(server.logs().iter().all(|line| !line.contains("s3cret")));
}

#[tokio::test]
async fn the_lists_service_is_in_health_and_a_config_lists_words_are_said_to_be_in_its_file() {
    use tonic_health::pb::{
        HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
    };
    let server = Server::start(ADMIN).await;
    let mut health = HealthClient::new(server.channel().await);
    let status = health
        .check(HealthCheckRequest {
            service: "espresso.filter.v1.Lists".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .status;
    assert_eq!(status, ServingStatus::Serving as i32);

    let mut lists = ListsClient::new(server.channel().await);
    let error = lists
        .list_words(admin(ListWordsRequest {
            name: "danger".into(),
            limit: 10,
            cursor: String::new(),
        }))
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::NotFound);
    assert!(
        error.message().contains("a list of the config file"),
        "{}",
        error.message()
    );
}
