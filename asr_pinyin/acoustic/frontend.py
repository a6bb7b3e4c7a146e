"""Features: 80-dim Kaldi log-mel fbank (25 ms window, 10 ms shift), optional pitch, global CMVN.

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


# ---- pitch -----------------------------------------------------------------------------------
# Mandarin tones are pitch contours. In 80 mel bands a 95 -> 80 Hz fall of a male voice moves the
# first harmonic by less than one band, and espeak's tones span only 10-30 Hz (BENCHMARKS.md), so
# the model gets the pitch explicitly, Kaldi-style: voicing strength, log F0 relative to the
# speaker's recent level, and its slope. Written here rather than taken from a library because
# every frame must depend only on past samples (streaming == offline): torchaudio's
# `detect_pitch_frequency` median-smooths over 30 frames both ways and its Kaldi pitch was removed.
PITCH_DIM = 3
PITCH_WIN = 512                 # 32 ms ending where the fbank frame ends: two periods at 62 Hz
PITCH_PAD = PITCH_WIN - WIN     # zeros before the first sample
F0_MIN, F0_MAX = 60.0, 400.0
LAG_MIN, LAG_MAX = int(SAMPLE_RATE / F0_MAX), int(SAMPLE_RATE / F0_MIN)   # 40 .. 266 samples
F0_MIN_V3 = 50.0                # version 3: Kaldi's floor
LAG_MAX_V3 = int(SAMPLE_RATE / F0_MIN_V3)                                   # 320 samples
MEAN_DECAY = 0.99               # speaker level: voicing-weighted moving average, ~1 s memory
PRIOR_LOG_F0, PRIOR_WEIGHT = float(np.log(150.0)), 1.0


def _raw_pitch(padded: torch.Tensor, n: int, version: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Per frame: voicing (peak normalized cross-correlation, 0..1) and log F0 (Hz).

    Versions 1 and 2 take the first local peak within 90 % of the best; in a frame with no
    such peak (the best lies at the lag range's end: an F0 at or under the 60 Hz floor, where a
    low voice's 3rd tone goes) they fall back to lag index 0, a 400 Hz F0 in a voiced frame: a low
    3rd tone read as a high one. Version 3 takes the best lag there and searches down to 50 Hz
    (Kaldi's floor). Measured on espeak random tonal syllables with the true syllable spans
    (an MLP over per-syllable contours, `bench/tone_ceiling.py`, 300 utterances): tone accuracy
    65.7 % with version 2's raw F0, 69.9 % with version 3's (Praat's offline tracker: ~73 %)."""
    c = nccf(padded, n, LAG_MAX_V3 if version >= 3 else LAG_MAX)
    mid = c[:, 1:-1]
    peak = (mid >= c[:, :-2]) & (mid >= c[:, 2:])
    best = mid.max(1, keepdim=True).values
    # first local peak within 90 % of the best: the period, not a multiple of it (octave errors)
    ok = peak & (mid >= 0.9 * best)
    i = ok.double().argmax(1)
    if version >= 3:
        i = torch.where(ok.any(1), i, mid.argmax(1))
    return best[:, 0].clamp(0.0, 1.0).numpy(), peak_log_f0(c, i)


def nccf(padded: torch.Tensor, n: int, lag_max: int) -> torch.Tensor:
    """(n, lags) normalized cross-correlation of each PITCH_WIN window, lags LAG_MIN-1 .. lag_max+1."""
    frames = padded[: (n - 1) * HOP + PITCH_WIN].unfold(0, PITCH_WIN, HOP)[:n].double()
    frames = frames - frames.mean(1, keepdim=True)
    spec = torch.fft.rfft(frames, 2 * PITCH_WIN)
    r = torch.fft.irfft(spec.real ** 2 + spec.imag ** 2, 2 * PITCH_WIN)[:, : lag_max + 2]
    sq = torch.cat([frames.new_zeros(n, 1), (frames ** 2).cumsum(1)], 1)          # (n, W+1)
    lags = torch.arange(lag_max + 2)
    e0 = sq[:, PITCH_WIN - lags]                          # energy of x[0 : W-lag]
    e1 = sq[:, -1:] - sq[:, lags]                         # energy of x[lag : W]
    corr = r / ((e0 * e1).sqrt() + PITCH_WIN * 1e-5)      # quiet frames stay near 0
    return corr[:, LAG_MIN - 1:]


