"""The syllable inventory: the units of both models.

Tonal syllables are written `ni3`, `lv4`, `ma5` (ü as `v`, neutral tone 5). The inventory is
every reading of the 6,763 GB2312 hanzi plus the neutral-tone syllables pypinyin's phrase
dictionary uses (1,363 tonal, 413 toneless); `scripts/make_inventory.py` regenerates it. A
syllable is *valid* when its toneless base is in the inventory and its tone is 1-5; it is *in the
inventory* when the exact tonal form is listed (what the acoustic model can output).
"""
from __future__ import annotations

import math
from functools import lru_cache
from importlib import resources

INITIALS = ("zh", "ch", "sh", "b", "p", "m", "f", "d", "t", "n", "l", "g", "k", "h",
            "j", "q", "x", "r", "z", "c", "s", "y", "w")


def _load() -> tuple[tuple[str, ...], dict[str, int]]:
    text = resources.files("asr_pinyin.pinyin").joinpath("data/syllables.tsv").read_text("utf-8")
    counts: dict[str, int] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            syl, n = line.split("\t")
            counts[syl] = int(n)
    return tuple(counts), counts


TONAL, _COUNTS = _load()
TONAL_SET = frozenset(TONAL)
TONELESS: tuple[str, ...] = tuple(sorted({s[:-1] for s in TONAL}))
TONELESS_SET = frozenset(TONELESS)


def split_tone(syllable: str) -> tuple[str, int | None]:
    """`'ni3'` -> `('ni', 3)`; `'ni'` -> `('ni', None)`."""
    if syllable and syllable[-1].isdigit():
        return syllable[:-1], int(syllable[-1])
    return syllable, None


def strip_tone(syllable: str) -> str:
    return split_tone(syllable)[0]


def is_valid(syllable: str) -> bool:
    """True for a canonical syllable, toned (`ni3`) or toneless (`ni`)."""
    base, tone = split_tone(syllable)
    return base in TONELESS_SET and (tone is None or 1 <= tone <= 5)


def in_inventory(syllable: str) -> bool:
    """True when the exact tonal syllable is one the acoustic model has a unit for."""
    return syllable in TONAL_SET


def split_initial_final(base: str) -> tuple[str, str]:
    """`'zhang'` -> `('zh', 'ang')`; zero-initial syllables give `('', 'an')`."""
    base = strip_tone(base)
    for ini in INITIALS:
        if base.startswith(ini) and len(base) > len(ini):
            return ini, base[len(ini):]
    return "", base


def reading_count(syllable: str) -> int:
    """How often the tonal syllable occurs in the inventory's counts (jieba word counts); 0 for a
    listed reading no counted word uses, or an unknown syllable."""
    return _COUNTS.get(syllable, 0)


@lru_cache(maxsize=None)
def toneless_log_prob(base: str) -> float:
    """Unigram log-probability of a toneless syllable (jieba word counts, add-one smoothed)."""
    total = _toneless_total()
    n = sum(_COUNTS.get(f"{base}{t}", 0) for t in range(1, 6))
    return math.log((n + 1) / (total + len(TONELESS)))


@lru_cache(maxsize=1)
def _toneless_total() -> int:
    return sum(_COUNTS.values())
