"""Hanzi vocabulary and the syllable -> hanzi reading table that masks the output.

The model only chooses among hanzi that can be read as the syllable(s) given in a slot, so it
learns homophone choice, not the pinyin spelling table. The vocabulary is fixed before training:
all GB2312 hanzi (so every inventory syllable has candidates) plus hanzi seen often in training.
"""
from __future__ import annotations

from collections import Counter

from asr_pinyin.pinyin import TONAL, TONELESS

PUNCT = ("", "，", "。", "？", "！", "、", "：", "；")  # class 0: no punctuation after this hanzi
UNK = "<unk>"
N_TONAL, N_BASE = len(TONAL), len(TONELESS)
NOTONE = N_TONAL  # tonal id of a slot whose tone is unknown (IME input)
PAD_T = N_TONAL + 1
PAD_B = N_BASE
TONAL_ID = {s: i for i, s in enumerate(TONAL)}
BASE_ID = {s: i for i, s in enumerate(TONELESS)}


def is_hanzi(ch: str) -> bool:
    return ("\u4e00" <= ch <= "\u9fff" or "\u3400" <= ch <= "\u4dbf" or "\uf900" <= ch <= "\ufaff"
            or "\U00020000" <= ch <= "\U0003134f")


def gb2312_hanzi() -> list[str]:
    out = []
    for hi in range(0xB0, 0xF8):
        for lo in range(0xA1, 0xFF):
            try:
                ch = bytes([hi, lo]).decode("gb2312")
            except UnicodeDecodeError:
                continue
            if is_hanzi(ch):
                out.append(ch)
    return out


def build_vocab(char_counts: Counter, min_count: int) -> list[str]:
    chars = gb2312_hanzi()
    known = set(chars)
    chars += sorted(c for c, n in char_counts.items() if n >= min_count and c not in known and is_hanzi(c))
    return [UNK] + chars


PRIOR_ROWS = N_TONAL + N_BASE + 1  # tonal syllables, then toneless bases, then padding
PAD_ROW = N_TONAL + N_BASE


def build_prior(chars: list[str], pairs: Counter) -> dict:
    """log P(hanzi | syllable) as sparse triples: corpus counts of (hanzi, tonal syllable) pairs
    plus every reading pypinyin knows (0.5) and a small share for the other tones (0.02, so an
    input tone error can still be corrected). Rows: tonal ids, then N_TONAL + toneless id.

    The network adds its logits to this prior, so an untrained model already picks the most
    frequent hanzi of each syllable and training only learns the correction from context.
    """
    import math

    from pypinyin import Style, pinyin

    cid = {c: i for i, c in enumerate(chars)}
    mass: dict[tuple[int, int], float] = {}

    def add(row: int, col: int, w: float):
        mass[(row, col)] = mass.get((row, col), 0.0) + w

    readings: dict[int, set[str]] = {}
    for c, i in cid.items():
        if c != UNK:
            rs = pinyin(c, style=Style.TONE3, heteronym=True, neutral_tone_with_five=True, errors="ignore")
            readings[i] = {r.replace("ü", "v") for r in (rs[0] if rs else [])}
    for (c, syl), n in pairs.items():
        if c in cid:
            readings.setdefault(cid[c], set()).add(syl)
    for (c, syl), n in pairs.items():
        i = cid.get(c)
        if i is not None and syl in TONAL_ID:
            add(TONAL_ID[syl], i, n)
            add(N_TONAL + BASE_ID[syl[:-1]], i, n)
    for i, rs in readings.items():
        for syl in rs:
            base = syl.rstrip("12345")
            if base not in BASE_ID:
                continue
            add(N_TONAL + BASE_ID[base], i, 0.5)
            for t in "12345":
                other = f"{base}{t}"
                if other in TONAL_ID:
                    add(TONAL_ID[other], i, 0.5 if other == syl else 0.02)
    totals: dict[int, float] = {}
    for (r, _), w in mass.items():
        totals[r] = totals.get(r, 0.0) + w
    for r in range(PAD_ROW):  # a syllable no hanzi reads: only <unk>
        if r not in totals:
            mass[(r, 0)] = 1.0
            totals[r] = 1.0
    keys = sorted(mass)
    return {"rows": [k[0] for k in keys], "cols": [k[1] for k in keys],
            "logp": [math.log(mass[k] / totals[k[0]]) for k in keys]}
