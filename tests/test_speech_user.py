"""The simulated user of the enrollment benchmark: one fixed voice, one fixed channel."""
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from asr_pinyin.audio.io import load_audio
from asr_pinyin.speech.espeak import FAMILIES
from asr_pinyin.speech.synth import render_sentences
from asr_pinyin.speech.user import SimulatedUser
from asr_pinyin.speech.voices import ESPEAK_TRAIN


def test_one_user_keeps_one_voice_with_small_take_to_take_variation():
    u = SimulatedUser(3, "room")
    assert u.variant in FAMILIES["klatt"]
    lo, hi = ESPEAK_TRAIN["pitch"]
    assert lo <= u.pitch <= hi
    voices = [u.voice(i) for i in range(40)]
    assert {v["variant"] for v in voices} == {u.variant}
    assert all(abs(v["rate"] - u.rate) <= 0.05 * u.rate + 1 for v in voices)
    assert all(abs(v["pitch"] - u.pitch) <= 3 for v in voices)
    assert len({v["rate"] for v in voices}) > 1            # a person is not a tape recorder
    assert u.voice(7) == SimulatedUser(3, "room").voice(7)  # a pure function of seed and take
    others = {(SimulatedUser(s).variant, SimulatedUser(s).pitch, SimulatedUser(s).rate) for s in range(6)}
    assert len(others) > 1                                 # seeds are different people


def test_room_channel_is_fixed_per_user_and_clean_channel_is_the_identity():
    g = torch.Generator().manual_seed(0)
    t = torch.arange(16000) / 16000
    wav = 0.3 * torch.sin(2 * torch.pi * 220 * t) + 0.05 * torch.randn(16000, generator=g)
    clean = SimulatedUser(1, "clean")
    assert clean.room == {} and torch.equal(clean.record(wav, 0), wav)
    u = SimulatedUser(1, "room")
    a, b = u.record(wav, 0), SimulatedUser(1, "room").record(wav, 0)
    assert torch.equal(a, b)                               # deterministic across instances
    assert not torch.equal(a, u.record(wav, 1))            # a fresh stretch of noise per take
    assert abs(20 * np.log10(float(a.abs().max())) - u.room["peak_db"]) < 0.1
    # the noise floor sits at the user's SNR under the room-and-mic speech
    y = u.room_and_mic(wav)
    scale = float((a * y).sum() / (y * y).sum())
    snr = 10 * np.log10(float((scale * y).pow(2).sum() / (a - scale * y).pow(2).sum()))
    assert abs(snr - u.room["snr_db"]) < 0.5
    assert not torch.allclose(y / y.abs().max(), wav / wav.abs().max(), atol=1e-2)  # the room is heard
    with pytest.raises(ValueError, match="channel"):
        SimulatedUser(0, "phone")


def test_rendered_takes_use_the_users_voice(tmp_path):
    u = SimulatedUser(2, "room")
    sents = [SimpleNamespace(id=f"s{i}", text="你好", pinyin="ni3 hao3") for i in range(2)]
    recs = list(render_sentences(sents, tmp_path, "heldout_voice/enroll", "heldout_voice/train", "k",
                                 voice_for=u.voice))
    assert all("error" not in r for r in recs)
    assert {r["voice"]["variant"] for r in recs} == {u.variant}
    assert sorted(r["voice"]["rate"] for r in recs) == sorted(u.voice(i)["rate"] for i in range(2))
    wav = load_audio(tmp_path / "heldout_voice" / recs[0]["audio"])
    out = u.record(torch.from_numpy(wav), 0)
    assert out.shape == (wav.size,) and torch.isfinite(out).all()
