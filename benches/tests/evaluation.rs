//! The filter's quality gate: recall per evasion kind and false positives on clean text, from
//! the labelled set `benches/data/eval/cases.tsv` (built by `benches/data/make_eval.py` from
//! the shipped word lists and the bench corpora), with rustrict beside it on the English kinds.
//!
//! Engines:
//! - **shipped**: `filter-core/words/` (danger, normal, allow) with pinyin on for both lists,
//!   every normalization on: every case is judged with it (a case passes when its verdict is
//!   not `pass` for `hit` cases, and `pass` for `clean` ones);
//! - **bench dictionaries**: `dict/zh-sensitive.txt` (14k words, pinyin on) and
//!   `dict/en-profanity.tsv` (3k words), for false positives with a large dictionary. Clean text
//!   hit by such a dictionary is often a real hit of that dictionary (the 14k list holds
//!   ordinary words, the 3k list `naive` and `tel`, which `tell` repeats), so the column counts
//!   the clean lines *not* flagged through a reading this round added: leet (a digit or leet
//!   symbol in the hit), another script's letters for a Latin word, pinyin for a Chinese one.
//!
//! Run (prints the table): `cargo test -p espresso-benches --test evaluation -- --nocapture`

use std::collections::BTreeMap;
use std::path::PathBuf;

use espresso_filter_core::{
    Engine, Level, ListData, ListSource, Options, Sources, Verdict, builtin,
};

fn data() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data")
}

struct Case {
    kind: String,
    hit: bool,
    text: String,
}

fn cases() -> Vec<Case> {
    read_cases("cases.tsv", "make_eval.py")
}

/// The cases of `benches/data/eval/FILE` (built by `benches/data/SCRIPT`): one per line,
/// `kind<TAB>hit|clean<TAB>word<TAB>text`; `#` lines are comments.
fn read_cases(file: &str, script: &str) -> Vec<Case> {
    let text = std::fs::read_to_string(data().join("eval").join(file)).unwrap_or_else(|e| {
        panic!("benches/data/eval/{file} (python3 benches/data/{script}): {e}")
    });
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let mut f = l.splitn(4, '\t');
            let kind = f.next().unwrap_or_default().to_string();
            let hit = f.next() == Some("hit");
            let _word = f.next();
            Case {
                kind,
                hit,
                text: f.next().unwrap_or_default().to_string(),
            }
        })
        .collect()
}

fn shipped() -> Engine {
    let sources = Sources::new()
        .list(ListSource::inline("danger.txt", builtin::DANGER, Level::Danger).pinyin(true))
        .list(ListSource::inline("normal.txt", builtin::NORMAL, Level::Normal).pinyin(true))
        .allow(ListData::Inline {
            name: "allow.txt".into(),
            text: builtin::ALLOW.into(),
        });
    Engine::load(&sources, Options::default()).expect("the shipped lists load")
}

fn bench_dictionaries() -> Engine {
    let dir = data().join("dict");
    let sources = Sources::new()
        .list(
            ListSource::file(dir.join("zh-sensitive.txt"), Level::Danger)
                .category("zh")
                .pinyin(true),
        )
        .list(ListSource::file(
            dir.join("en-profanity.tsv"),
            Level::Normal,
        ));
    Engine::load(&sources, Options::default()).expect("the bench dictionaries load")
}

/// Whether some hit in `text` came through one of the readings of issue 18: leet (a digit or
/// leet symbol in the hit), another script's look-alike letters for a Latin word, or pinyin
/// (Latin letters for a Chinese word).
fn new_fold_hit(engine: &Engine, text: &str) -> bool {
    engine.check(text).hits.iter().any(|h| {
        let t = &text[h.start..h.end];
        let latin_word = h.word.is_ascii();
        t.bytes()
            .any(|b| b.is_ascii_digit() || b"$@!|+(<#".contains(&b))
            || (latin_word
                && t.chars()
                    .any(|c| c.is_alphabetic() && !c.is_ascii() && (c as u32) >= 0x250))
            || (!latin_word && t.bytes().any(|b| b.is_ascii_alphabetic()) && !h.word.is_ascii())
    })
}

#[derive(Default)]
struct Row {
    n: usize,
    ok: usize,
    rustrict: Option<(usize, usize)>,
    bench_folded: Option<(usize, usize)>,
}

fn pct(ok: usize, n: usize) -> f64 {
    100.0 * ok as f64 / n.max(1) as f64
}

