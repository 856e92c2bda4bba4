//! `echo [ADDR]`: a plain axum JSON echo on `POST /v1/filter`, the load-test baseline.
//!
//! It parses the same JSON body the demo server does and answers with a JSON object, so the
//! difference between the two is espresso's layers and filter, not HTTP or JSON.

use axum::{Json, Router, routing::post};
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
struct Input {
    content: String,
}

#[derive(Serialize)]
struct Output {
    content: String,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8081".into());
    let app = Router::new().route(
        "/v1/filter",
        post(|Json(input): Json<Input>| async move {
            Json(Output {
                content: input.content,
            })
        }),
    );
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("echo listening on {}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