def peak_log_f0(c: torch.Tensor, i: torch.Tensor) -> np.ndarray:
    """log F0 (Hz) of the peak at index `i` of each row of `nccf()`, parabola-interpolated."""
    rows = torch.arange(c.shape[0])
    y0, y1, y2 = c[rows, i], c[rows, i + 1], c[rows, i + 2]
    den = y0 - 2 * y1 + y2
    shift = torch.where(den.abs() > 1e-9, 0.5 * (y0 - y2) / den, torch.zeros_like(den)).clamp(-0.5, 0.5)
    return np.log(SAMPLE_RATE / ((i + LAG_MIN).double() + shift).numpy())


def _leaky_sum(x: np.ndarray, start: float) -> np.ndarray:
    """y[t] = x[t] + MEAN_DECAY * y[t-1], y[-1] = start. A plain loop rather than
    scipy.signal.lfilter: same values, but importing scipy.signal cost ~1 s and ~43 MB of peak RSS in
    every recognizer process (measured), for this one recursion over ~16 frames a call."""
    out, acc = np.empty(len(x)), float(start)
    for i, v in enumerate(x.tolist()):
        acc = v + MEAN_DECAY * acc
        out[i] = acc
    return out


def _speaker_level(voicing: np.ndarray, log_f0: np.ndarray, num0: float, den0: float):
    """The speaker's recent log F0: voicing-weighted moving average with a prior; also the sums."""
    w = voicing ** 2
    num = _leaky_sum(w * log_f0, num0)
    den = _leaky_sum(w, den0)
    return (num + PRIOR_WEIGHT * PRIOR_LOG_F0) / (den + PRIOR_WEIGHT), num[-1], den[-1]


def _pitch_features(voicing: np.ndarray, log_f0: np.ndarray, state: np.ndarray) -> tuple[torch.Tensor, np.ndarray]:
    """Raw pitch -> (n, 3) features; `state` = [weighted sum, weight, previous log F0] carries on."""
    level, num, den = _speaker_level(voicing, log_f0, state[0], state[1])
    prev = np.concatenate([[state[2]], log_f0[:-1]])
    feats = np.stack([voicing, log_f0 - level, (log_f0 - prev) * voicing], 1)
    return torch.from_numpy(feats).float(), np.array([num, den, log_f0[-1]])


# Version 2 (`model.pitch_version = 2`). Version 1 measured on 40 dev utterances: in unvoiced
# frames (34 %) its relative log F0 is the noise's random lag (std 0.73, against 0.26 in voiced
# frames), and 1 % of voiced frames jump an octave, so the slope's std (0.21 per 10 ms) is the
# jumps': after CMVN a real tone slope (median 0.006) is ~0.03 units, invisible. Kaldi smooths its
# pitch with a Viterbi track and interpolates through unvoiced stretches, both looking ahead; here
# causally: the track takes a voiced frame's log F0 after a median of the last 3 voiced values
# (one-frame octave glitches go), holds it through unvoiced frames, and the slope is the track's
# change over 40 ms inside a voiced stretch (0 elsewhere: no jump at a voicing onset), clipped to
# a semitone per 10 ms. Voiced = correlation >= 0.7 (clean dev speech: 62 % of frames).
VOICED = 0.7
SLOPE_SPAN = 4
SLOPE_CLIP = float(np.log(2) / 12)


def held_track(voicing: np.ndarray, log_f0: np.ndarray, held: float = PRIOR_LOG_F0, run: float = 0.0,
               recent: list | None = None):
    """Version 2's log F0 track: a voiced frame's value after a median of the last 3 voiced values,
    held through unvoiced frames. Returns (track, voiced run length per frame) and the carried
    state (held, run, recent voiced values)."""
    recent = list(recent or [])
    track, runs = np.empty(len(voicing)), np.empty(len(voicing))
    for i, (v, lf) in enumerate(zip(voicing.tolist(), log_f0.tolist())):   # sequential: a loop
        if v >= VOICED:
            recent = (recent + [lf])[-3:]
            held = sorted(recent)[1] if len(recent) == 3 else lf
            run += 1
        else:
            run = 0
        track[i], runs[i] = held, run
    return track, runs, held, run, recent


