"""Small real models and real audio for the client tests (built in a few seconds, no training).

The acoustic and language checkpoints are the project's own networks at a tiny size with
seeded random weights, saved in the real checkpoint formats and loaded through
`Recognizer.load`, so every client test runs the real pipeline end to end: file reading,
resampling, endpointing, both stages, results, server and protocol. Their text is not Mandarin
a reader would accept; the tests compare paths with each other (offline vs server vs browser),
check formats and flows, and never a transcript against a reference.
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

SR = 16000


def write_tiny_models(root: Path) -> tuple[Path, Path]:
    """(acoustic path, language path) under `root`, created once."""
    import torch

    from asr_pinyin.acoustic.config import ModelConfig as AmConfig
    from asr_pinyin.acoustic.model import AcousticModel, save_model
    from asr_pinyin.lm.config import ModelConfig as LmConfig
    from asr_pinyin.lm.model import PinyinLM
    from asr_pinyin.lm.train import save_checkpoint
    from asr_pinyin.lm.vocab import build_readings, build_vocab

    root.mkdir(parents=True, exist_ok=True)
    am_path, lm_path = root / "am.pt", root / "lm.pt"
    if not am_path.is_file():
        torch.manual_seed(0)
        am = AcousticModel(AmConfig(d_model=64, n_heads=2, n_layers=2, conv_channels=16, dropout=0.0))
        save_model(am, am_path)
    if not lm_path.is_file():
        torch.manual_seed(0)
        chars = build_vocab(Counter(), 3)
        readings = build_readings(chars, Counter())
        lm = PinyinLM(LmConfig(d_model=32, n_layers=1, n_heads=2, d_ff=64, dropout=0.0, d_out=32),
                      len(chars), readings)
        save_checkpoint(lm_path, lm, chars, readings)
    return am_path, lm_path


def speech_like(seconds: float, seed: int = 0) -> np.ndarray:
    """Espeak-ng Mandarin (numbered pinyin) with silences between phrases, 16 kHz float32."""
    from tests.acoustic_fixtures import espeak

    phrases = ["ni3 hao3", "jin1 tian1 tian1 qi4 hen3 hao3", "wo3 men5 qu4 bei3 jing1",
               "xie4 xie4 ni3", "da4 jia1 zao3 shang4 hao3"]
    rng = np.random.default_rng(seed)
    out, total, i = [np.zeros(int(0.4 * SR), np.float32)], 0.4, 0
    while total < seconds:
        w = espeak(phrases[i % len(phrases)])
        gap = np.zeros(int(rng.uniform(1.0, 1.4) * SR), np.float32)
        out += [0.6 * w, gap]
        total += (w.size + gap.size) / SR
        i += 1
    return np.concatenate(out)[: int(seconds * SR)]
