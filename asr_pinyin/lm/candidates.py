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
import torch.nn.functional as F

from .vocab import PAD_ROW

MULTI_BLOCK = 256  # slots with several syllables scored together (bounds the [pairs, d] gather)


class CandidateTable:
    """The prior table in compressed rows: for each syllable row, its hanzi ids and log P(hanzi | row)."""

    def __init__(self, prior_table: torch.Tensor):
        finite = torch.isfinite(prior_table)
        rows, cols = finite.nonzero(as_tuple=True)           # row-major: grouped by row
        counts = finite.sum(1)
        self.ptr_t = torch.cat([torch.zeros(1, dtype=torch.long), counts.cumsum(0)])
        self.ptr = self.ptr_t.tolist()
        self.ids = cols
        self.lp = prior_table[rows, cols]
        self.n_chars = prior_table.shape[1]
        self._by_key: dict[int, float] | None = None  # row * n_chars + hanzi -> log P, made on first lookup
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
        if self._by_key is None:  # a dict: per-element tensor searches cost ~2 ms per 30-slot update
            keys = (self.ids + torch.repeat_interleave(torch.arange(len(self.ptr) - 1), self.ptr_t.diff()) * self.n_chars)
            self._by_key = dict(zip(keys.tolist(), self.lp.tolist()))
        return self._by_key.get(r * self.n_chars + hanzi, -math.inf)


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
    many = multi.nonzero(as_tuple=True)[0]
    for a in range(0, many.numel(), MULTI_BLOCK):
        toks = many[a:a + MULTI_BLOCK]
        hz, at, rank, sc = _multi_scores(h, rows, logp, blocks, toks)
        width = int(rank.max()) + 1
        if width > out_sc.shape[1]:  # several syllables can have more candidates than the widest row
            out_ids = F.pad(out_ids, (0, width - out_ids.shape[1]))
            out_sc = F.pad(out_sc, (0, width - out_sc.shape[1]), value=float("-inf"))
        out_ids[toks] = 0
        out_sc[toks] = float("-inf")
        out_ids[at, rank], out_sc[at, rank] = hz, sc
    return out_ids, out_sc


def _multi_scores(h, rows, logp, blocks: HeadBlocks, toks: torch.Tensor):
    """Slots with several syllables (acoustic alternatives), all at once: their candidates are
    the union of the syllables' readings, scored log sum_k p_k P(hanzi | syllable_k) + head.
    Returns per candidate: hanzi id, its slot (an element of `toks`), its rank within the slot
    (ascending hanzi ids, as the dense head would list them) and its score."""
    table = blocks.table
    r, lk = rows[toks], logp[toks]
    t_k, k_k = (r != PAD_ROW).nonzero(as_tuple=True)          # (slot, alternative) pairs
    rr = r[t_k, k_k]
    start, cnt = table.ptr_t[rr], table.ptr_t[rr + 1] - table.ptr_t[rr]
    first = torch.cumsum(cnt, 0) - cnt
    ent = start.repeat_interleave(cnt) + torch.arange(int(cnt.sum())) - first.repeat_interleave(cnt)
    slot = t_k.repeat_interleave(cnt)                          # per reading entry: its slot
    hz = table.ids[ent]
    val = table.lp[ent] + lk[t_k, k_k].repeat_interleave(cnt)
    # a hanzi read by several of a slot's syllables: log-sum-exp of its entries
    key, inv = torch.unique(slot * table.n_chars + hz, return_inverse=True)   # sorted: by slot, then hanzi
    top = torch.full((key.numel(),), float("-inf")).scatter_reduce(0, inv, val, "amax")
    total = torch.zeros(key.numel()).scatter_add_(0, inv, (val - top[inv]).exp())
    slot_u, hz_u = key // table.n_chars, key % table.n_chars
    sc = (h[toks[slot_u]] * blocks.weight[hz_u]).sum(-1) + blocks.bias[hz_u] + top + total.log()
    counts = torch.bincount(slot_u, minlength=toks.numel())
    rank = torch.arange(key.numel()) - (torch.cumsum(counts, 0) - counts)[slot_u]
    return hz_u, toks[slot_u], rank, sc
