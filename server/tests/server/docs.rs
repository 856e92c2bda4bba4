//! The reference in `docs/` matches the server: every metric family a scrape shows is in
//! `docs/metrics.md` with its type, every error a request provokes is in `docs/http-api.md` with
//! its status, and gRPC refusals carry the codes `docs/grpc-api.md` gives them.

use crate::harness::Server;
use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::Full;

fn doc(name: &str) -> String {
    let path = format!("{}/../docs/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The second cell of the table row whose first cell is `` `name` ``.
fn type_cell<'a>(doc: &'a str, name: &str) -> Option<&'a str> {
    let start = format!("| `{name}` | ");
    doc.lines()
        .find_map(|line| line.strip_prefix(start.as_str()))
        .and_then(|rest| rest.split(" | ").next())
}

#[test]
fn type_cells_are_read_from_table_rows() {
    let doc = "| metric | type |\n|---|---|\n| `a_total` | counter | `x` |\n";
    assert_eq!(type_cell(doc, "a_total"), Some("counter"));
    assert_eq!(type_cell(doc, "b_total"), None);
}

#[tokio::test]
async fn every_exported_metric_family_is_documented_with_its_type() {
    // A classifier and a Redis cache nobody answers (their stages, breakers and metrics exist),
    // every request slow, and a reload.
    let unused = || {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let server = Server::start(&format!(
        "[classifier]\nendpoint = \"http://{}\"\n[cache]\nredis_url = \"redis://{}\"\n\
         [slow_call]\nthreshold_ms = 0\n",
        unused(),
        unused()
    ))
    .await;
    server.touch_every_counter().await;

    let scrape = String::from_utf8(server.get("/metrics").await.body.to_vec()).unwrap();
    let families: Vec<(&str, &str)> = scrape
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|line| line.split_once(' '))
        .collect();
    assert!(families.len() >= 30, "{families:?}");
    let metrics = doc("metrics.md");
    let mut wrong = Vec::new();
    for (name, kind) in families {
        match type_cell(&metrics, name) {
            Some(cell) if cell.starts_with(kind) => {}
            Some(cell) => wrong.push(format!(
                "{name}: documented as {cell:?}, exported as {kind}"
            )),
            // The process collector's families are listed in prose.
            None if metrics.contains(&format!("`{name}`")) => {}
            None => wrong.push(format!("{name} ({kind}) is not documented")),
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");

    // every error code the errors counter exports (at 0 from the start) is named in its row
    let row = metrics
        .lines()
        .find(|line| line.starts_with("| `espresso_http_errors_total` | counter | `code`, each"))
        .expect("the errors counter's row");
    let undocumented: Vec<&str> = scrape
        .lines()
        .filter_map(|line| line.strip_prefix("espresso_http_errors_total{code=\""))
        .filter_map(|rest| rest.split('"').next())
        .filter(|code| !row.contains(&format!("`{code}`")))
        .collect();
    assert!(undocumented.is_empty(), "{undocumented:?}");
}

/// Asserts that `docs/http-api.md` has a table row for `status` that names `code`.
fn assert_documented(api: &str, status: StatusCode, code: &str) {
    let row = format!("| {} | ", status.as_u16());
    let quoted = format!("`{code}`");
    assert!(
        api.lines()
            .any(|line| line.starts_with(&row) && line.contains(&quoted)),
        "no row for {} {code}",
        status.as_u16()
    );
}

#[tokio::test]
async fn every_error_the_api_answers_is_documented_with_its_status() {
    let api = doc("http-api.md");
    let server = Server::start_with("max_body_bytes = 64", "").await;
    let post = |content_type: &'static str, body: &'static [u8]| {
        Request::post(server.url("/v1/filter"))
            .header("content-type", content_type)
            .body(Full::new(Bytes::from_static(body)))
            .unwrap()
    };
    let mut replies = vec![
        server
            .send(post("text/plain", b"{\"content\": \"x\"}"))
            .await,
        server.send(post("application/json", &[b'x'; 100])).await,
        server.send(post("application/json", b"\xff")).await,
        server.send(post("application/json", b"[1]")).await,
        server.send(post("application/json", b"{}")).await,
        server
            .send(post("application/json", b"{\"content\": 1}"))
            .await,
        server.get("/nope").await,
        server.get("/v1/filter").await,
    ];
    let limited = Server::start("[rate_limit]\nper_second = 1\nburst = 1\n").await;
    for _ in 0..3 {
        replies.push(limited.filter("x").await);
    }
    let keyed = Server::start("[rate_limit]\nkey = \"header:x-client\"\n").await;
    replies.push(keyed.filter("x").await);

    let mut seen = Vec::new();
    for reply in &replies {
        if reply.status == StatusCode::OK {
            continue;
        }
        let code = reply.error_code(reply.status);
        assert_documented(&api, reply.status, &code);
        seen.push(code);
    }
    seen.sort();
    seen.dedup();
    assert_eq!(
        seen,
        [
            "invalid_content",
            "invalid_json",
            "invalid_utf8",
            "method_not_allowed",
            "missing_content",
            "not_found",
            "payload_too_large",
            "rate_limit_key_missing",
            "rate_limited",
            "unsupported_media_type",
        ]
    );
}

#[tokio::test]
async fn grpc_refusals_have_the_documented_status_codes() {
    use espresso_server::pb::{CheckRequest, filter_client::FilterClient};
    use tonic::Code;

    let grpc = doc("grpc-api.md");
    let server = Server::start_with(
        "max_body_bytes = 64",
        "[rate_limit]\nper_second = 1\nburst = 2\n",
    )
    .await;
    let channel = tonic::transport::Channel::from_shared(server.url(""))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = FilterClient::new(channel);
    let check = |content: String| {
        tonic::Request::new(CheckRequest {
            content,
            ..Default::default()
        })
    };

    // gRPC's code for a message over a size limit (tonic's decoder says OUT_OF_RANGE).
    let too_large = client.check(check("x".repeat(100))).await.unwrap_err();
    assert_eq!(too_large.code(), Code::ResourceExhausted, "{too_large:?}");
    assert!(too_large.message().contains("too large"), "{too_large:?}");
    let mut limited = None;
    for _ in 0..3 {
        if let Err(status) = client.check(check("x".into())).await {
            limited = Some(status);
            break;
        }
    }
    let limited = limited.expect("the third call in a burst of two is refused");
    assert_eq!(limited.code(), Code::ResourceExhausted, "{limited:?}");
    assert!(limited.metadata().contains_key("retry-after"));
    assert!(limited.metadata().contains_key("ratelimit"));

    let row = "| `RESOURCE_EXHAUSTED` | ";
    assert!(grpc.lines().any(|line| line.starts_with(row)));
}
