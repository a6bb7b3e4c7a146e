"""Small real models and real audio for the client tests (seconds to make).

The checkpoints are the project's own networks at a tiny size (the recognizer tests' trained
pair, or seeded untrained ones), saved in the real formats and loaded through `Recognizer.load`,
so every client test runs the real pipeline end to end: file reading, resampling, endpointing,
both stages, results, server and protocol. The tests compare paths with each other (offline vs
files vs server vs browser) and check formats and flows, never a transcript against a reference.
"""
from __future__ import annotations

import os
import shutil
from collections import Counter
from pathlib import Path

import numpy as np

SR = 16000


def model_files(root: Path) -> tuple[Path, Path]:
    """The recognizer tests' tiny *trained* models when they load with today's code (they say
    real words: nicer screenshots), else untrained tiny ones written here."""
    try:
        from asr_pinyin.recognizer import Recognizer
        from tests.recognizer_fixtures import model_paths

        am, lm = model_paths()
        Recognizer.load(am, lm).close()
        return am, lm
    except Exception:  # noqa: BLE001 - their fixture lags an API change: the untrained pair
        return write_tiny_models(root)


def write_tiny_models(root: Path) -> tuple[Path, Path]:
    """(acoustic path, language path) of seeded untrained tiny networks under `root`."""
    import torch

    from asr_pinyin.acoustic.config import ModelConfig as AmConfig
    from asr_pinyin.acoustic.model import AcousticModel, save_model
    from asr_pinyin.lm.config import ModelConfig as LmConfig
    from asr_pinyin.lm.model import PinyinLM
    from asr_pinyin.lm.train import save_checkpoint
    from asr_pinyin.lm.vocab import build_prior, build_vocab

    root.mkdir(parents=True, exist_ok=True)
    am_path, lm_path = root / "am.pt", root / "lm.pt"
    if not am_path.is_file():
        torch.manual_seed(0)
        am = AcousticModel(AmConfig(d_model=64, n_heads=2, n_layers=2, conv_channels=16, dropout=0.0))
        save_model(am, am_path)
    if not lm_path.is_file():
        torch.manual_seed(0)
        chars = build_vocab(Counter(), 3)
        prior = build_prior(chars, Counter())
        lm = PinyinLM(LmConfig(d_model=32, n_layers=1, n_heads=2, d_ff=64, dropout=0.0, d_out=32),
                      len(chars), prior)
        save_checkpoint(lm_path, lm, chars, prior)
    return am_path, lm_path


def speech_like(seconds: float, seed: int = 0) -> np.ndarray:
    """Espeak-ng Mandarin sentences (the tiny models' training sentences) with pauses longer than
    the default endpoint between them, 16 kHz float32, cut or padded to `seconds`."""
    from tests.recognizer_fixtures import SENTENCES, silence, speech

    rng = np.random.default_rng(seed)
    out, total = [silence(0.4)], 0.4
    while total < seconds:
        w = speech(SENTENCES[int(rng.integers(len(SENTENCES)))][1])
        gap = silence(float(rng.uniform(1.0, 1.4)))
        out += [0.6 * w, gap]
        total += (w.size + gap.size) / SR
    return np.concatenate(out)[: int(seconds * SR)]


# ---- headless Chromium (the web page tests) ------------------------------------------------
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def chromium_args(wav: Path) -> list[str]:
    """Chromium flags for a headless run whose microphone is `wav` (looped), permission granted."""
    return ["--no-sandbox", "--disable-gpu", "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream", f"--use-file-for-fake-audio-capture={wav}",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--no-first-run"]


def screenshot_dir(tmp: Path) -> Path:
    """Where the page tests put their screenshots: `tmp` (test output, not committed), or the
    folder named by ASR_PINYIN_SCREENSHOTS (`make screenshots` sets docs/img to refresh the docs)."""
    d = Path(os.environ.get("ASR_PINYIN_SCREENSHOTS") or tmp)
    d.mkdir(parents=True, exist_ok=True)
    return d
