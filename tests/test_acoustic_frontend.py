"""Frontend: streaming fbank equals offline fbank for any chunking; CMVN; bad samples."""
import numpy as np
import pytest
import torch

from asr_pinyin.acoustic.frontend import GlobalCMVN, StreamingFbank, accumulate_stats, fbank, num_frames


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def feed_in_random_pieces(stream, x: np.ndarray, rng) -> torch.Tensor:
    """Everything `stream.accept` returns for `x` cut into pieces of awkward sizes."""
    parts, i = [], 0
    while i < len(x):
        n = int(rng.choice([1, 7, 159, 160, 161, 399, 400, 1234, 4000]))
        parts.append(stream.accept(x[i:i + n]))
        i += n
    return torch.cat(parts)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_streaming_fbank_equals_offline_for_random_chunks(seed):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(16000 * 2 + int(rng.integers(0, 500))) * 0.1).astype(np.float32)
    offline = fbank(x)
    online = feed_in_random_pieces(StreamingFbank(), x, rng)
    assert online.shape == offline.shape == (num_frames(len(x)), 80)
    torch.testing.assert_close(online, offline, atol=1e-4, rtol=0)


def test_fbank_shape_and_short_input():
    assert fbank(np.zeros(399, np.float32)).shape == (0, 80)
    assert fbank(np.zeros(1, np.float32)).shape == (0, 80)
    assert fbank(np.zeros(400, np.float32)).shape == (1, 80)
    assert fbank(np.zeros(16000, np.float32)).shape == (98, 80)


def test_nan_inf_samples_give_finite_features():
    x = np.sin(np.arange(8000) / 10).astype(np.float32) * 0.3
    x[100], x[2000], x[3000] = np.nan, np.inf, -np.inf
    f = fbank(x)
    assert torch.isfinite(f).all()
    s = StreamingFbank()
    assert torch.isfinite(torch.cat([s.accept(x[:3001]), s.accept(x[3001:])])).all()


def test_global_cmvn_normalises_training_statistics():
    rng = np.random.default_rng(0)
    feats = [torch.from_numpy(rng.normal(5.0, 3.0, (200, 80)).astype(np.float32)) for _ in range(5)]
    cmvn = GlobalCMVN(80)
    cmvn.set_stats(*accumulate_stats(feats))
    y = cmvn(torch.cat(feats))
    assert y.mean().abs() < 1e-3 and (y.std() - 1).abs() < 1e-2
    assert set(cmvn.state_dict()) == {"mean", "istd"}     # stored in the checkpoint


# ---- pitch -----------------------------------------------------------------------------------
def glide(f0_start: float, f0_end: float, seconds: float = 0.6, amp: float = 0.3) -> np.ndarray:
    """A voiced-like tone (fundamental + 4 harmonics) whose F0 glides linearly, at 16 kHz."""
    t = np.arange(int(16000 * seconds)) / 16000
    f0 = np.linspace(f0_start, f0_end, t.size)
    phase = 2 * np.pi * np.cumsum(f0) / 16000
    return (amp * sum(np.sin(k * phase) / k for k in range(1, 6))).astype(np.float32)


@pytest.mark.parametrize("hz", [70.0, 110.0, 220.0, 350.0])
def test_pitch_tracks_a_steady_fundamental(hz):
    from asr_pinyin.acoustic.frontend import PITCH_PAD, _raw_pitch

    x = glide(hz, hz)
    n = num_frames(x.size)
    voicing, log_f0 = _raw_pitch(torch.cat([torch.zeros(PITCH_PAD), torch.from_numpy(x)]), n)
    steady = slice(5, n)                       # the first windows still hold the zero padding
    assert voicing[steady].min() > 0.9
    assert np.abs(np.exp(log_f0[steady]) / hz - 1).max() < 0.03     # no octave errors


