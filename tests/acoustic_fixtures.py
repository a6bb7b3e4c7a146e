"""Tiny espeak-ng speech set for the acoustic tests (a few seconds of audio, made in ~1 s).

espeak-ng is called in-process through ctypes (espeakng-loader); the `cmn-latn-pinyin` voice
reads numbered pinyin, so the labels match the audio exactly.
"""
from __future__ import annotations

import ctypes
import json
from pathlib import Path

import numpy as np

SENTENCES = ["ni3 hao3", "wo3 men5 qu4 bei3 jing1", "jin1 tian1 tian1 qi4 hen3 hao3",
             "xie4 xie4 ni3", "ma1 ma5 lai2 le5", "da4 jia1 zao3 shang4 hao3",
             "zhong1 guo2 ren2", "shu1 ru4 fa3"]
_CB = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)
_state: dict = {}


def espeak(pinyin: str, rate: int = 175, pitch: int = 50) -> np.ndarray:
    """Numbered pinyin -> float32 audio at 16 kHz."""
    import espeakng_loader
    import torch
    import torchaudio.functional as AF

    if not _state:
        lib = ctypes.CDLL(espeakng_loader.get_library_path())
        sr = lib.espeak_Initialize(2, 0, espeakng_loader.get_data_path().encode(), 0)
        chunks: list = []

        def collect(wav, n, _events):
            if n > 0:
                chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
            return 0
        cb = _CB(collect)
        lib.espeak_SetSynthCallback(cb)
        lib.espeak_SetVoiceByName(b"cmn-latn-pinyin")
        _state.update(lib=lib, sr=sr, chunks=chunks, cb=cb)
    lib, chunks = _state["lib"], _state["chunks"]
    chunks.clear()
    lib.espeak_SetParameter(1, rate, 0)
    lib.espeak_SetParameter(3, pitch, 0)
    text = pinyin.encode()
    lib.espeak_Synth(text, len(text) + 1, 0, 0, 0, 1, None, None)
    lib.espeak_Synchronize()
    wave = np.concatenate(chunks).astype(np.float32) / 32768.0
    return AF.resample(torch.from_numpy(wave), _state["sr"], 16000).numpy()


def make_tiny_set(root: Path, sentences=SENTENCES, rates=(175,)) -> Path:
    """Write FLAC files + manifest.jsonl under `root`; returns the manifest path."""
    import soundfile as sf

    root.mkdir(parents=True, exist_ok=True)
    lines = []
    for r in rates:
        for i, p in enumerate(sentences):
            wave = np.pad(espeak(p, rate=r), (3200, 4800))     # 0.2 s / 0.3 s of silence around
            name = f"utt{i:02d}_r{r}.flac"
            sf.write(root / name, wave, 16000, subtype="PCM_16")
            lines.append(json.dumps({"id": f"{i}_{r}", "audio": name, "text": "", "pinyin": p,
                                     "duration": round(len(wave) / 16000, 3)}))
    manifest = root / "manifest.jsonl"
    manifest.write_text("\n".join(lines) + "\n")
    return manifest
