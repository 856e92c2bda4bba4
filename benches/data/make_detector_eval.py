#!/usr/bin/env python3
"""Build the contact detectors' labelled evaluation set, benches/data/eval/detectors.tsv.

Python 3 standard library only; deterministic (fixed seed).

Usage:
    python3 make_detector_eval.py      # writes eval/detectors.tsv beside this script

Each line: kind<TAB>expect<TAB>word<TAB>text.
- `hit` lines (kinds `url`, `email`, `phone`, `im`) hold one contact, plain or disguised, in an
  English or Chinese carrier sentence; `word` is the contact as written before disguise. A hit
  case passes when the engine (all four detectors on) reports a hit of that category.
- `clean` lines (kinds `clean numbers`, `clean links`, `clean mentions`, `clean code`,
  `clean corpus en`, `clean corpus zh`) hold no contact: dates, times, prices, percentages,
  scores, versions, labelled order/tracking/ISBN/ID numbers, years, postal codes, file names,
  abbreviations, code, sentences that mention a website or an email without giving one, and
  lines with digits or dots from the bench corpora (lines that hold a real URL, address or
  mobile number, found with the independent regular expressions below, are left out as true
  hits). A clean case passes when no detector reports anything.

The runner is benches/tests/evaluation.rs:
`cargo test -p espresso-benches --test evaluation -- --nocapture`.
"""
import os
import random
import re

SEED = 20261203
HERE = os.path.dirname(os.path.abspath(__file__))
PER_KIND = 300
rng = random.Random(SEED)

FULL = {chr(c): chr(c + 0xFEE0) for c in range(0x21, 0x7F)}
CIRCLED = {str(d): ch for d, ch in zip(range(10), "⓪①②③④⑤⑥⑦⑧⑨")}
NEG_CIRCLED = {str(d): ch for d, ch in zip(range(10), "⓿❶❷❸❹❺❻❼❽❾")}
PAREN = {str(d): ch for d, ch in zip(range(1, 10), "⑴⑵⑶⑷⑸⑹⑺⑻⑼")}
STOP = {str(d): ch for d, ch in zip(range(1, 10), "⒈⒉⒊⒋⒌⒍⒎⒏⒐")}
CN = dict(zip("0123456789", "零一二三四五六七八九"))
CN_ALT = dict(zip("0123456789", "〇幺两三四五六七八九"))
FIN = dict(zip("0123456789", "零壹贰叁肆伍陆柒捌玖"))
FIN_TRAD = dict(zip("0123456789", "零壹貳參肆伍陸柒捌玖"))

WORDS = ("shop deal lucky star golden happy dragon moon cloud smart best fast cheap vip game "
         "win bet club fun mall buy sale tech china asia global best123 mega super king "
         "panda tiger ocean river sun green blue red apple orange").split()
TLDS = ["com", "net", "cn", "com.cn", "xyz", "top", "vip", "io", "co", "info", "org", "cc",
        "me", "tv", "net.cn", "shop", "club", "co.uk", "hk", "tw"]
PROVIDERS = ["gmail.com", "qq.com", "163.com", "126.com", "outlook.com", "hotmail.com",
             "yahoo.com", "foxmail.com", "sina.com", "icloud.com"]
NAMES = ("john mary alex lily tom kevin amy wang li zhang chen liu sam anna jack rose leo "
         "mike zoe ben").split()


def styled_digits(s, style):
    table = {"circled": CIRCLED, "neg": NEG_CIRCLED, "cn": CN, "cn_alt": CN_ALT, "fin": FIN,
             "fin_trad": FIN_TRAD, "full": FULL}.get(style)
    if style in ("paren", "stop"):
        table = PAREN if style == "paren" else STOP
        return "".join(table.get(c, CIRCLED.get(c, c)) for c in s)
    if table is None:
        return s
    return "".join(table.get(c, c) for c in s)


def mobile():
    return "1" + rng.choice("3456789") + "".join(rng.choice("0123456789") for _ in range(9))


def space_digits(s, how):
    if how == "344":
        return s[:3] + " " + s[3:7] + " " + s[7:]
    if how == "dash":
        return s[:3] + "-" + s[3:7] + "-" + s[7:]
    if how == "each":
        return " ".join(s)
    if how == "noise":
        return rng.choice(["*", ".", "_", "~", "·"]).join(s)
    return s


PHONE_EN = ["call me at {}", "Contact {} for details", "whatsapp {} now", "text {} anytime",
            "hotline: {}", "Phone {} (24h)", "cheap loans, call {}", "{} call now"]
