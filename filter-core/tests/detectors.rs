//! The contact and ad detectors through the engine: one test per kind and disguise, what must
//! pass, allowed domains, merging with word hits, and property tests of offsets and masking.

use espresso_filter_core::{
    DetectorMode, Detectors, Engine, Level, ListSource, LoadError, Options, Sources, Verdict,
};
use proptest::prelude::*;
use std::sync::LazyLock;

/// Every detector on (review), no word lists.
static ALL: LazyLock<Engine> = LazyLock::new(|| {
    Engine::load(
        &Sources::new(),
        Options::default().detectors(Detectors::new().all(DetectorMode::Review)),
    )
    .expect("an engine without lists loads")
});

/// The (category, word) pairs found in `text`, and checks that each hit's span is the text it
/// claims.
fn found(text: &str) -> Vec<(String, String)> {
    let r = ALL.check(text);
    for h in &r.hits {
        assert!(text.is_char_boundary(h.start) && text.is_char_boundary(h.end));
        assert!(h.start < h.end, "{h:?}");
    }
    r.hits.into_iter().map(|h| (h.category, h.word)).collect()
}

fn one(text: &str, category: &str, word: &str) {
    assert_eq!(
        found(text),
        [(category.to_string(), word.to_string())],
        "{text}"
    );
}

// === url ===

#[test]
fn a_plain_url_and_a_bare_domain_are_found() {
    one("see https://example.com/a?b=1 now", "url", "example.com");
    one("访问 example.com.cn 领取", "url", "example.com.cn");
}

#[test]
fn a_url_with_spaced_letters_is_found() {
    one("w w w . x x x . c o m", "url", "www.xxx.com");
}

#[test]
fn a_url_spelled_with_chinese_and_spoken_dots_is_found() {
    one("百度baidu点com", "url", "baidu.com");
    one("shop點vip", "url", "shop.vip");
    one("example dot com", "url", "example.com");
    one("example。net", "url", "example.net");
    one("ｅｘａｍｐｌｅ．ｏｒｇ", "url", "example.org");
    one("evil[.]top", "url", "evil.top");
}

#[test]
fn a_defanged_scheme_and_an_ip_url_are_found() {
    one("hxxp://evil.link/x", "url", "evil.link");
    one("go http://203.0.113.7:8080/login", "url", "203.0.113.7");
}

#[test]
fn file_names_versions_and_code_are_not_urls() {
    for text in [
        "open report.pdf and main.rs",
        "version 1.2.3.4 is out",
        "user.name = input()",
        "I did it.It was fine",
        "e.g. the U.S. in 3.5 p.m.",
        "console.log(obj.link)",
    ] {
        assert_eq!(found(text), [], "{text}");
    }
}

#[test]
fn an_allowed_domain_that_is_no_domain_name_is_an_error() {
    for bad in [
        "http://example.com",
        "*.example.org",
        "example.com/shop",
        "a b.com",
    ] {
        let options = Options::default()
            .detectors(Detectors::new().url(DetectorMode::Review).allow_domain(bad));
        let err = Engine::load(&Sources::new(), options).expect_err(bad);
        assert!(matches!(err, LoadError::Invalid(_)), "{bad}: {err}");
        assert!(err.to_string().contains(bad), "{err}");
    }
    // a domain of any script is one
    let options = Options::default().detectors(
        Detectors::new()
            .url(DetectorMode::Review)
            .allow_domain("例子.中国"),
    );
    assert!(Engine::load(&Sources::new(), options).is_ok());
}

#[test]
fn an_im_keyword_of_noise_only_is_an_error() {
    for keyword in ["😀", "*", "· ·"] {
        let detectors = Detectors::new()
            .im(DetectorMode::Review)
            .im_keywords("kw.txt", &format!("# mine\ngood\tqq\n{keyword}\twechat\n"))
            .unwrap();
        let err = Engine::load(&Sources::new(), Options::default().detectors(detectors))
            .expect_err(keyword);
        assert!(matches!(err, LoadError::Invalid(_)), "{keyword}: {err}");
        // the file and line, as for the other errors of a keyword file
        assert!(err.to_string().starts_with("kw.txt:3: IM keyword"), "{err}");
    }
}

#[test]
fn allowed_domains_and_their_subdomains_pass() {
    let engine = Engine::load(
        &Sources::new(),
        Options::default().detectors(
            Detectors::new()
                .url(DetectorMode::Block)
                .email(DetectorMode::Block)
                .allow_domain("example.com"),
        ),
    )
    .unwrap();
    for text in [
        "see example.com",
        "see https://shop.example.com/x",
        "mail help@example.com",
    ] {
        assert_eq!(engine.check(text).verdict, Verdict::Pass, "{text}");
    }
    assert_eq!(
        engine.check("see notexample.com").verdict,
        Verdict::Block,
        "a suffix of a name is not a subdomain"
    );
}

// === email ===

