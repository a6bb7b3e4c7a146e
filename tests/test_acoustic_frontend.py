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


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_streaming_fbank_equals_offline_for_random_chunks(seed):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(16000 * 2 + int(rng.integers(0, 500))) * 0.1).astype(np.float32)
    offline = fbank(x)
    s, parts, i = StreamingFbank(), [], 0
    while i < len(x):
        n = int(rng.choice([1, 7, 159, 160, 161, 399, 400, 1234, 4000]))
        parts.append(s.accept(x[i:i + n]))
        i += n
    online = torch.cat(parts)
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