PHONE_ZH = ["有意者请联系{}", "电话：{}", "联系方式 {}", "咨询热线{}，24小时在线", "手机{}",
            "兼职日结，打{}", "{} 随时联系", "详情请致电 {}"]


def phone_case():
    r = rng.random()
    if r < 0.62:
        p = mobile()
        style = rng.choice(["plain", "plain", "full", "circled", "neg", "paren", "stop", "cn",
                            "cn_alt", "fin", "fin_trad"])
        how = rng.choice(["none", "344", "dash", "each", "noise"])
        text = styled_digits(space_digits(p, how), style)
        if rng.random() < 0.1:
            text = "+86 " + text
    elif r < 0.78:
        area, n = rng.choice([("010", 8), ("021", 8), ("020", 8), ("0755", 8), ("0571", 8),
                              ("0898", 7)])
        local = rng.choice("2345678") + "".join(rng.choice("0123456789") for _ in range(n - 1))
        p = area + local
        text = rng.choice([area + "-" + local, "(" + area + ")" + local, area + " " + local,
                           area + "-" + local[:4] + "-" + local[4:]])
    elif r < 0.86:
        p = rng.choice(["400", "800"]) + "".join(rng.choice("0123456789") for _ in range(7))
        text = rng.choice([p[:3] + "-" + p[3:6] + "-" + p[6:], p, p[:3] + " " + p[3:]])
    else:
        cc, parts = rng.choice([("1", [3, 3, 4]), ("44", [2, 4, 4]), ("852", [4, 4]),
                                ("65", [4, 4]), ("81", [2, 4, 4]), ("61", [1, 4, 4])])
        groups = ["".join(rng.choice("23456789") + "".join(rng.choice("0123456789")
                                                           for _ in range(k - 1)))
                  for k in parts]
        p = "+" + cc + "".join(groups)
        text = "+" + cc + " " + rng.choice([" ", "-"]).join(groups)
        if cc == "1" and rng.random() < 0.5:
            text = "+1 (" + groups[0] + ") " + groups[1] + "-" + groups[2]
    tpl = rng.choice(PHONE_EN + PHONE_ZH)
    return p, tpl.format(text)


def domain():
    name = rng.choice(WORDS)
    if rng.random() < 0.4:
        name += rng.choice(["", "-"]) + rng.choice(WORDS)
    if rng.random() < 0.3:
        name += str(rng.randint(1, 999))
    return name + "." + rng.choice(TLDS)


def disguise_host(host):
    form = rng.choice(["plain", "plain", "spaced", "dian", "dot", "dot_paren", "full", "cjk_stop",
                       "bracket", "fw_stop", "upper", "spaced_dots"])
    if form == "spaced":
        return " ".join(host)
    if form == "dian":
        return host.replace(".", rng.choice(["点", "點"]))
    if form == "dot":
        return host.replace(".", " dot ")
    if form == "dot_paren":
        return host.replace(".", "(dot)")
    if form == "full":
        return "".join(FULL.get(c, c) for c in host)
    if form == "cjk_stop":
        return host.replace(".", "。")
    if form == "bracket":
        return host.replace(".", "[.]")
    if form == "fw_stop":
        return host.replace(".", "．")
    if form == "upper":
        return host.upper()
    if form == "spaced_dots":
        return host.replace(".", " . ")
    return host


URL_EN = ["visit {} for free bonus", "best deals at {}", "Click {} now!", "more info: {}",
          "sign up on {} today", "{} - cheap watches", "go to {}"]
URL_ZH = ["请访问{}领取红包", "官网：{}", "更多福利请上{}", "点击{}免费注册", "{} 最新优惠",
          "网址 {} 速来"]


def url_case():
    r = rng.random()
    if r < 0.12:
        ip = ".".join(str(rng.randint(1, 254)) for _ in range(4))
        host = ip
        text = rng.choice(["http://", "https://", "hxxp://"]) + ip + rng.choice(
            ["", ":8080", "/login", ":8000/index.html"])
        if text.startswith("http") and text.endswith(ip):
            text += "/"
    else:
        host = domain()
        www = rng.random() < 0.35
        full = ("www." + host) if www else host
        shown = disguise_host(full)
        scheme = rng.choice(["", "", "", "http://", "https://", "hxxp://", "hxxps://"])
        path = rng.choice(["", "", "", "/promo", "/a/b?id=3", "/index.html"])
        text = scheme + shown + (path if " " not in shown else "")
        host = full
    tpl = rng.choice(URL_EN + URL_ZH)
    return host, tpl.format(text)


