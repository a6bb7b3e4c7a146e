"""The acoustic stage for many streams at once: one batched chunk forward, per-stream caches.

`AcousticModel.forward_chunk` (asr_pinyin.acoustic) advances one stream. Here the chunk windows
of all streams in a batch are stacked; each stream keeps its own position offset (RoPE takes
per-stream positions), its own attention cache (left-padded to the longest in the batch and
masked) and its conv cache, so each stream gets what `forward_chunk` alone would give it (the
tests check that against `AcousticStream`). Decoding is the same greedy rule as AcousticStream:
a syllable is fixed once another unit follows; the open one is reported and may still change.

Two passes (`full_final`, on by default): chunks give the partials as the audio arrives; when a
segment ends, its whole feature sequence (kept, at most `max_segment_ms` of the endpointer) runs
once more through the model in full context, and that hypothesis is the final. WeNet's U2 does
the same with attention rescoring. The final then has the full-context accuracy (test SER 18.2 %
instead of 24.9 % with 240 ms chunks; bench/recognizer_accuracy.py). The segment's last job
skips its streaming steps, whose result the full pass replaces, so offline the second pass costs
no measurable compute (0.059 s per audio second either way) and a live final ~30-60 ms.
"""
from __future__ import annotations

import math
import threading
from collections import defaultdict

import numpy as np
import torch
import torch.nn.functional as F

from asr_pinyin.acoustic.decode import BLANK, UNITS, greedy, slot_alternatives
from asr_pinyin.acoustic.frontend import HOP, WIN, StreamingFeatures, features

from asr_pinyin.acoustic.model import rope, rope_angles

from .results import Syllable
from .stages import AmJob


