"""CTC decoding: per-frame log-probs (T, V) -> syllables with times, confidence, alternatives.

Unit ids: 0 is blank, id i >= 1 is `TONAL[i - 1]`. Each decoded syllable is a *slot* for the
language stage: the chosen syllable plus the top-k syllables at its peak frame with their
probabilities renormalised over non-blank units (`Syllable.alternatives`).
"""
from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import asdict, dataclass, field

import torch

from asr_pinyin.pinyin import TONAL

BLANK = 0
UNITS = ("<blank>",) + tuple(TONAL)
UNIT_ID = {u: i for i, u in enumerate(UNITS)}


def encode_pinyin(pinyin: str) -> list[int]:
    """'ni3 hao3' -> unit ids; KeyError names the first syllable outside the inventory."""
    out = []
    for s in pinyin.split():
        if s not in UNIT_ID or s == UNITS[0]:
            raise KeyError(s)
        out.append(UNIT_ID[s])
    return out


@dataclass
class Syllable:
    syllable: str
    start: float                  # seconds from the start of the stream
    end: float
    confidence: float             # probability of this syllable at its peak frame
    alternatives: list[tuple[str, float]] = field(default_factory=list)   # top-k, best first
    index: int = 0                # position in the stream's syllable sequence

    def to_dict(self) -> dict:
        d = asdict(self)
        d["alternatives"] = [list(a) for a in self.alternatives]
        return d


def slot_alternatives(log_probs_frame: torch.Tensor, k: int) -> list[tuple[str, float]]:
    """Top-k non-blank units of one frame, probabilities renormalised over non-blank units."""
    p = log_probs_frame[1:].float().softmax(-1)
    top = p.topk(min(k, p.numel()))
    return [(UNITS[int(i) + 1], round(float(v), 4)) for v, i in zip(top.values, top.indices)]


def make_syllable(lp: torch.Tensor, unit: int, frames: list[int], frame_shift: float,
                  offset: float, k: int, index: int = 0) -> Syllable:
    """Build one slot from the frames a unit occupies (its peak frame gives the alternatives)."""
    peak = max(frames, key=lambda f: float(lp[f, unit]))
    return Syllable(UNITS[unit], round(offset + frames[0] * frame_shift, 3),
                    round(offset + (frames[-1] + 1) * frame_shift, 3),
                    round(math.exp(float(lp[peak, unit])), 4), slot_alternatives(lp[peak], k), index)


def greedy(lp: torch.Tensor, frame_shift: float = 0.08, k: int = 5, offset: float = 0.0) -> list[Syllable]:
    """Best unit per frame, repeats merged, blanks dropped."""
    best = lp.argmax(-1).tolist()
    out, prev, frames = [], BLANK, []
    for t, u in enumerate(best + [BLANK]):
        if u != prev or u == BLANK:
            if prev != BLANK:
                out.append(make_syllable(lp, prev, frames, frame_shift, offset, k, len(out)))
            frames = []
        if u != BLANK:
            frames.append(t)
        prev = u
    return out


def _logadd(a: float, b: float) -> float:
    if a == -math.inf:
        return b
    if b == -math.inf:
        return a
    m = max(a, b)
    return m + math.log1p(math.exp(-abs(a - b)))


def prefix_beam_search(lp: torch.Tensor, beam: int = 8, prune: float = -8.0,
                       top_units: int = 10) -> list[tuple[tuple[int, ...], float]]:
    """CTC prefix beam search -> n-best (unit ids, log score), best first.

    Per frame only units with log-prob > `prune` (at most `top_units`) are expanded;
    frames where blank is almost certain are skipped cheaply.
    """
    beams: dict[tuple[int, ...], tuple[float, float]] = {(): (0.0, -math.inf)}   # (p_blank, p_nonblank)
    lpl = lp.float()
    for t in range(lpl.shape[0]):
        row = lpl[t]
        vals, ids = row.topk(min(top_units, row.numel()))
        cand = [(int(i), float(v)) for v, i in zip(vals, ids) if float(v) > prune]
        if not cand:
            cand = [(int(ids[0]), float(vals[0]))]
        nxt: dict = defaultdict(lambda: (-math.inf, -math.inf))
        for prefix, (pb, pnb) in beams.items():
            total = _logadd(pb, pnb)
            last = prefix[-1] if prefix else None
            for u, p in cand:
                if u == BLANK:
                    b, nb = nxt[prefix]
                    nxt[prefix] = (_logadd(b, total + p), nb)
                elif u == last:
                    b, nb = nxt[prefix]                       # repeat collapses into the same prefix
                    nxt[prefix] = (b, _logadd(nb, pnb + p))
                    ext = prefix + (u,)                        # a blank in between makes a new unit
                    b, nb = nxt[ext]
                    nxt[ext] = (b, _logadd(nb, pb + p))
                else:
                    ext = prefix + (u,)
                    b, nb = nxt[ext]
                    nxt[ext] = (b, _logadd(nb, total + p))
        beams = dict(sorted(nxt.items(), key=lambda kv: -_logadd(*kv[1]))[:beam])
    return [(p, _logadd(*s)) for p, s in sorted(beams.items(), key=lambda kv: -_logadd(*kv[1]))]


def align(lp: torch.Tensor, units: list[int]) -> list[list[int]]:
    """Frames each unit occupies in the best CTC alignment of `units` (torchaudio forced_align)."""
    if not units:
        return []
    import torchaudio.functional as AF

    path, _ = AF.forced_align(lp.float().unsqueeze(0), torch.tensor([units], dtype=torch.int32), blank=BLANK)
    spans: list[list[int]] = []
    prev = BLANK
    for t, u in enumerate(path[0].tolist()):
        if u != BLANK and (u != prev or not spans):
            spans.append([t])
        elif u != BLANK and u == prev:
            spans[-1].append(t)
        prev = u
    return spans


def beam_decode(lp: torch.Tensor, frame_shift: float = 0.08, beam: int = 8, k: int = 5,
                offset: float = 0.0) -> list[Syllable]:
    """Prefix beam search, then timings and alternatives from the forced alignment of the best."""
    units = list(prefix_beam_search(lp, beam)[0][0])
    try:
        spans = align(lp, units)
    except RuntimeError:          # alignment impossible (too few frames): fall back to greedy
        return greedy(lp, frame_shift, k, offset)
    return [make_syllable(lp, u, f, frame_shift, offset, k, i) for i, (u, f) in enumerate(zip(units, spans))]


def decode(lp: torch.Tensor, method: str = "greedy", frame_shift: float = 0.08, k: int = 5,
           beam: int = 8) -> list[Syllable]:
    if method == "greedy":
        return greedy(lp, frame_shift, k)
    if method == "beam":
        return beam_decode(lp, frame_shift, beam, k)
    raise ValueError(f"unknown decoding method {method!r} (greedy|beam)")