EMAIL_EN = ["email me: {}", "send your CV to {}", "contact {} for prices", "write to {}",
            "my mail is {}", "questions? {}"]
EMAIL_ZH = ["简历请发至{}", "邮箱：{}", "联系邮箱 {}", "投稿请发{}，谢谢", "合作请发邮件到 {}"]


def email_case():
    local = rng.choice(NAMES) + rng.choice(["", "", ".", "_"]) + rng.choice(
        ["", rng.choice(NAMES), str(rng.randint(1, 9999))])
    local = local.rstrip("._")
    dom = rng.choice(PROVIDERS) if rng.random() < 0.6 else domain()
    addr = local + "@" + dom
    form = rng.choice(["plain", "plain", "at_dot", "paren", "bracket", "fw_at", "aite",
                       "aite_dian", "full", "at_only", "spaced", "upper"])
    if form == "at_dot":
        text = local + " at " + dom.replace(".", " dot ")
    elif form == "paren":
        text = local + "(at)" + dom.replace(".", "(dot)")
    elif form == "bracket":
        text = local + " [at] " + dom.replace(".", " [dot] ")
    elif form == "fw_at":
        text = local + "＠" + dom
    elif form == "aite":
        text = local + "艾特" + dom
    elif form == "aite_dian":
        text = local + "艾特" + dom.replace(".", "点")
    elif form == "full":
        text = "".join(FULL.get(c, c) for c in addr)
    elif form == "at_only":
        text = local + " at " + dom
    elif form == "spaced":
        text = local + " @ " + dom
    elif form == "upper":
        text = addr.upper()
    else:
        text = addr
    tpl = rng.choice(EMAIL_EN + EMAIL_ZH)
    return addr, tpl.format(text)


QQ_KW = ["QQ", "qq", "ＱＱ", "扣扣", "企鹅", "Q号", "QQ号", "企鹅号", "扣扣号", "Qq"]
WX_KW = ["微信", "VX", "vx", "V信", "薇信", "wx", "weixin", "加V", "微信号", "WeChat", "威信"]
TG_KW = ["TG", "telegram", "Telegram", "电报", "tg"]
SEP = ["", "：", ":", " ", "：", " : ", "号", "是"]


def im_case():
    r = rng.random()
    if r < 0.45:
        num = str(rng.randint(1, 9)) + "".join(rng.choice("0123456789")
                                               for _ in range(rng.randint(4, 10)))
        style = rng.choice(["plain", "plain", "full", "circled", "neg", "cn", "fin", "fin_trad",
                            "cn_alt"])
        how = rng.choice(["none", "none", "each", "noise"])
        shown = styled_digits(space_digits(num, how), style)
        kw = rng.choice(QQ_KW)
        word = "qq:" + num
    elif r < 0.8:
        kw = rng.choice(WX_KW)
        if rng.random() < 0.6:
            idv = rng.choice("abcdefghijklmnopqrstuvwxyz") + "".join(
                rng.choice("abcdefghijklmnopqrstuvwxyz0123456789_") for _ in range(rng.randint(5, 12)))
            if not any(c.isdigit() or c == "_" for c in idv):
                idv += str(rng.randint(1, 99))
            shown = idv if rng.random() < 0.8 else " ".join(idv)
        else:
            idv = mobile()
            shown = styled_digits(idv, rng.choice(["plain", "circled", "full", "cn"]))
        word = "wechat:" + idv
    else:
        kw = rng.choice(TG_KW)
        idv = rng.choice("abcdefghijklmnopqrstuvwxyz") + "".join(
            rng.choice("abcdefghijklmnopqrstuvwxyz0123456789_") for _ in range(rng.randint(5, 12)))
        shown = rng.choice(["@", "@", ""]) + idv
        if not shown.startswith("@") and not any(c.isdigit() or c == "_" for c in idv):
            shown = "@" + idv
        word = "telegram:" + idv
    sep = rng.choice(SEP)
    if sep == "" and kw[-1].isascii() and kw[-1].isalpha() and shown[0].isascii() and shown[0].isalpha():
        sep = ":"
    contact = kw + sep + shown
    tpl = rng.choice(["加我{}", "{} 私聊", "有需要的加{}", "add me {}", "contact {}",
                      "{}，备注来意", "兼职刷单 {}", "领资料：{}", "{} for more"])
    return word, tpl.format(contact)


