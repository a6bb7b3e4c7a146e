"""Sentence splitting, and cutting a sentence down to the clauses that can be spoken.

`split_sentences` breaks at 。！？；… (ASCII !?; too) and at newlines; the terminal mark (and any
closing quote or bracket right after it) stays with its sentence. It works on raw or normalized
text. `speakable_clauses` is the corpus builder's rule for sentences that still hold Latin
letters or symbols after normalization: cut at clause punctuation (，、：；), drop the clauses
that are not pure hanzi, keep each run of clean clauses as a sentence of its own.
"""
from __future__ import annotations

import re

from .normalize import PUNCT, TERMINALS

_SPLIT = re.compile(r"[^。！？；…!?;\n]*(?:[。！？；…!?;]+[”’」』）)》\"']*|\n|$)")
_CLAUSE = re.compile(r"[^，、：；。？！]+[，、：；。？！]*|[，、：；。？！]+")


def is_hanzi(ch: str) -> bool:
    """CJK ideograph (basic block, extension A, compatibility) or 〇, as pypinyin reads them."""
    o = ord(ch)
    return (0x4E00 <= o <= 0x9FFF or 0x3400 <= o <= 0x4DBF or 0xF900 <= o <= 0xFAFF
            or 0x20000 <= o <= 0x2FFFF or o == 0x3007)


def split_sentences(text: str) -> list[str]:
    """Split text into sentences, each keeping its terminal punctuation; blanks dropped."""
    if not isinstance(text, str):
        raise TypeError(f"split_sentences expects str, got {type(text).__name__}")
    return [s.strip() for s in _SPLIT.findall(text) if s.strip()]


def count_hanzi(text: str) -> int:
    return sum(1 for c in text if is_hanzi(c))


def is_clean(text: str) -> bool:
    """Only hanzi and the text sets' punctuation."""
    return all(is_hanzi(c) or c in PUNCT for c in text)


def speakable_clauses(sentence: str) -> list[str]:
    """Runs of clean clauses of a (normalized) sentence; a cut-off run ends with 。."""
    if is_clean(sentence):
        return [sentence] if sentence else []
    runs, cur = [], ""
    for clause in _CLAUSE.findall(sentence):
        if is_clean(clause):
            cur += clause
        elif cur:
            runs.append(cur)
            cur = ""
    if cur:
        runs.append(cur)
    out = []
    for r in runs:
        r = r.lstrip(PUNCT)
        if not r:
            continue
        if r[-1] not in TERMINALS:
            r = r.rstrip(PUNCT) + "。"
        out.append(r)
    return out
