"""Text sets -> tensors: syllable slots (with tone dropout and acoustic-style confusions) and targets.

A sentence becomes parallel arrays over its hanzi: tonal id, toneless id, hanzi id and the
punctuation class that follows. Batches are length-bucketed by a token budget.
"""
from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path

import numpy as np
import torch

from asr_pinyin.pinyin import TONAL, split_initial_final

from .vocab import BASE_ID, N_TONAL, NOTONE, PAD_B, PAD_T, PUNCT, TONAL_ID, is_hanzi

PUNCT_ID = {p: i for i, p in enumerate(PUNCT)}
K = 3  # syllables per slot in training


def read_jsonl(path: str | Path, limit: int | None = None) -> list[dict]:
    out = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}:{n}: not JSON ({e.msg})") from None
            if not isinstance(row, dict) or "text" not in row or "pinyin" not in row:
                raise ValueError(f"{path}:{n}: expected an object with 'text' and 'pinyin'")
            out.append(row)
            if limit and len(out) >= limit:
                break
    return out


def split_sentence(text: str, pinyin: str) -> tuple[list[str], list[str], list[int]] | None:
    """Hanzi, their syllables and the punctuation class after each; None if they do not align."""
    syls = pinyin.split()
    chars, puncts = [], []
    for ch in text:
        if is_hanzi(ch):
            chars.append(ch)
            puncts.append(0)
        elif ch in PUNCT_ID and chars and puncts[-1] == 0:
            puncts[-1] = PUNCT_ID[ch]
    if len(chars) != len(syls) or not chars:
        return None
    return chars, syls, puncts


def corpus_counts(rows: list[dict]) -> tuple[Counter, Counter]:
    chars, pairs = Counter(), Counter()
    for r in rows:
        s = split_sentence(r["text"], r["pinyin"])
        if s:
            chars.update(s[0])
            pairs.update(zip(s[0], s[1]))  # (hanzi, tonal syllable)
    return chars, pairs


def encode_rows(rows: list[dict], char_id: dict[str, int]) -> list[np.ndarray]:
    """Each sentence -> int32 array [4, T]: tonal id, base id, hanzi id, punctuation class."""
    out = []
    for r in rows:
        s = split_sentence(r["text"], r["pinyin"])
        if s is None:
            continue
        chars, syls, puncts = s
        base = [BASE_ID.get(p.rstrip("12345"), -1) for p in syls]
        if min(base) < 0:
            continue
        tonal = [TONAL_ID.get(p, NOTONE) for p in syls]
        out.append(np.array([tonal, base, [char_id.get(c, 0) for c in chars], puncts], dtype=np.int32))
    return out


def _confusable_bases() -> dict[str, list[str]]:
    """Toneless syllables a listener (or an acoustic model) mixes up: zh/z, n/l, an/ang ..."""
    ini_pairs = [("zh", "z"), ("ch", "c"), ("sh", "s"), ("n", "l"), ("f", "h"), ("r", "l")]
    fin_pairs = [("an", "ang"), ("en", "eng"), ("in", "ing"), ("ian", "iang"), ("uan", "uang")]
    swap = {}
    for a, b in ini_pairs:
        swap.setdefault(("i", a), []).append(b)
        swap.setdefault(("i", b), []).append(a)
    for a, b in fin_pairs:
        swap.setdefault(("f", a), []).append(b)
        swap.setdefault(("f", b), []).append(a)
    out = {}
    for base in BASE_ID:
        ini, fin = split_initial_final(base)
        cands = [i2 + fin for i2 in swap.get(("i", ini), [])] + [ini + f2 for f2 in swap.get(("f", fin), [])]
        out[base] = [c for c in cands if c in BASE_ID]
    return out


def confusion_table() -> list[list[int]]:
    """For each tonal id, tonal ids of likely confusions (other tones, confusable bases)."""
    conf_base = _confusable_bases()
    table = []
    for syl in TONAL:
        base, tone = syl[:-1], syl[-1]
        cands = [f"{base}{t}" for t in "12345" if t != tone]
        cands += [f"{b}{tone}" for b in conf_base[base]] + [f"{b}{t}" for b in conf_base[base] for t in "12345" if t != tone][:4]
        table.append([TONAL_ID[c] for c in cands if c in TONAL_ID] or [TONAL_ID[syl]])
    return table


