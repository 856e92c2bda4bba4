//! Reloading: atomic swap, failure keeps the old set, versions, files on disk.

use std::io::Write;

use espresso_filter_core::{Engine, Level, ListSource, LoadError, Options, Sources, Verdict};

fn write(dir: &tempfile::TempDir, name: &str, body: &str) -> std::path::PathBuf {
    let p = dir.path().join(name);
    let mut f = std::fs::File::create(&p).unwrap();
    f.write_all(body.as_bytes()).unwrap();
    p
}

#[test]
fn files_load_with_stem_categories_and_allow_lists() {
    let dir = tempfile::tempdir().unwrap();
    write(&dir, "abuse.txt", "# c\nbadword\nother\tspam\n");
    write(&dir, "allow.txt", "badword inc\n");
    let sources = Sources::new()
        .list(ListSource::file("abuse.txt", Level::Danger))
        .allow_file("allow.txt")
        .relative_to(dir.path());
    let e = Engine::load(&sources, Options::default()).unwrap();
    let r = e.check("badword and other");
    assert_eq!(r.verdict, Verdict::Block);
    assert_eq!(r.hits[0].category, "abuse");
    assert_eq!(r.hits[1].category, "spam");
    assert_eq!(e.check("BadWord Inc. is a company").verdict, Verdict::Pass);
}

#[test]
fn reload_swaps_and_failure_keeps_the_old_set() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(&dir, "d.txt", "alpha\n");
    let sources = Sources::new().list(ListSource::file(&p, Level::Danger));
    let e = Engine::load(&sources, Options::default()).unwrap();
    let clone = e.clone();
    let v1 = e.version();
    assert_eq!(e.check("alpha").verdict, Verdict::Block);

    // a snapshot taken before the reload keeps answering with the old set
    let before = e.dictionary();

    write(&dir, "d.txt", "beta\n");
    let v2 = e.reload(&sources).unwrap();
    assert_ne!(v1, v2);
    assert_eq!(clone.version(), v2, "clones share the swapped set");
    assert_eq!(clone.check("alpha").verdict, Verdict::Pass);
    assert_eq!(clone.check("beta").verdict, Verdict::Block);
    assert_eq!(before.check("alpha").verdict, Verdict::Block);

    // a broken file: error names file and line, the running set stays
    write(&dir, "d.txt", "gamma\n\tno word\n");
    let err = e.reload(&sources).unwrap_err();
    assert!(matches!(err, LoadError::Parse { line: 2, .. }), "{err}");
    assert!(err.to_string().contains("d.txt:2:"), "{err}");
    assert_eq!(e.version(), v2);
    assert_eq!(e.check("beta").verdict, Verdict::Block);

    // a missing file: same
    let missing = Sources::new().list(ListSource::file(dir.path().join("nope.txt"), Level::Danger));
    let err = e.reload(&missing).unwrap_err();
    assert!(matches!(err, LoadError::Io { .. }));
    assert!(err.to_string().contains("nope.txt"), "{err}");
    assert_eq!(e.version(), v2);
}

#[test]
fn version_is_a_content_fingerprint() {
    let a = Engine::builtin();
    let b = Engine::builtin();
    assert_eq!(a.version(), b.version());
    let c = Engine::load(
        &Sources::builtin(),
        Options::default().collapse_repeats(false),
    )
    .unwrap();
    assert_ne!(a.version(), c.version(), "options are part of the version");
    // reloading identical content gives the identical version
    let v = a.reload(&Sources::builtin()).unwrap();
    assert_eq!(v, b.version());
    // reload_with changes options
    let v = a
        .reload_with(
            &Sources::builtin(),
            Options::default().mask(Level::Danger, '#'),
        )
        .unwrap();
    assert_ne!(v, b.version());
    assert_eq!(a.check("fuck").masked, "####");
}

#[test]
fn readers_never_block_during_reloads() {
    let e = Engine::builtin();
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        let reader = s.spawn(|| {
            let mut n = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                // every check sees one complete set: either both words or the builtin set
                let r = e.check("fuck zeta");
                assert!(!r.hits.is_empty());
                n += 1;
            }
            n
        });
        let extra = Sources::builtin().list(ListSource::inline("z.txt", "zeta\n", Level::Normal));
        for i in 0..20 {
            let src = if i % 2 == 0 {
                &extra
            } else {
                &Sources::builtin()
            };
            e.reload(src).unwrap();
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        assert!(reader.join().unwrap() > 0);
    });
}

#[test]
fn debug_output_is_a_summary() {
    let s = format!("{:?}", Engine::builtin());
    assert!(s.contains("version") && s.contains("words"), "{s}");
    assert!(
        s.len() < 2000,
        "Debug should not dump the tables: {} bytes",
        s.len()
    );
}
