//! The URL and email detectors (see the module docs of [`crate::detect`] for the rules).

use super::Found;
use super::stream::{BARE_AT, SPOKEN, Tok, UPPER, is_host_char};

/// Generic suffixes a bare host may end in (country codes are always accepted).
const COMMON_GENERIC: &[&str] = &[
    "asia", "biz", "buzz", "cc", "club", "com", "cyou", "edu", "fun", "gov", "icu", "info", "int",
    "kim", "life", "live", "ltd", "mil", "mobi", "net", "online", "org", "pro", "red", "ren",
    "shop", "site", "space", "store", "tech", "top", "vip", "wang", "website", "win", "work",
    "world", "xyz",
];

/// Common file extensions: a bare `name.ext` with one of these is a file name.
const FILE_EXTENSIONS: &[&str] = &[
    "7z", "a", "ai", "apk", "app", "asp", "bak", "bat", "bin", "bz2", "c", "cc", "cfg", "cmd",
    "conf", "cpp", "cs", "css", "csv", "dat", "db", "dll", "dmg", "doc", "docx", "env", "exe",
    "gd", "gif", "go", "gz", "h", "htm", "html", "img", "ini", "ipa", "iso", "jar", "java", "jpeg",
    "jpg", "js", "json", "jsx", "kt", "lock", "log", "lua", "m", "md", "mk", "ml", "mov", "mp3",
    "mp4", "o", "out", "pdf", "php", "pl", "pm", "png", "ppt", "pptx", "ps", "ps1", "py", "r",
    "rar", "rb", "rs", "sh", "so", "sql", "svg", "swift", "sys", "tar", "tmp", "toml", "ts", "tsx",
    "txt", "vue", "war", "wav", "webp", "xls", "xlsx", "xml", "yaml", "yml", "zip",
];

/// Well-known mail providers (registrable domains): a bare English `at` before one of these
/// makes an address.
const MAIL_PROVIDERS: &[&str] = &[
    "126.com",
    "139.com",
    "163.com",
    "aliyun.com",
    "aol.com",
    "foxmail.com",
    "gmail.com",
    "gmx.com",
    "hotmail.com",
    "icloud.com",
    "live.com",
    "mail.com",
    "outlook.com",
    "proton.me",
    "protonmail.com",
    "qq.com",
    "sina.com",
    "sohu.com",
    "yahoo.com",
    "yandex.com",
    "yeah.net",
];

/// Short hosts that are link shorteners and messenger links, accepted although their first
/// label is shorter than three characters.
const SHORT_HOSTS: &[&str] = &["fb.me", "g.co", "j.mp", "t.co", "t.me", "wa.me"];

/// A host checked against the public-suffix list.
struct Host {
    name: String,
    /// the public suffix has more than one label (`com.cn`)
    multi_label_suffix: bool,
    /// the last label
    tld: String,
    labels: usize,
    ip: bool,
}

/// The host made of `toks` (host characters and dots, trimmed), if it is a valid name with a
/// known public suffix (or an IPv4 address).
fn host(toks: &[Tok]) -> Option<Host> {
    let name: String = toks.iter().map(|t| t.c).collect();
    if name.len() > 253 || !name.contains('.') {
        return None;
    }
    let labels: Vec<&str> = name.split('.').collect();
    if labels
        .iter()
        .any(|l| l.is_empty() || l.len() > 63 || l.starts_with('-') || l.ends_with('-'))
    {
        return None;
    }
    if labels.len() == 4
        && labels
            .iter()
            .all(|l| l.len() <= 3 && l.bytes().all(|b| b.is_ascii_digit()))
    {
        let ok = labels.iter().all(|l| {
            l.parse::<u16>().is_ok_and(|v| v <= 255) && (l.len() == 1 || !l.starts_with('0'))
        });
        return ok.then(|| Host {
            name: name.clone(),
            multi_label_suffix: false,
            tld: String::new(),
            labels: 4,
            ip: true,
        });
    }
    let tld = labels.last()?.to_string();
    if !tld.bytes().any(|b| b.is_ascii_alphabetic()) {
        return None;
    }
    let suffix = psl::suffix(name.as_bytes())?;
    if !suffix.is_known() || suffix.as_bytes().len() >= name.len() {
        return None;
    }
    let multi_label_suffix = suffix.as_bytes().contains(&b'.');
    Some(Host {
        labels: labels.len(),
        name,
        multi_label_suffix,
        tld,
        ip: false,
    })
}

/// The maximal run of host characters and dots starting at `i` (trimmed of dots and dashes at
/// both ends): its bounds.
fn host_run(toks: &[Tok], i: usize) -> (usize, usize) {
    let mut j = i;
    while j < toks.len() && (is_host_char(toks[j].c) || toks[j].c == '.') {
        j += 1;
    }
    let (mut a, mut b) = (i, j);
    while a < b && matches!(toks[a].c, '.' | '-') {
        a += 1;
    }
    while b > a && matches!(toks[b - 1].c, '.' | '-') {
        b -= 1;
    }
    (a, b)
}

