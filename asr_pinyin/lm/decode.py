"""`LanguageModel`: load a checkpoint and convert syllable slots to text (public API).

The network scores every slot at once (no autoregression), so a conversion costs one encoder
pass; inputs longer than the model's positions are decoded in overlapping windows. Sentence
n-best is the k-best combination of per-slot alternatives; hotwords bias logits before softmax.
"""
from __future__ import annotations

import heapq
import math
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .candidates import CandidateTable, HeadBlocks, candidate_scores
from .config import ModelConfig
from .hotwords import compile_hotwords, match_hotwords
from .itn import itn
from .model import PinyinLM
from .ngram import Bigram, Lexicon, beam_search_batch, load_ngram, unpack
from .scoring import encode_groups, group_tensors, slot_ids, slot_tensors, windows
from .slots import LMInputError, Slot, to_slots
from .vocab import PUNCT

DEFAULT_PATH = Path(__file__).resolve().parents[2] / "models" / "lm" / "lm.pt"
N_ALT = 5  # alternatives kept per character
N_CAND = 20  # network candidates per slot searched with the n-gram (toneless: top-20 holds the truth 97.5 %)
CHUNK = 256  # inputs per chunk of a large batch


def batch_slots(inputs, hotwords, nbest: int, toneless: bool) -> tuple[list[Slot], tuple]:
    """`convert_batch`'s arguments checked and normalised: (slots per input, compiled hotwords)."""
    if not isinstance(nbest, int) or not 1 <= nbest <= 100:
        raise LMInputError(f"nbest must be an integer from 1 to 100, not {nbest!r}")
    if not isinstance(inputs, (list, tuple)) or not inputs:
        raise LMInputError("convert_batch takes a non-empty list of inputs")
    return [to_slots(x, toneless) for x in inputs], compile_hotwords(hotwords)


@dataclass
class CharResult:
    hanzi: str
    pinyin: str  # the slot's syllable this hanzi was read as (of several acoustic alternatives)
    confidence: float
    alternatives: list[tuple[str, float]]  # (hanzi, probability), best first, includes the choice
    punct: str = ""  # punctuation the model puts after this hanzi

    def __iter__(self):  # (hanzi, pinyin, confidence, alternatives) unpacking
        return iter((self.hanzi, self.pinyin, self.confidence, self.alternatives))


@dataclass
class Conversion:
    text: str  # hanzi + punctuation, numbers as digits (ITN)
    chars: list[CharResult]  # one per input slot
    nbest: list[tuple[str, float]] = field(default_factory=list)  # (text, log-probability), best first
    raw_text: str = ""  # before ITN
    stable: int = 0  # streaming: how many leading chars are fixed (will not be revised)


def _bf16_ok(device) -> bool:
    """bf16 matmuls where they are fast (CUDA, CPUs with AVX512-BF16); same accuracy on dev."""
    if device.type == "cuda":
        return True
    check = getattr(torch.cpu, "_is_avx512_bf16_supported", None)
    return bool(check and check())


