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


class MixedNgram:
    """Linear interpolation of two n-grams over the same hanzi (a domain adapter's n-gram with the
    general one): P(c | h) = (1 - w) P_general(c | h) + w P_domain(c | h)."""

    def __init__(self, general, domain, weight: float):
        if general.V != domain.V:
            raise ValueError("the two n-grams cover different hanzi vocabularies")
        self.V = general.V
        self.a, self.b = general, domain
        self.la, self.lb = np.float32(np.log1p(-weight)), np.float32(np.log(weight))
        ga = general.bigram if hasattr(general, "bigram") else general
        gb = domain.bigram if hasattr(domain, "bigram") else domain
        self.bigram = _MixedBigram(ga, gb, self.la, self.lb)

    def score3(self, prev2, prev, nxt):
        a = self.a.score3(prev2, prev, nxt) if hasattr(self.a, "score3") else self.a.score(prev, nxt)
        b = self.b.score3(prev2, prev, nxt) if hasattr(self.b, "score3") else self.b.score(prev, nxt)
        return np.logaddexp(self.la + a, self.lb + b)

    def score(self, prev, nxt):
        return self.bigram.score(prev, nxt)


class _MixedBigram:
    def __init__(self, a, b, la, lb):
        self.V, self.a, self.b, self.la, self.lb = a.V, a, b, la, lb
        self.uni = np.logaddexp(la + a.uni, lb + b.uni).astype(np.float32)

    def score(self, prev, nxt):
        return np.logaddexp(self.la + self.a.score(prev, nxt), self.lb + self.b.score(prev, nxt))


class Lexicon:
    """Words (2-4 hanzi) with a bonus for completing one in the beam: the word's association
    log P(word) - sum log P(hanzi) from jieba's word counts (a 60 M-word corpus, MIT), i.e. what a
    big word-segmented corpus knows beyond our 9 M-hanzi training text. Words are stored as
    sorted integer keys over hanzi ids (base V + 1), one array per length, for vectorised lookup."""

    def __init__(self, keys: dict[int, np.ndarray], bonus: dict[int, np.ndarray], n_chars: int):
        self.keys = {L: np.asarray(k, dtype=np.int64) for L, k in keys.items()}
        self.bonus = {L: np.asarray(v, dtype=np.float32) for L, v in bonus.items()}
        self.V = n_chars

    @classmethod
    def from_jieba(cls, chars: list[str], min_count: int = 5, cap: float = 12.0) -> "Lexicon":
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
        cid = {c: i for i, c in enumerate(chars)}
        V1 = len(chars) + 1
        by_len: dict[int, dict[int, float]] = {2: {}, 3: {}, 4: {}}
        for w, n in freq.items():
            if 2 <= len(w) <= 4 and n >= min_count and all(c in single and c in cid for c in w):
                pmi = math.log(n / total) - sum(single[c] for c in w)
                if pmi > 0:
                    key = 0
                    for c in w:
                        key = key * V1 + cid[c]
                    by_len[len(w)][key] = min(pmi, cap)
        keys = {L: np.array(sorted(d), dtype=np.int64) for L, d in by_len.items()}
        return cls(keys, {L: np.array([by_len[L][k] for k in keys[L]]) for L in keys}, len(chars))

    def lookup(self, hist: list[np.ndarray], nxt: np.ndarray) -> np.ndarray:
        """Bonus of the best word ending with `nxt` after history `hist` = [h1 (last), h2, h3]."""
        V1 = self.V + 1
        out = np.zeros(nxt.shape, dtype=np.float32)
        key = hist[0].astype(np.int64) * V1 + nxt
        for L in (2, 3, 4):
            if L > 2:
                key = key + hist[L - 2].astype(np.int64) * V1 ** (L - 1)
            k = self.keys[L]
            pos = np.searchsorted(k, key).clip(max=len(k) - 1)
            out = np.maximum(out, np.where(k[pos] == key, self.bonus[L][pos], 0.0))
        return out

    def __contains__(self, ids) -> bool:
        V1, key = self.V + 1, 0
        for c in ids:
            key = key * V1 + c
        k = self.keys.get(len(ids))
        return k is not None and len(k) > 0 and k[min(np.searchsorted(k, key), len(k) - 1)] == key

    def state(self) -> dict:
        return {"n_chars": self.V, **{f"keys{L}": self.keys[L] for L in self.keys},
                **{f"bonus{L}": self.bonus[L].astype(np.float16) for L in self.bonus}}

    @classmethod
    def from_state(cls, st: dict) -> "Lexicon":
        return cls({L: st[f"keys{L}"] for L in (2, 3, 4)}, {L: st[f"bonus{L}"] for L in (2, 3, 4)}, int(st["n_chars"]))


def pack(model):
    """A model's `state()` as .npz bytes in a uint8 tensor (torch.save pickles numpy arrays and
    bytes with protocol 2, which inflates them by ~40 %)."""
    import io

    import torch

    flat = {}
    for k, v in model.state().items():
        if isinstance(v, dict):
            flat.update({f"{k}.{k2}": np.asarray(v2) for k2, v2 in v.items()})
        else:
            flat[k] = np.asarray(v)
    buf = io.BytesIO()
    np.savez(buf, **flat)
    return torch.frombuffer(bytearray(buf.getvalue()), dtype=torch.uint8)


