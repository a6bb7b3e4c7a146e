"""Audio files in, 16 kHz mono float32 out; 16 kHz mono FLAC written atomically.

Reading goes through `soundfile` (wav/flac/ogg/mp3 via libsndfile) and resampling through
`torchaudio.functional.resample`, so every stage sees the same samples. A file that cannot be
used raises `AudioError`, whose message names the path and the reason, so callers can report
it and skip it.
"""
from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import soundfile as sf

SAMPLE_RATE = 16000


class AudioError(Exception):
    """A file that cannot be used as audio: missing, unreadable, corrupt or empty."""

    def __init__(self, path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


def resample(wav: np.ndarray, sr: int, target_sr: int = SAMPLE_RATE) -> np.ndarray:
    """Resample a 1-D float32 signal with torchaudio (band-limited sinc, the same everywhere)."""
    if sr == target_sr:
        return np.ascontiguousarray(wav, dtype=np.float32)
    import torch
    import torchaudio.functional as AF

    g = math.gcd(int(sr), int(target_sr))
    out = AF.resample(torch.from_numpy(np.ascontiguousarray(wav, dtype=np.float32)),
                      int(sr) // g, int(target_sr) // g)
    return out.numpy()


def audio_info(path) -> tuple[int, int, float]:
    """(sample rate, channels, duration in s) without decoding; AudioError when unusable."""
    path = Path(path)
    if not path.is_file():
        raise AudioError(path, "no such file")
    if path.stat().st_size == 0:
        raise AudioError(path, "empty file (0 bytes)")
    try:
        info = sf.info(str(path))
    except Exception as e:  # libsndfile's messages are the reason a user needs
        raise AudioError(path, f"unreadable audio ({_short(e)})") from None
    if info.frames <= 0 and info.format != "MPEG":
        raise AudioError(path, "no audio samples")
    return int(info.samplerate), int(info.channels), float(info.duration)


def load_audio(path, sr: int = SAMPLE_RATE, offset: float = 0.0,
               duration: float | None = None) -> np.ndarray:
    """Read any soundfile-readable file (or a span of it) as mono float32 at `sr` Hz."""
    path = Path(path)
    file_sr, _, _ = audio_info(path)
    start = int(round(offset * file_sr))
    stop = None if duration is None else start + int(round(duration * file_sr))
    try:
        data, file_sr = sf.read(str(path), start=start, stop=stop, dtype="float32", always_2d=True)
    except Exception as e:
        raise AudioError(path, f"corrupt audio ({_short(e)})") from None
    if data.shape[0] == 0:
        raise AudioError(path, "no audio samples" if not offset else f"no samples after {offset:.2f} s")
    if not np.all(np.isfinite(data)):
        raise AudioError(path, "audio contains NaN or infinite samples")
    return resample(data.mean(axis=1), file_sr, sr)


def save_flac(path, wav: np.ndarray, sr: int = SAMPLE_RATE) -> None:
    """Write 16-bit FLAC via a temporary file + rename, so a killed run never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    pcm = np.clip(np.asarray(wav, dtype=np.float32), -1.0, 1.0)
    sf.write(str(tmp), pcm, sr, format="FLAC", subtype="PCM_16")
    os.replace(tmp, path)


def _short(e: Exception) -> str:
    msg = str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
    return msg[:200]
