"""Training checkpoint -> shipped model: weights in fp16, no optimizer state."""
from __future__ import annotations

import os
from pathlib import Path

import torch

from .ngram import pack


FUSION = ("ngram", "ngram_weight", "uni_weight", "lexicon", "lex_weight")  # decode-time parts beside the network


def export(checkpoint: str | Path, out: str | Path, ngram_from: str | None = None,
           ngram_weight: float = 1.0, uni_weight: float = 1.0, lex_weight: float = 0.0,
           fusion_from: str | Path | None = None) -> int:
    """fp16 weights + prior, and the decode-time fusion: a trigram counted from the JSONL text set
    `ngram_from` (+ the jieba word bonus when `lex_weight`), or the n-gram, lexicon and weights of
    an existing model file `fusion_from` (a retrained network for a shipped file, in seconds)."""
    if ngram_from and fusion_from:
        raise ValueError("give ngram_from or fusion_from, not both")
    ck = torch.load(checkpoint, map_location="cpu", weights_only=False)
    keep = {k: ck[k] for k in ("model_cfg", "chars", "prior")}
    keep["state"] = {k: v.half() if v.is_floating_point() else v for k, v in ck["state"].items()}
    keep["trained"] = ck.get("trained") or {"step": ck.get("step"), "best_dev": ck.get("best"),
                                            "minutes": ck.get("minutes"), "train_cfg": ck.get("train_cfg")}
    if fusion_from:
        donor = torch.load(fusion_from, map_location="cpu", weights_only=False)
        if donor["chars"] != ck["chars"]:
            raise ValueError(f"{fusion_from} has another vocabulary: its n-gram and lexicon do not fit")
        keep.update({k: donor[k] for k in FUSION if k in donor})
    if ngram_from:
        keep["ngram"] = pack(build_bigram(ngram_from, ck["chars"]))
        keep["ngram_weight"] = ngram_weight
        keep["uni_weight"] = uni_weight
    if lex_weight:
        from .ngram import Lexicon

        keep["lexicon"] = pack(Lexicon.from_jieba(ck["chars"]))
        keep["lex_weight"] = lex_weight
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    torch.save(keep, out)
    return os.path.getsize(out)


def build_bigram(path: str, chars: list[str], order: int = 3):
    from .data import read_jsonl

    return build_ngram_rows(read_jsonl(path), chars, order)


def build_ngram_rows(rows: list[dict], chars: list[str], order: int = 3):
    """A hanzi trigram (or bigram) counted from {"text", "pinyin"} rows."""
    import numpy as np

    from .data import split_sentence
    from .ngram import Bigram, Trigram

    cid = {c: i for i, c in enumerate(chars)}
    sents = []
    for r in rows:
        s = split_sentence(r["text"], r["pinyin"])
        if s:
            sents.append(np.array([cid.get(c, 0) for c in s[0]], dtype=np.int64))
    return (Trigram if order == 3 else Bigram).build(sents, len(chars))
