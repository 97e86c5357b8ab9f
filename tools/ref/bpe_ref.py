#!/usr/bin/python3
"""Slow reference byte-level BPE, written after transformers' Qwen2Tokenizer (the Python
"slow" tokenizer): NFC, added tokens split out (longest first), the Split regex run with the
`regex` module (Unicode White_Space for \\s, like HF's Oniguruma), GPT-2 byte mapping, merges
by rank. Used by tests as a second peer where @lenml/tokenizers (JavaScript RegExp, whose \\s
differs from Unicode White_Space: it includes U+FEFF and excludes U+0085) cannot be trusted.

usage: bpe_ref.py TOKENIZER_JSON < strings.json > ids.json
"""
import json
import sys
import unicodedata

import regex


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def main():
    tj = json.load(open(sys.argv[1], encoding="utf-8"))
    model = tj["model"]
    vocab = model["vocab"]
    ranks = {}
    for i, m in enumerate(model["merges"]):
        pair = tuple(m.split(" ", 1)) if isinstance(m, str) else tuple(m)
        ranks.setdefault(pair, i)
    pre = tj["pre_tokenizer"]
    splits = [p for p in pre.get("pretokenizers", [pre]) if p["type"] == "Split"]
    pattern = regex.compile(splits[0]["pattern"]["Regex"])
    added = sorted(tj["added_tokens"], key=lambda t: -len(t["content"]))
    added_re = regex.compile("(" + "|".join(regex.escape(t["content"]) for t in added) + ")")
    added_ids = {t["content"]: t["id"] for t in added}
    nfc = (tj.get("normalizer") or {}).get("type") == "NFC"
    b2u = bytes_to_unicode()
    cache = {}

    def bpe(token):
        if token in cache:
            return cache[token]
        word = list(token)
        while len(word) > 1:
            best = min(((ranks.get((word[i], word[i + 1]), 1 << 60), i) for i in range(len(word) - 1)))
            if best[0] == 1 << 60:
                break
            a, b = word[best[1]], word[best[1] + 1]
            merged, i = [], 0
            while i < len(word):
                if i < len(word) - 1 and word[i] == a and word[i + 1] == b:
                    merged.append(a + b)
                    i += 2
                else:
                    merged.append(word[i])
                    i += 1
            word = merged
        cache[token] = [vocab[w] for w in word]
        return cache[token]

    out = []
    for text in json.load(sys.stdin):
        ids = []
        for part in added_re.split(text):
            if part in added_ids:
                ids.append(added_ids[part])
                continue
            if nfc:
                part = unicodedata.normalize("NFC", part)
            for piece in pattern.findall(part):
                ids.extend(bpe("".join(b2u[b] for b in piece.encode("utf-8"))))
        out.append(ids)
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
