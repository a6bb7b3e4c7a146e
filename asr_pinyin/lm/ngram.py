"""Hanzi n-gram language models (bigram: interpolated Kneser-Ney; trigram on top) fused with the network.

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
    def __init__(self, keys, logp, backoff, cont, n_chars: int, uni=None):
        self.keys = np.asarray(keys, dtype=np.int64)  # prev * (V + 1) + next, sorted; BOS = V
        self.logp = np.asarray(logp, dtype=np.float32)  # log P(next | prev) for stored pairs
        self.backoff = np.asarray(backoff, dtype=np.float32)  # log lambda(prev), [V + 1]
        self.cont = np.asarray(cont, dtype=np.float32)  # log continuation probability, [V + 1] (EOS = V)
        self.V = n_chars
        # log P(hanzi), to divide out of the network's p(hanzi | syllables): the network already
        # counts how frequent a hanzi is, and so does the n-gram (noisy-channel fusion)
        self.uni = np.zeros(n_chars + 1, dtype=np.float32) if uni is None else np.asarray(uni, dtype=np.float32)

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
        uni = np.bincount(nxt, minlength=V1) + 0.5
        return cls(pairs[keep], logp, np.log(lam), cont, n_chars, np.log(uni / uni.sum()))

    def score(self, prev: np.ndarray, nxt: np.ndarray) -> np.ndarray:
        """log P(nxt | prev), elementwise (use V for sentence start as prev and end as next)."""
        key = prev.astype(np.int64) * (self.V + 1) + nxt
        pos = np.searchsorted(self.keys, key).clip(max=len(self.keys) - 1)
        hit = self.keys[pos] == key
        return np.where(hit, self.logp[pos], self.backoff[prev] + self.cont[nxt])

    def state(self) -> dict:  # compact: pair keys < (V+1)^2 fit in uint32
        return {"keys": self.keys.astype(np.uint32), "logp": self.logp.astype(np.float16),
                "backoff": self.backoff.astype(np.float16), "cont": self.cont.astype(np.float16), "n_chars": self.V,
                "uni": self.uni.astype(np.float16)}

    @classmethod
    def from_state(cls, st: dict) -> "Bigram":
        return cls(st["keys"].astype(np.int64), st["logp"], st["backoff"], st["cont"], st["n_chars"], st.get("uni"))


class Trigram:
    """Interpolated absolute-discounting trigram over the Bigram: P(c|a b) = max(n(abc)-D, 0)/n(ab.)
    + lambda(ab) P_bigram(c|b). Stored pruned: trigrams seen >= `min_count` times, and lambda for
    contexts seen >= `min_count` times (other contexts fall back to the bigram)."""

    def __init__(self, bigram: Bigram, keys, logp, ctx_keys, ctx_backoff):
        self.bigram, self.V = bigram, bigram.V
        self.keys = np.asarray(keys, dtype=np.int64)
        self.logp = np.asarray(logp, dtype=np.float32)
        self.ctx_keys = np.asarray(ctx_keys, dtype=np.int64)
        self.ctx_backoff = np.asarray(ctx_backoff, dtype=np.float32)

    @classmethod
    def build(cls, sentences: list[np.ndarray], n_chars: int, min_count: int = 2) -> "Trigram":
        bigram = Bigram.build(sentences, n_chars, min_count)
        V1 = n_chars + 1
        a = np.concatenate([np.concatenate([[n_chars, n_chars], s]) for s in sentences]).astype(np.int64)
        b = np.concatenate([np.concatenate([[n_chars], s, [n_chars]]) for s in sentences]).astype(np.int64)
        c = np.concatenate([np.concatenate([s, [n_chars, n_chars]]) for s in sentences]).astype(np.int64)
        keep = ~((b == n_chars) & (c == n_chars))  # drop the (last, EOS, EOS) filler
        tri, counts = np.unique((a * V1 + b)[keep] * V1 + c[keep], return_counts=True)
        ctx = tri // V1
        ctx_keys, first, ctx_types = np.unique(ctx, return_index=True, return_counts=True)
        ctx_total = np.add.reduceat(counts, first)
        lam = DISCOUNT * ctx_types / ctx_total
        sel = ctx_total >= min_count
        ck, cl = ctx_keys[sel], np.log(lam[sel])
        pos = np.searchsorted(ctx_keys, ctx)
        store = counts >= min_count
        lower = bigram.score(ctx[store] % V1, tri[store] % V1)
        p = (counts[store] - DISCOUNT) / ctx_total[pos[store]] + lam[pos[store]] * np.exp(lower)
        return cls(bigram, tri[store], np.log(p), ck, cl)

    def score3(self, prev2: np.ndarray, prev: np.ndarray, nxt: np.ndarray) -> np.ndarray:
        V1 = self.V + 1
        ctx = prev2.astype(np.int64) * V1 + prev
        key = ctx * V1 + nxt
        pos = np.searchsorted(self.keys, key).clip(max=len(self.keys) - 1)
        hit = self.keys[pos] == key
        cpos = np.searchsorted(self.ctx_keys, ctx).clip(max=len(self.ctx_keys) - 1)
        lam = np.where(self.ctx_keys[cpos] == ctx, self.ctx_backoff[cpos], 0.0)
        return np.where(hit, self.logp[pos], lam + self.bigram.score(prev, nxt))

    def state(self) -> dict:  # compact: a key is (context < (V+1)^2: uint32, next: uint16)
        V1 = self.V + 1
        return {"bigram": self.bigram.state(), "ctx": (self.keys // V1).astype(np.uint32),
                "next": (self.keys % V1).astype(np.uint16), "logp": self.logp.astype(np.float16),
                "ctx_keys": self.ctx_keys.astype(np.uint32), "ctx_backoff": self.ctx_backoff.astype(np.float16)}

    @classmethod
    def from_state(cls, st: dict) -> "Trigram":
        bigram = Bigram.from_state(st["bigram"])
        keys = st["ctx"].astype(np.int64) * (bigram.V + 1) + st["next"]
        return cls(bigram, keys, st["logp"], st["ctx_keys"].astype(np.int64), st["ctx_backoff"])


class Lexicon:
    """Words (2-4 hanzi) with a bonus for completing one in the beam: the word's association
    log P(word) - sum log P(hanzi) from jieba's word counts (a 60 M-word corpus, MIT), i.e. what a
    big word-segmented corpus knows beyond our 9 M-hanzi training text."""

    def __init__(self, bonus: dict[str, float]):
        self.bonus = bonus

    @classmethod
    def from_jieba(cls, min_count: int = 5, cap: float = 12.0) -> "Lexicon":
        import math
        import os

        import jieba

        freq = {}
        with open(os.path.join(os.path.dirname(jieba.__file__), "dict.txt"), encoding="utf-8") as f:
            for line in f:
                parts = line.split(" ")
                if len(parts) >= 2:
                    freq[parts[0]] = int(parts[1])
        total = sum(freq.values())
        single = {w: math.log(n / total) for w, n in freq.items() if len(w) == 1}
        out = {}
        for w, n in freq.items():
            if 2 <= len(w) <= 4 and n >= min_count and all(c in single for c in w):
                pmi = math.log(n / total) - sum(single[c] for c in w)
                if pmi > 0:
                    out[w] = min(pmi, cap)
        return cls(out)

    def state(self):
        import torch

        words = list(self.bonus)
        return {"words": torch.frombuffer(bytearray("\n".join(words).encode("utf-8")), dtype=torch.uint8),
                "bonus": torch.tensor([self.bonus[w] for w in words], dtype=torch.float16)}

    @classmethod
    def from_state(cls, st) -> "Lexicon":
        words = st["words"].numpy().tobytes().decode("utf-8").split("\n")
        return cls(dict(zip(words, st["bonus"].float().tolist())))


def pack(model):
    """An n-gram's state as .npz bytes in a uint8 tensor (torch.save pickles numpy arrays and
    bytes with protocol 2, which inflates them by ~40 %)."""
    import torch

    import io

    flat = {}
    for k, v in model.state().items():
        if isinstance(v, dict):
            flat.update({f"bigram.{k2}": np.asarray(v2) for k2, v2 in v.items()})
        else:
            flat[k] = np.asarray(v)
    buf = io.BytesIO()
    np.savez(buf, **flat)
    return torch.frombuffer(bytearray(buf.getvalue()), dtype=torch.uint8)


def load_ngram(packed):
    import io

    if not isinstance(packed, dict):
        with np.load(io.BytesIO(packed.numpy().tobytes())) as z:
            flat = {k: z[k] for k in z.files}
        st = {k: v for k, v in flat.items() if not k.startswith("bigram.")}
        sub = {k[7:]: v for k, v in flat.items() if k.startswith("bigram.")}
        if sub:
            st["bigram"] = sub
        for d in (st, sub):
            if "n_chars" in d:
                d["n_chars"] = int(d["n_chars"])
    else:
        st = packed
    return Trigram.from_state(st) if "bigram" in st else Bigram.from_state(st)


def beam_search(cand: np.ndarray, net_lp: np.ndarray, lm, weight: float, beam: int = 8,
                nbest: int = 1, uni_weight: float = 0.0, prune: float = 12.0, lexicon: Lexicon | None = None,
                lex_weight: float = 0.0, chars: list[str] | None = None) -> list[tuple[list[int], float]]:
    """cand/net_lp [T, M]: per-slot candidate hanzi ids and network log-probs (-inf = none).
    Score: net - uni_weight * log P(hanzi) + weight * log P_ngram. Returns up to `nbest`
    (candidate index per slot, fused score), best first."""
    T, M = cand.shape
    if uni_weight:
        uni = (lm.bigram if hasattr(lm, "bigram") else lm).uni
        net_lp = net_lp - uni_weight * uni[cand]
    beam = max(beam, nbest)
    V = lm.V
    scores = np.zeros(1)
    last, last2 = np.array([V]), np.array([V])
    use_lex = lexicon is not None and lex_weight > 0 and chars is not None
    hist = [""]  # last 3 hanzi of each hypothesis (for the lexicon)
    tri = hasattr(lm, "score3")
    back: list[tuple[np.ndarray, np.ndarray]] = []
    for t in range(T):
        # candidates far below the slot's best cannot win: search only the plausible ones
        keep = np.flatnonzero(net_lp[t] >= net_lp[t].max() - prune)
        m = len(keep)
        c_t = cand[t][keep]
        nxt = np.tile(c_t, len(last))
        if tri:
            trans = lm.score3(np.repeat(last2, m), np.repeat(last, m), nxt).reshape(len(last), m)
        else:
            trans = lm.score(np.repeat(last, m), nxt).reshape(len(last), m)
        total = scores[:, None] + net_lp[t][keep][None, :] + weight * trans
        if use_lex:
            words = lexicon.bonus
            for i, h in enumerate(hist):
                if h:
                    for j, c in enumerate(c_t):
                        ch = chars[c]
                        b = max(words.get(h[-1:] + ch, 0.0), words.get(h[-2:] + ch, 0.0) if len(h) > 1 else 0.0,
                                words.get(h + ch, 0.0) if len(h) > 2 else 0.0)
                        if b:
                            total[i, j] += lex_weight * b
        flat = total.ravel()
        k = min(beam, flat.size)
        top = np.argpartition(-flat, k - 1)[:k] if k < flat.size else np.arange(flat.size)
        top = top[np.argsort(-flat[top])]
        src, pick = top // m, keep[top % m]
        back.append((src, pick))
        scores, last2, last = flat[top], last[src], cand[t][pick]
        if use_lex:
            hist = [(hist[i] + chars[c])[-3:] for i, c in zip(src, last)]
    end = np.full(len(last), V)
    scores = scores + weight * (lm.score3(last2, last, end) if tri else lm.score(last, end))
    order = np.argsort(-scores)[:nbest]
    out = []
    for b in order:
        path, i = [], int(b)
        for src, pick in reversed(back):
            path.append(int(pick[i]))
            i = int(src[i])
        out.append((path[::-1], float(scores[b])))
    return out