#[test]
fn an_email_in_plain_and_full_width_forms_is_found() {
    one(
        "write to john.doe@example.com",
        "email",
        "john.doe@example.com",
    );
    one(
        "ｊｏｈｎ＠ｅｘａｍｐｌｅ．ｃｏｍ",
        "email",
        "john@example.com",
    );
}

#[test]
fn an_email_spelled_with_at_and_dot_is_found() {
    one("name at gmail dot com", "email", "name@gmail.com");
    one("name(at)example(dot)org", "email", "name@example.org");
    one("name [at] example [dot] net", "email", "name@example.net");
    one("name艾特qq点com", "email", "name@qq.com");
    one("name at gmail.com", "email", "name@gmail.com");
}

#[test]
fn sentences_about_email_and_websites_pass() {
    for text in [
        "send me an email when you visit our website",
        "meet me at home at noon",
        "follow @someone for news",
        "ssh user@host",
    ] {
        assert_eq!(found(text), [], "{text}");
    }
}

// === phone ===

#[test]
fn a_mobile_number_in_every_digit_style_is_found() {
    for text in [
        "13800138000",
        "138 0013 8000",
        "138-0013-8000",
        "1.3.8.0.0.1.3.8.0.0.0",
        "1*3*8*0*0*1*3*8*0*0*0",
        "１３８００１３８０００",
        "①③⑧⓪⓪①③⑧⓪⓪⓪",
        "❶❸❽⓿⓿❶❸❽⓿⓿⓿",
        "一三八零零一三八零零零",
        "幺三八〇〇幺三八〇〇〇",
        "壹叁捌零零壹叁捌零零零",
        "壹參捌零零壹參捌零零零",
        "+86 138 0013 8000",
    ] {
        one(text, "phone", "13800138000");
    }
}

#[test]
fn landlines_service_numbers_and_international_numbers_are_found() {
    one("tel 010-62345678", "phone", "010-62345678");
    one("(0755) 2345 6789", "phone", "0755-23456789");
    one("400-123-4567", "phone", "4001234567");
    one("+1 (415) 555-2671", "phone", "+14155552671");
    one("+44 20 7946 0958", "phone", "+442079460958");
}

#[test]
fn dates_prices_and_labelled_numbers_are_not_phones() {
    for text in [
        "2024-05-01 10:30:45",
        "售价￥13800138000",
        "13800138000元",
        "订单号：13800138000",
        "快递单号 13800138000",
        "order #13800138000",
        "tracking number: 13800138000",
        "ISBN 978-7-111-12345-6",
        "邮编 100080, born 1990",
        "sales up 13.8%, score 3-1, v1.2.3",
        "身份证号 440301199001011234",
        "pi is 3.14159265358979",
    ] {
        assert_eq!(found(text), [], "{text}");
    }
}

// === im ===

#[test]
fn a_qq_number_after_its_keywords_is_found() {
    one("加我QQ：12345678", "im", "qq:12345678");
    one("扣扣 贰叁肆伍陆柒捌", "im", "qq:2345678");
    one("企鹅号 1 2 3 4 5 6 7", "im", "qq:1234567");
    one("ＱＱ号码是①②③④⑤⑥", "im", "qq:123456");
}

#[test]
fn a_wechat_id_after_its_keywords_is_found() {
    one("加V：abc_123", "im", "wechat:abc_123");
    one("微信号 helloworld", "im", "wechat:helloworld");
    one("薇信 lucky888", "im", "wechat:lucky888");
    one("V信：a b c 1 2 3", "im", "wechat:abc123");
    one("weixin: shop2024", "im", "wechat:shop2024");
}

#[test]
fn a_telegram_handle_after_its_keywords_is_found() {
    one("TG @crypto_king", "im", "telegram:crypto_king");
    one("电报：moneybot", "im", "telegram:moneybot");
}

#[test]
fn mentions_of_messengers_without_an_id_pass() {
    for text in [
        "微信 version 8.0 is out",
        "微信支付和QQ音乐",
        "wxWidgets and the tg ratio",
        "download telegram desktop",
    ] {
        assert_eq!(found(text), [], "{text}");
    }
}

#[test]
fn users_can_add_im_keywords() {
    let d = Detectors::new()
        .im(DetectorMode::Block)
        .im_keywords("extra.txt", "# mine\n飞信\twechat\n")
        .unwrap();
    let engine = Engine::load(&Sources::new(), Options::default().detectors(d)).unwrap();
    let r = engine.check("飞信：myid_88");
    assert_eq!(r.hits[0].word, "wechat:myid_88");
    let err = Detectors::new()
        .im_keywords("extra.txt", "ok\tqq\n飞信\n")
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "extra.txt:2: expected keyword<TAB>kind",
        "the error names the file and line"
    );
    let err = Detectors::new()
        .im_keywords("extra.txt", "飞信\twechat\textra\n")
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "extra.txt:1: more than one tab (expected keyword<TAB>kind)"
    );
}

