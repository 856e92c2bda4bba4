//! Contact and ad detectors: URLs, email addresses, phone numbers and instant-messaging ids.
//!
//! In chat and comment moderation an ad is mostly a way to reach someone off the platform, and
//! spammers disguise exactly that: `加V：①③⑧①②③④⑤⑥⑦⑧`, `call 138 0013 8000`,
//! `w w w . x x x . c o m`, `name at gmail dot com`, `扣扣 贰叁肆伍陆柒捌`. Each detector is off
//! by default and is turned on per kind with a [`DetectorMode`]; a detection is a [`Hit`] like a
//! listed word:
//!
//! - `word` is the canonical contact: `example.com` (the host), `name@gmail.com`,
//!   `13800138000` (a Chinese mobile), `010-12345678` (a landline), `+14155552671`,
//!   `qq:12345678`, `wechat:abc_123`, `telegram:name`;
//! - `category` is `url`, `email`, `phone` or `im`;
//! - `level` is [`Level::Normal`] for [`DetectorMode::Review`] and [`Level::Danger`] for
//!   [`DetectorMode::Block`];
//! - `start`/`end` are byte offsets into the original text, and the span is masked like a word.
//!
//! ```
//! use espresso_filter_core::{DetectorMode, Detectors, Engine, Options, Sources, Verdict};
//!
//! let detectors = Detectors::new().all(DetectorMode::Review).phone(DetectorMode::Block);
//! let engine = Engine::load(&Sources::new(), Options::default().detectors(detectors))?;
//!
//! let r = engine.check("扣扣 贰叁肆伍陆柒捌");
//! assert_eq!(r.verdict, Verdict::Review);
//! assert_eq!(r.hits[0].category, "im");
//! assert_eq!(r.hits[0].word, "qq:2345678");
//!
//! // where two detections overlap, the blocking one wins
//! let r = engine.check("加V：①③⑧①②③④⑤⑥⑦⑧");
//! assert_eq!(r.verdict, Verdict::Block);
//! assert_eq!(r.hits[0].word, "13812345678");
//!
//! let r = engine.check("call 138 0013 8000 now");
//! assert_eq!(r.verdict, Verdict::Block);
//! assert_eq!(r.hits[0].word, "13800138000");
//! assert_eq!(r.masked, "call ************* now");
//!
//! let r = engine.check("w w w . x x x . c o m, or name at gmail dot com");
//! let words: Vec<&str> = r.hits.iter().map(|h| h.word.as_str()).collect();
//! assert_eq!(words, ["www.xxx.com", "name@gmail.com"]);
//!
//! // ordinary numbers and file names pass
//! let clean = "On 2024-05-01 at 10:30 the price was $1,299.99 (up 3.5%); see report.pdf, v1.2.3.";
//! assert_eq!(engine.check(clean).verdict, Verdict::Pass);
//! # Ok::<(), espresso_filter_core::LoadError>(())
//! ```
//!
//! # How text is read
//!
//! The detectors read the text through the engine's folding (full-width, styled, circled and
//! parenthesised digits and letters, look-alike letters, case, traditional → simplified), and
//! undo the disguises of a contact on top: `点`/`點`/`。`/`．`/`dot`/`(dot)` as a dot,
//! `at`/`(at)`/`＠`/`艾特` as an at sign, spaces inside a run of single characters
//! (`w w w`, `1 3 8`), spaces around a separator standing alone (`example . com`), and noise
//! characters (`* | ~ ^`) inside a word. The phone and IM detectors also read Chinese numerals
//! (`一二三…零〇`, `幺` = 1, `两` = 2) and financial numerals (`壹贰叁…`) as digits.
//!
//! # What each finds, and what it leaves alone
//!
//! - **url**: a host whose last labels are a suffix of the public-suffix list (through the
//!   [`psl`] crate's embedded list; no network), with a scheme (`http`, `https`, `hxxp`,
//!   `ftp`), a `www.` prefix, a path or a port, or bare (`example.com`); IP-address URLs with a
//!   scheme, port or path. A bare host must end in a country code, a widely used generic suffix
//!   (`com`, `net`, `org`, `xyz`, `top`, `vip`, ...), or a suffix of two labels (`com.cn`);
//!   other suffixes (`.name`, `.link`, `.show`: words that code and prose use after a dot) need
//!   a scheme, `www.`, a path or a port. A bare two-label name is a file name, not a host, when
//!   its suffix is a common file extension (`report.pdf`, `main.rs`, `setup.sh`, `data.zip`);
//!   and a bare host is code when a label is written in camelCase or with `_`, or when `(`,
//!   `[`, `=` or `;` follows it, and a typo when a capital follows a lower-case letter across
//!   the dot (`it.It`) or when a two-label host with a country code has a first label of one
//!   or two letters (`it.is`; `t.me`, `t.co`, `wa.me` are known hosts). Hosts in
//!   [`Detectors::allow_domain`] (and their subdomains) are never reported.
//! - **email**: `local@host` with a public suffix; a bare English `at` counts only when the
//!   address is otherwise disguised too (`dot`), the local part has a digit, `.` or `_`, or the
//!   host is a well-known mail provider (`gmail.com`, `qq.com`, `163.com`, ...), or `mail` or
//!   `邮` comes shortly before it (`my mail is sam at deal.cn`, `邮箱：...`), and never
//!   before a `www.` host: `find us at example.com` names a site (a `url` hit).
//! - **phone**: Chinese mobiles (`1[3-9]` + 9 digits, optionally after `+86`), landlines with
//!   an area code (`010-12345678`, `0755 2345 6789`), `400`/`800` service numbers, and
//!   international numbers written with `+` and a country code; digits may be separated by
//!   spaces, dashes, dots, slashes, parentheses or noise; a run holding several numbers is
//!   split at spaces and dashes (`13800138000 13900139000`). Numbers labelled as something else (order,
//!   tracking, invoice, ISBN, ID numbers: `订单号`, `快递单号`, `order #`, ...), prices
//!   (after a currency sign or before `元`/`块`), dates, times, versions, years, scores and
//!   postal codes have the wrong shape or a label and pass.
//! - **im**: an id after a keyword: QQ numbers (5–11 digits) after `QQ`/`扣扣`/`企鹅`/`Q号`,
//!   WeChat ids (6–20 characters starting with a letter, or 6–11 digits) after
//!   `微信`/`VX`/`V信`/`薇信`/`wx`/`weixin`/`加V`, Telegram handles after
//!   `TG`/`telegram`/`电报`. A letters-only id counts when a separator (`:` `号` `是` `=`...)
//!   or `@` introduces it, so `微信 version` is not an id. The keywords are
//!   [`IM_KEYWORDS`] plus any added with [`Detectors::im_keywords`].

