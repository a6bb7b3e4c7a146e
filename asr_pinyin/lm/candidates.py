"""Hanzi scores for each slot's candidates only (inference).

The network's head scores all ~6,800 hanzi, then the prior sets to -inf every hanzi that the
slot's syllables cannot be read as, so a slot's softmax lives on its candidates alone (one
syllable's readings: ~10-150 hanzi). Scoring just those gives the same log-probabilities with a
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
        counts = finite.sum(1)
        self.ptr = torch.cat([torch.zeros(1, dtype=torch.long), counts.cumsum(0)]).tolist()
        self.ids = cols
        self.lp = prior_table[rows, cols]
        self.n_chars = prior_table.shape[1]
        # every row's ids padded to the widest row (0 beyond a row's count): one gather gives
        # the candidate ids of all single-syllable slots
        self.width = int(counts.max())
        self.padded_ids = torch.zeros(len(counts), self.width, dtype=torch.long)
        self.padded_ids[rows, torch.arange(len(cols)) - torch.as_tensor(self.ptr[:-1])[rows]] = cols

    def row(self, r: int) -> tuple[torch.Tensor, torch.Tensor]:
        a, b = self.ptr[r], self.ptr[r + 1]
        return self.ids[a:b], self.lp[a:b]

    def lookup(self, r: int, hanzi: int) -> float:
        """log P(hanzi | row r); -inf when the row's syllable is not a reading of it."""
        ids, lp = self.row(r)
        at = torch.searchsorted(ids, hanzi)
        return float(lp[at]) if at < ids.numel() and int(ids[at]) == hanzi else -math.inf


class HeadBlocks:
    """The hanzi head cut into one block per syllable row: (W[ids]^T [d, n], bias[ids] +
    log P(ids | row) [n]). A group of slots that share a row is then scored by a single addmm
    (gathering W[ids] for every group cost as much as the product). All rows are cut at once
    (~0.04 s, ~22 MB): cutting them on first use made a process's first large batches slower."""

    def __init__(self, table: CandidateTable, weight: torch.Tensor, bias: torch.Tensor):
        self.table, self.weight, self.bias = table, weight, bias
        self._blocks = []
        for r in range(len(table.ptr) - 1):
            ids, lp = table.row(r)
            self._blocks.append((weight[ids].t().contiguous(), bias[ids] + lp))

    def __call__(self, r: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self._blocks[r]


def candidate_scores(h: torch.Tensor, rows: torch.Tensor, logp: torch.Tensor,
                     blocks: HeadBlocks) -> tuple[torch.Tensor, torch.Tensor]:
    """Network + prior scores of each token's candidate hanzi.

    h [N, d] head inputs, rows [N, K] prior rows of the token's syllables (PAD_ROW: none),
    logp [N, K] their log-probabilities; `blocks` the hanzi head by rows.
    Returns ids [N, C] and scores [N, C] (-inf in padding), what the dense
    `char_head(h) + prior` holds at those ids (-inf elsewhere).
    """
    table = blocks.table
    n = h.shape[0]
    multi = (rows[:, 1:] != PAD_ROW).any(1) if rows.shape[1] > 1 else torch.zeros(n, dtype=torch.bool)
    out_ids = table.padded_ids[rows[:, 0]]
    out_sc = torch.full((n, table.width), float("-inf"))
    single = (~multi).nonzero(as_tuple=True)[0]
    if single.numel():
        first = rows[single, 0]
        order = first.argsort(stable=True)
        uniq, counts = torch.unique_consecutive(first[order], return_counts=True)
        for r, toks in zip(uniq.tolist(), single[order].split(counts.tolist())):
            w_t, b = blocks(r)
            out_sc[toks, :b.numel()] = torch.addmm(b, h[toks], w_t)
    extra = []  # slots with several syllables may have more candidates than the widest row
    for tok in multi.nonzero(as_tuple=True)[0].tolist():
        # several syllables (acoustic alternatives): log sum_k p_k P(hanzi | syllable_k)
        dense = torch.full((table.n_chars,), float("-inf"))
        for r, lk in zip(rows[tok].tolist(), logp[tok].tolist()):
            if r != PAD_ROW:
                ids, lp = table.row(r)
                dense[ids] = torch.logaddexp(dense[ids], lp + lk)
        ids = torch.isfinite(dense).nonzero(as_tuple=True)[0]
        sc = torch.addmm(blocks.bias[ids] + dense[ids], h[tok:tok + 1], blocks.weight[ids].t())[0]
        extra.append((tok, ids, sc))
    if extra:
        width = max(table.width, max(ids.numel() for _, ids, _ in extra))
        if width > table.width:
            out_ids = torch.nn.functional.pad(out_ids, (0, width - table.width))
            out_sc = torch.nn.functional.pad(out_sc, (0, width - table.width), value=float("-inf"))
        for tok, ids, sc in extra:
            out_ids[tok] = 0
            out_sc[tok] = float("-inf")
            out_ids[tok, :ids.numel()], out_sc[tok, :ids.numel()] = ids, sc
    return out_ids, out_sc
