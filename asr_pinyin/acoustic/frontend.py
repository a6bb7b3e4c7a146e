"""Features: 80-dim Kaldi log-mel fbank (25 ms window, 10 ms shift) and global CMVN.

Offline and streaming share one function, `fbank()`: each Kaldi frame depends only on its own
400 samples (snip_edges, no dither in training or inference), so the streaming path just keeps the samples
that the next frame still needs and computes the same frames, whatever the chunking.
"""
from __future__ import annotations

import numpy as np
import torch

SAMPLE_RATE = 16000
WIN = 400      # 25 ms
HOP = 160      # 10 ms
# Log-mel floor (int16-scaled power). Digital silence would give log(float eps) = -15.9, far
# below any recorded or synthesized quiet (a 1-LSB noise floor is ~ +2..5); clamping makes
# zeros look like the quiet the model was trained on. Speech is far above it.
LOG_FLOOR = 0.0


def sanitize(samples) -> torch.Tensor:
    """Any 1-D float audio -> finite float32 tensor in [-1, 1] (NaN -> 0, +-inf -> +-1)."""
    x = torch.as_tensor(np.asarray(samples, dtype=np.float32)).reshape(-1)
    if not torch.isfinite(x).all():
        x = torch.nan_to_num(x, nan=0.0, posinf=1.0, neginf=-1.0)
    return x.clamp_(-1.0, 1.0)


def num_frames(n_samples: int) -> int:
    return 0 if n_samples < WIN else (n_samples - WIN) // HOP + 1


def fbank(samples, n_mels: int = 80, dither: float = 0.0) -> torch.Tensor:
    """float audio in [-1, 1] at 16 kHz -> (frames, n_mels) log-mel, Kaldi-compatible scale."""
    from torchaudio.compliance import kaldi

    x = sanitize(samples)
    if num_frames(x.numel()) == 0:
        return torch.full((0, n_mels), LOG_FLOOR)
    feats = kaldi.fbank(x.unsqueeze(0) * 32768.0, num_mel_bins=n_mels, frame_length=25.0,
                        frame_shift=10.0, dither=dither, energy_floor=0.0,
                        sample_frequency=SAMPLE_RATE)
    return feats.clamp_min_(LOG_FLOOR)


class StreamingFbank:
    """Incremental fbank: `accept(samples)` returns the frames completed so far (same as offline)."""

    def __init__(self, n_mels: int = 80):
        self.n_mels = n_mels
        self.buf = torch.zeros(0)

    def accept(self, samples) -> torch.Tensor:
        self.buf = torch.cat([self.buf, sanitize(samples)])
        n = num_frames(self.buf.numel())
        if n == 0:
            return torch.zeros(0, self.n_mels)
        feats = fbank(self.buf[: (n - 1) * HOP + WIN], self.n_mels)
        self.buf = self.buf[n * HOP:]
        return feats


class GlobalCMVN(torch.nn.Module):
    """(x - mean) / std with statistics from the training set; stored in the checkpoint."""

    def __init__(self, n_mels: int = 80):
        super().__init__()
        self.register_buffer("mean", torch.zeros(n_mels))
        self.register_buffer("istd", torch.ones(n_mels))

    def set_stats(self, total: torch.Tensor, total_sq: torch.Tensor, count: int) -> None:
        mean = total / max(count, 1)
        var = (total_sq / max(count, 1) - mean ** 2).clamp_min(1e-6)
        self.mean.copy_(mean)
        self.istd.copy_(var.rsqrt())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) * self.istd


def accumulate_stats(feature_iter) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Sum, sum of squares and frame count over an iterable of (frames, n_mels) tensors."""
    total = total_sq = None
    count = 0
    for f in feature_iter:
        f = f.double()
        if total is None:
            total, total_sq = torch.zeros(f.shape[1], dtype=torch.float64), torch.zeros(f.shape[1], dtype=torch.float64)
        total += f.sum(0)
        total_sq += (f ** 2).sum(0)
        count += f.shape[0]
    if total is None:
        raise ValueError("no audio to estimate CMVN from")
    return total.float(), total_sq.float(), count