/// The scheme ending right before `at` (`http://`, `hxxps://`, `ftp://`): its first token.
fn scheme_before(toks: &[Tok], at: usize) -> Option<usize> {
    if at < 3 || toks[at - 1].c != '/' || toks[at - 2].c != '/' || toks[at - 3].c != ':' {
        return None;
    }
    let end = at - 3;
    let mut start = end;
    while start > 0 && toks[start - 1].c.is_ascii_alphabetic() {
        start -= 1;
    }
    let word: String = toks[start..end].iter().map(|t| t.c).collect();
    let ok = matches!(
        word.as_str(),
        "http"
            | "https"
            | "hxxp"
            | "hxxps"
            | "htp"
            | "htps"
            | "hp"
            | "hps"
            | "ftp"
            | "ttp"
            | "ttps"
    );
    ok.then_some(start)
}

/// The end of a port and path starting at `at` (just past the host), or `at` when none.
fn path_end(toks: &[Tok], at: usize) -> (usize, bool) {
    let mut j = at;
    // port
    if toks.get(j).is_some_and(|t| t.c == ':') {
        let mut k = j + 1;
        while toks.get(k).is_some_and(|t| t.c.is_ascii_digit()) {
            k += 1;
        }
        if k > j + 1 && k - j <= 6 {
            j = k;
        }
    }
    if toks.get(j).is_some_and(|t| t.c == '/') {
        while toks
            .get(j)
            .is_some_and(|t| t.c.is_ascii_alphanumeric() || "/._~%?=&#+-:".contains(t.c))
        {
            j += 1;
        }
        while j > at && matches!(toks[j - 1].c, '.' | ':' | '?' | '&' | '#') {
            j -= 1;
        }
    }
    (j, j > at)
}

/// The URLs of the stream.
pub(super) fn urls(toks: &[Tok]) -> Vec<Found> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        if !(is_host_char(toks[i].c) || toks[i].c == '.') {
            i += 1;
            continue;
        }
        let (a, b) = host_run(toks, i);
        let next = b.max(i + 1);
        let run_end = {
            let mut j = i;
            while j < toks.len() && (is_host_char(toks[j].c) || toks[j].c == '.') {
                j += 1;
            }
            j
        };
        if let Some(found) = url_at(toks, a, b) {
            i = found.toks.end.max(next);
            out.push(found);
            continue;
        }
        i = run_end.max(next);
    }
    out
}

/// The URL whose host is `toks[a..b]`, if it is one.
fn url_at(toks: &[Tok], a: usize, b: usize) -> Option<Found> {
    if b <= a || !toks[a..b].iter().any(|t| t.c == '.') {
        return None;
    }
    let h = host(&toks[a..b])?;
    // the domain of an address (written with a real `@` after a local part) is not a URL
    if a >= 2 && toks[a - 1].c == '@' && toks[a - 1].flags & BARE_AT == 0 && toks[a - 2].is_alnum()
    {
        return None;
    }
    let scheme = scheme_before(toks, a);
    let (end, has_path) = path_end(toks, b);
    let www = h.name.starts_with("www.");
    let spoken = toks[a..b].iter().any(|t| t.flags & SPOKEN != 0);
    let strong = scheme.is_some() || www || has_path || spoken;
    if h.ip && !(scheme.is_some() || has_path) {
        return None;
    }
    if !strong && !h.ip && !bare_host_stands(toks, a, b, &h) {
        return None;
    }
    Some(Found {
        word: h.name,
        toks: scheme.unwrap_or(a)..end,
    })
}

/// The checks a host written bare (no scheme, `www.`, path or port) must pass.
fn bare_host_stands(toks: &[Tok], a: usize, b: usize, h: &Host) -> bool {
    let tld = h.tld.as_str();
    if !(h.multi_label_suffix || tld.len() == 2 || COMMON_GENERIC.contains(&tld)) {
        return false;
    }
    if h.labels == 2 && !h.multi_label_suffix && FILE_EXTENSIONS.contains(&tld) {
        return false;
    }
    // code: an identifier before or after; a call, an index, an assignment or a `;` after
    if a > 0 && matches!(toks[a - 1].c, '_' | '$') {
        return false;
    }
    if toks
        .get(b)
        .is_some_and(|t| matches!(t.c, '_' | '(' | '[' | '=' | '{' | ';'))
    {
        return false;
    }
    let mut next = b;
    while toks.get(next).is_some_and(|t| t.c == ' ') {
        next += 1;
    }
    if next > b && toks.get(next).is_some_and(|t| t.c == '=') {
        return false;
    }
    // camelCase inside a label; a capital after a lower-case letter across a dot (`it.It`)
    for w in toks[a..b].windows(2) {
        let (x, y) = (w[0], w[1]);
        if y.flags & UPPER != 0 && x.c.is_ascii_lowercase() && x.flags & UPPER == 0 {
            return false;
        }
    }
    for k in a + 1..b.saturating_sub(1) {
        if toks[k].c == '.'
            && toks[k + 1].flags & UPPER != 0
            && toks[k - 1].c.is_ascii_lowercase()
            && toks[k - 1].flags & UPPER == 0
        {
            return false;
        }
    }
    // a short first label with a country code is more often a typo than a host (`it.is`)
    if h.labels == 2 && tld.len() == 2 && !h.multi_label_suffix {
        let first = h.name.split('.').next().unwrap_or_default();
        if first.len() < 3 && !SHORT_HOSTS.contains(&h.name.as_str()) {
            return false;
        }
    }
    true
}

