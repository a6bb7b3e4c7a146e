"""The two model stages as the recognizer sees them: small batch-in, batch-out interfaces.

The recognizer never touches a model directly. An acoustic stage advances many streams by one
chunk of audio in one call; a language stage converts many syllable sequences in one call. The
real stages (adapters over asr_pinyin.acoustic and asr_pinyin.lm) live in `adapters.py`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from .results import Syllable


@dataclass
class AmJob:
    state: Any                 # from AcousticStage.new_state(); the stage updates it in place
    samples: np.ndarray        # float32 16 kHz: one chunk, or fewer samples when `last`
    last: bool                 # the segment ends after these samples: flush everything
    voice: str | None = None   # acoustic adapter name (None: the base model)


@dataclass
class LmJob:
    syllables: list[Syllable]
    final: bool                        # final: punctuation, ITN and n-best; partial: fast
    hotwords: tuple = ()                # from LanguageStage.compile_hotwords (hashable)
    nbest: int = 1
    domain: str | None = None          # language adapter name (None: the base model)
    cache: dict = field(default_factory=dict)  # per segment, for the stage's incremental work


@dataclass
class LmOut:
    text: str                          # with punctuation and digits when final
    chars: list[tuple]  # (hanzi, its syllable, confidence, [(hanzi, prob), ...] alternatives) per slot, in order
    confidence: float
    nbest: list[tuple[str, float]] = field(default_factory=list)


class AcousticStage(Protocol):
    chunk_samples: int                 # 16 kHz samples per streaming step
    first_chunk_samples: int           # the first step of a segment (the model's look-ahead)
    voices: frozenset[str]             # loadable acoustic adapters

    def new_state(self, voice: str | None = None) -> Any: ...

    def step_batch(self, jobs: list[AmJob]) -> list[list[Syllable]]:
        """Advance each job's stream; return each segment's whole current hypothesis."""


class LanguageStage(Protocol):
    domains: frozenset[str]            # loadable domain adapters

    def compile_hotwords(self, items) -> tuple:
        """Validate and prepare a stream's hotwords once; ValueError names a bad one."""

    def convert_batch(self, jobs: list[LmJob]) -> list[LmOut]: ...