mod domain;
mod im;
mod look;
mod phone;
pub(crate) mod stream;

use std::ops::Range;

use serde::{Deserialize, Serialize};

use crate::normalize::Table;
use crate::source::LoadError;
use crate::types::{Hit, Level};

pub use im::ImKind;
pub(crate) use look::Plain;

/// The shipped IM keyword list (`filter-core/words/im-keywords.txt`): one `keyword<TAB>kind`
/// a line, kind `qq`, `wechat` or `telegram`; blank lines and `#` comments are ignored.
pub const IM_KEYWORDS: &str = include_str!("../../words/im-keywords.txt");

/// What a detector does with what it finds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DetectorMode {
    /// Not run (the default).
    #[default]
    Off,
    /// Hits are normal level: the verdict is at least `review`.
    Review,
    /// Hits are danger level: the verdict is `block`.
    Block,
}

impl DetectorMode {
    /// `"off"`, `"review"` or `"block"`.
    pub fn as_str(self) -> &'static str {
        match self {
            DetectorMode::Off => "off",
            DetectorMode::Review => "review",
            DetectorMode::Block => "block",
        }
    }

    /// The level of this mode's hits (`None` when off).
    pub fn level(self) -> Option<Level> {
        match self {
            DetectorMode::Off => None,
            DetectorMode::Review => Some(Level::Normal),
            DetectorMode::Block => Some(Level::Danger),
        }
    }
}

