"""Hotwords / user dictionary: phrases boosted at decode time, matched through their pinyin.

A hotword is hanzi with an optional weight (added to the hanzi's logits, default 8.0) and an
optional explicit pinyin. It applies wherever its toneless syllables match consecutive slots
(any of a slot's top-k syllables counts), so it works for tonal, toneless and uncertain input
and needs no retraining. Hanzi outside the model's vocabulary are written out when the rest of
the phrase wins (or the whole phrase is out of vocabulary).
"""
from __future__ import annotations

from dataclasses import dataclass

from asr_pinyin.pinyin import PinyinError, parse_pinyin

from .slots import LMInputError
from .vocab import is_hanzi

DEFAULT_WEIGHT = 8.0
MAX_HOTWORDS = 5000


@dataclass(frozen=True)
class Hotword:
    text: str
    bases: tuple[str, ...]  # toneless syllables, one per hanzi
    weight: float = DEFAULT_WEIGHT


def compile_hotwords(items) -> list[Hotword]:
    """`["张三", ("新冠", 6.0), {"text": "乐乐", "weight": 3, "pinyin": "le4 le4"}]` -> Hotwords."""
    if items is None:
        return []
    if isinstance(items, str):
        items = [items]
    if len(items) > MAX_HOTWORDS:
        raise LMInputError(f"{len(items)} hotwords: at most {MAX_HOTWORDS} per call")
    out = []
    for item in items:
        if isinstance(item, Hotword):
            out.append(item)
            continue
        pinyin = None
        if isinstance(item, str):
            text, weight = item, DEFAULT_WEIGHT
        elif isinstance(item, dict):
            text, weight, pinyin = item.get("text"), item.get("weight", DEFAULT_WEIGHT), item.get("pinyin")
        elif isinstance(item, (tuple, list)) and 1 <= len(item) <= 3:
            text, weight = item[0], item[1] if len(item) > 1 else DEFAULT_WEIGHT
            pinyin = item[2] if len(item) > 2 else None
        else:
            raise LMInputError(f"hotword {item!r}: expected text, (text, weight) or a dict")
        if not isinstance(text, str) or not text or not all(is_hanzi(c) for c in text):
            raise LMInputError(f"hotword {text!r}: must be hanzi only")
        try:
            weight = float(weight)
        except (TypeError, ValueError):
            raise LMInputError(f"hotword {text!r}: weight {weight!r} is not a number") from None
        if pinyin is None:
            from pypinyin import Style, lazy_pinyin

            bases = tuple(s.replace("ü", "v") for s in lazy_pinyin(text, style=Style.NORMAL))
        else:
            try:
                bases = tuple(parse_pinyin(pinyin, toneless=True))
            except PinyinError as e:
                raise LMInputError(f"hotword {text!r}: {e}") from None
        if len(bases) != len(text):
            raise LMInputError(f"hotword {text!r}: {len(bases)} syllables for {len(text)} hanzi")
        out.append(Hotword(text, bases, weight))
    return out


def match_hotwords(hotwords: list[Hotword], slot_bases: list[set[str]]) -> list[tuple[int, Hotword]]:
    """(start slot, hotword) for every place a hotword's syllables match consecutive slots."""
    if not hotwords:
        return []
    by_first: dict[str, list[Hotword]] = {}
    for h in hotwords:
        by_first.setdefault(h.bases[0], []).append(h)
    out = []
    for t, bases in enumerate(slot_bases):
        for b in bases:
            for h in by_first.get(b, ()):
                n = len(h.bases)
                if t + n <= len(slot_bases) and all(h.bases[j] in slot_bases[t + j] for j in range(1, n)):
                    out.append((t, h))
    return out
