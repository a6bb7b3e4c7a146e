"""Random tonal-syllable "sentences": speech where the tone cannot be guessed from the syllable.

Why: in real text a syllable mostly comes with one tone (`de5`, `shi4`, `men5`), so a model
trained on sentences alone can score well by remembering each syllable's usual tone and reading
little pitch. Measured on the stage-4 model (bench/am_errors.py): tones right 95 % of the time on
syllables seen 3,000+ times in training, 43 % on those seen < 100 times; on the espeak test voices
the tone-only errors are 12-23 % whatever the pitch, range and context (runs of BENCHMARKS.md,
"Tones"). Here every base syllable comes with each of its real tones equally often, so only the
pitch tells them apart. espeak reads numbered pinyin, so these need no hanzi.

The base syllables follow their frequency in the syllable inventory's counts flattened by a
square root (rare syllables heard more often than in text, common ones still most); the tone is
uniform over the tones that base really has (count > 0). Commas every 3-8 syllables give
espeak's phrase intonation and pauses, as punctuation does in sentences. A pure function of the
seed.
"""
from __future__ import annotations

import random

from ..pinyin.inventory import TONAL, reading_count

MIN_LEN, MAX_LEN = 6, 24          # syllables per utterance
PHRASE = (3, 8)                   # syllables between commas


def _tables() -> tuple[list[str], list[float], dict[str, list[str]]]:
    tones: dict[str, list[str]] = {}
    total: dict[str, int] = {}
    for syl in TONAL:
        if (n := reading_count(syl)) > 0:
            tones.setdefault(syl[:-1], []).append(syl)
            total[syl[:-1]] = total.get(syl[:-1], 0) + n
    bases = sorted(tones)
    return bases, [total[b] ** 0.5 for b in bases], tones


def random_sentences(seed: int, n: int) -> list[dict]:
    """n records {"id", "text": "", "pinyin", "spoken"}; `spoken` has the commas espeak reads."""
    bases, weights, tones = _tables()
    out = []
    for i in range(n):
        rng = random.Random(f"{seed}/syllables/{i}")
        length = rng.randint(MIN_LEN, MAX_LEN)
        syl = [rng.choice(tones[b]) for b in rng.choices(bases, weights, k=length)]
        spoken, until = [], rng.randint(*PHRASE)
        for k, s in enumerate(syl):
            if k == until and k < length - 1:
                spoken.append(",")
                until += rng.randint(*PHRASE)
            spoken.append(s)
        out.append({"id": f"syl{i:06d}", "text": "", "pinyin": " ".join(syl), "spoken": " ".join(spoken)})
    return out