impl std::fmt::Display for DetectorMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for DetectorMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "off" => Ok(DetectorMode::Off),
            "review" => Ok(DetectorMode::Review),
            "block" => Ok(DetectorMode::Block),
            other => Err(format!(
                "unknown detector mode {other:?} (expected \"off\", \"review\" or \"block\")"
            )),
        }
    }
}

/// Which detectors run and how (see the [module docs](self)). `Detectors::new()` (the default)
/// runs none.
///
/// ```
/// use espresso_filter_core::{DetectorMode, Detectors};
///
/// let d = Detectors::new()
///     .url(DetectorMode::Review)
///     .allow_domain("Example.COM")
///     .im_keywords("mychat.txt", "飞信\twechat\n")?;
/// assert_eq!(d.url_mode(), DetectorMode::Review);
/// assert_eq!(d.email_mode(), DetectorMode::Off);
/// assert_eq!(d.allowed_domains(), ["example.com"]);
/// let many = Detectors::new().allow_domains(["b.org", ".Example.com", "a.net", "b.org"]);
/// assert_eq!(many.allowed_domains(), ["a.net", "b.org", "example.com"]);
/// assert!(Detectors::new().im_keywords("bad.txt", "飞信\tmsn\n").is_err());
/// # Ok::<(), espresso_filter_core::LoadError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Detectors {
    url: DetectorMode,
    email: DetectorMode,
    phone: DetectorMode,
    im: DetectorMode,
    allow_domains: Vec<String>,
    keywords: im::Keywords,
}

impl Default for Detectors {
    fn default() -> Self {
        Detectors::new()
    }
}

impl Detectors {
    /// Every detector off, no allowed domains, the shipped IM keywords.
    pub fn new() -> Self {
        Detectors {
            url: DetectorMode::Off,
            email: DetectorMode::Off,
            phone: DetectorMode::Off,
            im: DetectorMode::Off,
            allow_domains: Vec::new(),
            keywords: im::Keywords::builtin(),
        }
    }

    /// Sets every detector to `mode`.
    pub fn all(self, mode: DetectorMode) -> Self {
        self.url(mode).email(mode).phone(mode).im(mode)
    }

    /// The URL detector's mode.
    pub fn url(mut self, mode: DetectorMode) -> Self {
        self.url = mode;
        self
    }

    /// The email detector's mode.
    pub fn email(mut self, mode: DetectorMode) -> Self {
        self.email = mode;
        self
    }

    /// The phone detector's mode.
    pub fn phone(mut self, mode: DetectorMode) -> Self {
        self.phone = mode;
        self
    }

    /// The IM detector's mode.
    pub fn im(mut self, mode: DetectorMode) -> Self {
        self.im = mode;
        self
    }

    /// Allows `domain` and its subdomains: URLs and email addresses there are not reported
    /// (e.g. the operator's own site). Case and surrounding dots are ignored. A value that is
    /// no domain name (`http://example.com`, `*.example.org`: letters, digits, `-` and `.`
    /// only) makes building an engine with these detectors fail with
    /// [`LoadError::Invalid`] naming it.
    pub fn allow_domain(mut self, domain: &str) -> Self {
        if let Some(d) = domain_key(domain)
            && let Err(at) = self.allow_domains.binary_search(&d)
        {
            self.allow_domains.insert(at, d);
        }
        self
    }

