"""Manifests, dynamic batching and on-the-fly augmentation for acoustic training."""
import json

import numpy as np
import pytest
import torch

from asr_pinyin.acoustic.config import AugmentConfig
from asr_pinyin.acoustic.dataset import (ManifestError, Utt, audio_augmenter, builtin_noise_room,
                                         dynamic_batches, read_manifest, spec_augment)


def test_read_manifest_skips_and_counts_bad_lines(tmp_path):
    rows = [{"audio": "a.flac", "pinyin": "ni3 hao3", "duration": 1.0},
            {"audio": "b.flac", "pinyin": "ni3 xx7", "duration": 1.0},        # not a syllable
            {"audio": "c.flac", "pinyin": "ni3", "duration": 99.0},           # too long
            {"audio": "d.flac", "pinyin": "", "duration": 1.0},               # no label
            {"pinyin": "ni3"}]                                                 # no audio
    path = tmp_path / "m.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n{broken\n")
    utts, skipped = read_manifest(path, max_duration=20)
    assert [u.audio for u in utts] == [str(tmp_path / "a.flac")]
    assert skipped == {"bad_line": 2, "unknown_syllable": 1, "too_long": 1, "empty": 1}
    with pytest.raises(ManifestError):
        read_manifest(tmp_path / "missing.jsonl")
    (tmp_path / "empty.jsonl").write_text("")
    with pytest.raises(ManifestError):
        read_manifest(tmp_path / "empty.jsonl")


def test_dynamic_batches_respect_budget_and_split_ranks():
    rng = np.random.default_rng(0)
    utts = [Utt(str(i), "", "", float(d), [1]) for i, d in enumerate(rng.uniform(0.5, 9.0, 300))]
    batches = dynamic_batches(utts, 30.0, epoch=0, seed=1)
    assert sorted(i for b in batches for i in b) == list(range(300))
    assert all(max(utts[i].duration for i in b) * len(b) <= 30.0 for b in batches)
    assert batches != dynamic_batches(utts, 30.0, epoch=1, seed=1)            # reshuffled per epoch
    r0, r1 = (dynamic_batches(utts, 30.0, 0, 1, rank=r, world=2) for r in (0, 1))
    assert len(r0) == len(r1) and not {i for b in r0 for i in b} & {i for b in r1 for i in b}


def test_augmentation_keeps_length_and_changes_audio():
    wave = (np.sin(np.arange(16000) / 7.0) * 0.3).astype(np.float32)
    cfg = AugmentConfig(noise_prob=1.0, reverb_prob=1.0, snr_db=[10.0, 10.0])
    for fn in (lambda w, r: builtin_noise_room(w, 16000, r, cfg), lambda w, r: audio_augmenter(cfg)(w, 16000, r)):
        out = fn(wave, np.random.default_rng(0))
        assert out.shape == wave.shape and np.isfinite(out).all()
        assert np.abs(out - wave).mean() > 0.01


def test_spec_augment_masks_with_given_value():
    torch.manual_seed(0)
    x = torch.randn(3, 200, 80)
    y = spec_augment(x, AugmentConfig(freq_masks=2, time_masks=2), mask_value=7.0)
    assert y.shape == x.shape and (y == 7.0).any() and (y == x).float().mean() > 0.5


def test_sortagrad_keeps_batches_shortest_first_and_loses_none():
    rng = np.random.default_rng(0)
    utts = [Utt(str(i), "", "", float(d), [1]) for i, d in enumerate(rng.uniform(0.5, 9.0, 300))]
    batches = dynamic_batches(utts, 30.0, epoch=0, seed=1, sortagrad=True)
    longest = [max(utts[i].duration for i in b) for b in batches]
    assert longest == sorted(longest)
    assert sorted(i for b in batches for i in b) == list(range(300))
    shuffled = [max(utts[i].duration for i in b) for b in dynamic_batches(utts, 30.0, 0, 1)]
    assert shuffled != sorted(shuffled)


def test_clean_batches_skip_noise_and_room(tmp_path):
    import soundfile as sf

    from asr_pinyin.acoustic.dataset import TrainSet

    wave = (np.sin(np.arange(16000) / 7.0) * 0.3).astype(np.float32)
    sf.write(tmp_path / "a.wav", wave, 16000)
    utts = [Utt("a", str(tmp_path / "a.wav"), "ni3", 1.0, [1])]
    cfg = AugmentConfig(speed=[1.0], noise_prob=1.0, reverb_prob=1.0, snr_db=[5.0, 5.0])
    ds = TrainSet(utts, [[0], [0]], cfg, clean_batches=1)
    clean, noisy = ds[0][0], ds[1][0]
    plain = TrainSet(utts, [[0]], None)[0][0]
    assert torch.allclose(clean, plain, atol=1e-4)
    assert (noisy - plain).abs().mean() > 0.1


def test_tempo_perturbation_changes_length_not_pitch(tmp_path):
    """tempo_prob = 1: every utterance gets a tempo factor from tempo_range, so the features get
    shorter or longer by that factor while the pitch track stays where it was."""
    import soundfile as sf

    from asr_pinyin.acoustic.dataset import TrainSet

    t = np.arange(32000) / 16000
    wave = (0.3 * np.sin(2 * np.pi * 150 * t)).astype(np.float32)
    sf.write(tmp_path / "a.wav", wave, 16000)
    utts = [Utt("a", str(tmp_path / "a.wav"), "ni3", 2.0, [1])]
    plain = TrainSet(utts, [[0]], None, pitch=3)[0][0][0]
    fast = TrainSet(utts, [[0]], AugmentConfig(speed=[1.0], tempo_prob=1.0, tempo_range=[1.3, 1.3]),
                    pitch=3)[0][0][0]
    slow = TrainSet(utts, [[0]], AugmentConfig(speed=[1.0], tempo_prob=1.0, tempo_range=[0.8, 0.8]),
                    pitch=3)[0][0][0]
    assert abs(fast.shape[0] - plain.shape[0] / 1.3) <= 3
    assert abs(slow.shape[0] - plain.shape[0] / 0.8) <= 3
    mid = slice(20, 120)   # raw log F0 is not a feature column; the fbank's peak band is
    peak = lambda f: int(f[mid, :80].mean(0).argmax())  # noqa: E731
    assert abs(peak(fast) - peak(plain)) <= 1 and abs(peak(slow) - peak(plain)) <= 1
    off = TrainSet(utts, [[0]], AugmentConfig(speed=[1.0], tempo_prob=0.0), pitch=3)[0][0][0]
    assert off.shape == plain.shape