def test_pitch_features_tell_rising_falling_level_and_silence():
    from asr_pinyin.acoustic.frontend import pitch

    def slope(x):
        return float(pitch(x)[10:, 2].mean())
    assert slope(glide(90, 140)) > 0.003 > -0.003 > slope(glide(140, 90))
    assert abs(slope(glide(120, 120))) < 0.001
    # relative level: after a second at 100 Hz, 140 Hz reads high and 80 Hz low
    base = glide(100, 100, seconds=1.0)
    hi = pitch(np.concatenate([base, glide(140, 140, 0.3)]))[-10:, 1].mean()
    lo = pitch(np.concatenate([base, glide(80, 80, 0.3)]))[-10:, 1].mean()
    assert hi > 0.2 and lo < -0.1
    quiet = pitch(np.zeros(16000, np.float32))
    assert quiet.shape == (98, 3) and float(quiet[:, 0].max()) < 0.05


def test_pitch_v2_holds_through_unvoiced_frames_and_ignores_octave_glitches():
    from asr_pinyin.acoustic.frontend import SLOPE_CLIP, pitch

    rng = np.random.default_rng(0)
    noise = (rng.standard_normal(4000) * 0.05).astype(np.float32)          # 250 ms unvoiced
    x = np.concatenate([glide(100, 100, 1.0), noise, glide(100, 100, 0.5)])
    v1, v2 = pitch(x, 1), pitch(x, 2)
    unvoiced = slice(102, 118)                                              # inside the noise
    assert float(v1[unvoiced, 0].max()) < 0.5                               # both see no voicing
    assert float(v1[unvoiced, 1].abs().max()) > 0.2                         # v1: the noise's random lag
    assert float(v2[unvoiced, 1].abs().max()) < 0.05                        # v2: the 100 Hz track held
    assert float(v2[:, 2].abs().max()) <= SLOPE_CLIP + 1e-6
    # one voiced frame an octave off (a 10 ms burst at 200 Hz inside 100 Hz) moves v2 by nothing
    burst = np.concatenate([glide(100, 100, 0.6), glide(200, 200, 0.012), glide(100, 100, 0.4)])
    assert float(pitch(burst, 2)[55:, 1].abs().max()) < 0.05
    # and it still tells rising from falling, as v1 does
    assert float(pitch(glide(90, 140), 2)[10:, 2].mean()) > 0.003 > -0.003 > float(pitch(glide(140, 90), 2)[10:, 2].mean())


def test_pitch_v3_follows_a_low_third_tone_under_60_hz():
    from asr_pinyin.acoustic.frontend import pitch

    # a second at 110 Hz, then a 3rd tone falling 75 -> 52 Hz (a low voice): version 2's raw F0
    # found no lag peak under 60 Hz and read 400 Hz there (the tone high); version 3 follows it
    x = np.concatenate([glide(110, 110, 1.0), glide(75, 52, 0.4)])
    v2, v3 = pitch(x, 2), pitch(x, 3)
    end = slice(130, 138)                                                   # 52-56 Hz
    assert float(v2[end, 1].min()) > 1.0                                    # the glitch v3 removes
    assert float(v3[end, 1].max()) < -0.4 and float(v3[end, 0].min()) > 0.9
    torch.testing.assert_close(v3[:100], v2[:100], atol=1e-3, rtol=0)        # the same above 60 Hz
    with pytest.raises(ValueError, match="version"):
        pitch(x, 4)


@pytest.mark.parametrize("seed,version", [(0, 1), (1, 1), (0, 2), (1, 2), (0, 3), (1, 3)])
def test_streaming_features_with_pitch_equal_offline(seed, version):
    from asr_pinyin.acoustic.frontend import StreamingFeatures, features

    rng = np.random.default_rng(seed)
    x = np.concatenate([glide(100, 150), (rng.standard_normal(5000) * 0.05).astype(np.float32),
                        glide(200, 120, 1.2), np.zeros(int(rng.integers(0, 500)), np.float32)])
    offline = features(x, 80, with_pitch=version)
    online = feed_in_random_pieces(StreamingFeatures(80, with_pitch=version), x, rng)
    assert online.shape == offline.shape == (num_frames(len(x)), 83)
    torch.testing.assert_close(online, offline, atol=1e-4, rtol=0)
    assert torch.isfinite(offline).all()
