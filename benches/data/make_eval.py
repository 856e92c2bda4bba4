#!/usr/bin/env python3
"""Build the filter's labelled evaluation set, benches/data/eval/cases.tsv.

Python 3 standard library only; deterministic (fixed seed). Reads the shipped word lists
(filter-core/words/danger.txt, normal.txt) and the bench corpora (corpus/en.txt, corpus/zh.txt);
the Russian, Greek and accented sentences are drawn from the small vocabularies below.

Usage:
    python3 make_eval.py            # writes eval/cases.tsv beside this script

Each line: kind<TAB>expect<TAB>word<TAB>text, where expect is `hit` (an evasion of the listed
`word`, which must be caught) or `clean` (must pass). The runner is
benches/tests/evaluation.rs: `cargo test -p espresso-benches --test evaluation -- --nocapture`.

English carriers are odd lines of corpus/en.txt (the even lines made
filter-core/words/pinyin-english.txt); clean lines with a listed word written plainly are
left out, since those are true hits.
"""
import os
import random
import re
import unicodedata

SEED = 20261203
HERE = os.path.dirname(os.path.abspath(__file__))
WORDS = os.path.join(HERE, "..", "..", "filter-core", "words")
PER_KIND = 200
CLEAN_LINES = 2000


def read_list(name):
    out = []
    with open(os.path.join(WORDS, name), encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#"):
                out.append(line.split("\t")[0])
    return out


LISTED = read_list("danger.txt") + read_list("normal.txt")
EN_WORDS = [w for w in LISTED if w.isascii() and " " not in w]
ZH_WORDS = [w for w in LISTED if not w.isascii()]

# Hanyu Pinyin with tone numbers (5 = neutral) of the shipped Chinese words: the oracle the
# pinyin cases are written from, independent of the `pinyin` crate the engine uses.
PINYIN = {
    "傻逼": "sha3 bi1", "煞笔": "sha4 bi3", "操你妈": "cao4 ni3 ma1", "草泥马": "cao3 ni2 ma3",
    "你妈的": "ni3 ma1 de5", "狗日的": "gou3 ri4 de5", "婊子": "biao3 zi5", "贱人": "jian4 ren2",
    "去死吧": "qu4 si3 ba5", "强奸": "qiang2 jian1", "冰毒": "bing1 du2",
    "海洛因": "hai3 luo4 yin1", "卖淫": "mai4 yin2", "嫖娼": "piao2 chang1",
    "他妈的": "ta1 ma1 de5", "妈的": "ma1 de5", "尼玛": "ni2 ma3", "卧槽": "wo4 cao2",
    "滚蛋": "gun3 dan4", "笨蛋": "ben4 dan4", "白痴": "bai2 chi1", "蠢货": "chun3 huo4",
    "废物": "fei4 wu4", "屌丝": "diao3 si1",
}

# Traditional spellings of the shipped Chinese words that have one.
TRADITIONAL = {
    "煞笔": "煞筆", "操你妈": "操你媽", "草泥马": "草泥馬", "你妈的": "你媽的", "贱人": "賤人",
    "强奸": "強姦", "卖淫": "賣淫", "他妈的": "他媽的", "妈的": "媽的", "尼玛": "尼瑪",
    "卧槽": "臥槽", "滚蛋": "滾蛋", "白痴": "白癡", "蠢货": "蠢貨", "废物": "廢物", "屌丝": "屌絲",
}

LEET = {"a": "4@", "b": "8", "e": "3", "g": "9", "i": "1!", "l": "1", "o": "0", "s": "5$",
        "t": "7+", "z": "2"}
# Cyrillic, Greek, Armenian and Cherokee look-alikes of Latin letters (test data). Cyrillic
# `п` (an italic `n`) is left out: the Unicode confusables data, which the engine follows, has no
# Latin prototype for it.
HOMOGLYPH = {"a": "аα", "b": "Ьβ", "c": "сϲ", "d": "ԁ", "e": "еε", "g": "ɡ", "h": "һ",
             "i": "іι", "j": "ј", "k": "кκ", "l": "ӏ", "m": "м", "n": "ηղ", "o": "оοօ",
             "p": "рρ", "r": "г", "s": "ѕ", "t": "тτ", "u": "υս", "v": "ν", "w": "ԝ", "x": "хχ",
             "y": "уγ"}
ZERO_WIDTH = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff"]
NOISE = ["*", ".", "_", "-", "·", "~"]
# signs and letters of other alphabets written for Latin letters
SIGNS = {"i": "¡", "c": "¢", "y": "¥", "s": "§", "u": "µμ", "b": "ß", "o": "ø", "e": "€"}
TONE_MARKS = {"a": "āáǎà", "e": "ēéěè", "i": "īíǐì", "o": "ōóǒò", "u": "ūúǔù", "ü": "ǖǘǚǜ"}

RU = ("но он она они мы вы это как так не на в и с по за от до из у о об при для без над под "
      "что кто где когда почему потому если или уже ещё очень хорошо плохо сегодня завтра вчера "
      "дом город улица машина работа время человек люди ребёнок мама папа друг книга вода хлеб "
      "молоко чай кофе стол окно дверь школа учитель студент страна москва россия язык слово "
      "говорить читать писать знать думать видеть сказать сделать идти ехать жить любить хотеть "
      "мочь новый старый большой маленький красивый русский первый последний каждый весь сам "
      "рука нога голова глаз сердце небо солнце море река лес поле снег дождь ветер утро вечер "
      "ночь день неделя месяц год час минута раз два три сто тысяча сын сосна сок рак сом").split()
EL = ("και να το η ο της του την με για που από στο στη είναι δεν θα σε μια ένα αυτό όταν "
      "αλλά πολύ καλά σήμερα αύριο χθες σπίτι πόλη δρόμος αυτοκίνητο δουλειά χρόνος άνθρωπος "
      "παιδί μητέρα πατέρας φίλος βιβλίο νερό ψωμί γάλα καφές τραπέζι παράθυρο πόρτα σχολείο "
      "δάσκαλος χώρα αθήνα ελλάδα γλώσσα λέξη μιλάω διαβάζω γράφω ξέρω σκέφτομαι βλέπω λέω κάνω "
      "πηγαίνω ζω αγαπώ θέλω μπορώ νέος παλιός μεγάλος μικρός ωραίος πρώτος τελευταίος χέρι "
      "πόδι κεφάλι μάτι καρδιά ουρανός ήλιος θάλασσα ποτάμι δάσος χιόνι βροχή αέρας πρωί βράδυ "
      "νύχτα μέρα εβδομάδα μήνας έτος ώρα κόσμος ναι όχι οκτώ τοίχος").split()
ACCENTED = ("café naïve façade déjà vu crème brûlée élève être forêt garçon hôtel français "
            "à côté où très après voilà señor niño mañana año español corazón canción "
            "acción está así también después había über schön grün größe straße müde mädchen "
            "fräulein tschüss öffnen küche bäcker säge wäre würde möchte são não coração "
            "ação informação português lição irmã avó pão mãe você fiancée résumé touché "
            "cliché pâté rosé soufflé protégé saß bürger führer gänse köln zürich münchen "
            "málaga córdoba cádiz jalapeño piñata pequeño niña señora".split())


def en_lines(rng):
    lines = []
    with open(os.path.join(HERE, "corpus", "en.txt"), encoding="utf-8") as f:
        for i, line in enumerate(f):
            line = line.rstrip("\n")
            if i % 2 == 1 and 30 <= len(line) <= 160:
                lines.append(line)
    return lines


def zh_lines():
    out = []
    with open(os.path.join(HERE, "corpus", "zh.txt"), encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            while len(line) >= 20:
                out.append(line[:60])
                line = line[60:]
    return out


def plain_en_hit(text):
    low = text.lower()
    return any(re.search(r"(?<![a-z0-9])" + re.escape(w) + r"(?![a-z0-9])", low) for w in EN_WORDS)


def plain_zh_hit(text):
    return any(w in text or TRADITIONAL.get(w, "\0") in text for w in ZH_WORDS)


def insert_en(rng, carrier, word):
    words = carrier.split(" ")
    at = rng.randrange(len(words) + 1)
    return " ".join(words[:at] + [word] + words[at:])


def insert_zh(rng, carrier, word):
    # never inside a Latin word of the carrier
    for _ in range(50):
        at = rng.randrange(len(carrier) + 1)
        around = carrier[max(0, at - 1):at + 1]
        if not any(c.isascii() and c.isalnum() for c in around):
            return carrier[:at] + word + carrier[at:]
    return word + "，" + carrier


def leet(rng, w):
    spots = [i for i, c in enumerate(w) if c in LEET]
    if not spots:
        return None
    k = rng.randint(1, min(3, len(spots)))
    chosen = set(rng.sample(spots, k))
    return "".join(rng.choice(LEET[c]) if i in chosen else c for i, c in enumerate(w))


def homoglyph(rng, w):
    spots = [i for i, c in enumerate(w) if c in HOMOGLYPH]
    if not spots:
        return None
    k = rng.randint(1, len(spots))
    chosen = set(rng.sample(spots, k))
    return "".join(rng.choice(HOMOGLYPH[c]) if i in chosen else c for i, c in enumerate(w))


def styled(rng, w):
    # mathematical bold, italic, bold script, fraktur, double-struck, sans, monospace
    base = rng.choice([0x1D41A, 0x1D44E, 0x1D4EA, 0x1D586, 0x1D5BA, 0x1D68A])
    # the italic h is the older U+210E (its place in the block is unassigned)
    return "".join("\u210e" if base == 0x1D44E and c == "h" else chr(base + ord(c) - 97)
                   for c in w)


def enclosed(rng, w):
    form = rng.choice(["circled", "paren", "negcircled", "negsquared", "regional"])
    out = []
    for c in w:
        n = ord(c) - 97
        out.append({"circled": chr(0x24D0 + n), "paren": chr(0x249C + n),
                    "negcircled": chr(0x1F150 + n), "negsquared": chr(0x1F170 + n),
                    "regional": chr(0x1F1E6 + n)}[form])
    sep = "\u200b" if form == "regional" else ""
    return sep.join(out)


def diacritics(rng, w):
    marks = ["\u0301", "\u0300", "\u0308", "\u0302", "\u0303", "\u030c"]
    out = "".join(c + rng.choice(marks) if rng.random() < 0.6 else c for c in w)
    return unicodedata.normalize(rng.choice(["NFC", "NFD"]), out)


def joined(rng, w, seps):
    return w[0] + "".join(rng.choice(seps) + c for c in w[1:])


def tone_mark(syl, tone):
    if tone == 5:
        return syl
    for v in ["a", "e", "ou"]:
        if v in syl:
            i = syl.index(v)
            return syl[:i] + TONE_MARKS[syl[i]][tone - 1] + syl[i + 1:]
    i = max(i for i, c in enumerate(syl) if c in "aeiouü")
    return syl[:i] + TONE_MARKS[syl[i]][tone - 1] + syl[i + 1:]


def pinyin_case(rng, zh):
    sylls = [(s[:-1], int(s[-1])) for s in PINYIN[zh].split()]
    form = rng.choice(["joined", "spaced", "marks", "numbers", "upper", "noise", "mixed"])
    if form == "joined":
        return "".join(s for s, _ in sylls)
    if form == "spaced":
        return " ".join(s for s, _ in sylls)
    if form == "marks":
        return rng.choice(["", " "]).join(tone_mark(s, t) for s, t in sylls)
    if form == "numbers":
        return rng.choice(["", " "]).join(s + str(t) for s, t in sylls)
    if form == "upper":
        return rng.choice(["", " "]).join(s.upper() for s, _ in sylls)
    if form == "noise":
        return rng.choice(["*", ".", "-", "_"]).join(s for s, _ in sylls)
    # some characters written as themselves, at least one as pinyin
    chars = list(zh)
    k = rng.randrange(len(chars))
    out = [s if i == k or rng.random() < 0.5 else chars[i] for i, (s, _) in enumerate(sylls)]
    return "".join(out)


def main():
    rng = random.Random(SEED)
    en = [l for l in en_lines(rng) if not plain_en_hit(l)]
    zh = [l for l in zh_lines() if not plain_zh_hit(l)]
    vocab = sorted({w.lower() for l in en for w in re.findall(r"[A-Za-z]+", l)})
    rows = []

    def add(kind, expect, word, text):
        assert "\t" not in text and "\n" not in text
        rows.append((kind, expect, word, text))

    def en_kind(kind, make, r=rng):
        n = 0
        while n < PER_KIND:
            w = r.choice(EN_WORDS)
            e = make(w)
            if e is None or e == w:
                continue
            add(kind, "hit", w, insert_en(r, r.choice(en), e))
            n += 1

    en_kind("leetspeak", lambda w: leet(rng, w))
    en_kind("homoglyphs", lambda w: homoglyph(rng, w))
    en_kind("full-width", lambda w: "".join(chr(ord(c) + 0xFEE0) for c in w.upper()))
    en_kind("case", lambda w: "".join(c.upper() if rng.random() < 0.5 else c for c in w))
    en_kind("styled letters", lambda w: styled(rng, w))
    en_kind("enclosed letters", lambda w: enclosed(rng, w))
    en_kind("diacritics", lambda w: diacritics(rng, w))
    en_kind("zero-width", lambda w: joined(rng, w, ZERO_WIDTH))
    en_kind("noise", lambda w: joined(rng, w, NOISE))
    en_kind("repeats", lambda w: "".join(c * rng.randint(1, 4) for c in w))
    # spaced letters, the next word starting with the word's last letter half the time
    n = 0
    while n < PER_KIND:
        w = rng.choice(EN_WORDS)
        nxt = [v for v in vocab if v[0] == w[-1]] if rng.random() < 0.5 else vocab
        spaced = " ".join(w) + " " + rng.choice(nxt)
        add("spaced letters", "hit", w, insert_en(rng, rng.choice(en), spaced))
        n += 1
    for kind in ["traditional", "traditional + noise"]:
        n = 0
        trad = sorted(TRADITIONAL)
        while n < PER_KIND:
            w = rng.choice(trad)
            t = TRADITIONAL[w]
            if kind.endswith("noise"):
                t = joined(rng, t, NOISE + [" ", "\u200b", "😀"])
            add(kind, "hit", w, insert_zh(rng, rng.choice(zh), t))
            n += 1
    n = 0
    pinyin_words = sorted(PINYIN)
    while n < PER_KIND:
        w = rng.choice(pinyin_words)
        p = pinyin_case(rng, w)
        if rng.random() < 0.5:
            text = insert_zh(rng, rng.choice(zh), p)
        else:
            text = insert_en(rng, rng.choice(en), p)
        add("pinyin", "hit", w, text)
        n += 1

    for l in rng.sample(en, CLEAN_LINES):
        add("clean en", "clean", "", l)
    for l in rng.sample(zh, CLEAN_LINES):
        add("clean zh", "clean", "", l)
    # Scunthorpe: a corpus word that holds a listed word inside it; and numbers, prices,
    # times and versions next to letters
    inside = [v for v in vocab if any(w in v and w != v for w in EN_WORDS if len(w) >= 3)]
    numbers = ["in the 1960s", "at 10am", "for $5.99", "on the 4th", "v1.2.3", "3:45pm",
               "a 4x4 truck", "mp3 files", "the A4 paper", "1st and 2nd", "route 66",
               "about 50%", "B2B sales", "Windows 10", "COVID-19", "at 5pm", "$1,000",
               "the 80s", "h264 video", "IPv6", "24/7", "7-Eleven", "3D printer", "5G phones",
               "Q3 results", "Boeing 747", "#1 fan", "Catch-22", "2nd floor", "F-16 jets"]
    for i in range(PER_KIND * 2):
        if i % 2 == 0 and inside:
            w = rng.choice(inside)
            w = w.capitalize() if rng.random() < 0.3 else w
        else:
            w = rng.choice(numbers)
        add("scunthorpe", "clean", "", insert_en(rng, rng.choice(en), w))
    for kind, vocab_ in [("clean russian", RU), ("clean greek", EL), ("clean accented", ACCENTED)]:
        for _ in range(PER_KIND * 2):
            words = [rng.choice(vocab_) for _ in range(rng.randint(4, 12))]
            s = " ".join(words)
            add(kind, "clean", "", s[0].upper() + s[1:] + rng.choice([".", "!", "?", ""]))

    # Kinds added later draw from a generator of their own, so the rows above stay as they were.
    rng2 = random.Random(SEED + 1)

    def later_kind(kind, make):
        en_kind(kind, make, rng2)

    def full_width(w):
        return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in w)

    def leet_then(w, then):
        e = leet(rng2, w)
        return then(e) if e else None

    later_kind("leetspeak + full-width", lambda w: leet_then(w, full_width))
    later_kind("leetspeak + noise", lambda w: leet_then(w, lambda e: joined(rng2, e, NOISE + [" "])))
    later_kind("sign or flag after", lambda w: w + rng2.choice(["™", "℠", "🇺🇸", "🇬🇧", "🇨🇳"]))

    def signs(w):
        # `¡` for an i inside the word only (it opens Spanish exclamations)
        spots = [k for k, c in enumerate(w) if c in SIGNS and (c != "i" or 0 < k < len(w) - 1)]
        if not spots:
            return None
        chosen = set(rng2.sample(spots, rng2.randint(1, min(2, len(spots)))))
        return "".join(rng2.choice(SIGNS[c]) if k in chosen else c for k, c in enumerate(w))

    later_kind("signs for letters", signs)

    os.makedirs(os.path.join(HERE, "eval"), exist_ok=True)
    with open(os.path.join(HERE, "eval", "cases.tsv"), "w", encoding="utf-8", newline="\n") as f:
        f.write("# kind\texpect\tword\ttext (generated by benches/data/make_eval.py; do not edit)\n")
        for r in rows:
            f.write("\t".join(r) + "\n")


if __name__ == "__main__":
    main()
