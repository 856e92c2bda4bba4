//! An example TextClassifier server (the gRPC contract in `docs/grpc-api.md`) with keyword
//! rules, so the demo server can run its full pipeline with a real gRPC hop.
//!
//! ```sh
//! cargo run -p espresso-examples --example classifier -- 127.0.0.1:50051
//! # then, in the demo server's config:
//! # [classifier]
//! # endpoint = "http://127.0.0.1:50051"
//! ```
//!
//! Options after the address: `--delay-ms N` answers after N ms (to watch the server's
//! classifier timeout and breaker at work), `--fail` answers `INTERNAL` to every request.
//!
//! Rules: texts containing `porn`, `xxx` or `nsfw` are `PORN`; `idiot`, `moron` or `loser`
//! `ABUSIVE`; `buy now`, `discount`, `click here` or `free money` `ADVERTISEMENT`; the rest
//! `NORMAL` (see `RuleClassifier::default`).

use espresso_filter_stages::classifier::rules::RuleClassifier;
use std::time::Duration;

const USAGE: &str = "usage: classifier [ADDR (default 127.0.0.1:50051)] [--delay-ms N] [--fail]";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let classifier = RuleClassifier::default();
    let mut addr = String::from("127.0.0.1:50051");
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--delay-ms" => {
                let ms: u64 = args.next().ok_or(USAGE)?.parse().map_err(|_| USAGE)?;
                classifier.set_delay(Duration::from_millis(ms));
            }
            "--fail" => classifier.set_failing(true),
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            other if !other.starts_with('-') => addr = other.to_owned(),
            _ => return Err(USAGE.into()),
        }
    }
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!(
        "TextClassifier listening on http://{}",
        listener.local_addr()?
    );
    classifier.serve(listener).await?;
    Ok(())
}
