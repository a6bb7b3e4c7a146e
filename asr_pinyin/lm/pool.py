"""Bulk conversion on several CPU cores: worker processes, each with its own `LanguageModel`.

One process cannot keep two cores busy with this model: the encoder is parallel torch, but the
beam search and the result objects are numpy and Python under one GIL, and a search thread next
to the encoder measured no gain (BENCHMARKS.md). For bulk jobs (`eval-lm`, `convert --file`)
N spawned processes with one torch thread each split the batch. Each worker loads the model once
(~2 s, in parallel); inputs go out as slots and come back as `Conversion`s, pickled.

    with ConversionPool(workers=2) as pool:
        convs = pool.convert_batch(lines, toneless=True)
"""
from __future__ import annotations

import math
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from .decode import Conversion, batch_slots
from .slots import Slot

_LM = None  # the worker's LanguageModel


def _start(settings: dict) -> None:
    import torch

    from .decode import LanguageModel

    global _LM
    torch.set_num_threads(settings["threads"])
    lm = LanguageModel.load(settings["model"])
    if settings.get("ngram_weight") is not None:
        lm.ngram_weight = settings["ngram_weight"]
        if settings["ngram_weight"] == 0:
            lm.ngram = None
    if settings.get("lex_weight") is not None:
        lm.lex_weight = settings["lex_weight"]
    for name, (path, mix) in settings.get("adapters", {}).items():
        lm.add_adapter(name, path, mix)
    lm.convert("ni3 hao3")  # builds the candidate tables before the first real batch
    _LM = lm


def _convert(batch, hws, nbest, itn_numbers, punctuation, domain) -> list[Conversion]:
    return _LM.convert_slots(batch, hws, nbest, itn_numbers, punctuation, domain=domain)


def _ready() -> int:
    import os
    import time

    time.sleep(0.05)  # long enough for the other submissions to reach the other workers
    return os.getpid()


class ConversionPool:
    """`workers` processes, each loading `model` (default models/lm/lm.pt) with `threads` torch
    threads; `ngram_weight` / `lex_weight` override the model's (as `eval-lm` does); `adapters`
    maps a domain name to (adapter file, n-gram mix or None)."""

    def __init__(self, model=None, workers: int = 2, threads: int = 1, ngram_weight: float | None = None,
                 lex_weight: float | None = None, adapters: dict | None = None):
        if not isinstance(workers, int) or workers < 1:
            raise ValueError(f"workers must be a positive integer, not {workers!r}")
        self.workers = workers
        settings = {"model": str(model) if model else None, "threads": threads, "ngram_weight": ngram_weight,
                    "lex_weight": lex_weight, "adapters": {k: (str(p), m) for k, (p, m) in (adapters or {}).items()}}
        self._pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                         initializer=_start, initargs=(settings,))
        # every worker loads now, so a bad model path fails here and timing starts warm
        try:
            seen: set[int] = set()
            for _ in range(20):
                seen.update(f.result() for f in [self._pool.submit(_ready) for _ in range(workers)])
                if len(seen) == workers:
                    break
        except BrokenProcessPool as e:
            self._pool.shutdown(cancel_futures=True)
            raise RuntimeError(f"language model workers failed to start (model {model or 'default'}): {e}") from None

    def convert_batch(self, inputs: list, hotwords=None, nbest: int = 1, toneless: bool = False,
                      itn_numbers: bool = True, punctuation: bool = True, domain: str | None = None) -> list[Conversion]:
        """`LanguageModel.convert_batch` over the workers; same inputs, errors and results."""
        return self.convert_slots(*batch_slots(inputs, hotwords, nbest, toneless), nbest, itn_numbers, punctuation,
                                  domain)

    def convert_slots(self, batch: list[list[Slot]], hws=(), nbest: int = 1, itn_numbers: bool = True,
                      punctuation: bool = True, domain: str | None = None) -> list[Conversion]:
        """`LanguageModel.convert_slots` over the workers, results in input order (a worker's
        error, such as an unknown `domain`, is raised here)."""
        order = sorted(range(len(batch)), key=lambda i: len(batch[i]))
        # length-sorted shards, several per worker so that a long shard does not leave the others idle
        size = max(8, min(256, math.ceil(len(batch) / (4 * self.workers))))
        shards = [order[k:k + size] for k in range(0, len(order), size)]
        try:
            futures = [self._pool.submit(_convert, [batch[i] for i in s], hws, nbest, itn_numbers, punctuation, domain)
                       for s in shards]
            out: list[Conversion] = [None] * len(batch)  # type: ignore[list-item]
            for s, f in zip(shards, futures):
                for i, conv in zip(s, f.result()):
                    out[i] = conv
        except BrokenProcessPool as e:
            raise RuntimeError(f"a language model worker died: {e}") from None
        return out

    def close(self) -> None:
        self._pool.shutdown(cancel_futures=True)

    def __enter__(self) -> "ConversionPool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
