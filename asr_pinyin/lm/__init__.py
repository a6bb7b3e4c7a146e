"""Pinyin -> hanzi language model, usable by the speech pipeline and alone as an input method.

Public API (import from `asr_pinyin.lm`):

    lm = LanguageModel.load()             # models/lm/lm.pt; or .load("runs/lm/base/best.pt")
    conv = lm.convert("wo3 xiang3 qu4 bei3 jing1", nbest=3, hotwords=[("张三", 5.0)])
    conv.text                              # '我想去北京。'  (punctuation, numbers as digits)
    for hanzi, pinyin, confidence, alternatives in conv.chars: ...
    conv.nbest                             # [(text, log-probability), ...] best first
    lm.convert_batch([inp1, inp2, ...])    # batched, same options
    s = lm.create_stream(hotwords=None)    # streaming: s.push(slots) -> partial, s.finalize() -> final

An input is pinyin text in any form `asr_pinyin.pinyin.parse_pinyin` reads, a list of syllables
(tonal `ni3` or toneless `ni`), or acoustic slots: a list of `[(syllable, score), ...]` per
position (probabilities, or log-probabilities when all <= 0). `toneless=True` drops tones.
Bad input raises `asr_pinyin.pinyin.PinyinError` or `LMInputError` (both ValueError).
"""
from __future__ import annotations

__all__ = ["LanguageModel", "Conversion", "CharResult", "LMStream", "LMInputError"]


def __getattr__(name):  # lazy: importing asr_pinyin.lm must not import torch
    if name in ("LanguageModel", "Conversion", "CharResult"):
        from . import decode

        return getattr(decode, name)
    if name == "LMStream":
        from .stream import LMStream

        return LMStream
    if name == "LMInputError":
        from .slots import LMInputError

        return LMInputError
    raise AttributeError(name)