def unpack(packed) -> dict:
    import io

    if isinstance(packed, dict):
        return packed
    with np.load(io.BytesIO(packed.numpy().tobytes())) as z:
        flat = {k: z[k] for k in z.files}
    st: dict = {}
    for k, v in flat.items():
        v = int(v) if k.endswith("n_chars") else v
        if "." in k:
            outer, inner = k.split(".", 1)
            st.setdefault(outer, {})[inner] = v
        else:
            st[k] = v
    return st


def load_ngram(packed):
    st = unpack(packed)
    return Trigram.from_state(st) if "bigram" in st else Bigram.from_state(st)


def beam_search_batch(cand: np.ndarray, net_lp: np.ndarray, lengths: np.ndarray, lm, weight: float,
                      beam: int = 8, nbest: int = 1, uni_weight: float = 0.0, prune: float = 12.0,
                      lexicon: Lexicon | None = None, lex_weight: float = 0.0) -> list[list[tuple[list[int], float]]]:
    """Beam search for a batch in lockstep (numpy over [B, beam, M] per step).

    cand/net_lp [B, T, M]: per-slot candidate hanzi ids and network log-probs (-inf = none);
    lengths [B]. Score: net - uni_weight * log P(hanzi) + weight * log P_ngram (+ lex_weight *
    word bonus). Returns per sentence up to `nbest` (candidate index per slot, score), best first.
    """
    B, T, M = cand.shape
    V = lm.V
    base = lm.bigram if hasattr(lm, "bigram") else lm
    if uni_weight:
        net_lp = net_lp - uni_weight * base.uni[cand]
    # candidates far below their slot's best cannot win
    net_lp = np.where(net_lp >= net_lp.max(-1, keepdims=True) - prune, net_lp, -np.inf)
    beam = max(beam, nbest)
    scores = np.full((B, beam), -np.inf)
    scores[:, 0] = 0.0
    h = [np.full((B, beam), V, dtype=np.int64) for _ in range(3)]  # last, second last, third last
    src_hist = np.zeros((T, B, beam), dtype=np.int64)
    pick_hist = np.zeros((T, B, beam), dtype=np.int64)
    tri = hasattr(lm, "score3")
    use_lex = lexicon is not None and lex_weight > 0
    keep_src = np.broadcast_to(np.arange(beam), (B, beam))
    rows = np.arange(B)[:, None]
    min_len = int(lengths.min())
    all_active = min_len == T
    for t in range(T):
        # score only (beam, candidate) pairs that are alive: after pruning a tonal slot keeps ~4
        # of its M candidates and the first step one beam, so most n-gram lookups are skipped
        base_score = scores[:, :, None] + net_lp[:, t, None, :]
        live = np.flatnonzero(np.isfinite(base_score))
        bi, ki = live // (beam * M), live % (beam * M) // M
        c = cand[:, t, :].reshape(-1)[live // (beam * M) * M + live % M]
        p1 = h[0][bi, ki]
        if tri:
            trans = lm.score3(h[1][bi, ki], p1, c)
        else:
            trans = lm.score(p1, c)
        add = weight * trans
        if use_lex:
            add = add + lex_weight * lexicon.lookup([p1, h[1][bi, ki], h[2][bi, ki]], c)
        flat = np.full(B * beam * M, -np.inf)
        flat[live] = base_score.reshape(-1)[live] + add
        flat = flat.reshape(B, beam * M)
        if beam < flat.shape[1]:
            top = np.argpartition(-flat, beam - 1, axis=1)[:, :beam]
        else:
            top = np.broadcast_to(np.arange(flat.shape[1]), (B, flat.shape[1]))
        vals = flat[rows, top]
        order = np.argsort(-vals, axis=1)
        top, new_scores = top[rows, order], vals[rows, order]
        src, pick = top // M, top % M
        last = cand[:, t, :][rows, pick]
        if all_active or t < min_len:
            src_hist[t], pick_hist[t] = src, pick
            h = [last, h[0][rows, src], h[1][rows, src]]
            scores = new_scores
            continue
        active = (t < lengths)[:, None]
        src = np.where(active, src, keep_src)
        src_hist[t], pick_hist[t] = src, pick
        h = [np.where(active, last, h[0]), np.where(active, h[0][rows, src], h[1]),
             np.where(active, h[1][rows, src], h[2])]
        scores = np.where(active, new_scores, scores)
    end = np.full((B, beam), V)
    final = scores + weight * (lm.score3(h[1].ravel(), h[0].ravel(), end.ravel()) if tri
                               else lm.score(h[0].ravel(), end.ravel())).reshape(B, beam)
    out = []
    for b in range(B):
        n = int(lengths[b])
        res = []
        for i in np.argsort(-final[b])[:nbest]:
            if not np.isfinite(final[b, i]):
                break
            path, j = [], int(i)
            for t in range(n - 1, -1, -1):
                path.append(int(pick_hist[t, b, j]))
                j = int(src_hist[t, b, j])
            res.append((path[::-1], float(final[b, i])))
        out.append(res)
    return out


def beam_search(cand: np.ndarray, net_lp: np.ndarray, lm, weight: float, beam: int = 8, nbest: int = 1,
                uni_weight: float = 0.0, prune: float = 12.0, lexicon: Lexicon | None = None,
                lex_weight: float = 0.0, **_) -> list[tuple[list[int], float]]:
    """One sentence: cand/net_lp [T, M] (see `beam_search_batch`)."""
    return beam_search_batch(cand[None], net_lp[None], np.array([len(cand)]), lm, weight, beam, nbest,
                             uni_weight, prune, lexicon, lex_weight)[0]