    /// [`allow_domain`](Self::allow_domain) for each of `domains`, sorted once (for long lists).
    pub fn allow_domains<D: AsRef<str>>(mut self, domains: impl IntoIterator<Item = D>) -> Self {
        let domains = domains.into_iter().filter_map(|d| domain_key(d.as_ref()));
        self.allow_domains.extend(domains);
        self.allow_domains.sort_unstable();
        self.allow_domains.dedup();
        self
    }

    /// Why these detectors cannot be built with, if they cannot: an allowed domain that is no
    /// domain name, or an IM keyword made only of what `noise` skips (it could never match).
    pub(crate) fn invalid(&self, noise: &crate::NoiseSet) -> Option<String> {
        if let Some(bad) = self.allow_domains.iter().find(|d| {
            !d.chars()
                .all(|c| c.is_alphanumeric() || c == '-' || c == '.')
        }) {
            return Some(format!(
                "allowed domain {bad:?} is not a domain name (letters, digits, `-` and `.`: \
                 give `example.com` for it and its subdomains)"
            ));
        }
        let (bad, name, line) = self.keywords.only_noise(noise)?;
        Some(format!(
            "{name}:{line}: IM keyword {bad:?} is made only of noise characters, which matching \
             skips: it can never match"
        ))
    }

    /// Adds IM keywords from `text` (the format of [`IM_KEYWORDS`]; `name` is used in errors).
    /// An unknown kind or a line without one is an error naming the line.
    pub fn im_keywords(mut self, name: &str, text: &str) -> Result<Self, LoadError> {
        self.keywords.extend(name, text)?;
        Ok(self)
    }

    /// The URL detector's mode.
    pub fn url_mode(&self) -> DetectorMode {
        self.url
    }

    /// The email detector's mode.
    pub fn email_mode(&self) -> DetectorMode {
        self.email
    }

    /// The phone detector's mode.
    pub fn phone_mode(&self) -> DetectorMode {
        self.phone
    }

    /// The IM detector's mode.
    pub fn im_mode(&self) -> DetectorMode {
        self.im
    }

    /// The allowed domains (lower case, sorted).
    pub fn allowed_domains(&self) -> &[String] {
        &self.allow_domains
    }

    /// Whether any detector runs.
    pub fn any(&self) -> bool {
        [self.url, self.email, self.phone, self.im]
            .iter()
            .any(|m| *m != DetectorMode::Off)
    }

    /// The (level, category) pairs the running detectors can report.
    pub fn categories(&self) -> Vec<(Level, &'static str)> {
        [
            (self.url, "url"),
            (self.email, "email"),
            (self.phone, "phone"),
            (self.im, "im"),
        ]
        .into_iter()
        .filter_map(|(m, c)| Some((m.level()?, c)))
        .collect()
    }

    /// Hashes the IM keywords and their kinds into a dictionary version.
    pub(crate) fn keywords_fingerprint(&self, h: &mut crate::dict::Fnv) {
        self.keywords.fingerprint(h);
    }

    /// The IM keywords, when the IM detector runs.
    pub(crate) fn running_keywords(&self) -> Option<&im::Keywords> {
        (self.im != DetectorMode::Off).then_some(&self.keywords)
    }

    /// Whether `host` is an allowed domain or below one: `host` or one of its parent domains
    /// is in the sorted list.
    fn allowed(&self, host: &str) -> bool {
        let mut domain = host;
        loop {
            if self
                .allow_domains
                .binary_search_by(|d| d.as_str().cmp(domain))
                .is_ok()
            {
                return true;
            }
            match domain.split_once('.') {
                Some((_, parent)) => domain = parent,
                None => return false,
            }
        }
    }
}

/// An allowed domain as kept: lower case, without surrounding dots; `None` when empty.
fn domain_key(domain: &str) -> Option<String> {
    let d = domain.trim().trim_matches('.').to_ascii_lowercase();
    (!d.is_empty()).then_some(d)
}