def clean_numbers():
    y = rng.randint(1950, 2030)
    m, d = rng.randint(1, 12), rng.randint(1, 28)
    hh, mm = rng.randint(0, 23), rng.randint(0, 59)
    fake_mobile = mobile()
    options = [
        f"The meeting is on {y}-{m:02d}-{d:02d} at {hh:02d}:{mm:02d}.",
        f"会议时间：{y}年{m}月{d}日 {hh}:{mm:02d}",
        f"Posted {y}/{m}/{d} {hh:02d}:{mm:02d}:{rng.randint(0, 59):02d}",
        f"It costs ${rng.randint(1, 99999):,}.{rng.randint(0, 99):02d} plus tax.",
        f"售价￥{rng.randint(100, 99999)}.00，限时优惠",
        f"价格{rng.randint(1000, 99999999)}元",
        f"Sales grew {rng.randint(1, 99)}.{rng.randint(0, 9)}% in Q{rng.randint(1, 4)} {y}.",
        f"The final score was {rng.randint(0, 9)}-{rng.randint(0, 9)}, and {rng.randint(80, 130)}:{rng.randint(80, 130)} in the rematch.",
        f"Upgrade to version {rng.randint(1, 20)}.{rng.randint(0, 30)}.{rng.randint(0, 99)} today.",
        f"Python {rng.randint(2, 3)}.{rng.randint(0, 13)}.{rng.randint(0, 9)} and Rust 1.{rng.randint(50, 90)}.0",
        f"订单号：{fake_mobile}，请注意查收",
        f"快递单号 {fake_mobile}{rng.randint(10, 99)}",
        f"Your order #{fake_mobile} has shipped.",
        f"tracking number: {fake_mobile}",
        f"ISBN 978-{rng.randint(0, 9)}-{rng.randint(100, 999)}-{rng.randint(10000, 99999)}-{rng.randint(0, 9)}",
        f"ISBN {rng.randint(0, 9)}-{rng.randint(100, 999)}-{rng.randint(10000, 99999)}-{rng.randint(0, 9)}",
        f"born in {y}, died in {y + rng.randint(20, 90)}",
        f"邮编 {rng.randint(100000, 999999)}",
        f"ZIP code {rng.randint(10000, 99999)}",
        f"身份证号 {rng.randint(110000, 659999)}{y}{m:02d}{d:02d}{rng.randint(1000, 9999)}",
        f"Invoice No. {rng.randint(10000000000, 99999999999)}",
        f"The population was {rng.randint(1000000, 2000000000):,} in {y}.",
        f"Pi is about 3.{rng.randint(10 ** 12, 10 ** 13 - 1)}",
        f"第{rng.randint(1, 300)}页，共{rng.randint(300, 900)}页",
        f"温度{rng.randint(-20, 40)}.{rng.randint(0, 9)}℃，湿度{rng.randint(10, 99)}%",
        f"He ran 100m in {rng.randint(9, 12)}.{rng.randint(10, 99)}s.",
        f"The file is {rng.randint(1, 999)}.{rng.randint(0, 9)} MB, {rng.randint(1000, 9999)}x{rng.randint(1000, 9999)} pixels.",
        f"Room {rng.randint(100, 999)}, Building {rng.randint(1, 30)}, No. {rng.randint(1, 300)} Road",
        f"一二三四五六七八九十，数到{rng.randint(11, 99)}",
        f"卡号尾号{rng.randint(1000, 9999)}的账户",
        f"Call of Duty {rng.randint(2, 4)} sold {rng.randint(1, 30)} million copies in {y}.",
        f"The coordinates are {rng.randint(10, 80)}.{rng.randint(1000, 9999)}, {rng.randint(10, 170)}.{rng.randint(1000, 9999)}.",
        f"{rng.randint(1, 12)}:{rng.randint(10, 59)} a.m. to {rng.randint(1, 12)}:{rng.randint(10, 59)} p.m.",
        f"共{rng.randint(2, 9)}位 QQ 用户在{y}年参与",
        f"serial number SN{rng.randint(10 ** 10, 10 ** 11)}",
    ]
    return rng.choice(options)


