"""From slot sequences to the tensors and encoder calls of one batch (inference).

Inputs longer than the model's positions are cut into overlapping windows; windows are sorted
by length and encoded in groups of at most GROUP_TOKENS padded slots (little padding, bounded
memory); each group's real slots come back as one `Encoded` for the candidate head.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .slots import Slot
from .vocab import BASE_ID, NOTONE, PAD_B, PAD_T, TONAL_ID

OVERLAP = 16  # context slots on each side of a window
GROUP_TOKENS = 512  # padded slots per encoder call
# (tonal id, base id) of the syllables a slot holds (tonal, or toneless with NOTONE)
SLOT_IDS = {**{s: (TONAL_ID[s], BASE_ID[s.rstrip("12345")]) for s in TONAL_ID},
            **{s: (NOTONE, BASE_ID[s]) for s in BASE_ID}}


def slot_ids(s: str) -> tuple[int, int]:
    """A slot syllable's (tonal id, base id). A valid tonal syllable outside the inventory
    (`kan5`: the pinyin reader accepts a neutral tone on any base) counts as toneless."""
    ids = SLOT_IDS.get(s)
    return ids if ids is not None else (NOTONE, BASE_ID[s.rstrip("12345")])


def slot_tensors(batch: list[list[Slot]], device=None):
    """Slot sequences -> tonal ids, base ids [B, T, K] (PAD_T / PAD_B padding) and probs [B, T, K]."""
    B, T = len(batch), max(len(s) for s in batch)
    K = max(len(slot) for slots in batch for slot in slots)
    # one flat list of (position, syllable ids, prob) and one scatter: element-wise tensor
    # writes from Python cost ~3x more
    pos, ids, probs = [], [], []
    for b, slots in enumerate(batch):
        row = b * T * K
        for t, slot in enumerate(slots):
            for k, (s, p) in enumerate(slot):
                pos.append(row + t * K + k)
                ids.append(slot_ids(s))
                probs.append(p)
    tonal = torch.full((B * T * K,), PAD_T, dtype=torch.long)
    base = torch.full((B * T * K,), PAD_B, dtype=torch.long)
    prob = torch.zeros(B * T * K)
    where = torch.tensor(pos)
    both = torch.tensor(ids)
    tonal[where], base[where], prob[where] = both[:, 0], both[:, 1], torch.tensor(probs)
    return (tonal.view(B, T, K).to(device), base.view(B, T, K).to(device), prob.view(B, T, K).to(device))


def windows(batch: list[list[Slot]], max_len: int) -> tuple[list[list[Slot]], list[tuple[int, int, int, int]]]:
    """Cut inputs longer than `max_len` into windows overlapping by 2 * OVERLAP slots.
    Returns the pieces and, per piece, (input, its start, first and end kept position in it)."""
    pieces, where = [], []
    for i, slots in enumerate(batch):
        if len(slots) <= max_len:
            pieces.append(slots)
            where.append((i, 0, 0, len(slots)))
            continue
        step = max_len - 2 * OVERLAP
        for start in range(0, len(slots), step):
            end = min(len(slots), start + max_len)
            lo = 0 if start == 0 else OVERLAP
            hi = end - start if end == len(slots) else min(end - start, OVERLAP + step)
            pieces.append(slots[start:end])
            where.append((i, start, lo, hi))
            if end == len(slots):
                break
    return pieces, where


def length_groups(lengths: list[int], budget: int = GROUP_TOKENS) -> list[list[int]]:
    """Indices grouped in ascending length, each group's padded size (count x longest) <= budget."""
    groups, cur = [], []
    for j in sorted(range(len(lengths)), key=lengths.__getitem__):
        if cur and (len(cur) + 1) * lengths[j] > budget:
            groups.append(cur)
            cur = []
        cur.append(j)
    groups.append(cur)
    return groups


@dataclass
class Encoded:
    """One encoder group on the CPU: the real (non-padding) slots of its pieces, in order."""
    pieces: list[int]  # indices into the batch's pieces
    h: torch.Tensor  # head inputs [N, d_out], float32
    rows: torch.Tensor  # prior rows of each slot's syllables [N, K]
    logp: torch.Tensor  # their log-probabilities [N, K]
    punct: torch.Tensor  # punctuation log-probs [G, T, P]


def group_tensors(pieces: list[list[Slot]], device) -> list[tuple[list[int], tuple]]:
    """Length groups of `pieces` and their (tonal, base, prob) tensors."""
    return [(idx, slot_tensors([pieces[j] for j in idx], device)) for idx in length_groups([len(p) for p in pieces])]


@torch.no_grad()
def encode_groups(hidden, groups: list[tuple[list[int], tuple]], prior_rows) -> list[Encoded]:
    """`hidden(tonal, base, prob)` on each group, kept for its real slots (padding dropped)."""
    out = []
    for idx, (tonal, base, prob) in groups:
        h, punct = hidden(tonal, base, prob)
        valid = (base[..., 0] != PAD_B).cpu()  # padding only at the end of each row
        out.append(Encoded(idx, h.float().cpu()[valid], prior_rows(tonal, base).cpu()[valid],
                           prob.cpu()[valid].clamp(min=1e-9).log(), punct.float().log_softmax(-1).cpu()))
    return out
