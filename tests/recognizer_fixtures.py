"""Real (tiny) models and real speech for the recognizer and server tests, made in seconds.

- speech: espeak-ng (`cmn-latn-pinyin` voice, asr_pinyin.speech.espeak) reading numbered pinyin;
- acoustic: a 2-layer Conformer-CTC (asr_pinyin.acoustic.AcousticModel) trained ~100 CTC steps
  on those sentences with dynamic chunks, so it emits real syllables and streams like the big one;
- language: a 2-layer PinyinLM trained 100 steps by asr_pinyin.lm's own `train` on the same sentences.
Both are cached on disk (keyed by this file's content) so a test session trains them once.
"""
from __future__ import annotations

import hashlib
import os
import random
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

SENTENCES = [("你好", "ni3 hao3"), ("我们去北京", "wo3 men5 qu4 bei3 jing1"),
             ("今天天气很好", "jin1 tian1 tian1 qi4 hen3 hao3"), ("谢谢你", "xie4 xie4 ni3"),
             ("大家早上好", "da4 jia1 zao3 shang4 hao3"), ("中国人", "zhong1 guo2 ren2"),
             ("输入法", "shu1 ru4 fa3"), ("妈妈来了", "ma1 ma5 lai2 le5")]
CACHE = Path(os.environ.get("ASR_PINYIN_TEST_CACHE", "/tmp/asr_pinyin_test_models"))
_KEY = hashlib.sha1(Path(__file__).read_bytes()).hexdigest()[:10]


@lru_cache(maxsize=None)
def speech(pinyin: str, rate: int = 175) -> np.ndarray:
    """Numbered pinyin -> float32 16 kHz audio (deterministic: synthesized in a forked child, so
    it does not depend on what this process synthesized before, and this process never
    synthesizes in place, which would change what `make_tiny_set` renders in later tests)."""
    from asr_pinyin.audio.io import resample
    from asr_pinyin.speech.espeak import synth_isolated

    eng = _engine()
    return resample(synth_isolated(eng, pinyin, rate=rate), eng.sample_rate, 16000)


@lru_cache(maxsize=1)
def _engine():
    from asr_pinyin.speech.espeak import Espeak
    return Espeak()


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(16000 * seconds), dtype=np.float32)


def dictation(indices=(1, 2, 3), gap: float = 1.3, lead: float = 0.5) -> np.ndarray:
    """Several sentences separated by pauses longer than the default endpoint (0.8 s)."""
    parts = [silence(lead)]
    for i in indices:
        parts += [speech(SENTENCES[i][1]), silence(gap)]
    return np.concatenate(parts)


def _train_am(path: Path):
    from asr_pinyin.acoustic.config import ModelConfig
    from asr_pinyin.acoustic.decode import encode_pinyin
    from asr_pinyin.acoustic.frontend import fbank
    from asr_pinyin.acoustic.model import AcousticModel, save_model

    torch.manual_seed(0)
    model = AcousticModel(ModelConfig(d_model=96, n_heads=2, n_layers=2, conv_channels=16,
                                      ff_mult=2, dropout=0.0))
    feats = [fbank(speech(p, r)) for _, p in SENTENCES for r in (175,)]
    labels = [encode_pinyin(p) for _, p in SENTENCES for _ in (175,)]
    allf = torch.cat(feats)
    model.cmvn.set_stats(allf.sum(0), (allf ** 2).sum(0), allf.shape[0])
    x = torch.nn.utils.rnn.pad_sequence(feats, batch_first=True)
    lens = torch.tensor([f.shape[0] for f in feats])
    y = torch.tensor([u for lab in labels for u in lab])
    ylen = torch.tensor([len(lab) for lab in labels])
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    rng = random.Random(0)
    model.train()
    for step in range(80):
        chunk = 0 if step % 2 else rng.randint(1, 6)
        lp, out_len = model(x, lens, chunk, -1)
        loss = torch.nn.functional.ctc_loss(lp.transpose(0, 1), y, out_len, ylen, zero_infinity=True)
        opt.zero_grad()
        loss.backward()
        opt.step()
    save_model(model.eval(), path)


def _train_lm(path: Path):
    """The LM package's own training loop on the test sentences (so its format always matches)."""
    import json
    import shutil
    import tempfile

    from asr_pinyin.lm.config import ModelConfig, TrainConfig
    from asr_pinyin.lm.train import train

    with tempfile.TemporaryDirectory() as d:
        data = Path(d) / "train.jsonl"
        data.write_text("".join(json.dumps({"id": str(i), "text": t + "。", "pinyin": p},
                                           ensure_ascii=False) + "\n"
                                for i, (t, p) in enumerate(SENTENCES * 4)), encoding="utf-8")
        cfg = TrainConfig(model=ModelConfig(d_model=64, n_layers=2, n_heads=2, d_ff=128, dropout=0.0,
                                            d_out=32, max_len=64),
                          train=str(data), dev=str(data), dev_sentences=32, batch_tokens=512,
                          lr=3e-3, warmup_steps=10, max_steps=100, eval_every=50,
                          out_dir=str(Path(d) / "run"), threads=1)
        best = train(cfg)
        shutil.copy(best, path)


@lru_cache(maxsize=1)
def model_paths() -> tuple[Path, Path]:
    CACHE.mkdir(parents=True, exist_ok=True)
    am, lm = CACHE / f"am_{_KEY}.pt", CACHE / f"lm_{_KEY}.pt"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        if not am.exists():
            _train_am(am)
        if not lm.exists():
            _train_lm(lm)
    finally:
        torch.set_num_threads(threads)
    return am, lm


def make_recognizer(**options):
    """A Recognizer over the tiny real models (caller closes it)."""
    from asr_pinyin.recognizer import Recognizer, RecognizerOptions

    am, lm = model_paths()
    return Recognizer.load(am, lm, RecognizerOptions(**options))