def _pitch_features_v2(voicing: np.ndarray, log_f0: np.ndarray, state: np.ndarray) -> tuple[torch.Tensor, np.ndarray]:
    """Raw pitch -> (n, 3) [voicing, held log F0 - speaker level, slope]; `state` carries on:
    [weighted sum, weight, held, voiced run length, last 2 voiced values, held values of the last
    SLOPE_SPAN frames]."""
    track, runs, held, run, recent = held_track(voicing, log_f0, float(state[2]), float(state[3]),
                                                [float(v) for v in state[4:6] if not np.isnan(v)])
    level, num, den = _speaker_level(voicing, track, state[0], state[1])
    past = np.concatenate([state[6:6 + SLOPE_SPAN], track])                 # oldest first
    slope = np.clip((track - past[: len(track)]) / SLOPE_SPAN, -SLOPE_CLIP, SLOPE_CLIP) * (runs > SLOPE_SPAN)
    feats = np.stack([voicing, track - level, slope], 1)
    recent = ([float("nan")] * 2 + recent)[-2:]
    return torch.from_numpy(feats).float(), np.array([num, den, held, min(run, 1e6), *recent, *past[-SLOPE_SPAN:]])


def pitch_state(version: int = 1) -> np.ndarray:
    if version in (2, 3):
        return np.array([0.0, 0.0, PRIOR_LOG_F0, 0.0, np.nan, np.nan] + [PRIOR_LOG_F0] * SLOPE_SPAN)
    return np.array([0.0, 0.0, PRIOR_LOG_F0])


def _pitch_step(version: int):
    if version not in (1, 2, 3):
        raise ValueError(f"pitch features version must be 1, 2 or 3, not {version!r}")
    return _pitch_features_v2 if version >= 2 else _pitch_features   # 3: version 2's track on better raw F0


def pitch(samples, version: int = 1) -> torch.Tensor:
    """float audio at 16 kHz -> (frames, 3) pitch features, frame i aligned with fbank frame i."""
    x = sanitize(samples)
    n = num_frames(x.numel())
    if n == 0:
        return torch.zeros(0, PITCH_DIM)
    return _pitch_step(version)(*_raw_pitch(torch.cat([x.new_zeros(PITCH_PAD), x]), n, version),
                                pitch_state(version))[0]


def features(samples, n_mels: int = 80, with_pitch: int = 0) -> torch.Tensor:
    """The model's input: fbank, plus the pitch features when the model was built with them
    (`with_pitch`: 0/False none, else the version 1, 2 or 3; ModelConfig.pitch_kind)."""
    x = sanitize(samples)
    f = fbank(x, n_mels)
    return torch.cat([f, pitch(x, int(with_pitch))], 1) if with_pitch else f


class StreamingFeatures:
    """Incremental `features()`: `accept(samples)` returns the frames completed so far (same values)."""

    def __init__(self, n_mels: int = 80, with_pitch: int = 0):
        self.fbank = StreamingFbank(n_mels)
        self.with_pitch = int(with_pitch)
        self.dim = n_mels + (PITCH_DIM if with_pitch else 0)
        self.buf = torch.zeros(PITCH_PAD if with_pitch else 0)   # pitch windows start PITCH_PAD earlier
        self.state = pitch_state(self.with_pitch)
        self._step = _pitch_step(self.with_pitch) if with_pitch else None

    def accept(self, samples) -> torch.Tensor:
        x = sanitize(samples)
        f = self.fbank.accept(x)
        if not self.with_pitch:
            return f
        self.buf = torch.cat([self.buf, x])
        n = f.shape[0]
        if n == 0:
            return torch.zeros(0, self.dim)
        p, self.state = self._step(*_raw_pitch(self.buf, n, self.with_pitch), self.state)
        self.buf = self.buf[n * HOP:]
        return torch.cat([f, p], 1)
