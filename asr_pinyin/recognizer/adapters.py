"""The real stages behind the recognizer: asr_pinyin.acoustic and asr_pinyin.lm, batched.

`load_stages()` loads both checkpoints once onto `asr_pinyin.device.get_device()`. The acoustic
side is `BatchedAcoustic` (batching.py). The language side is
`LanguageModelStage` over asr_pinyin.lm's `LanguageModel`: acoustic top-k slots in, hanzi,
punctuation, digits, hotwords and sentence n-best out.
"""
from __future__ import annotations

import threading

from .stages import LmJob, LmOut

ALTS = 5  # hanzi alternatives per character in a final (the web page's click-to-replace list)


class StageLoadError(RuntimeError):
    """A model checkpoint that cannot be used by the recognizer (the message says which and why)."""


class LanguageModelStage:
    """LanguageStage over asr_pinyin.lm's LanguageModel (one `convert_slots` call per batch group).

    Partials re-decode a bounded window (the last `window` slots plus `context` slots before them)
    and keep the hanzi that left the window, so a partial costs the same however long the segment
    is; a final decodes the whole segment, with punctuation, ITN, hotwords and n-best.
    """

    def __init__(self, lm, window: int = 32, context: int = 8, domains=()):
        self.lm = lm
        self.window, self.context = window, context
        self._domains = frozenset(domains)
        self._model_lock = threading.Lock()   # adding a domain never overlaps a running batch

    @property
    def domains(self) -> frozenset[str]:
        return self._domains | frozenset(getattr(self.lm, "adapters", {}))

    def add_domain(self, name: str, path) -> None:
        """Load a LoRA domain adapter (finetune-lm) next to the shared base weights."""
        with self._model_lock:
            self.lm.add_adapter(name, path)

    @classmethod
    def load(cls, path=None, device=None) -> "LanguageModelStage":
        from asr_pinyin.lm.decode import LanguageModel

        try:
            return cls(LanguageModel.load(path, device))
        except FileNotFoundError as e:
            raise StageLoadError(str(e)) from None
        except Exception as e:  # noqa: BLE001 - any unreadable checkpoint gets one clear message
            raise StageLoadError(f"{path}: not a usable language model ({type(e).__name__}: {e})") from None

    def compile_hotwords(self, items):
        """Validate a stream's hotwords once (ValueError names the bad one)."""
        from asr_pinyin.lm.hotwords import compile_hotwords

        return tuple(compile_hotwords(list(items) if items else None))

    def convert_batch(self, jobs: list[LmJob]) -> list[LmOut]:
        with self._model_lock:
            return self._convert_batch(jobs)

    def _convert_batch(self, jobs: list[LmJob]) -> list[LmOut]:
        from asr_pinyin.lm.slots import to_slots

        outs: list[LmOut | None] = [None] * len(jobs)
        groups: dict[tuple, list[int]] = {}
        for i, job in enumerate(jobs):
            groups.setdefault((job.final, job.nbest, job.hotwords, job.domain), []).append(i)
        for (final, nbest, hws, domain), idx in groups.items():
            batch, spans = [], []
            for i in idx:
                job = jobs[i]
                slots = to_slots([_slot(s) for s in job.syllables])
                lo = 0
                if not final:
                    fixed = job.cache.setdefault("fixed", [])
                    start = max(len(fixed), len(slots) - self.window)
                    if start > len(fixed):  # hanzi leaving the window keep their last reading
                        fixed.extend(job.cache.get("tail", [])[: start - len(fixed)])
                    lo = max(0, start - self.context)
                    spans.append(start - lo)
                else:
                    spans.append(0)
                batch.append(slots[lo:])
            convs = self.lm.convert_slots(batch, list(hws), nbest, True, final, domain=domain)
            for i, conv, cut in zip(idx, convs, spans):
                job = jobs[i]
                if final:
                    chars = conv.chars
                    out = LmOut(conv.text, [], 0.0, list(conv.nbest) if nbest > 1 else [])
                else:
                    job.cache["tail"] = conv.chars[cut:]
                    chars = job.cache["fixed"] + conv.chars[cut:]
                    text = "".join(c.hanzi for c in chars)
                    out = LmOut(text, [], 0.0)
                # hanzi alternatives only for finals: partial messages carry no per-character data
                out.chars = [(c.hanzi, c.pinyin, round(c.confidence, 4),
                              [(h, round(p, 4)) for h, p in c.alternatives[:ALTS]] if final else [])
                             for c in chars]
                out.confidence = round(sum(c.confidence for c in chars) / len(chars), 4) if chars else 0.0
                outs[i] = out
        return outs


def _slot(s) -> list[tuple[str, float]]:
    """A recognizer syllable as a language-model slot (`asr_pinyin.lm.slots.acoustic_slot`)."""
    from asr_pinyin.lm.slots import acoustic_slot

    return acoustic_slot(s.alts, decoded=s.pinyin)


def load_stages(am_path=None, lm_path=None, chunk_ms: int = 240, left_ms: int = 5120, two_pass: bool = True):
    """Both stages on the chosen device, from the given checkpoints or the shipped defaults.
    `two_pass`: finals from one full-context pass over each ended segment (batching.py)."""
    from asr_pinyin.device import get_device

    from .batching import BatchedAcoustic

    device = get_device()
    try:
        from asr_pinyin.acoustic.model import ModelLoadError, load_model
    except ImportError as e:
        raise StageLoadError(f"acoustic stage unavailable: {e}") from None
    try:
        am = BatchedAcoustic(load_model(am_path, device), chunk_ms=chunk_ms, left_ms=left_ms,
                             full_final=two_pass)
    except ModelLoadError as e:
        raise StageLoadError(str(e)) from None
    am.warm_up()
    return am, LanguageModelStage.load(lm_path, device)
