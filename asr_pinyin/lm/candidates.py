"""Hanzi scores for each slot's candidates only (inference).

The network's head scores all ~6,800 hanzi, then the prior sets to -inf every hanzi that the
slot's syllables cannot be read as, so a slot's softmax lives on its candidates alone (one
syllable's readings: ~10-250 hanzi). Scoring just those gives the same log-probabilities with a
few % of the head's multiply-adds and no [B, T, V] tensors: building, adding and normalising
those took longer than the encoder's last layers (profile in BENCHMARKS.md). Training keeps the
dense head (`PinyinLM.forward`), whose gradient needs every hanzi anyway.
"""
from __future__ import annotations

import math

import torch

from .vocab import PAD_ROW


class CandidateTable:
    """The prior table in compressed rows: for each syllable row, its hanzi ids and log P(hanzi | row)."""

    def __init__(self, prior_table: torch.Tensor):
        finite = torch.isfinite(prior_table)
        rows, cols = finite.nonzero(as_tuple=True)           # row-major: grouped by row
        self.ptr = torch.cat([torch.zeros(1, dtype=torch.long), finite.sum(1).cumsum(0)]).tolist()
        self.ids = cols
        self.lp = prior_table[rows, cols]
        self.n_chars = prior_table.shape[1]

    def row(self, r: int) -> tuple[torch.Tensor, torch.Tensor]:
        a, b = self.ptr[r], self.ptr[r + 1]
        return self.ids[a:b], self.lp[a:b]

    def lookup(self, r: int, hanzi: int) -> float:
        """log P(hanzi | row r); -inf when the row's syllable is not a reading of it."""
        ids, lp = self.row(r)
        at = torch.searchsorted(ids, hanzi)
        return float(lp[at]) if at < ids.numel() and int(ids[at]) == hanzi else -math.inf


def candidate_scores(h: torch.Tensor, rows: torch.Tensor, logp: torch.Tensor, table: CandidateTable,
                     weight: torch.Tensor, bias: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Network + prior scores of each token's candidate hanzi.

    h [N, d] head inputs, rows [N, K] prior rows of the token's syllables (PAD_ROW: none),
    logp [N, K] their log-probabilities; weight [V, d] / bias [V] the hanzi head.
    Returns ids [N, C] and scores [N, C] (-inf in padding), what the dense
    `char_head(h) + prior` holds at those ids (-inf elsewhere).
    """
    n = h.shape[0]
    multi = (rows[:, 1:] != PAD_ROW).any(1) if rows.shape[1] > 1 else torch.zeros(n, dtype=torch.bool)
    groups: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []   # (tokens, ids, scores)
    single = (~multi).nonzero(as_tuple=True)[0]
    if single.numel():
        first = rows[single, 0]
        order = first.argsort(stable=True)
        uniq, counts = torch.unique_consecutive(first[order], return_counts=True)
        for r, toks in zip(uniq.tolist(), single[order].split(counts.tolist())):
            ids, lp = table.row(r)
            groups.append((toks, ids, torch.addmm(bias[ids] + lp, h[toks], weight[ids].t())))
    for tok in multi.nonzero(as_tuple=True)[0].tolist():
        # several syllables (acoustic alternatives): log sum_k p_k P(hanzi | syllable_k)
        dense = torch.full((table.n_chars,), float("-inf"))
        for r, lk in zip(rows[tok].tolist(), logp[tok].tolist()):
            if r != PAD_ROW:
                ids, lp = table.row(r)
                dense[ids] = torch.logaddexp(dense[ids], lp + lk)
        ids = torch.isfinite(dense).nonzero(as_tuple=True)[0]
        groups.append((torch.tensor([tok]), ids, torch.addmm(bias[ids] + dense[ids], h[tok:tok + 1], weight[ids].t())))
    width = max((g[1].numel() for g in groups), default=1)
    out_ids = torch.zeros(n, width, dtype=torch.long)
    out_sc = torch.full((n, width), float("-inf"))
    for toks, ids, sc in groups:
        c = ids.numel()
        out_ids[toks, :c] = ids
        out_sc[toks, :c] = sc
    return out_ids, out_sc
