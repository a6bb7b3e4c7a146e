"""Caller input -> validated syllable slots.

Accepted per call: a pinyin string (any form `asr_pinyin.pinyin.parse_pinyin` reads), a list of
syllables (`"ni3"`, `"ni"`, `"nǐ"`), or a list of slots, each a list of `(syllable, score)` pairs
from the acoustic stage. Scores may be probabilities or log-probabilities (all <= 0); they are
normalised per slot and the best `MAX_K` are kept.
"""
from __future__ import annotations

import math
from typing import Sequence, Union

from asr_pinyin.pinyin import TONAL_SET, TONELESS_SET, PinyinError, normalize_syllable, parse_pinyin

MAX_K = 5
MAX_SYLLABLES = 10_000
# Acoustic slot probabilities are raised to this power before the language model sees them. CTC
# posteriors at a syllable's peak frame come out flatter than the slots the LM was trained on;
# sharpening them was tuned on the speech dev split (`bench/am_lm_fusion.py`, 512 utterances,
# stage-3 AM): power 1 -> CER 8.00 %, 1.4 -> 7.43, 2 -> 7.27, 2.5 -> 7.37, 3.3 -> 7.56, 10 -> 10.2.
ACOUSTIC_SHARPEN = 2.0

SlotInput = Union[str, Sequence[tuple[str, float]]]
Slot = list[tuple[str, float]]  # canonical syllables with probabilities summing to 1, best first


class LMInputError(ValueError):
    """Input the language model cannot take (empty, too long, malformed slot)."""


def _syllable(s: str) -> str:
    if s in TONAL_SET or s in TONELESS_SET:
        return s
    if not isinstance(s, str):
        raise LMInputError(f"a syllable must be a str, not {type(s).__name__}")
    return normalize_syllable(s)  # raises PinyinError naming the bad text


def to_slots(inp, toneless: bool = False) -> list[Slot]:
    """Normalise one input (see module doc) to slots; `toneless` drops every tone."""
    if isinstance(inp, str):
        words = inp.split()
        if words and all(w in TONAL_SET or w in TONELESS_SET for w in words):
            slots = [[(w, 1.0)] for w in words]  # already canonical: skip the general reader
        else:
            slots = [[(s, 1.0)] for s in parse_pinyin(inp)]
    elif isinstance(inp, Sequence):
        if len(inp) > MAX_SYLLABLES:
            raise LMInputError(f"{len(inp)} syllables: at most {MAX_SYLLABLES} per call (split the input)")
        slots = []
        for n, item in enumerate(inp):
            if isinstance(item, str):
                slots.append([(_syllable(item), 1.0)])
                continue
            try:
                pairs = [(_syllable(s), float(p)) for s, p in item]
            except PinyinError:
                raise
            except (TypeError, ValueError) as e:
                raise LMInputError(f"slot {n}: expected a syllable or (syllable, score) pairs ({e})") from None
            if not pairs:
                raise LMInputError(f"slot {n} is empty")
            if any(not math.isfinite(p) for _, p in pairs):
                raise LMInputError(f"slot {n}: scores must be finite numbers")
            if all(p <= 0 for _, p in pairs):  # log-probabilities
                top = max(p for _, p in pairs)
                pairs = [(s, math.exp(p - top)) for s, p in pairs]
            pairs = sorted(pairs, key=lambda x: -x[1])[:MAX_K]
            total = sum(p for _, p in pairs)
            if total <= 0:
                raise LMInputError(f"slot {n}: scores must not all be zero")
            slots.append([(s, p / total) for s, p in pairs])
    else:
        raise LMInputError(f"expected pinyin text or a list of syllables, not {type(inp).__name__}")
    if not slots:
        raise LMInputError("empty input: no syllables")
    if len(slots) > MAX_SYLLABLES:
        raise LMInputError(f"{len(slots)} syllables: at most {MAX_SYLLABLES} per call (split the input)")
    if toneless:
        slots = [_merge([(s.rstrip("12345"), p) for s, p in slot]) for slot in slots]
    return slots


def acoustic_slot(alternatives: Sequence[tuple[str, float]], sharpen: float = ACOUSTIC_SHARPEN,
                  decoded: str | None = None) -> Slot:
    """One syllable's acoustic alternatives (its peak frame's top-k, probabilities) -> the slot
    the language model gets: the best `MAX_K`, each probability to the power `sharpen`,
    renormalised. The one place where the two stages' scores meet (recognizer and `eval`).
    Without a positive alternative the slot is the `decoded` syllable alone (None: an error)."""
    pairs = sorted(((s, max(float(p), 0.0) ** sharpen) for s, p in alternatives), key=lambda x: -x[1])[:MAX_K]
    total = sum(p for _, p in pairs)
    if total > 0:
        return [(s, p / total) for s, p in pairs]
    if decoded is not None:
        return [(decoded, 1.0)]
    raise LMInputError("an acoustic slot needs at least one alternative with a positive score")


def _merge(pairs: Slot) -> Slot:
    out: dict[str, float] = {}
    for s, p in pairs:
        out[s] = out.get(s, 0.0) + p
    return sorted(out.items(), key=lambda x: -x[1])
