//! The contact detectors on fuzzed text and settings.
//!
//! Input layout: byte 0: modes, two bits per detector (url, email, phone, im; 0 and 3 are off,
//! 1 review, 2 block); byte 1: bit 0 adds `example.com` to the allowed domains; the rest is the
//! text (UTF-8, lossy), at most 4 KiB.
//!
//! Checked: no panic; the same answer twice; hits sorted, disjoint, non-empty, on char
//! boundaries of the original text; each hit's category is a running detector's and its level
//! that detector's mode; the verdict is the hits' highest level; the masked text keeps the
//! text's length in chars; no hit names `example.com` (or a subdomain) when it is allowed.
#![no_main]

use espresso_filter_core::{DetectorMode, Detectors, Engine, Level, Options, Sources, Verdict};
use espresso_fuzz::truncate_to;
use libfuzzer_sys::fuzz_target;

const MAX_TEXT: usize = 4096;

fn mode(bits: u8) -> DetectorMode {
    match bits & 3 {
        1 => DetectorMode::Review,
        2 => DetectorMode::Block,
        _ => DetectorMode::Off,
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let modes = [
        ("url", mode(data[0])),
        ("email", mode(data[0] >> 2)),
        ("phone", mode(data[0] >> 4)),
        ("im", mode(data[0] >> 6)),
    ];
    let mut detectors = Detectors::new()
        .url(modes[0].1)
        .email(modes[1].1)
        .phone(modes[2].1)
        .im(modes[3].1);
    let allow = data[1] & 1 != 0;
    if allow {
        detectors = detectors.allow_domain("example.com");
    }
    let engine = Engine::load(&Sources::new(), Options::default().detectors(detectors))
        .expect("an engine without lists loads");
    let raw = String::from_utf8_lossy(&data[2..]);
    let text = truncate_to(&raw, MAX_TEXT);

    let r = engine.check(text);
    assert_eq!(engine.check(text), r, "a second check answered differently");
    let mut at = 0;
    for h in &r.hits {
        assert!(h.start < h.end && h.end <= text.len(), "out of bounds: {h:?}");
        assert!(
            text.is_char_boundary(h.start) && text.is_char_boundary(h.end),
            "not on char boundaries: {h:?}"
        );
        assert!(h.start >= at, "unsorted or overlapping: {:?}", r.hits);
        at = h.end;
        let (_, m) = modes
            .iter()
            .find(|(c, _)| *c == h.category)
            .unwrap_or_else(|| panic!("unknown category: {h:?}"));
        assert_eq!(m.level(), Some(h.level), "level does not follow the mode: {h:?}");
        if allow && matches!(h.category.as_str(), "url" | "email") {
            let host = h.word.rsplit('@').next().unwrap_or_default();
            assert!(
                host != "example.com" && !host.ends_with(".example.com"),
                "allowed domain reported: {h:?}"
            );
        }
    }
    let want = r
        .hits
        .iter()
        .map(|h| match h.level {
            Level::Danger => Verdict::Block,
            Level::Normal => Verdict::Review,
        })
        .max()
        .unwrap_or(Verdict::Pass);
    assert_eq!(r.verdict, want);
    assert_eq!(r.masked.chars().count(), text.chars().count());
});