#[test]
fn other_im_keywords_make_another_dictionary_version() {
    let version = |keywords: &str| {
        let d = Detectors::new()
            .im(DetectorMode::Block)
            .im_keywords("mine.txt", keywords)
            .unwrap();
        Engine::load(&Sources::new(), Options::default().detectors(d))
            .unwrap()
            .version()
    };
    // As many keywords each time: a cache keyed on the version must not serve one's verdicts
    // for the other.
    let first = version("飞信\twechat\n");
    assert_ne!(first, version("陌陌\twechat\n"), "another keyword");
    assert_ne!(first, version("飞信\tqq\n"), "another kind");
    assert_eq!(first, version("飞信\twechat\n"), "the same keywords");
}

// === levels, masking, merging ===

#[test]
fn block_mode_gives_danger_hits_and_masks_them() {
    let engine = Engine::load(
        &Sources::new(),
        Options::default().detectors(Detectors::new().phone(DetectorMode::Block)),
    )
    .unwrap();
    let text = "call ①③⑧ 0013 8000!";
    let r = engine.check(text);
    assert_eq!(r.verdict, Verdict::Block);
    assert_eq!(r.hits[0].level, Level::Danger);
    assert_eq!(&text[r.hits[0].start..r.hits[0].end], "①③⑧ 0013 8000");
    assert_eq!(r.masked, "call *************!");
    // an area code's parentheses are both in the span, or neither
    for (text, span) in [
        ("tel: (0755) 2345 6789.", "(0755) 2345 6789"),
        ("+1 (415) 555-2671", "+1 (415) 555-2671"),
    ] {
        let r = engine.check(text);
        assert_eq!(&text[r.hits[0].start..r.hits[0].end], span, "{text}");
    }
}

#[test]
fn detectors_off_find_nothing() {
    let r = Engine::load(&Sources::new(), Options::default())
        .unwrap()
        .check("call 13800138000 or visit example.com");
    assert_eq!(r.verdict, Verdict::Pass);
}

#[test]
fn word_hits_and_detections_merge_without_overlap() {
    let sources = Sources::new().list(ListSource::inline(
        "ads.txt",
        "微信\nfree money\n",
        Level::Normal,
    ));
    let engine = Engine::load(
        &sources,
        Options::default().detectors(Detectors::new().all(DetectorMode::Review)),
    )
    .unwrap();
    let text = "free money! 加微信 lucky888";
    let r = engine.check(text);
    let got: Vec<(&str, &str)> = r
        .hits
        .iter()
        .map(|h| (h.category.as_str(), &text[h.start..h.end]))
        .collect();
    assert_eq!(got, [("ads", "free money"), ("im", "微信 lucky888")]);
}

#[test]
fn the_dictionary_lists_the_running_detectors_categories() {
    let engine = Engine::load(
        &Sources::new(),
        Options::default().detectors(
            Detectors::new()
                .url(DetectorMode::Review)
                .phone(DetectorMode::Block),
        ),
    )
    .unwrap();
    assert_eq!(
        engine.dictionary().categories(),
        [(Level::Normal, "url"), (Level::Danger, "phone")]
    );
}

#[test]
fn a_64_kib_run_of_digits_and_dots_is_handled() {
    let text: String = "1.".repeat(32 * 1024);
    let r = ALL.check(&text);
    assert_eq!(r.masked.chars().count(), text.chars().count());
}

// === properties ===

fn piece() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9 .@:/_-]{0,10}",
        Just("13800138000".to_string()),
        Just("①③⑧⓪⓪".to_string()),
        Just("一三八零零壹贰叁".to_string()),
        Just("w w w . x . c o m".to_string()),
        Just("name at gmail dot com".to_string()),
        Just("艾特点。．＠".to_string()),
        Just("加V：QQ扣扣 tg @".to_string()),
        Just("https://example.com/".to_string()),
        Just("(at)[.](dot)".to_string()),
        Just("ＦＵＬＬ１２３😀\u{200B}\u{0334}ﬁ⒈".to_string()),
        any::<char>().prop_map(|c| c.to_string()),
    ]
}

fn text() -> impl Strategy<Value = String> {
    prop::collection::vec(piece(), 0..12).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn hits_are_sorted_disjoint_char_ranges_and_masking_keeps_the_length(t in text()) {
        let r = ALL.check(&t);
        let mut last = 0;
        for h in &r.hits {
            prop_assert!(h.start < h.end && h.end <= t.len());
            prop_assert!(t.is_char_boundary(h.start) && t.is_char_boundary(h.end));
            prop_assert!(h.start >= last, "overlap in {:?}", r.hits);
            last = h.end;
            prop_assert!(["url", "email", "phone", "im"].contains(&h.category.as_str()));
        }
        prop_assert_eq!(r.masked.chars().count(), t.chars().count());
    }
}
