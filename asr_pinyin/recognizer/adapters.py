"""The real stages behind the recognizer: asr_pinyin.acoustic and asr_pinyin.lm, batched.

`load_stages()` loads both checkpoints once onto `asr_pinyin.device.get_device()`. The acoustic
side is `BatchedAcoustic` (batching.py). The language side prefers the LM package's own batched
API (`LanguageModel.convert_batch`) when it exists; `PinyinLMStage` is the fallback that drives
the `PinyinLM` network directly: acoustic top-k slots in, best hanzi per slot, punctuation, digits
(cn2an), sentence n-best from per-slot alternatives, hotwords matched through their pinyin.
"""
from __future__ import annotations

import heapq
import math

import torch

from .stages import LmJob, LmOut

K = 3  # syllables per slot given to the language model (its training used 3)


class StageLoadError(RuntimeError):
    """A model checkpoint that cannot be used by the recognizer (the message says which and why)."""


class PinyinLMStage:
    """LanguageStage over a PinyinLM network and its hanzi vocabulary."""

    def __init__(self, model, chars: list[str], domains=()):
        from asr_pinyin.lm.vocab import BASE_ID, NOTONE, PAD_B, PAD_T, PUNCT, TONAL_ID

        self.model = model.eval()
        self.chars = chars
        self.device = next(model.parameters()).device
        self.domains = frozenset(domains)
        self._ids = (TONAL_ID, BASE_ID, NOTONE, PAD_T, PAD_B, PUNCT)
        self._hotword_cache: dict[str, list[str]] = {}

    @classmethod
    def load(cls, path, device=None) -> "PinyinLMStage":
        from asr_pinyin.lm.config import ModelConfig
        from asr_pinyin.lm.model import PinyinLM

        try:
            ck = torch.load(path, map_location="cpu", weights_only=False)
            model = PinyinLM(ModelConfig(**ck["model_cfg"]), len(ck["chars"]), ck["readings"])
            model.load_state_dict(ck["state"])
        except FileNotFoundError:
            raise StageLoadError(f"language model not found: {path}") from None
        except Exception as e:  # noqa: BLE001 - any unreadable checkpoint gets one clear message
            raise StageLoadError(f"{path}: not a usable language model ({type(e).__name__}: {e})") from None
        return cls(model.to(device or "cpu"), ck["chars"])

    def _slots(self, job: LmJob):
        tonal_id, base_id, notone, _, _, _ = self._ids
        rows = []
        for s in job.syllables:
            alts = [(p, q) for p, q in (s.alts or [(s.pinyin, 1.0)]) if p[:-1] in base_id][:K]
            if not alts or alts[0][0] != s.pinyin:
                alts = [(s.pinyin, 1.0)] + [a for a in alts if a[0] != s.pinyin][:K - 1]
            total = sum(q for _, q in alts) or 1.0
            rows.append([(tonal_id.get(p, notone), base_id[p[:-1]], q / total) for p, q in alts])
        return rows

    @torch.no_grad()
    def convert_batch(self, jobs: list[LmJob]) -> list[LmOut]:
        _, _, _, pad_t, pad_b, punct_marks = self._ids
        slots = [self._slots(j) for j in jobs]
        max_len = self.model.cfg.max_len
        outs = []
        # segments longer than the model's positions are converted in consecutive windows
        pieces = [(i, a) for i, s in enumerate(slots) for a in range(0, max(len(s), 1), max_len)]
        b, t = len(pieces), min(max_len, max(len(s) for s in slots))
        tonal = torch.full((b, t, K), pad_t, dtype=torch.long)
        base = torch.full((b, t, K), pad_b, dtype=torch.long)
        prob = torch.zeros(b, t, K)
        for r, (i, a) in enumerate(pieces):
            for p, slot in enumerate(slots[i][a:a + max_len]):
                for k, (ti, bi, q) in enumerate(slot):
                    tonal[r, p, k], base[r, p, k], prob[r, p, k] = ti, bi, q
        logits, punct = self.model(tonal.to(self.device), base.to(self.device), prob.to(self.device))
        logp = logits.float().log_softmax(-1).cpu()
        punct = punct.argmax(-1).cpu()
        for i, job in enumerate(jobs):
            rows = [r for r, (j, _) in enumerate(pieces) if j == i]
            lp = torch.cat([logp[r, : min(max_len, len(slots[i]) - pieces[r][1])] for r in rows])
            pu = torch.cat([punct[r, : min(max_len, len(slots[i]) - pieces[r][1])] for r in rows])
            outs.append(self._result(job, lp, pu, punct_marks))
        return outs

    def _result(self, job: LmJob, lp: torch.Tensor, pu: torch.Tensor, marks) -> LmOut:
        best = lp.argmax(-1).tolist()
        chars = [self.chars[c] if self.chars[c] != "<unk>" else "□" for c in best]
        conf = [math.exp(float(lp[p, c])) for p, c in enumerate(best)]
        chars = self._hotwords(job, chars)
        pys = [s.pinyin for s in job.syllables]
        out = LmOut("".join(chars), [(c, p, round(q, 4)) for c, p, q in zip(chars, pys, conf)],
                    round(sum(conf) / len(conf), 4) if conf else 0.0)
        if job.final:
            marks_after = [marks[m] for m in pu.tolist()]
            if marks_after and not marks_after[-1]:
                marks_after[-1] = "。"
            out.text = _itn("".join(c + m for c, m in zip(chars, marks_after)))
            if job.nbest > 1:
                out.nbest = [(_itn("".join(self.chars[c] for c in seq)), score)
                             for seq, score in _kbest(lp, job.nbest)]
        return out

    def _hotwords(self, job: LmJob, chars: list[str]) -> list[str]:
        """Replace a span whose toneless syllables spell a hotword's pinyin by the hotword."""
        if not job.hotwords:
            return chars
        from pypinyin import Style, lazy_pinyin

        toneless = [s.pinyin[:-1] for s in job.syllables]
        out = list(chars)
        for phrase, _w in sorted(job.hotwords, key=lambda h: -len(h[0])):
            key = self._hotword_cache.get(phrase)
            if key is None:
                key = [p.replace("ü", "v") for p in lazy_pinyin(phrase, style=Style.NORMAL)]
                self._hotword_cache[phrase] = key
            n = len(key)
            if n != len(phrase):
                continue
            for a in range(len(toneless) - n + 1):
                if toneless[a:a + n] == key:
                    out[a:a + n] = list(phrase)
        return out