class LanguageModel:
    def __init__(self, model: PinyinLM, chars: list[str], device=None, bf16: bool = False,
                 ngram: Bigram | None = None, ngram_weight: float = 0.5, uni_weight: float = 0.0):
        self.model = model.eval()
        self.ngram, self.ngram_weight, self.uni_weight = ngram, ngram_weight, uni_weight
        self.lexicon, self.lex_weight = None, 0.0
        self.chars = chars
        self.char_id = {c: i for i, c in enumerate(chars)}
        self._char_array = np.array(chars, dtype=object)
        self.device = device or torch.device("cpu")
        self.bf16 = bf16
        self.adapters: dict[str, dict] = {}  # name -> {"ngram": mixed n-gram or None, "path": ...}
        self._fingerprint: str | None = None
        self._cands = None  # candidates.CandidateTable, built on first use
        self._heads: dict = {}  # adapter name (None: base) -> hanzi head (weight, bias)
        self._fast: PinyinLM | None = None  # bf16 copy of the base network (see _bf16_model)
        self._int8 = None  # the base network's int8 encoder (traced), when `int8` is set
        self.int8 = False

    # ---- domain adapters -----------------------------------------------------------------
    @property
    def domains(self) -> frozenset[str]:
        return frozenset(self.adapters)

    def add_adapter(self, name: str, path: str | Path, ngram_mix: float | None = None) -> dict:
        """Load a LoRA domain adapter (from `finetune-lm --method lora`) next to the base weights.

        The base model is not reloaded or changed; `convert_slots(..., domain=name)` uses it.
        `ngram_mix` overrides the weight of the adapter's domain n-gram (0: network adapter only)."""
        from asr_pinyin.finetune.lora import AdapterError, fingerprint, load_adapter

        from .ngram import MixedNgram

        if name in self.adapters:
            raise AdapterError(f"adapter {name!r} is already loaded")
        if self._fingerprint is None:
            self._fingerprint = fingerprint(self.model)
        ck = load_adapter(self.model, path, name, "lm", base=self._fingerprint)
        self.model.to(self.device)
        mixed = None
        mix = float(ck.get("ngram_mix", 0.5) if ngram_mix is None else ngram_mix)
        if ck.get("ngram") is not None and self.ngram is not None and mix > 0:
            mixed = MixedNgram(self.ngram, load_ngram(ck["ngram"]), mix)
        self.adapters[name] = {"ngram": mixed, "path": str(path), "report": ck.get("report")}
        return self.adapters[name]

    @classmethod
    def load(cls, path: str | Path | None = None, device=None, ngram: str | Path | None = None,
             int8: bool | None = None) -> "LanguageModel":
        """A shipped model (`models/lm/lm.pt` when `path` is None) or a training checkpoint;
        `ngram`: a file holding a bigram (from `export-lm`) to use instead of the one inside;
        `int8`: the int8 encoder without an adapter (None: on CPUs where it is measured faster;
        same accuracy as bf16 on dev, BENCHMARKS.md)."""
        from asr_pinyin.device import get_device

        path = Path(path) if path else DEFAULT_PATH
        if not path.exists():
            raise FileNotFoundError(f"language model not found: {path} (train one with `asr-pinyin train-lm`)")
        ck = torch.load(path, map_location="cpu", weights_only=False)
        model = PinyinLM(ModelConfig(**ck["model_cfg"]), len(ck["chars"]), ck["prior"])
        model.load_state_dict({k: v.float() for k, v in ck["state"].items()})
        device = device or get_device()
        lex = ck.get("lexicon")
        ng = ck.get("ngram")
        if ngram:
            ng = torch.load(ngram, map_location="cpu", weights_only=False)["ngram"]
        out = cls(model.to(device), ck["chars"], device, bf16=_bf16_ok(device), ngram=load_ngram(ng) if ng is not None else None,
                   ngram_weight=float(ck.get("ngram_weight", 0.5)), uni_weight=float(ck.get("uni_weight", 0.0)))
        if lex is not None:
            out.lexicon, out.lex_weight = Lexicon.from_state(unpack(lex)), float(ck.get("lex_weight", 0.0))
        # the fast copies are made before any adapter is injected into the fp32 model
        if int8 is None:
            from .int8 import int8_pays_off

            int8 = device.type == "cpu" and int8_pays_off(out.bf16)
        out.int8 = bool(int8)
        if out.int8 or out.bf16:
            out._hidden(None)  # the int8 or bf16 copy, made now
        return out

    # ---- network scores ------------------------------------------------------------------
    def _tensors(self, batch: list[list[Slot]]):
        return slot_tensors(batch, self.device)

    def _bf16_model(self) -> PinyinLM:
        """A bf16 copy of the base network for inference without an adapter (made once).

        Autocast re-casts every fp32 weight to bf16 on each call: for a 30-syllable streaming
        update that was ~16 % of the encoder's CPU time. Adapters run on the fp32 model (their
        LoRA layers and the base fingerprint belong to it)."""
        if self._fast is None:
            import copy

            self._fast = copy.deepcopy(self.model).to(torch.bfloat16).eval()
            self._fast.prior_table = self.model.prior_table  # unused by hidden(); no second copy
        return self._fast

    def _blocks(self, domain: str | None) -> HeadBlocks:
        """The hanzi head by syllable rows with adapter `domain` folded in (cached; the caller
        has made that adapter active)."""
        if domain not in self._heads:
            head = self.model.char_head
            with torch.no_grad():
                eye = torch.eye(self.model.cfg.d_out, device=self.device)
                bias = head(torch.zeros(1, self.model.cfg.d_out, device=self.device))[0]
                weight = (head(eye) - bias).t().float().cpu().contiguous()
            self._heads[domain] = HeadBlocks(self._cands_table(), weight, bias.float().cpu())
        return self._heads[domain]

    def _hidden(self, domain: str | None):
        """The encoder function for `domain` (int8 traced, bf16 copy, or the model)."""
        if domain is None and self.int8 and self.device.type == "cpu":
            if self._int8 is None:
                from .int8 import Int8Encoder, traced

                self._int8 = traced(Int8Encoder(self.model))
            return self._int8
        if domain is None and self.bf16:
            fast = self._bf16_model()
            return lambda tonal, base, prob: fast.hidden(tonal, base, prob.to(torch.bfloat16))

        def hidden(tonal, base, prob):
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
                return self.model.hidden(tonal, base, prob)
        return hidden

    def _encode(self, batch: list[list[Slot]], domain: str | None = None):
        """Encoder outputs of a batch (windows of long inputs, length groups)."""
        pieces, where = windows(batch, self.model.cfg.max_len)
        groups = group_tensors(pieces, self.device)
        return pieces, where, encode_groups(self._hidden(domain), groups, PinyinLM.prior_rows)

    @torch.no_grad()
    def _scores(self, batch: list[list[Slot]], domain: str | None = None):
        """Per input: candidate hanzi ids [T,C], their logits (network + log prior) [T,C] (-inf:
        padding) and punct log-probs [T,P] (see candidates.py)."""
        pieces, where, groups = self._encode(batch, domain)
        blocks = self._blocks(domain)
        # candidates of all groups at once: fewer, larger per-row products
        ids, logits = candidate_scores(torch.cat([g.h for g in groups]), torch.cat([g.rows for g in groups]),
                                       torch.cat([g.logp for g in groups]), blocks)
        parts: list[list] = [[] for _ in batch]
        off = 0
        for g in groups:
            for r, j in enumerate(g.pieces):
                i, start, lo, hi = where[j]
                parts[i].append((start + lo, ids[off + lo:off + hi], logits[off + lo:off + hi], g.punct[r, lo:hi]))
                off += len(pieces[j])
        out = []
        for ps in parts:
            if len(ps) == 1:
                out.append([ps[0][1], ps[0][2], ps[0][3]])
                continue
            ps.sort(key=lambda x: x[0])
            out.append([torch.cat([p[1] for p in ps]), torch.cat([p[2] for p in ps]), torch.cat([p[3] for p in ps])])
        return out

    # ---- conversion ----------------------------------------------------------------------
    def convert(self, inp, hotwords=None, nbest: int = 1, toneless: bool = False, itn_numbers: bool = True,
                punctuation: bool = True) -> Conversion:
        """Pinyin text, a syllable list or acoustic slots -> `Conversion` (see module doc)."""
        return self.convert_batch([inp], hotwords, nbest, toneless, itn_numbers, punctuation)[0]

    def convert_batch(self, inputs: list, hotwords=None, nbest: int = 1, toneless: bool = False,
                      itn_numbers: bool = True, punctuation: bool = True) -> list[Conversion]:
        return self.convert_slots(*batch_slots(inputs, hotwords, nbest, toneless), nbest, itn_numbers, punctuation)

    def convert_slots(self, batch: list[list[Slot]], hws=(), nbest: int = 1, itn_numbers: bool = True,
                      punctuation: bool = True, fast: bool = False, domain: str | None = None) -> list[Conversion]:
        """Already normalised slots (`slots.to_slots`) and compiled hotwords -> conversions.
        `fast`: a narrower beam without the word bonus (streaming partials); `domain`: the name
        of a loaded adapter (None: the base model)."""
        from asr_pinyin.finetune.lora import AdapterError, use_adapter

        if domain is not None and domain not in self.adapters:
            raise AdapterError(f"unknown domain adapter {domain!r} (loaded: {sorted(self.adapters) or 'none'})")
        ngram = self.ngram if domain is None else self.adapters[domain]["ngram"] or self.ngram
        search = (nbest, itn_numbers, punctuation, fast, ngram)
        with use_adapter(self.model, domain) if domain is not None else nullcontext():
            if len(batch) <= CHUNK:
                return self._search(batch, self._score_chunk(batch, hws, domain), *search)
            # a large batch: chunks of similar length (short beam searches, little padding,
            # bounded memory). A worker thread that searched one chunk while this one encoded
            # the next measured no faster with torch's default 2 threads here (1.13x with 1).
            order = sorted(range(len(batch)), key=lambda i: len(batch[i]))
            done: list[Conversion] = []
            for k in range(0, len(order), CHUNK):
                chunk = [batch[i] for i in order[k:k + CHUNK]]
                done.extend(self._search(chunk, self._score_chunk(chunk, hws, domain), *search))
        out: list[Conversion] = [None] * len(batch)  # type: ignore[list-item]
        for i, conv in zip(order, done):
            out[i] = conv
        return out

    def _score_chunk(self, batch, hws, domain) -> list[tuple]:
        """The torch part: network scores, hotword biases, top candidates (see `_prepare`)."""
        return [self._prepare(slots, *sc, hws) for slots, sc in zip(batch, self._scores(batch, domain))]

    def _search(self, batch, preps, nbest, itn_numbers, punctuation, fast, ngram) -> list[Conversion]:
        """The numpy and Python part: n-gram beam search and the result objects."""
        paths = [None] * len(batch)
        if ngram is not None:
            M = preps[0][0].shape[1]
            lengths = np.array([len(s) for s in batch])
            cand = np.zeros((len(batch), lengths.max(), M), dtype=np.int64)
            lp = np.full(cand.shape, -np.inf, dtype=np.float32)
            for b, (top_lp, top_id, _, _) in enumerate(preps):
                cand[b, :len(top_id)], lp[b, :len(top_lp)] = top_id, top_lp
            paths = beam_search_batch(cand, lp, lengths, ngram, self.ngram_weight, beam=4 if fast else 8,
                                      nbest=nbest, uni_weight=self.uni_weight,
                                      lexicon=None if fast else self.lexicon, lex_weight=self.lex_weight)
        return [self._finish(slots, prep, path, nbest, itn_numbers, punctuation)
                for slots, prep, path in zip(batch, preps, paths)]

    def _prepare(self, slots, ids, logits, punct, hws):
        """Hotword biases, then the top N_CAND candidates per slot: (log-probs, ids, punct classes, forced)."""
        forced: dict[int, tuple[str, int, str]] = {}  # slot -> (hanzi, phrase start, phrase)
        extra: list[tuple[int, int, float]] = []  # hotword hanzi that are not candidates of their slot
        matches = match_hotwords(hws, [{s.rstrip("12345") for s, _ in slot} for slot in slots]) if hws else ()
        for start, h in matches:
            for j, ch in enumerate(h.text):
                cid = self.char_id.get(ch)
                t = start + j
                if cid is None:
                    forced[t] = (ch, start, h.text)
                    continue
                at = ((ids[t] == cid) & torch.isfinite(logits[t])).nonzero(as_tuple=True)[0]
                if at.numel():
                    logits[t, at[0]] = logits[t, at[0]].clamp(min=-10.0) + h.weight
                else:  # a hotword hanzi is allowed even where the reading table lacks its reading
                    extra.append((t, cid, -10.0 + h.weight))
        if extra:
            ids = F.pad(ids, (0, len(extra)))
            logits = F.pad(logits, (0, len(extra)), value=-math.inf)
            for k, (t, cid, score) in enumerate(extra):
                ids[t, -1 - k], logits[t, -1 - k] = cid, score
        logp = logits.log_softmax(-1)
        top_lp, top = logp.topk(min(N_CAND, logp.shape[-1]), dim=-1)
        top_id = ids.gather(1, top)
        if top.shape[1] < N_CAND:  # every input gets N_CAND columns (the beam search stacks them)
            top_lp = F.pad(top_lp, (0, N_CAND - top.shape[1]), value=-math.inf)
            top_id = F.pad(top_id, (0, N_CAND - top.shape[1]))
        return top_lp.numpy(), top_id.numpy(), punct.argmax(-1).tolist(), forced

    def _finish(self, slots, prep, paths, nbest, itn_numbers, punctuation) -> Conversion:
        top_lp, top_id, pbest, forced = prep
        if paths is None:  # no n-gram: per-slot best, n-best from combinations of alternatives
            paths = [([0] * len(slots), float(top_lp[:, 0].sum()))]
        chars = []
        # whole-sentence numpy, then plain lists: element-wise numpy indexing and per-character
        # list building cost more than the beam search
        T = len(slots)
        pick = np.asarray(paths[0][0][:T])
        at = np.arange(T)
        ids_l = top_id.tolist()
        chosen = self._char_array[top_id[at, pick]].tolist()
        conf_l = np.exp(top_lp[at, pick].astype(np.float64)).tolist()
        alt_names = self._char_array[top_id[:, :N_ALT]].tolist()
        alt_p = np.exp(top_lp[:, :N_ALT].astype(np.float64)).tolist()
        n_alt = np.isfinite(top_lp[:, :N_ALT]).sum(1).tolist()  # topk order: -inf only at the end
        pick_l = pick.tolist()
        for t, slot in enumerate(slots):
            alts = list(zip(alt_names[t], alt_p[t]))[:n_alt[t]]
            hanzi, conf = chosen[t], conf_l[t]
            if pick_l[t] >= N_ALT:
                alts = alts[:N_ALT - 1] + [(hanzi, conf)]
            reading = slot[0][0] if len(slot) == 1 else self._reading(slot, ids_l[t][pick_l[t]])
            chars.append(CharResult(hanzi, reading, conf, alts, PUNCT[pbest[t]] if punctuation else ""))
        for t, (ch, start, phrase) in forced.items():
            # an out-of-vocabulary hanzi is written when the phrase's other hanzi won
            if all(chars[start + j].hanzi == c for j, c in enumerate(phrase) if start + j not in forced):
                chars[t].hanzi, chars[t].confidence = ch, 1.0
                chars[t].alternatives = [(ch, 1.0)] + chars[t].alternatives[:N_ALT - 1]
        raw = "".join(c.hanzi + c.punct for c in chars)
        conv = Conversion(itn(raw) if itn_numbers else raw, chars, [], raw)
        if self.ngram is not None:
            texts = [("".join(self.chars[ids_l[t][i]] + c.punct for t, (i, c) in enumerate(zip(path, chars))), sc)
                     for path, sc in paths]
            texts[0] = (raw, texts[0][1])  # hotword substitutions
        else:
            texts = self._nbest(chars, nbest)
        conv.nbest = [(itn(s) if itn_numbers else s, lp) for s, lp in texts]
        return conv

    def _reading(self, slot: Slot, cid: int) -> str:
        """Which of a slot's syllables the chosen hanzi was read as: the most probable reading,
        p(syllable) * P(hanzi | syllable). So a final's pinyin agrees with its text when the
        language model took an acoustic alternative (a tone the acoustic model got wrong)."""
        table = self._cands_table()
        scores = [table.lookup(PinyinLM.prior_row(*slot_ids(syl)), cid) + math.log(max(p, 1e-30)) for syl, p in slot]
        return slot[max(range(len(slot)), key=scores.__getitem__)][0]

    def _cands_table(self):
        if self._cands is None:
            self._cands = CandidateTable(self.model.prior_table.cpu())
        return self._cands

    @staticmethod
    def _nbest(chars: list[CharResult], k: int) -> list[tuple[str, float]]:
        """k best strings from per-slot alternatives (exact, by lazy best-first expansion).

        Only the k slots whose runner-up is closest can differ in the k best strings, so the
        search runs over those alone and stays cheap for long inputs.
        """
        lps = [[math.log(max(p, 1e-30)) for _, p in c.alternatives] for c in chars]
        best = sum(r[0] for r in lps)
        gaps = sorted((r[0] - r[1], t) for t, r in enumerate(lps) if len(r) > 1)
        pos = sorted(t for _, t in gaps[:k - 1]) if k > 1 else []
        start = (0,) * len(pos)
        heap, seen, out = [(-best, start)], {start}, []
        while heap and len(out) < k:
            neg, idx = heapq.heappop(heap)
            pick = dict(zip(pos, idx))
            out.append(("".join(c.alternatives[pick.get(t, 0)][0] + c.punct for t, c in enumerate(chars)), -neg))
            for j, i in enumerate(idx):
                t = pos[j]
                if i + 1 < len(lps[t]):
                    nxt = idx[:j] + (i + 1,) + idx[j + 1:]
                    if nxt not in seen:
                        seen.add(nxt)
                        heapq.heappush(heap, (neg + lps[t][i] - lps[t][i + 1], nxt))
        return out

    def create_stream(self, hotwords=None, **kw):
        from .stream import LMStream

        return LMStream(self, hotwords=hotwords, **kw)
