//! A fleet sharing its API lists through one Redis (`[lists] store = "redis"`): a change made
//! through one server is applied by every server within a second, a server started later loads
//! it, concurrent changes through different servers all land, and while Redis is down changes
//! are refused with 503 and checks go on with the lists applied last.

use crate::harness::Server;
use espresso_test_support::RedisServer;
use http::StatusCode;
use serde_json::json;
use std::time::{Duration, Instant};

const TOKEN: Option<&str> = Some("fleet-token");

fn fleet_config(redis: &RedisServer) -> String {
    format!(
        "[admin]\ntoken = \"fleet-token\"\n[lists]\nstore = \"redis\"\nredis_url = \"{}\"\nredis_prefix = \"test:lists:\"\n",
        redis.url()
    )
}

/// Three servers on `config`.
async fn fleet_of_three(config: &str) -> [Server; 3] {
    [
        Server::start(config).await,
        Server::start(config).await,
        Server::start(config).await,
    ]
}

/// Creates the deny list `list` through `server`.
async fn create_list(server: &Server, list: &str) {
    let path = format!("/v1/lists/{list}");
    let reply = server
        .admin("PUT", &path, TOKEN, Some(json!({"kind": "deny"})))
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
}

async fn add_word(server: &Server, list: &str, word: &str) -> crate::harness::Reply {
    let path = format!("/v1/lists/{list}/words");
    let body = json!({"words": [{"word": word}]});
    server.admin("POST", &path, TOKEN, Some(body)).await
}

async fn verdict(server: &Server, content: &str) -> String {
    let json = server.filter(content).await.json();
    json["verdict"].as_str().expect("a verdict").to_owned()
}