#[test]
fn recall_per_evasion_kind_and_false_positives_meet_the_goals() {
    use rustrict::CensorStr;
    let cases = cases();
    assert!(cases.len() > 5000, "{} cases", cases.len());
    let t = std::time::Instant::now();
    let engine = shipped();
    let big = bench_dictionaries();
    eprintln!("engines built in {:?}", t.elapsed());
    let english_kinds = [
        "leetspeak",
        "homoglyphs",
        "full-width",
        "case",
        "styled letters",
        "enclosed letters",
        "diacritics",
        "zero-width",
        "noise",
        "repeats",
        "spaced letters",
        "leetspeak + full-width",
        "leetspeak + noise",
        "sign or flag after",
        "signs for letters",
        "clean en",
        "scunthorpe",
        "clean russian",
        "clean greek",
        "clean accented",
    ];
    let mut rows: BTreeMap<String, Row> = BTreeMap::new();
    let mut misses: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for c in &cases {
        let row = rows.entry(c.kind.clone()).or_default();
        row.n += 1;
        let flagged = engine.check(&c.text).verdict != Verdict::Pass;
        if flagged == c.hit {
            row.ok += 1;
        } else {
            misses
                .entry(c.kind.clone())
                .or_default()
                .push(c.text.clone());
        }
        if english_kinds.contains(&c.kind.as_str()) {
            let r = row.rustrict.get_or_insert((0, 0));
            r.0 += usize::from(c.text.as_str().is_inappropriate() == c.hit);
            r.1 += 1;
        }
        if !c.hit {
            let b = row.bench_folded.get_or_insert((0, 0));
            b.0 += usize::from(!new_fold_hit(&big, &c.text));
            b.1 += 1;
        }
    }
    eprintln!("cases checked in {:?}", t.elapsed());
    println!();
    println!(
        "| kind | cases | espresso (shipped lists, pinyin on) | rustrict 0.7 (own dictionary) | espresso, bench dictionaries: clean lines not flagged through leet, look-alikes or pinyin |"
    );
    println!("|---|---:|---:|---:|---:|");
    for (kind, r) in &rows {
        let what = if cases.iter().any(|c| &c.kind == kind && c.hit) {
            "recall"
        } else {
            "pass"
        };
        let rr = r
            .rustrict
            .map_or("—".to_string(), |(ok, n)| format!("{:.1}%", pct(ok, n)));
        let bf = r
            .bench_folded
            .map_or("—".to_string(), |(ok, n)| format!("{:.2}%", pct(ok, n)));
        println!(
            "| {kind} | {} | {what} {:.1}% | {rr} | {bf} |",
            r.n,
            pct(r.ok, r.n)
        );
    }
    for (kind, m) in &misses {
        println!("\n{kind}: {} wrong, e.g.", m.len());
        for t in m.iter().take(4) {
            println!("    {t}");
        }
    }

    // the goals of issue 18
    for (kind, r) in &rows {
        let rate = pct(r.ok, r.n);
        let goal = match kind.as_str() {
            "clean en" | "clean zh" => 99.5,
            "scunthorpe" => 97.0,
            "clean russian" | "clean greek" | "clean accented" => 99.0,
            _ => 95.0,
        };
        assert!(rate >= goal, "{kind}: {rate:.1}% < {goal}%");
        if let Some((ok, n)) = r.bench_folded {
            let goal = if kind.starts_with("clean") && !kind.contains(' ') {
                99.5
            } else {
                97.0
            };
            assert!(
                pct(ok, n) >= goal,
                "{kind} with the bench dictionaries: {:.2}%",
                pct(ok, n)
            );
        }
    }
}

/// The contact detectors' labelled set, `benches/data/eval/detectors.tsv` (built by
/// `benches/data/make_detector_eval.py`): `url`, `email`, `phone` and `im` hit cases (plain and
/// disguised, English and Chinese carriers) and clean numeric and link-like text.
fn detector_cases() -> Vec<Case> {
    read_cases("detectors.tsv", "make_detector_eval.py")
}

#[test]
fn detectors_recall_per_kind_and_clean_pass_rate_meet_the_goals() {
    use espresso_filter_core::{DetectorMode, Detectors};
    let cases = detector_cases();
    assert!(cases.len() > 2000, "{} cases", cases.len());
    // no word lists: what is flagged is flagged by a detector
    let engine = Engine::load(
        &Sources::new(),
        Options::default().detectors(Detectors::new().all(DetectorMode::Review)),
    )
    .expect("an engine without lists loads");
    let mut rows: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut misses: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let (mut clean_ok, mut clean_n) = (0, 0);
    for c in &cases {
        let r = engine.check(&c.text);
        let ok = if c.hit {
            r.hits.iter().any(|h| h.category == c.kind)
        } else {
            clean_n += 1;
            r.hits.is_empty()
        };
        clean_ok += usize::from(!c.hit && ok);
        let row = rows.entry(c.kind.clone()).or_default();
        row.1 += 1;
        if ok {
            row.0 += 1;
        } else {
            let got: Vec<String> = r
                .hits
                .iter()
                .map(|h| format!("{}={}", h.category, h.word))
                .collect();
            misses
                .entry(c.kind.clone())
                .or_default()
                .push(format!("{}  -> {got:?}", c.text));
        }
    }
    println!();
    println!("| detector kind | cases | rate |");
    println!("|---|---:|---:|");
    for (kind, (ok, n)) in &rows {
        let what = if cases.iter().any(|c| &c.kind == kind && c.hit) {
            "recall"
        } else {
            "pass"
        };
        println!("| {kind} | {n} | {what} {:.1}% |", pct(*ok, *n));
    }
    println!(
        "| all clean | {clean_n} | pass {:.2}% |",
        pct(clean_ok, clean_n)
    );
    for (kind, m) in &misses {
        println!("\n{kind}: {} wrong, e.g.", m.len());
        for t in m.iter().take(8) {
            println!("    {t}");
        }
    }
    // the goals: recall >= 95% per kind, >= 99% of clean text passes
    for kind in ["url", "email", "phone", "im"] {
        let (ok, n) = rows.get(kind).copied().unwrap_or_default();
        assert!(n >= 200, "{kind}: only {n} cases");
        assert!(pct(ok, n) >= 95.0, "{kind}: recall {:.1}%", pct(ok, n));
    }
    assert!(
        pct(clean_ok, clean_n) >= 99.0,
        "clean pass {:.2}%",
        pct(clean_ok, clean_n)
    );
}
