//! Lists by name: every hit names its list, and a check may use only some lists.

use espresso_filter_core::{
    Dictionary, Engine, FilterRequest, FilterService, Level, ListData, ListSource, LoadError,
    LoadWarning, Options, Sources, UnknownList, Verdict,
};
use tower::{Service, ServiceExt};

fn engine() -> Engine {
    let sources = Sources::new()
        .list(ListSource::inline(
            "words/base.txt",
            "idiot\nspam\n",
            Level::Danger,
        ))
        .list(ListSource::inline("chat.txt", "spam\nnoob\n", Level::Normal).name("chat"))
        .list(ListSource::inline("game.txt", "gank\n", Level::Normal).by_default(false))
        .allow(ListData::Inline {
            name: "ok.txt".into(),
            text: "noob saibot\n".into(),
        });
    Engine::load(&sources, Options::default()).unwrap()
}

#[test]
fn every_hit_names_its_list() {
    let r = engine().check("idiot noob");
    let lists: Vec<_> = r.hits.iter().map(|h| h.list.as_str()).collect();
    assert_eq!(lists, ["base", "chat"]);
}

#[test]
fn a_list_not_used_by_default_applies_only_when_named() {
    let engine = engine();
    assert_eq!(engine.check("gank").verdict, Verdict::Pass);
    let r = engine.check_lists("gank idiot", &["game"]).unwrap();
    assert_eq!(r.verdict, Verdict::Review);
    assert_eq!(r.hits.len(), 1);
    assert_eq!(r.hits[0].list, "game");
}

#[test]
fn the_same_word_in_two_lists_is_found_through_either() {
    let engine = engine();
    let r = engine.check_lists("spam", &["chat"]).unwrap();
    assert_eq!(
        (r.verdict, r.hits[0].list.as_str()),
        (Verdict::Review, "chat")
    );
    let r = engine.check_lists("spam", &["base"]).unwrap();
    assert_eq!(
        (r.verdict, r.hits[0].list.as_str()),
        (Verdict::Block, "base")
    );
    // both: danger wins
    let r = engine.check("spam");
    assert_eq!(
        (r.verdict, r.hits[0].list.as_str()),
        (Verdict::Block, "base")
    );
}

#[test]
fn allow_lists_apply_to_every_check_and_may_be_named() {
    let engine = engine();
    assert_eq!(engine.check("noob saibot").verdict, Verdict::Pass);
    let r = engine.check_lists("noob saibot", &["chat", "ok"]).unwrap();
    assert_eq!(r.verdict, Verdict::Pass);
    // naming only an allow list checks against no blocked list
    assert_eq!(
        engine.check_lists("idiot", &["ok"]).unwrap().verdict,
        Verdict::Pass
    );
}

#[test]
fn an_empty_list_name_or_category_is_an_error() {
    // a list hit with an empty name would read as a detector's; the file format refuses an
    // empty category, and so does the API
    for list in [
        ListSource::inline("words.txt", "idiot\n", Level::Danger).name(""),
        ListSource::inline("", "idiot\n", Level::Danger),
        ListSource::inline("words.txt", "idiot\n", Level::Danger).category(""),
    ] {
        let err = Engine::load(&Sources::new().list(list), Options::default())
            .err()
            .unwrap();
        assert!(matches!(err, LoadError::Invalid(_)), "{err}");
    }
}

#[test]
fn an_unknown_list_name_is_an_error() {
    let err = engine()
        .check_lists("idiot", &["base", "nope"])
        .unwrap_err();
    assert_eq!(err, UnknownList("nope".into()));
    assert_eq!(err.to_string(), "unknown list \"nope\"");
}

#[test]
fn the_version_changes_with_a_list_s_name_or_default() {
    let a = Sources::new().list(ListSource::inline("a.txt", "idiot\n", Level::Danger));
    let b = Sources::new().list(ListSource::inline("a.txt", "idiot\n", Level::Danger).name("b"));
    let c = Sources::new()
        .list(ListSource::inline("a.txt", "idiot\n", Level::Danger).by_default(false));
    let v = |s: &Sources| Engine::load(s, Options::default()).unwrap().version();
    assert_ne!(v(&a), v(&b));
    assert_ne!(v(&a), v(&c));
    assert_eq!(v(&a), v(&a.clone()));
}

#[tokio::test]
async fn the_service_checks_the_lists_a_request_names() {
    let mut service = FilterService::new(engine());
    let r = service
        .ready()
        .await
        .unwrap()
        .call(FilterRequest::new("gank idiot").with_lists(["game"]))
        .await
        .unwrap();
    assert_eq!(r.verdict, Verdict::Review);
    // a name unknown to the current set (a list removed since the request was read) is left out
    let r = service
        .call(FilterRequest::new("gank idiot").with_lists(["game", "gone"]))
        .await
        .unwrap();
    assert_eq!(r.hits.len(), 1);
}

#[test]
fn entries_kept_out_or_recategorized_are_warned_of_and_nothing_else_is() {
    let sources = Sources::new()
        .list(ListSource::inline(
            "a.txt",
            "idiot\tinsult\n🍆\nIdiot\tinsult\nspam\tad\n",
            Level::Normal,
        ))
        // the same list from a second file: a second category for `spam` at the same level,
        // and `idiot` at a higher level (which takes the line's category, no warning)
        .list(ListSource::inline("b.txt", "SPAM\tjunk\nidiot\tslur\n", Level::Normal).name("a"))
        .list(ListSource::inline("b2.txt", "idiot\tslur\n", Level::Danger).name("a"))
        // a word in another list, with another category: two lists, no warning
        .list(ListSource::inline("c.txt", "spam\tother\n", Level::Normal))
        .allow(ListData::Inline {
            name: "ok.txt".into(),
            text: "***\n".into(),
        });
    let dict = Dictionary::build(&sources, Options::default()).unwrap();
    let seen: Vec<String> = dict.warnings().iter().map(|w| w.to_string()).collect();
    assert_eq!(
        seen,
        [
            "a.txt:2: `🍆` normalizes to nothing (every character of it is noise) and never \
             matches; remove it, or change the options that make its characters noise",
            "b.txt:1: `SPAM` is already in list `a` as `spam` with category `ad`; its hits \
             report `ad` (give both lines one category, or remove one)",
            "b.txt:2: `idiot` is already in list `a` as `idiot` with category `insult`; its hits \
             report `insult` (give both lines one category, or remove one)",
            "ok.txt:1: `***` normalizes to nothing (every character of it is noise) and never \
             matches; remove it, or change the options that make its characters noise",
        ]
    );
    assert!(matches!(
        &dict.warnings()[1],
        LoadWarning::Category { name, line: 1, list, kept, .. }
            if name == "b.txt" && list == "a" && kept == "ad"
    ));
    let r = dict.check("spam idiot");
    let cats: Vec<_> = r
        .hits
        .iter()
        .map(|h| (h.list.as_str(), h.category.as_str()))
        .collect();
    assert_eq!(cats, [("a", "ad"), ("a", "slur")]);
    let r = dict.check_lists("spam", &["c"]).unwrap();
    assert_eq!(r.hits[0].category, "other");
    // the built-in lists build without a warning
    assert_eq!(Dictionary::builtin().warnings(), []);
}
