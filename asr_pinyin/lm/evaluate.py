"""Accuracy and speed of a `LanguageModel` on a text set (what `asr-pinyin eval-lm` prints).

Modes: clean tonal pinyin, toneless (`toneless=True`), and acoustic-style corruption
(`corrupt=P`: a fraction P of slots list two confusions first and the true syllable second or
third, with lower scores; seeded, so runs compare).
"""
from __future__ import annotations

import random
import time

import numpy as np

from asr_pinyin.pinyin import TONAL, TONELESS

from .data import confusion_table, make_slots, split_sentence
from .decode import LanguageModel
from .vocab import BASE_ID, N_TONAL, NOTONE, PAD_T, PUNCT, TONAL_ID


def reference(rows: list[dict]) -> list[tuple[list[str], list[str], list[str]]]:
    """(hanzi, syllables, punctuation after each) for rows whose text and pinyin align."""
    out = []
    for r in rows:
        s = split_sentence(r["text"], r["pinyin"])
        if s and all(p.rstrip("12345") in BASE_ID for p in s[1]):
            out.append((s[0], s[1], [PUNCT[i] for i in s[2]]))
    return out


def input_slots(syls: list[str], rng: random.Random, conf, toneless: bool, corrupt: float):
    tonal = [TONAL_ID.get(s, NOTONE) for s in syls]
    base = [BASE_ID[s.rstrip("12345")] for s in syls]
    arr = np.array([tonal, base, base, base], dtype=np.int64)
    t_ids, b_ids, probs = make_slots(arr, rng, conf, toneless, corrupt, 0.0, eval_mode=True)
    slots = []
    for t in range(len(syls)):
        slot = []
        for k in range(t_ids.shape[1]):
            if t_ids[t, k] == PAD_T:
                continue
            name = TONAL[t_ids[t, k]] if t_ids[t, k] < N_TONAL else TONELESS[b_ids[t, k]]
            slot.append((name, float(probs[t, k])))
        slots.append(slot)
    return slots


def evaluate(lm: LanguageModel | None, rows: list[dict], toneless: bool = False, corrupt: float = 0.0,
             hotwords=None, seed: int = 0, domain: str | None = None, pool=None) -> dict:
    """`pool`: a `pool.ConversionPool` to convert with instead of `lm` (several processes).
    All sentences go in one call: the converter sorts them by length and chunks them itself."""
    from .hotwords import compile_hotwords

    refs = reference(rows)
    if not refs:
        raise ValueError("no usable sentences (need aligned 'text' and 'pinyin')")
    rng, conf = random.Random(seed), confusion_table()
    inputs = [input_slots(syls, rng, conf, toneless, corrupt) for _, syls, _ in refs]
    hws = compile_hotwords(hotwords)
    t0 = time.perf_counter()
    convs = (pool or lm).convert_slots(inputs, hws, 1, False, True, domain=domain)
    seconds = time.perf_counter() - t0
    right = total = sent_right = p_right = 0
    for (chars, _, puncts), conv in zip(refs, convs):
        hyp = [c.hanzi for c in conv.chars]
        ok = sum(h == r for h, r in zip(hyp, chars))
        right += ok
        total += len(chars)
        sent_right += ok == len(chars)
        p_right += sum(c.punct == p for c, p in zip(conv.chars, puncts))
    return {"char_accuracy": round(right / total, 5), "sentence_accuracy": round(sent_right / len(refs), 5),
            "punct_accuracy": round(p_right / total, 5), "sentences": len(refs), "hanzi": total,
            "sentences_per_second": round(len(refs) / seconds, 1),
            "mode": "toneless" if toneless else "tonal", "corrupt": corrupt,
            "workers": pool.workers if pool is not None else 1}
