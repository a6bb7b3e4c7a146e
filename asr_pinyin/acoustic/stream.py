"""`AcousticStream`: feed 16 kHz float32 samples in any pieces, get syllables as they appear.

Memory stays bounded for any stream length: the fbank keeps < 25 ms of samples, the feature
buffer < one chunk, the encoder caches `left` frames per layer, the decoder one open syllable.
Decoding is greedy: a syllable is fixed once a different unit follows it; the one still open
at the end of a chunk is returned too and may be returned again, updated, under the same
`index` (its end time and confidence can still change).

`lookahead_ms` > 0 lets each chunk's frames attend to that much audio after the chunk (right
context, as Emformer's): a syllable cut by a chunk edge is decoded with the rest of its pitch
contour. It adds that much latency; the lookahead frames are computed again with the next chunk.
"""
from __future__ import annotations

import math

import torch

from .decode import BLANK, UNITS, Syllable, slot_alternatives
from .frontend import StreamingFeatures
from .model import AcousticModel


class AcousticStream:
    def __init__(self, model: AcousticModel, chunk_ms: int = 640, left_ms: int = 5120, k: int = 5,
                 lookahead_ms: int = 0):
        self.model = model.eval()
        shift_ms = model.frame_shift * 1000
        self.chunk = max(1, round(chunk_ms / shift_ms))                       # output frames
        self.lookahead = max(0, round(lookahead_ms / shift_ms))               # output frames
        self.keep = -1 if left_ms < 0 else self.chunk * max(0, math.ceil(left_ms / (shift_ms * self.chunk)))
        self.k = k
        sub = model.subsample
        self.window = (self.chunk + self.lookahead - 1) * sub.stride + sub.context   # fbank frames per call
        self.advance = self.chunk * sub.stride
        self.frontend = StreamingFeatures(model.cfg.n_mels, model.cfg.pitch_kind)
        self.feats = torch.zeros(0, model.cfg.feat_dim)
        self.state = model.init_state()
        self.frames = 0                    # output frames decoded so far
        self.count = 0                     # syllables fixed so far
        self.open: list | None = None      # [unit, first frame, last frame, peak log-prob, peak row]
        self.samples = 0

    @property
    def seconds(self) -> float:
        return self.samples / 16000

    def accept_waveform(self, samples) -> list[Syllable]:
        """Add audio; return syllables that are new or updated since the last call."""
        feats = self.frontend.accept(samples)
        self.samples += int(torch.as_tensor(samples).numel())
        self.feats = torch.cat([self.feats, feats])
        out = []
        while self.feats.shape[0] >= self.window:
            out += self._run(self.feats[: self.window], self.chunk)
            self.feats = self.feats[self.advance:]
        return out + self._open_syllable()

    def flush(self) -> list[Syllable]:
        """End of audio: decode what is left and close the open syllable."""
        out = self._run(self.feats) if self.feats.shape[0] else []    # all of it final
        self.feats = self.feats[:0]
        if self.open:
            out.append(self._close())
        return out

    def _run(self, window: torch.Tensor, commit: int | None = None) -> list[Syllable]:
        lp = self.model.forward_chunk(window, self.state, self.keep, commit).cpu()
        out = []
        best, arg = lp.max(-1)
        for t, (p, u) in enumerate(zip(best.tolist(), arg.tolist())):
            row = lp[t]
            if self.open and (u != self.open[0] or u == BLANK):
                out.append(self._close())
            if u != BLANK:
                if self.open is None:
                    self.open = [u, self.frames, self.frames, p, row]
                self.open[2] = self.frames
                if p > self.open[3]:
                    self.open[3:] = [p, row]
            self.frames += 1
        return out

    def _syllable(self) -> Syllable:
        u, first, last, p, row = self.open
        shift = self.model.frame_shift
        return Syllable(UNITS[u], round(first * shift, 3), round((last + 1) * shift, 3),
                        round(math.exp(p), 4), slot_alternatives(row, self.k), self.count)

    def _close(self) -> Syllable:
        s = self._syllable()
        self.open = None
        self.count += 1
        return s

    def _open_syllable(self) -> list[Syllable]:
        return [self._syllable()] if self.open else []