/// One detection, before it becomes a [`Hit`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Found {
    /// The canonical contact.
    pub(crate) word: String,
    /// Indices into the stream (exclusive end).
    pub(crate) toks: Range<usize>,
}

/// Reusable buffers of the detectors.
#[derive(Default)]
struct Scratch {
    raw: Vec<stream::Tok>,
    toks: Vec<stream::Tok>,
}

/// Runs the configured detectors over `text` and merges their hits into `hits` (sorted by
/// start, never overlapping; where hits overlap, a danger-level one wins over a normal one,
/// then the longer span, then words before detections).
pub(crate) fn run(table: &Table, text: &str, hits: &mut Vec<Hit>) {
    let detectors = &table.options().detectors;
    if !detectors.any() || text.is_empty() {
        return;
    }
    let plain = table.plain();
    thread_local! {
        static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::default();
    }
    let found = SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut s) => {
            let found = detect(detectors, table, plain, text, &mut s);
            if s.raw.capacity() > 1 << 20 {
                *s = Scratch::default();
            }
            found
        }
        Err(_) => detect(detectors, table, plain, text, &mut Scratch::default()),
    });
    if found.is_empty() {
        return;
    }
    merge(hits, found);
}

/// Every detection in `text`, as hits (possibly overlapping each other).
fn detect(
    detectors: &Detectors,
    table: &Table,
    plain: &Plain,
    text: &str,
    s: &mut Scratch,
) -> Vec<Hit> {
    if !look::worth_a_look(table, plain, detectors.running_keywords(), text) {
        return Vec::new();
    }
    stream::build(table, text, &mut s.raw, &mut s.toks);
    let toks = &s.toks;
    let mut out = Vec::new();
    let mut push = |mode: DetectorMode, category: &str, f: Found| {
        let Some(level) = mode.level() else { return };
        if f.toks.is_empty() {
            return;
        }
        out.push(Hit {
            word: f.word,
            level,
            category: category.to_string(),
            // a detection comes from no list
            list: String::new(),
            start: toks[f.toks.start].start as usize,
            end: toks[f.toks.end - 1].end as usize,
        });
    };
    if detectors.email != DetectorMode::Off {
        for f in domain::emails(toks) {
            let host = f.word.rsplit('@').next().unwrap_or_default();
            if !detectors.allowed(host) {
                push(detectors.email, "email", f);
            }
        }
    }
    if detectors.url != DetectorMode::Off {
        for f in domain::urls(toks) {
            if !detectors.allowed(&f.word) {
                push(detectors.url, "url", f);
            }
        }
    }
    if detectors.im != DetectorMode::Off {
        for f in im::find(toks, &detectors.keywords) {
            push(detectors.im, "im", f);
        }
    }
    if detectors.phone != DetectorMode::Off {
        for f in phone::find(toks) {
            push(detectors.phone, "phone", f);
        }
    }
    out
}

/// Merges `found` into the sorted, non-overlapping `hits`: on an overlap the danger-level hit
/// wins, then the longer span, then the earlier one (words first).
fn merge(hits: &mut Vec<Hit>, found: Vec<Hit>) {
    let words = hits.len();
    let mut all: Vec<(usize, Hit)> = std::mem::take(hits).into_iter().enumerate().collect();
    all.extend(found.into_iter().enumerate().map(|(i, h)| (words + i, h)));
    all.sort_by(|(ia, a), (ib, b)| {
        b.level
            .cmp(&a.level)
            .then((b.end - b.start).cmp(&(a.end - a.start)))
            .then(ia.cmp(ib))
    });
    let mut chosen: std::collections::BTreeMap<usize, Hit> = std::collections::BTreeMap::new();
    for (_, h) in all {
        if h.start >= h.end {
            continue;
        }
        let clash = chosen
            .range(..h.end)
            .next_back()
            .is_some_and(|(_, o)| o.end > h.start);
        if !clash {
            chosen.insert(h.start, h);
        }
    }
    hits.extend(chosen.into_values());
}