def _kbest(lp: torch.Tensor, k: int) -> list[tuple[list[int], float]]:
    """Exact k best sequences when slots are independent given the encoder (lazy heap over ranks)."""
    top = [lp[p].topk(min(k, lp.shape[1])) for p in range(lp.shape[0])]
    vals = [t.values.tolist() for t in top]
    ids = [t.indices.tolist() for t in top]
    start = tuple([0] * len(vals))
    score0 = sum(v[0] for v in vals)
    heap, seen, out = [(-score0, start)], {start}, []
    while heap and len(out) < k:
        neg, ranks = heapq.heappop(heap)
        out.append(([ids[p][r] for p, r in enumerate(ranks)], round(-neg, 4)))
        for p, r in enumerate(ranks):
            if r + 1 < len(vals[p]):
                nxt = ranks[:p] + (r + 1,) + ranks[p + 1:]
                if nxt not in seen:
                    seen.add(nxt)
                    heapq.heappush(heap, (neg + vals[p][r] - vals[p][r + 1], nxt))
    return out


def _itn(text: str) -> str:
    """Chinese numerals -> digits where a reader expects them (cn2an); unchanged when it cannot."""
    try:
        import cn2an
        return cn2an.transform(text, "cn2an")
    except Exception:  # noqa: BLE001 - normalization is best effort, the text stays valid
        return text


def load_stages(am_path=None, lm_path=None, chunk_ms: int = 240, left_ms: int = 5120):
    """Both stages on the chosen device, from the given checkpoints or the shipped defaults."""
    from pathlib import Path

    from asr_pinyin.device import get_device

    from .batching import BatchedAcoustic

    device = get_device()
    try:
        from asr_pinyin.acoustic.model import ModelLoadError, load_model
    except ImportError as e:
        raise StageLoadError(f"acoustic stage unavailable: {e}") from None
    try:
        am = BatchedAcoustic(load_model(am_path, device), chunk_ms=chunk_ms, left_ms=left_ms)
    except ModelLoadError as e:
        raise StageLoadError(str(e)) from None
    lm_path = Path(lm_path) if lm_path else Path(__file__).resolve().parents[2] / "models" / "lm" / "model.pt"
    if not lm_path.is_file():
        raise StageLoadError(f"language model not found: {lm_path} (train one with `asr-pinyin train-lm`)")
    lm = PinyinLMStage.load(lm_path, device)
    return am, lm
