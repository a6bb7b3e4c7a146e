"""Noisy + reverberant copies of the clean dev and test sets (`dev_noisy.jsonl`, `test_noisy.jsonl`),
made offline. dev_noisy is for choosing among models (noise recipes); test_noisy only reports.

Every clean test utterance gets a room (ShoeBox or synthetic decay) and noise at 5-20 dB SNR
(coloured, babble or music), drawn from a generator seeded by the corpus seed and the id, so a
rebuild is identical and resumable like the clean build. Parameters go into the manifest.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

NOISY_CONFIG = dict(p_speed=0.0, p_pitch=0.0, rt60_range=(0.2, 0.9), p_room_sim=0.5,
                    snr_range=(5.0, 20.0), p_telephone=0.1, p_clip=0.05, p_gain=0.5,
                    gain_range=(-10.0, 3.0), force=("reverb", "noise"))


def noisy_seed(seed: int, uid: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{seed}/noisy/{uid}".encode()).digest()[:7], "big")


def build_noisy(out: Path, seed: int, src: str = "test", dst: str = "test_noisy") -> int:
    """Add the missing noisy utterances; returns how many were made."""
    import torch
    from tqdm import tqdm

    from ..audio.augment import AugmentConfig, Augmenter
    from ..audio.io import AudioError, load_audio, save_flac
    from .synth import append_line, manifest_path, read_done, sort_manifest

    out = Path(out)
    clean = read_done(manifest_path(out, src))
    done = read_done(manifest_path(out, dst))
    todo = [r for uid, r in sorted(clean.items()) if f"{uid}-noisy" not in done]
    if not todo:
        return 0
    torch.set_num_threads(1)  # same float results whatever the machine (and --jobs)
    aug = Augmenter(AugmentConfig(**NOISY_CONFIG))
    made = 0
    for r in tqdm(todo, desc=dst, unit="utt"):
        uid = f"{r['id']}-noisy"
        try:
            wav = torch.from_numpy(load_audio(out / r["audio"]))
        except AudioError as e:
            print(f"skipped {uid}: {e}")
            continue
        g = torch.Generator().manual_seed(noisy_seed(seed, r["id"]))
        noisy, params = aug(wav, g)
        name = f"audio/{dst}/{r['audio'].split('/')[-2]}/{uid}.flac"
        save_flac(out / name, noisy.numpy())
        rec = dict(r, id=uid, audio=name, clean_id=r["id"], augment=params,
                   duration=round(noisy.numel() / 16000, 3))
        append_line(manifest_path(out, dst), rec)
        made += 1
    sort_manifest(manifest_path(out, dst))
    return made
