//! filter-core used as a Tower service: the engine behind `ServiceBuilder` limits, checked from
//! many tasks at once while its word lists are reloaded underneath.
//!
//! ```sh
//! cargo run -p espresso-examples --example filter_service
//! ```

use espresso_filter_core::{
    Engine, FilterRequest, FilterService, Level, ListSource, Options, Sources,
};
use std::time::Duration;
use tower::{Service, ServiceBuilder, ServiceExt};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    // The shipped lists, plus a list of our own held in memory.
    let sources = Sources::builtin().list(
        ListSource::inline("ads.txt", "cheap pills\nfree money\n", Level::Normal).category("ads"),
    );
    let engine = Engine::load(&sources, Options::default())?;

    // The engine as a Tower service, with the limits any production service would add.
    let service = ServiceBuilder::new()
        .concurrency_limit(64)
        .timeout(Duration::from_millis(50))
        .service(FilterService::new(engine.clone()));

    let texts = [
        "hello there",
        "FREE   money, click now",
        "what the f*u c.k",
        "你這個傻*逼",
        "a classic cocktail in Scunthorpe",
    ];
    let mut tasks = Vec::new();
    for (i, text) in texts.into_iter().enumerate() {
        let mut service = service.clone();
        tasks.push(tokio::spawn(async move {
            let request = FilterRequest::new(text).with_request_id(format!("req-{i}"));
            let response = service.ready().await?.call(request).await?;
            Ok::<_, tower::BoxError>((text, response))
        }));
    }
    for task in tasks {
        let (text, response) = task.await??;
        println!(
            "{:<36} {:<6} {:<36} {:?}",
            text,
            response.verdict.as_str(),
            response.masked,
            response
                .hits
                .iter()
                .map(|h| (&h.word[..], &h.category[..], h.start..h.end))
                .collect::<Vec<_>>()
        );
    }

    // A reload swaps the lists atomically: clones of the service see it at once.
    let version = engine.reload(&Sources::builtin())?;
    let response = service.oneshot(FilterRequest::new("FREE money")).await?;
    println!("after reload to version {version}: {:?}", response.verdict);
    Ok(())
}
