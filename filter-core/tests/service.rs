//! `FilterService` as a Tower service.

use espresso_filter_core::{
    Engine, FilterRequest, FilterService, Level, ListSource, Options, Sources, Verdict,
};
use tower::{Service, ServiceExt};

#[tokio::test]
async fn answers_requests_and_echoes_the_id() {
    let mut svc = FilterService::new(Engine::builtin());
    let resp = svc
        .ready()
        .await
        .unwrap()
        .call(FilterRequest::new("傻逼").with_request_id("r-1"))
        .await
        .unwrap();
    assert_eq!(resp.verdict, Verdict::Block);
    assert_eq!(resp.request_id.as_deref(), Some("r-1"));
    assert!(!resp.degraded);
    let json = serde_json::to_value(&resp).unwrap();
    assert_eq!(json["hits"][0]["level"], "danger");
    assert_eq!(json["hits"][0]["start"], 0);
    assert_eq!(json["hits"][0]["end"], 6);
}

#[tokio::test]
async fn clones_see_reloads() {
    let svc = FilterService::new(Engine::builtin());
    let clone = svc.clone();
    svc.engine()
        .reload(&Sources::new().list(ListSource::inline("x.txt", "omega\n", Level::Normal)))
        .unwrap();
    let resp = clone.oneshot(FilterRequest::new("omega")).await.unwrap();
    assert_eq!(resp.verdict, Verdict::Review);
}

#[tokio::test]
async fn stages_compose_as_layers() {
    // a stand-in for a later stage: escalate everything mentioning "spam"
    let svc = tower::service_fn(|req: FilterRequest| {
        let inner = FilterService::new(Engine::builtin());
        async move {
            let spam = req.content.contains("spam");
            let mut r = inner.oneshot(req).await?;
            if spam {
                r.escalate(Verdict::Review);
            }
            Ok::<_, std::convert::Infallible>(r)
        }
    });
    let r = svc.oneshot(FilterRequest::new("buy spam")).await.unwrap();
    assert_eq!(r.verdict, Verdict::Review);
}

#[tokio::test]
async fn the_answer_is_the_engines_whether_the_text_is_given_away_or_lent() {
    let sources = Sources::new()
        .list(ListSource::inline("a.txt", "omega\n", Level::Normal))
        .list(ListSource::inline("b.txt", "sigma\n", Level::Danger));
    for charset in [None, Some(espresso_filter_core::Charset::common())] {
        let engine = Engine::load(&sources, Options::default().charset(charset)).unwrap();
        for text in ["plain 🙂 text", "an omega here", "sigma and omega 🙂", ""] {
            for lists in [None, Some(vec!["b".to_owned()])] {
                let lent = match &lists {
                    None => engine.check(text),
                    Some(lists) => engine.check_lists(text, lists).unwrap(),
                };
                let mut request = FilterRequest::new(text);
                request.lists = lists;
                let given = FilterService::new(engine.clone())
                    .oneshot(request)
                    .await
                    .unwrap();
                assert_eq!(given, lent, "{text:?}");
            }
        }
    }
}
