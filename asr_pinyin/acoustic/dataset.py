"""Training data: manifest JSONL -> dynamic batches of (fbank, lengths, targets).

Manifest lines are `{"audio": path relative to the manifest, "pinyin": "ni3 hao3", "duration": s}`.
Batches are filled by total duration (sorted into buckets of similar length, so little
padding), shuffled per epoch with a seed, and dealt round-robin to DDP ranks. Audio is
augmented on the fly: speed perturbation, then an optional noise/room callable
(`augment.callable = "module:function"`, called as fn(wave, sr, rng) -> wave; a small
default uses `asr_pinyin.audio.augment`, else a built-in coloured noise + synthetic room),
then SpecAugment on the fbank.
"""
from __future__ import annotations

import importlib
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .config import AugmentConfig
from .decode import encode_pinyin
from .frontend import SAMPLE_RATE, features


class ManifestError(ValueError):
    """A manifest that cannot be read (missing file, bad JSON, no usable lines)."""


@dataclass
class Utt:
    id: str
    audio: str
    pinyin: str
    duration: float
    units: list[int]


def read_manifest(path, max_duration: float = math.inf, strict: bool = False) -> tuple[list[Utt], dict]:
    """Usable utterances and counts of skipped ones (bad JSON, unknown syllables, too long)."""
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"manifest not found: {path}")
    utts, skipped = [], {"bad_line": 0, "unknown_syllable": 0, "too_long": 0, "empty": 0}
    for n, line in enumerate(path.read_text("utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            d = json.loads(line)
            audio, pinyin = d["audio"], d.get("pinyin", "")
            duration = float(d.get("duration", 0.0))
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
            if strict:
                raise ManifestError(f"{path}:{n}: bad manifest line ({e})") from None
            skipped["bad_line"] += 1
            continue
        try:
            units = encode_pinyin(pinyin)
        except KeyError as e:
            skipped["unknown_syllable"] += 1
            continue
        if duration > max_duration:
            skipped["too_long"] += 1
            continue
        if not units:
            skipped["empty"] += 1
            continue
        utts.append(Utt(str(d.get("id", n)), str((path.parent / audio)), pinyin, duration, units))
    if not utts:
        raise ManifestError(f"{path}: no usable utterances ({skipped})")
    return utts, skipped


def load_wave(path: str) -> np.ndarray:
    """16 kHz mono float32 via the audio package when present, else soundfile + resample."""
    try:
        from asr_pinyin.audio.io import load_audio
    except ImportError:
        load_audio = None
    if load_audio is not None:
        return load_audio(path)
    import soundfile as sf
    import torchaudio.functional as AF

    data, sr = sf.read(path, dtype="float32", always_2d=True)
    wave = torch.from_numpy(data.mean(1))
    return (AF.resample(wave, sr, SAMPLE_RATE) if sr != SAMPLE_RATE else wave).numpy()


def dynamic_batches(utts: list[Utt], batch_seconds: float, epoch: int, seed: int, rank: int = 0,
                    world: int = 1, sortagrad: bool = False) -> list[list[int]]:
    """Index batches of at most `batch_seconds` audio (>= 1 utt), same list on every rank, then dealt.

    `sortagrad` (DeepSpeech 2): keep the batches shortest-first instead of shuffling. Used for the
    first epoch, where short utterances get CTC out of its all-blank plateau sooner.
    """
    rng = np.random.default_rng(seed + epoch)
    order = sorted(range(len(utts)), key=lambda i: (utts[i].duration, rng.random()))
    batches, cur, longest = [], [], 0.0
    for i in order:
        d = max(utts[i].duration, 0.1)
        if cur and max(longest, d) * (len(cur) + 1) > batch_seconds:   # padded size counts
            batches.append(cur)
            cur, longest = [], 0.0
        cur.append(i)
        longest = max(longest, d)
    if cur:
        batches.append(cur)
    if not sortagrad:
        rng.shuffle(batches)
    if world > 1:
        batches = batches[: len(batches) // world * world][rank::world]
    return batches


def builtin_noise_room(wave: np.ndarray, sr: int, rng: np.random.Generator, cfg: AugmentConfig) -> np.ndarray:
    """Synthetic room (exponentially decaying noise RIR) and coloured noise at a random SNR."""
    import torchaudio.functional as AF

    x = torch.from_numpy(wave)
    if rng.random() < cfg.reverb_prob:
        rt60 = rng.uniform(0.2, 0.8)
        n = int(sr * rt60)
        t = torch.arange(n) / sr
        rir = torch.from_numpy(rng.standard_normal(n).astype(np.float32)) * torch.exp(-6.9 * t / rt60)
        rir[0] = 1.0 / max(rng.uniform(0.3, 1.0), 1e-3)
        x = AF.fftconvolve(x, rir / rir.norm())[: x.numel()]
        x = x / max(float(x.abs().max()), 1e-4) * float(np.abs(wave).max() + 1e-4)
    if rng.random() < cfg.noise_prob:
        white = torch.from_numpy(rng.standard_normal(x.numel()).astype(np.float32))
        spec = torch.fft.rfft(white)
        f = torch.arange(spec.numel()).clamp_min(1).float()
        noise = torch.fft.irfft(spec / f ** (rng.uniform(0.0, 2.0) / 2), n=x.numel())   # white..brown
        snr = torch.tensor([rng.uniform(*cfg.snr_db)], dtype=torch.float32)
        x = AF.add_noise(x[None], noise[None], snr)[0]
    return x.numpy()


def audio_augmenter(cfg: AugmentConfig):
    """Noise (coloured, babble, music) and rooms from `asr_pinyin.audio.augment` when present,
    else the built-in coloured noise + synthetic room. Speed is done here, not there."""
    try:
        from asr_pinyin.audio.augment import AugmentConfig as AudioCfg, Augmenter
    except ImportError:
        return lambda wave, sr, rng: builtin_noise_room(wave, sr, rng, cfg)
    augmenter = Augmenter(AudioCfg(p_speed=0.0, p_noise=cfg.noise_prob, p_reverb=cfg.reverb_prob,
                                   snr_range=tuple(cfg.snr_db)))

    def run(wave, sr, rng):
        g = torch.Generator().manual_seed(int(rng.integers(2**31)))
        return augmenter(torch.from_numpy(wave), g)[0].numpy()
    return run


class TrainSet(torch.utils.data.Dataset):
    """One item = one whole batch (the batch sampler lives in `dynamic_batches`)."""

    def __init__(self, utts: list[Utt], batches: list[list[int]], aug: AugmentConfig | None,
                 n_mels: int = 80, seed: int = 0, clean_batches: int = 0, pitch: int = 0):
        """`clean_batches`: the first this many batches get speed perturbation only (no noise/room)."""
        self.utts, self.batches, self.aug, self.n_mels, self.seed = utts, batches, aug, n_mels, seed
        self.clean_batches = clean_batches
        self.pitch = pitch
        self.extra = None
        if aug is not None and aug.callable:
            mod, _, fn = aug.callable.partition(":")
            self.extra = getattr(importlib.import_module(mod), fn)
        elif aug is not None and (aug.noise_prob > 0 or aug.reverb_prob > 0):
            self.extra = audio_augmenter(aug)

    def __len__(self) -> int:
        return len(self.batches)

    def features(self, u: Utt, rng: np.random.Generator, clean: bool = False) -> torch.Tensor:
        wave = load_wave(u.audio)
        if self.aug is not None:
            import torchaudio.functional as AF

            factor = float(rng.choice(self.aug.speed)) if self.aug.speed else 1.0
            if factor != 1.0:
                wave = AF.speed(torch.from_numpy(wave), SAMPLE_RATE, factor)[0].numpy()
            if self.aug.tempo_prob > 0 and rng.random() < self.aug.tempo_prob:
                from asr_pinyin.audio.augment import tempo
                wave = tempo(torch.from_numpy(wave), float(rng.uniform(*self.aug.tempo_range))).numpy()
            if self.extra is not None and not clean:
                wave = self.extra(wave, SAMPLE_RATE, rng)
        return features(wave, self.n_mels, self.pitch)   # 0, or the pitch version (ModelConfig.pitch_kind)

    def __getitem__(self, b: int):
        rng = np.random.default_rng([self.seed, b, torch.initial_seed() % 2**31])
        feats, targets = [], []
        for i in self.batches[b]:
            u = self.utts[i]
            try:
                f = self.features(u, rng, clean=b < self.clean_batches)
            except Exception:         # unreadable file: skip it, the batch goes on
                continue
            feats.append(f)
            targets.append(torch.tensor(u.units))
        return collate(feats, targets)


def collate(feats: list[torch.Tensor], targets: list[torch.Tensor]):
    lengths = torch.tensor([f.shape[0] for f in feats], dtype=torch.long)
    tlen = torch.tensor([t.numel() for t in targets], dtype=torch.long)
    x = torch.nn.utils.rnn.pad_sequence(feats, batch_first=True) if feats else torch.zeros(0, 0, 80)
    y = torch.nn.utils.rnn.pad_sequence(targets, batch_first=True) if targets else torch.zeros(0, 0, dtype=torch.long)
    return x, lengths, y, tlen


def spec_augment(x: torch.Tensor, cfg: AugmentConfig, mask_value: float) -> torch.Tensor:
    """Frequency and time masks per utterance (torchaudio) on padded (B, T, F) fbank."""
    import torchaudio.transforms as T

    fm = T.FrequencyMasking(cfg.freq_mask_width, iid_masks=True)
    tm = T.TimeMasking(cfg.time_mask_frames, iid_masks=True, p=0.2)
    y = x.transpose(1, 2).unsqueeze(1)         # (B, 1, F, T)
    for _ in range(cfg.freq_masks):
        y = fm(y, mask_value=mask_value)
    for _ in range(cfg.time_masks):
        y = tm(y, mask_value=mask_value)
    return y.squeeze(1).transpose(1, 2).contiguous()