/// The email addresses of the stream.
pub(super) fn emails(toks: &[Tok]) -> Vec<Found> {
    let mut out = Vec::new();
    let mut last_end = 0;
    for k in 0..toks.len() {
        if toks[k].c != '@' || k < last_end {
            continue;
        }
        if let Some(f) = email_at(toks, k, last_end) {
            last_end = f.toks.end;
            out.push(f);
        }
    }
    out
}

fn is_local_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '%' | '+' | '-')
}

/// The address around the `@` at `toks[k]`.
fn email_at(toks: &[Tok], k: usize, floor: usize) -> Option<Found> {
    let mut a = k;
    while a > floor && is_local_char(toks[a - 1].c) {
        a -= 1;
    }
    while a < k && !toks[a].is_alnum() {
        a += 1;
    }
    if a == k || k - a > 64 || toks[k - 1].c == '.' {
        return None;
    }
    let (ha, hb) = host_run(toks, k + 1);
    if ha != k + 1 || hb <= ha {
        return None;
    }
    let h = host(&toks[ha..hb])?;
    if h.ip {
        return None;
    }
    let local: String = toks[a..k].iter().map(|t| t.c).collect();
    if toks[k].flags & BARE_AT != 0 {
        let spoken_dot = toks[ha..hb]
            .iter()
            .any(|t| t.c == '.' && t.flags & SPOKEN != 0);
        let marked_local = local
            .bytes()
            .any(|b| b.is_ascii_digit() || b == b'.' || b == b'_');
        let provider = psl::domain_str(&h.name).is_some_and(|d| MAIL_PROVIDERS.contains(&d));
        // `my mail is sam at deal.cn`, `邮箱：sam at deal.cn`
        let said: String = toks[a.saturating_sub(24)..a].iter().map(|t| t.c).collect();
        let mail_context = said.contains("mail") || said.contains('邮');
        // `find us at example.com` names a site: a bare `at` needs more evidence of an address
        if h.name.starts_with("www.") || !(spoken_dot || marked_local || provider || mail_context) {
            return None;
        }
    }
    Some(Found {
        word: format!("{local}@{}", h.name),
        toks: a..hb,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Options;
    use crate::normalize::Table;

    fn words(text: &str, f: fn(&[Tok]) -> Vec<Found>) -> Vec<String> {
        let table = Table::new(&Options::default());
        let (mut tmp, mut toks) = (Vec::new(), Vec::new());
        super::super::stream::build(&table, text, &mut tmp, &mut toks);
        f(&toks).into_iter().map(|f| f.word).collect()
    }

    #[test]
    fn hosts_need_a_known_public_suffix() {
        assert_eq!(words("go to example.com now", urls), ["example.com"]);
        assert_eq!(words("shop at abc.com.cn!", urls), ["abc.com.cn"]);
        assert!(words("see example.notasuffix", urls).is_empty());
    }

    #[test]
    fn file_names_and_code_are_not_hosts() {
        for clean in [
            "open report.pdf",
            "edit main.rs and setup.sh",
            "unzip data.zip",
            "call user.name() now",
            "let x = obj.info;",
            "self.info = {}",
            "my_var.com",
            "I did it.It was fine",
            "myObj.net",
        ] {
            assert!(words(clean, urls).is_empty(), "{clean}");
        }
    }

    #[test]
    fn strong_forms_take_any_suffix() {
        assert_eq!(words("https://my.site.name/x", urls), ["my.site.name"]);
        assert_eq!(words("hxxp://evil.link", urls), ["evil.link"]);
        assert_eq!(
            words("http://192.168.1.10:8080/admin", urls),
            ["192.168.1.10"]
        );
        assert!(words("version 1.2.3.4 is out", urls).is_empty());
    }

    #[test]
    fn emails_in_plain_and_spoken_forms() {
        assert_eq!(words("mail john@example.com", emails), ["john@example.com"]);
        assert_eq!(words("name at gmail dot com", emails), ["name@gmail.com"]);
        assert_eq!(
            words("name (at) example (dot) org", emails),
            ["name@example.org"]
        );
        assert_eq!(words("name艾特qq点com", emails), ["name@qq.com"]);
        assert_eq!(
            words("mail lily at happy dot com dot cn", emails),
            ["lily@happy.com.cn"]
        );
        assert_eq!(words("find us at example.com", urls), ["example.com"]);
        assert!(words("find us at example.com", emails).is_empty());
        assert_eq!(words("邮箱：sam at deal.cn", emails), ["sam@deal.cn"]);
        assert!(words("we met at main.rs", emails).is_empty());
        assert!(words("follow @someone on x.com", emails).is_empty());
    }
}