def clean_links():
    return [
        "Open report.pdf and summary.docx before the call.",
        "Edit main.rs, then run setup.sh and check README.md.",
        "Download data.zip (3.2 MB) and unzip it.",
        "See figure 3.2 and table 4.1 for details.",
        "The U.S. economy grew, e.g. in retail, i.e. shops.",
        "It was fine.Then we left.",
        "Use photo.jpg as the avatar and style.css for the page.",
        "我把报告.pdf发给你了，还有 final.xlsx",
        "The meeting ends at 5 p.m. sharp.",
        "Mr. Smith and Dr. Wong met at St. Mary's.",
        "版本号 v2.3.1 已经发布",
        "Install the package with pip install requests==2.31.0",
        "rename old.txt to new.txt",
        "the script.py and the app.js files",
        "ok.so what do we do now",
        "No.5 is my favourite",
        "Vol. 3, pp. 45-67, 2019",
        "3.5mm jack, 1.5kg, 2.4GHz",
        "the movie.mov file is 2 GB",
        "see config.yaml and docker-compose.yml",
    ]


def clean_mentions():
    return [
        "Visit our website for more details.",
        "Please send me an email when you are free.",
        "I will email you the link later.",
        "请查看我们的官网了解详情",
        "有问题可以发邮件给我",
        "我的邮箱满了，稍后再发",
        "Check the URL in your browser's address bar.",
        "He told me his phone number but I forgot it.",
        "我没有微信，也不用QQ",
        "微信支付和支付宝都可以",
        "QQ音乐今天更新了",
        "Telegram and WeChat are messaging apps.",
        "The website is down at the moment.",
        "Contact us through the form on the contact page.",
        "Please look at the dot on the map.",
        "Meet me at home at noon.",
        "我在电报大楼门口等你",
        "Call me when you arrive at the station.",
        "扣扣是我家小狗的名字",
        "He works at Google and lives at 5th Avenue.",
        "Add me on WeChat when you get home.",
        "QQ 空间里有很多照片",
        "Send it via email or via the chat.",
        "企鹅是一种不会飞的鸟",
        "the tg of the angle is 0.5",
    ]


def clean_code():
    return [
        "user.name = input()",
        "os.path.join(base, name)",
        "self.info = {}",
        "console.log(obj.link)",
        "import numpy.linalg as la",
        "if (cfg.app) { run(); }",
        "result = data.map(x => x * 2);",
        "from django.contrib import admin",
        "let v = items.top;",
        "print(f'{a.b}')",
        "std::vec::Vec<u8>",
        "x = 1.0e-5 * y",
        "git checkout -b feature/login",
        "SELECT * FROM orders WHERE id = 13800138000;",
        "return this.show();",
        "node.parent.name",
        "$el.click()",
        "arr[0].value",
        "ssh user@host",
        "@Override public void run()",
    ]


# independent checks for contacts in corpus lines (those lines are true hits, not clean)
CONTACT_RE = re.compile(
    r"https?://|www\.|@|\b[a-z0-9-]+\.(com|net|org|cn|io|info|edu|gov)\b|(?<!\d)1[3-9]\d{9}(?!\d)"
    r"|(?<!\d)0\d{2,3}-?\d{7,8}(?!\d)|qq|微信|电话|tel|phone|\.(htm|html|shtml)\b",
    re.IGNORECASE)


def corpus_lines(name, n):
    with open(os.path.join(HERE, "corpus", name), encoding="utf-8") as f:
        lines = [l.rstrip("\n") for l in f]
    pool = [l for l in lines
            if re.search(r"[0-9０-９.．。]", l) and not CONTACT_RE.search(l) and len(l) < 400]
    return rng.sample(pool, n)


def main():
    rows = []
    for kind, make in (("phone", phone_case), ("url", url_case), ("email", email_case),
                       ("im", im_case)):
        for _ in range(PER_KIND):
            word, text = make()
            rows.append((kind, "hit", word, text))
    for _ in range(400):
        rows.append(("clean numbers", "clean", "", clean_numbers()))
    for kind, make in (("clean links", clean_links), ("clean mentions", clean_mentions),
                       ("clean code", clean_code)):
        for text in make():
            rows.append((kind, "clean", "", text))
    for kind, name in (("clean corpus en", "en.txt"), ("clean corpus zh", "zh.txt")):
        for line in corpus_lines(name, 500):
            rows.append((kind, "clean", "", line))
    out = os.path.join(HERE, "eval", "detectors.tsv")
    with open(out, "w", encoding="utf-8", newline="\n") as f:
        f.write("# kind\texpect\tword\ttext (generated by benches/data/make_detector_eval.py; "
                "do not edit)\n")
        for row in rows:
            assert all("\t" not in x and "\n" not in x for x in row), row
            f.write("\t".join(row) + "\n")
    print(f"{len(rows)} cases -> {out}")


if __name__ == "__main__":
    main()