/// Polls `server` until `content` gets `expected`, for at most `within`.
async fn until_verdict(server: &Server, content: &str, expected: &str, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if verdict(server, content).await == expected {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_word_added_through_one_server_is_flagged_by_all_three_within_a_second() {
    let Some(mut redis) = RedisServer::start() else {
        return;
    };
    let config = fleet_config(&redis);
    let fleet = fleet_of_three(&config).await;
    create_list(&fleet[0], "campaign").await;
    let text = "buy zorblax today";
    assert_eq!(verdict(&fleet[2], text).await, "pass");

    let reply = add_word(&fleet[0], "campaign", "zorblax").await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    let added = Instant::now();
    for (i, server) in fleet.iter().enumerate() {
        let left = Duration::from_secs(1).saturating_sub(added.elapsed());
        assert!(
            until_verdict(server, text, "block", left).await,
            "server {i} did not flag the word within 1 s"
        );
    }
    // every server lists it, named and counted alike
    for server in &fleet {
        let lists = server.admin("GET", "/v1/lists", TOKEN, None).await.json();
        let campaign = lists["lists"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["name"] == "campaign")
            .cloned()
            .unwrap_or_else(|| panic!("no campaign list in {lists}"));
        assert_eq!(campaign["words"], 1, "{campaign}");
    }

    // a server started afterwards loads the lists before it answers
    let late = Server::start(&config).await;
    assert_eq!(verdict(&late, text).await, "block");

    // Redis down: a change is refused with a clear 503, checks go on with the last lists
    redis.kill();
    let reply = add_word(&fleet[1], "campaign", "quuxfoo").await;
    assert_eq!(
        reply.error_code(StatusCode::SERVICE_UNAVAILABLE),
        "store_unavailable"
    );
    let message = reply.json()["error"]["message"].to_string();
    assert!(message.contains("list store is unavailable"), "{message}");
    for server in fleet.iter().chain([&late]) {
        assert_eq!(verdict(server, text).await, "block");
        assert_eq!(verdict(server, "buy quuxfoo today").await, "pass");
    }
    let errors = fleet[1]
        .metric("espresso_lists_store_errors_total")
        .await
        .unwrap();
    assert!(errors >= 1.0, "{errors}");
    // the log is read from the server's stderr on a thread of its own
    let logged = || {
        fleet[1]
            .logs()
            .iter()
            .any(|l| l.contains("the Redis store does not answer"))
    };
    espresso_test_support::eventually(|| async { logged() }).await;
    assert_eq!(
        fleet[1]
            .logs()
            .iter()
            .filter(|l| l.contains("the Redis store does not answer"))
            .count(),
        1,
        "the outage is logged once: {:?}",
        fleet[1].logs()
    );
}

#[tokio::test]
async fn changes_made_at_once_through_different_servers_all_land() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let config = fleet_config(&redis);
    let fleet = fleet_of_three(&config).await;
    create_list(&fleet[0], "shared").await;
    // 12 one-word additions, 4 through each server, all at once: each is made on top of the
    // others, none is lost
    let words: Vec<String> = (0..12).map(|i| format!("wordno{i}")).collect();
    let replies = futures_util::future::join_all(
        words
            .iter()
            .enumerate()
            .map(|(i, word)| add_word(&fleet[i % 3], "shared", word)),
    )
    .await;
    for reply in &replies {
        assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    }
    for (i, server) in fleet.iter().enumerate() {
        for word in &words {
            assert!(
                until_verdict(server, word, "block", Duration::from_secs(1)).await,
                "server {i} does not flag {word}"
            );
        }
    }
    let page = fleet[2]
        .admin("GET", "/v1/lists/shared/words?limit=100", TOKEN, None)
        .await
        .json();
    assert_eq!(page["total"], 12, "{page}");
}

#[tokio::test]
async fn on_a_redis_cluster_the_lists_live_in_one_slot_and_changes_reach_every_server() {
    let Some(cluster) = tokio::task::spawn_blocking(espresso_test_support::RedisCluster::start)
        .await
        .unwrap()
    else {
        return;
    };
    let seeds: Vec<String> = cluster.urls().iter().map(|u| format!("{u:?}")).collect();
    let config = format!(
        "[admin]\ntoken = \"fleet-token\"\n[lists]\nstore = \"redis\"\nredis_cluster = [{}]\n",
        seeds.join(", ")
    );
    let fleet = [Server::start(&config).await, Server::start(&config).await];
    create_list(&fleet[1], "cluster").await;
    let reply = add_word(&fleet[1], "cluster", "slotword").await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    let added = Instant::now();
    for (i, server) in fleet.iter().enumerate() {
        let left = Duration::from_secs(1).saturating_sub(added.elapsed());
        assert!(
            until_verdict(server, "a slotword here", "block", left).await,
            "server {i} did not flag the word within 1 s"
        );
    }
    // both keys in the slot of the `{lists}` hash tag, on its master
    let master = cluster.master_of("{lists}");
    let mut keys = cluster.nodes()[master].keys("espresso:lists:*");
    keys.sort();
    assert_eq!(
        keys,
        [
            "espresso:lists:{lists}:data",
            "espresso:lists:{lists}:version"
        ]
    );
}

#[tokio::test]
async fn a_change_waits_its_turn_and_gives_up_with_a_503_when_the_lock_is_never_given_back() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let server = Server::start(&fleet_config(&redis)).await;
    create_list(&server, "held").await;
    // an instance that died mid-change, its lock still there for a minute
    let _: () = redis.query(&["SET", "test:lists:{lists}:lock", "dead", "PX", "60000"]);
    let reply = add_word(&server, "held", "lockedword").await;
    assert_eq!(
        reply.error_code(StatusCode::SERVICE_UNAVAILABLE),
        "store_unavailable"
    );
    let message = reply.json()["error"]["message"].to_string();
    assert!(message.contains("another instance"), "{message}");
    assert_eq!(verdict(&server, "a lockedword").await, "pass");
    // once it expires (here: is deleted), changes go through
    let _: () = redis.query(&["DEL", "test:lists:{lists}:lock"]);
    let reply = add_word(&server, "held", "lockedword").await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    assert_eq!(verdict(&server, "a lockedword").await, "block");
}
