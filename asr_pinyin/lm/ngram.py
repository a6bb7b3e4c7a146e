"""A hanzi bigram language model (interpolated Kneser-Ney) that fuses with the network's scores.

The network scores each slot given the whole pinyin context but picks every hanzi independently;
the bigram adds what it lacks: agreement between neighbouring choices, counted from the training
text. Decoding is a beam search over the network's top candidates per slot with score
`log p_net(hanzi) + weight * log P_bigram(hanzi | previous hanzi)`. It is built from the train
split in seconds (`asr-pinyin export-lm --ngram-from ...`) and stored, pruned, in the model file.
"""
from __future__ import annotations

import numpy as np

DISCOUNT = 0.75


class Bigram:
    def __init__(self, keys, logp, backoff, cont, n_chars: int):
        self.keys = np.asarray(keys, dtype=np.int64)  # prev * (V + 1) + next, sorted; BOS = V
        self.logp = np.asarray(logp, dtype=np.float32)  # log P(next | prev) for stored pairs
        self.backoff = np.asarray(backoff, dtype=np.float32)  # log lambda(prev), [V + 1]
        self.cont = np.asarray(cont, dtype=np.float32)  # log continuation probability, [V + 1] (EOS = V)
        self.V = n_chars

    @classmethod
    def build(cls, sentences: list[np.ndarray], n_chars: int, min_count: int = 2) -> "Bigram":
        """`sentences`: arrays of hanzi ids (one sentence or clause each). Pairs seen fewer than
        `min_count` times are not stored (they fall back to the continuation estimate)."""
        V1 = n_chars + 1
        prev = np.concatenate([np.concatenate([[n_chars], s]) for s in sentences]).astype(np.int64)
        nxt = np.concatenate([np.concatenate([s, [n_chars]]) for s in sentences]).astype(np.int64)
        pairs, counts = np.unique(prev * V1 + nxt, return_counts=True)
        p, n = pairs // V1, pairs % V1
        total = np.bincount(p, weights=counts, minlength=V1)  # c(prev .)
        types = np.bincount(p, minlength=V1)  # N1+(prev .)
        cont_types = np.bincount(n, minlength=V1).astype(np.float64)  # N1+(. next)
        cont = np.log((cont_types + 0.5) / (cont_types + 0.5).sum())
        lam = np.where(total > 0, DISCOUNT * types / np.maximum(total, 1), 1.0)
        keep = counts >= min_count
        p, n, c = p[keep], n[keep], counts[keep]
        logp = np.log((c - DISCOUNT) / total[p] + lam[p] * np.exp(cont[n]))
        return cls(pairs[keep], logp, np.log(lam), cont, n_chars)

    def score(self, prev: np.ndarray, nxt: np.ndarray) -> np.ndarray:
        """log P(nxt | prev), elementwise (use V for sentence start as prev and end as next)."""
        key = prev.astype(np.int64) * (self.V + 1) + nxt
        pos = np.searchsorted(self.keys, key).clip(max=len(self.keys) - 1)
        hit = self.keys[pos] == key
        return np.where(hit, self.logp[pos], self.backoff[prev] + self.cont[nxt])

    def state(self) -> dict:
        return {"keys": self.keys, "logp": self.logp.astype(np.float16), "backoff": self.backoff.astype(np.float16),
                "cont": self.cont.astype(np.float16), "n_chars": self.V}

    @classmethod
    def from_state(cls, st: dict) -> "Bigram":
        return cls(st["keys"], st["logp"], st["backoff"], st["cont"], st["n_chars"])


def beam_search(cand: np.ndarray, net_lp: np.ndarray, lm: Bigram, weight: float, beam: int = 8,
                nbest: int = 1) -> list[tuple[list[int], float]]:
    """cand/net_lp [T, M]: per-slot candidate hanzi ids and network log-probs (-inf = none).
    Returns up to `nbest` (candidate index per slot, fused score), best first."""
    T, M = cand.shape
    beam = max(beam, nbest)
    V = lm.V
    scores = np.zeros(1)
    last = np.array([V])
    back: list[tuple[np.ndarray, np.ndarray]] = []
    for t in range(T):
        trans = lm.score(np.repeat(last, M), np.tile(cand[t], len(last))).reshape(len(last), M)
        total = scores[:, None] + net_lp[t][None, :] + weight * trans
        flat = total.ravel()
        k = min(beam, int(np.isfinite(flat).sum()) or 1)
        top = np.argpartition(-flat, k - 1)[:k] if k < flat.size else np.arange(flat.size)
        top = top[np.argsort(-flat[top])]
        src, pick = top // M, top % M
        back.append((src, pick))
        scores, last = flat[top], cand[t][pick]
    scores = scores + weight * lm.score(last, np.full(len(last), V))
    order = np.argsort(-scores)[:nbest]
    out = []
    for b in order:
        path, i = [], int(b)
        for src, pick in reversed(back):
            path.append(int(pick[i]))
            i = int(src[i])
        out.append((path[::-1], float(scores[b])))
    return out
