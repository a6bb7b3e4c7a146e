"""Incoming audio -> 16 kHz float32, packet by packet, independent of how packets are split.

Clients send 8-48 kHz int16 or float32 in packets of any size. torchaudio's sinc resampler maps
each block of `orig/g` input samples to `new/g` output samples (g = gcd); we resample whole
blocks with a fixed margin of context on both sides and keep only the middle, so the output is
the same whether the audio came in one piece or in 1,000 packets. The price is `margin` input
samples of delay (a few ms), released by `flush()` at end of input.
"""
from __future__ import annotations

import math

import numpy as np

TARGET_SR = 16000
MIN_SR, MAX_SR = 8000, 48000


class AudioFormatError(ValueError):
    """Audio that cannot be used: wrong sample rate, format, byte count or values."""


def decode_pcm(data: bytes, fmt: str) -> np.ndarray:
    """Bytes of one packet -> float32 samples in [-1, 1] (little-endian pcm_s16le or float32)."""
    if fmt == "pcm_s16le":
        if len(data) % 2:
            raise AudioFormatError(f"pcm_s16le packet has an odd byte count ({len(data)})")
        return np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0
    if fmt == "float32":
        if len(data) % 4:
            raise AudioFormatError(f"float32 packet byte count {len(data)} is not a multiple of 4")
        x = np.frombuffer(data, dtype="<f4")
        return to_float32(x)
    raise AudioFormatError(f"unknown audio format {fmt!r} (use pcm_s16le or float32)")


def to_float32(samples) -> np.ndarray:
    """Any 1-D array of int16 or float samples -> finite float32 in [-1, 1]."""
    x = np.asarray(samples)
    if x.ndim != 1:
        if x.ndim == 2 and 1 in x.shape:
            x = x.reshape(-1)
        else:
            raise AudioFormatError(f"audio must be mono (a 1-D array), got shape {x.shape}")
    if x.dtype == np.int16:
        return x.astype(np.float32) / 32768.0
    if not np.issubdtype(x.dtype, np.floating):
        raise AudioFormatError(f"audio samples must be int16 or float, not {x.dtype}")
    x = x.astype(np.float32, copy=True)
    bad = ~np.isfinite(x)
    if bad.any():
        x[bad] = 0.0  # NaN/inf samples become silence rather than poisoning the model
    return np.clip(x, -1.0, 1.0, out=x)


class StreamResampler:
    """Streaming sample-rate conversion to 16 kHz with torchaudio, exact across packet splits."""

    def __init__(self, sample_rate: int):
        if isinstance(sample_rate, bool) or not isinstance(sample_rate, int) \
                or not MIN_SR <= sample_rate <= MAX_SR:
            raise AudioFormatError(f"sample_rate must be an integer in [{MIN_SR}, {MAX_SR}] Hz, "
                                   f"got {sample_rate!r}")
        self.sr = sample_rate
        g = math.gcd(sample_rate, TARGET_SR)
        self.orig, self.new = sample_rate // g, TARGET_SR // g
        # torchaudio's kernel reaches ceil(6 * orig / (0.99 * min(orig, new))) input samples each side
        width = math.ceil(6 * self.orig / (0.99 * min(self.orig, self.new))) + 1
        self.margin = self.orig * math.ceil(max(width, 32) / self.orig)  # whole blocks of context
        self.buf = np.zeros(self.margin, dtype=np.float32)  # left context starts as silence
        self._rs = None

    def accept(self, x: np.ndarray) -> np.ndarray:
        if self.sr == TARGET_SR:
            return x
        self.buf = np.concatenate([self.buf, x])
        usable = self.buf.size - 2 * self.margin              # samples with full context both sides
        blocks = usable // self.orig
        if blocks <= 0:
            return np.zeros(0, dtype=np.float32)
        return self._convert(blocks * self.orig)

    def flush(self) -> np.ndarray:
        """Convert what is left (right context is silence), as the offline resampler would."""
        if self.sr == TARGET_SR:
            return np.zeros(0, dtype=np.float32)
        rest = self.buf.size - self.margin
        if rest <= 0:
            return np.zeros(0, dtype=np.float32)
        total_in = rest
        n_blocks = math.ceil(rest / self.orig)
        pad = n_blocks * self.orig + self.margin - rest
        self.buf = np.concatenate([self.buf, np.zeros(pad, dtype=np.float32)])
        out = self._convert(n_blocks * self.orig)
        keep = math.ceil(total_in * self.new / self.orig)
        return out[:keep]

    def _convert(self, n_in: int) -> np.ndarray:
        import torch

        if self._rs is None:  # transforms.Resample computes its sinc kernel once
            import torchaudio.transforms as T
            self._rs = T.Resample(self.orig, self.new)
        window = self.buf[:self.margin + n_in + self.margin]
        with torch.no_grad():
            y = self._rs(torch.from_numpy(np.ascontiguousarray(window))).numpy()
        lo = self.margin // self.orig * self.new
        out = y[lo:lo + n_in // self.orig * self.new].astype(np.float32)
        self.buf = self.buf[n_in:]  # keep `margin` of left context
        return out