TONAL_BASE = np.array([BASE_ID[s[:-1]] for s in TONAL] + [PAD_B, PAD_B], dtype=np.int64)


def make_slots(sent: np.ndarray, rng: random.Random, conf: list[list[int]], toneless: bool,
               corrupt: float, soft: float, eval_mode: bool = False):
    """One sentence -> (tonal [T,K], base [T,K], prob [T,K]) views of its syllables.

    A corrupted slot lists the true syllable second or third behind confusions (the top-1 is wrong);
    a soft slot lists it first with low-scored confusions. Toneless sentences carry bases only.
    """
    T = sent.shape[1]
    tonal = np.full((T, K), PAD_T, dtype=np.int64)
    base = np.full((T, K), PAD_B, dtype=np.int64)
    prob = np.zeros((T, K), dtype=np.float32)
    if toneless:
        tonal[:, 0] = NOTONE
        base[:, 0] = sent[1]
        prob[:, 0] = 1.0
        return tonal, base, prob
    tonal[:, 0] = sent[0]
    base[:, 0] = sent[1]
    prob[:, 0] = 1.0
    for t in range(T):
        true = int(sent[0, t])
        if true >= N_TONAL:
            continue
        u = rng.random()
        if u < corrupt:
            wrong = rng.sample(conf[true], min(2, len(conf[true])))
            ps = sorted([rng.uniform(0.2, 1.0) for _ in range(len(wrong) + 1)], reverse=True)
            pos = 1 if (len(wrong) == 1 or rng.random() < 0.7) else 2
            ids = wrong[:pos] + [true] + wrong[pos:]
        elif not eval_mode and u < corrupt + soft:
            wrong = rng.sample(conf[true], min(2, len(conf[true])))
            ps = [rng.uniform(0.5, 1.0)] + sorted([rng.uniform(0.0, 0.4) for _ in wrong], reverse=True)
            ids = [true] + wrong
        else:
            continue
        total = sum(ps)
        for k, (i, p) in enumerate(zip(ids, ps)):
            tonal[t, k] = i
            base[t, k] = TONAL_BASE[i]
            prob[t, k] = p / total
    return tonal, base, prob


def collate(items: list[tuple]) -> dict[str, torch.Tensor]:
    """[(tonal, base, prob, chars, punct)] -> padded batch tensors (chars/punct -100 at padding)."""
    B, T = len(items), max(len(it[0]) for it in items)
    out = {"tonal": torch.full((B, T, K), PAD_T), "base": torch.full((B, T, K), PAD_B),
           "prob": torch.zeros(B, T, K), "chars": torch.full((B, T), -100),
           "punct": torch.full((B, T), -100)}
    for b, (tonal, base, prob, chars, punct) in enumerate(items):
        n = len(tonal)
        out["tonal"][b, :n] = torch.from_numpy(tonal)
        out["base"][b, :n] = torch.from_numpy(base)
        out["prob"][b, :n] = torch.from_numpy(prob)
        out["chars"][b, :n] = torch.from_numpy(np.asarray(chars, dtype=np.int64))
        out["punct"][b, :n] = torch.from_numpy(np.asarray(punct, dtype=np.int64))
    return out


def bucket_batches(lengths: list[int], batch_tokens: int, rng: random.Random) -> list[list[int]]:
    """Index batches of similar length whose padded size stays within `batch_tokens`."""
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], rng.random()))
    batches, cur, longest = [], [], 0
    for i in order:
        longest2 = max(longest, lengths[i])
        if cur and longest2 * (len(cur) + 1) > batch_tokens:
            batches.append(cur)
            cur, longest2 = [], lengths[i]
        cur.append(i)
        longest = longest2
    if cur:
        batches.append(cur)
    rng.shuffle(batches)
    return batches


def chunk(sents: list[np.ndarray], max_len: int) -> list[np.ndarray]:
    """Split sentences longer than the model's positions into pieces."""
    out = []
    for s in sents:
        for i in range(0, s.shape[1], max_len):
            out.append(s[:, i:i + max_len])
    return out