def rope_batch(x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
    """The acoustic model's rotary embedding with positions per batch row: x (B,H,T,Dh), pos (B,T).

    Uses `rope_angles` (float64 angles) so batched streams match `AcousticStream` even hours in.
    """
    cos, sin = rope_angles(pos, x.shape[-1])
    return rope(x, (cos[:, None].to(x.dtype), sin[:, None].to(x.dtype)))


@torch.no_grad()
def forward_chunk_batch(model, windows: torch.Tensor, states: list[dict], keep: int) -> torch.Tensor:
    """(B, T, feat_dim) raw feature windows of B streams -> (B, T', V) log-probs; updates each state."""
    x = model.embed(model.cmvn(windows))
    b, t, d = x.shape
    if t == 0:
        return x.new_zeros(b, 0, model.cfg.vocab_size)
    offsets = torch.tensor([s["offset"] for s in states], device=x.device)
    pos = offsets[:, None] + torch.arange(t, device=x.device)[None]
    for i, layer in enumerate(model.layers):
        att = layer.att
        h = att.h
        x = x + 0.5 * layer.ff1(x)
        q, k, v = att.qkv(layer.norm_att(x)).view(b, t, 3, h, d // h).permute(2, 0, 3, 1, 4)
        q, k = rope_batch(q, pos), rope_batch(k, pos)
        caches = [s["att"][i] for s in states]
        lens = [0 if c is None else c.shape[3] for c in caches]
        tmax = max(lens)
        mask = None
        if tmax == 0:
            kv = torch.stack([k, v])
        else:   # (2, 1, H, L, Dh) per stream -> (2, B, H, tmax, Dh), left-padded where shorter
            if min(lens) < tmax:
                caches = [k.new_zeros(2, 1, h, tmax, d // h) if c is None else
                          F.pad(c, (0, 0, tmax - c.shape[3], 0)) for c in caches]
                short = torch.tensor([tmax - n for n in lens], device=x.device)
                mask = (torch.arange(tmax + t, device=x.device)[None] >= short[:, None])[:, None, None, :]
            kv = torch.cat([torch.cat(caches, 1), torch.stack([k, v])], 3)
        y = F.scaled_dot_product_attention(q, kv[0], kv[1], attn_mask=mask)
        x = x + att.out(y.transpose(1, 2).reshape(b, t, d))
        for j, s in enumerate(states):  # views into this batch's tensor, no copies
            total = lens[j] + t
            n = total if keep < 0 else min(keep, total)
            s["att"][i] = kv[:, j:j + 1, :, tmax + t - n:]
        conv_cache = [s["conv"][i] for s in states]
        cc = None
        if any(c is not None for c in conv_cache):
            zero = x.new_zeros(1, d, layer.conv.k - 1)
            cc = torch.cat([zero if c is None else c for c in conv_cache])
        c, new_cc = layer.conv(layer.norm_conv(x), cc)
        for j, s in enumerate(states):
            s["conv"][i] = new_cc[j:j + 1]
        x = x + c
        x = x + 0.5 * layer.ff2(x)
        x = layer.norm_out(x)
    for s in states:
        s["offset"] += t
    return model.logits(model.final_norm(x)).log_softmax(-1)


# a segment whose peak is under QUIET_PEAK (-12 dBFS, under anything the model trained on but the
# gain augmentation) gets its final from its samples raised to TARGET_PEAK (-6 dBFS), by at most
# MAX_GAIN (+40 dB: a segment of faint noise is not lifted to full scale)
QUIET_PEAK = 10 ** (-12 / 20)
TARGET_PEAK = 10 ** (-6 / 20)
MAX_GAIN = 10 ** (40 / 20)


class SegmentState:
    """One segment's acoustic state: fbank remainder, pending features, caches, greedy decoder."""

    def __init__(self, model, n_mels: int):
        self.frontend = StreamingFeatures(n_mels, model.cfg.pitch_kind)
        self.feats = torch.zeros(0, model.cfg.feat_dim)
        self.model_state = model.init_state()
        self.frames = 0
        self.fixed: list[Syllable] = []
        self.open: list | None = None   # [unit, first frame, last frame, peak log-prob, peak row]
        self.all_feats: list[torch.Tensor] = []   # the segment's features so far (two-pass final)
        self.samples: list[np.ndarray] = []       # and its samples (a quiet segment's final, below)


class BatchedAcoustic:
    """AcousticStage over an asr_pinyin.acoustic AcousticModel (see recognizer.stages)."""

    def __init__(self, model, chunk_ms: int = 240, left_ms: int = 5120, k: int = 5, voices=(),
                 full_final: bool = True):
        self.model = model.eval()
        self.full_final = full_final
        self.device = next(model.parameters()).device
        self.shift = model.frame_shift
        shift_ms = self.shift * 1000
        self.chunk = max(1, round(chunk_ms / shift_ms))                 # output frames per step
        self.keep = -1 if left_ms < 0 else self.chunk * max(0, math.ceil(left_ms / (shift_ms * self.chunk)))
        self.k = k
        sub = model.subsample
        self.window = (self.chunk - 1) * sub.stride + sub.context      # fbank frames per step
        self.advance = self.chunk * sub.stride
        self.chunk_samples = self.advance * HOP
        self.first_chunk_samples = (self.window - 1) * HOP + WIN
        self.chunk_ms = round(self.chunk * shift_ms)
        self._voices = frozenset(voices)
        self.voice_files: dict[str, str] = {}
        # adding a voice injects LoRA layers into the shared model: never while a batch runs
        self._model_lock = threading.Lock()

    @property
    def voices(self) -> frozenset[str]:
        return self._voices | frozenset(self.voice_files)

    def warm_up(self) -> None:
        """One throwaway segment of quiet noise, so the first real stream does not pay lazy imports
        and first-call kernel set-up (first chunk 0.046 -> 0.015 s, +0.05 s of load: bench/am_first_chunk.py)."""
        noise = np.random.default_rng(0).normal(0.0, 1e-3, self.first_chunk_samples).astype(np.float32)
        state = self.new_state()
        self.step_batch([AmJob(state, noise, last=False)])                   # a streaming step
        self.step_batch([AmJob(state, np.zeros(0, np.float32), last=True)])  # the segment's end

    def add_voice(self, name: str, path) -> None:
        """Load a LoRA voice adapter (finetune-am, enroll) next to the shared base weights."""
        from asr_pinyin.finetune.lora import AdapterError, load_adapter

        if name in self.voice_files:
            raise AdapterError(f"voice {name!r} is already loaded")
        with self._model_lock:
            load_adapter(self.model, path, name, "am")
            self.model.to(self.device)
            self.voice_files[name] = str(path)

    def new_state(self, voice: str | None = None) -> SegmentState:
        return SegmentState(self.model, self.model.cfg.n_mels)

    def step_batch(self, jobs: list[AmJob]) -> list[list[Syllable]]:
        with self._model_lock:
            return self._step_batch(jobs)

    def _step_batch(self, jobs: list[AmJob]) -> list[list[Syllable]]:
        # 1. features and the windows each stream can run now (rounds: r-th window of each)
        rounds: dict[tuple[int, int, str], list[tuple[SegmentState, torch.Tensor]]] = defaultdict(list)
        for job in jobs:
            s = job.state
            new = s.frontend.accept(job.samples)
            if self.full_final:
                s.all_feats.append(new)
                s.samples.append(job.samples)
                if job.last:     # the full pass gives this segment's result: no streaming steps
                    continue
            s.feats = torch.cat([s.feats, new])
            r, voice = 0, job.voice or ""
            while s.feats.shape[0] >= self.window:
                rounds[(r, self.window, voice)].append((s, s.feats[: self.window]))
                s.feats = s.feats[self.advance:]
                r += 1
            if job.last and s.feats.shape[0]:
                rounds[(r, s.feats.shape[0], voice)].append((s, s.feats))
                s.feats = s.feats[:0]
        # 2. one forward per round, window length and voice adapter, 3. greedy decoding in stream order
        from asr_pinyin.finetune.lora import use_adapter

        for key in sorted(rounds):
            group = rounds[key]
            windows = torch.stack([w for _, w in group]).to(self.device)
            with use_adapter(self.model, key[2] or None):
                lp = forward_chunk_batch(self.model, windows, [s.model_state for s, _ in group], self.keep)
            lp = lp.float().cpu()
            for (s, _), rows in zip(group, lp):
                self._decode(s, rows)
        ends = [job for job in jobs if job.last and self.full_final]
        full = dict(zip(map(id, ends), self._full_pass(ends)))
        out = []
        for job in jobs:
            s = job.state
            if id(job) in full:
                out.append(full[id(job)])
                continue
            if job.last and s.open:
                s.fixed.append(self._syllable(s))
                s.open = None
            out.append(s.fixed + ([self._syllable(s)] if s.open else []))
        return out

    def _full_pass(self, jobs: list[AmJob]) -> list[list[Syllable]]:
        """Ending segments -> their full-context hypotheses (one padded forward per voice)."""
        from asr_pinyin.acoustic.evaluate import forward_full
        from asr_pinyin.finetune.lora import use_adapter

        out: list[list[Syllable]] = [[] for _ in jobs]
        by_voice: dict[str, list[int]] = defaultdict(list)
        for i, job in enumerate(jobs):
            by_voice[job.voice or ""].append(i)
        for voice, idx in by_voice.items():
            feats = [self._final_features(jobs[i].state) for i in idx]
            with use_adapter(self.model, voice or None):
                lps = forward_full(self.model, feats)
            for i, lp in zip(idx, lps):
                jobs[i].state.all_feats, jobs[i].state.samples = [], []
                out[i] = [Syllable(s.syllable, s.start, s.end, s.confidence, s.alternatives)
                          for s in greedy(lp, self.shift, self.k)]
        return out

    def _final_features(self, s: SegmentState) -> torch.Tensor:
        """The full pass's input: the segment's streamed features, or for a quiet segment (peak
        under QUIET_PEAK) the features of its samples raised to a TARGET_PEAK peak (at most
        MAX_GAIN). The model heard speech peaking at -9..-1 dBFS, and a level is not a shift CMVN
        removes (the log-mel floor stays where it is): speech at -24 / -30 / -36 dB read with SER
        26.7 / 48.8 / 79.9 % against 12.8 % (BENCHMARKS.md, "what the noisy test costs")."""
        peak = max((float(np.abs(x).max()) for x in s.samples if x.size), default=0.0)
        if not 0.0 < peak < QUIET_PEAK:      # also NaN: the frontend sanitizes it
            return torch.cat(s.all_feats)
        gain = min(MAX_GAIN, TARGET_PEAK / peak)
        return features(np.concatenate(s.samples) * np.float32(gain), self.model.cfg.n_mels,
                        self.model.cfg.pitch_kind)

    def _decode(self, s: SegmentState, lp: torch.Tensor) -> None:
        for u, row in zip(lp.argmax(-1).tolist(), lp):
            if s.open and (u != s.open[0] or u == BLANK):
                s.fixed.append(self._syllable(s))
                s.open = None
            if u != BLANK:
                p = float(row[u])
                if s.open is None:
                    s.open = [u, s.frames, s.frames, p, row]
                s.open[2] = s.frames
                if p > s.open[3]:
                    s.open[3:] = [p, row]
            s.frames += 1

    def _syllable(self, s: SegmentState) -> Syllable:
        u, first, last, p, row = s.open
        return Syllable(UNITS[u], round(first * self.shift, 3), round((last + 1) * self.shift, 3),
                        round(math.exp(p), 4), slot_alternatives(row, self.k))
