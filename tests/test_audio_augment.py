"""Augmentation: SNR is what was asked (0.5 dB), effects do what they claim, seeds reproduce."""
import math

import pytest
import torch

from asr_pinyin.audio import augment as A

SR = 16000


def speechlike(seconds=2.0, seed=0):
    """A voiced, amplitude-modulated harmonic signal (nonstationary like speech)."""
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(int(SR * seconds)) / SR
    f0 = 120 + 30 * torch.sin(2 * math.pi * 0.7 * t)
    phase = 2 * math.pi * torch.cumsum(f0, 0) / SR
    x = sum(torch.sin(k * phase) / k for k in range(1, 8))
    env = (torch.sin(2 * math.pi * 3 * t).clamp_min(0) + 0.05) * 0.3
    return (x * env + 0.001 * torch.randn(t.numel(), generator=g)).float()


def dominant_hz(x):
    spec = torch.fft.rfft(x * torch.hann_window(x.numel())).abs()
    return int(spec.argmax()) * SR / x.numel()


@pytest.fixture(scope="module")
def bank():
    return A.NoiseBank(max_files=6)


@pytest.mark.parametrize("kind", ["white", "pink", "brown", "babble", "music"])
@pytest.mark.parametrize("snr", [5.0, 12.5, 20.0])
def test_noise_is_mixed_at_the_requested_snr(bank, kind, snr):
    g = torch.Generator().manual_seed(1)
    clean = speechlike()
    noise, real_kind = bank.sample(kind, clean.numel(), g)
    noisy = A.add_noise(clean, noise, snr)
    assert abs(A.measure_snr(clean, noisy) - snr) < 0.5
    assert real_kind == kind or (kind in ("babble", "music") and not bank.available(kind))


def test_chain_snr_holds_through_gain(bank):
    """The Augmenter's recorded SNR is the measured one (gain scales speech and noise alike)."""
    cfg = A.AugmentConfig(p_speed=0, p_reverb=0, p_telephone=0, p_clip=0, p_gain=1.0,
                          gain_range=(-12.0, 0.0), force=("noise",))
    aug = A.Augmenter(cfg, bank)
    clean = speechlike()
    for seed in range(6):
        noisy, params = aug(clean, torch.Generator().manual_seed(seed))
        scaled = clean * 10 ** (params["gain_db"] / 20)
        assert abs(A.measure_snr(scaled, noisy) - params["noise"]["snr_db"]) < 0.5


def test_missing_real_noise_falls_back_to_coloured(tmp_path):
    bank = A.NoiseBank(babble_glob=str(tmp_path / "*.wav"), music_glob=str(tmp_path / "*.wav"))
    noise, kind = bank.sample("babble", 8000, torch.Generator().manual_seed(0))
    assert kind == "pink" and noise.numel() == 8000 and torch.isfinite(noise).all()


def test_coloured_noise_spectra_slope_down():
    g = torch.Generator().manual_seed(0)
    def low_high_ratio(colour):
        spec = torch.fft.rfft(A.coloured_noise(SR * 2, colour, g)).abs().pow(2)
        return float(spec[20:400].mean() / spec[-4000:].mean())  # 10-200 Hz vs top band
    white, pink, brown = (low_high_ratio(c) for c in ("white", "pink", "brown"))
    assert 0.5 < white < 2 and pink > 10 and brown > 100 * pink / 10


def test_speed_pitch_telephone_clip():
    t = torch.arange(SR) / SR
    sine = 0.5 * torch.sin(2 * math.pi * 400 * t)
    assert abs(A.speed(sine, 1.25).numel() - SR / 1.25) < 5
    shifted = A.pitch_shift(sine, 3.0)
    assert shifted.numel() == SR
    assert abs(dominant_hz(shifted) - 400 * 2 ** (3 / 12)) < 6
    hi = 0.5 * torch.sin(2 * math.pi * 6000 * t)
    assert A.telephone(hi).pow(2).mean() < 0.01 * hi.pow(2).mean()
    assert A.telephone(sine).pow(2).mean() > 0.5 * sine.pow(2).mean()
    assert A.clip(sine, 0.5).abs().max() <= 0.25 + 1e-6


@pytest.mark.parametrize("factor", [0.8, 1.3])
def test_tempo_changes_duration_and_keeps_pitch(factor):
    t = torch.arange(SR) / SR
    sine = 0.5 * torch.sin(2 * math.pi * 400 * t)
    out = A.tempo(sine, factor)
    assert out.numel() == round(SR / factor)
    assert abs(dominant_hz(out) - 400) < 6            # speed() would move it to 400 * factor
    assert abs(dominant_hz(A.speed(sine, factor)) - 400 * factor) < 6
    # a tone burst comes at the scaled time: tempo stretches the time axis, not the spectrum
    burst = torch.zeros(SR)
    burst[8000:9600] = sine[8000:9600]
    env = A.tempo(burst, factor).abs().unfold(0, 160, 160).mean(1)
    onset = int((env > 0.5 * env.max()).nonzero()[0]) * 160
    assert abs(onset - 8000 / factor) < 400
    assert A.tempo(sine, 1.0) is sine


def test_rooms_decay_and_keep_length_and_power():
    g = torch.Generator().manual_seed(0)
    x = speechlike()
    for rir in (A.synthetic_rir(0.6, g), A.room_rir(0.6, g)):
        energy = rir.pow(2).flip(0).cumsum(0).flip(0)
        late = int(0.3 * SR)
        assert energy[late] < 0.2 * energy[0]  # most energy gone within half the rt60
        y = A.reverb(x, rir)
        assert y.numel() == x.numel()
        assert abs(float(y.pow(2).mean() / x.pow(2).mean()) - 1) < 1e-3


def test_augmenter_is_reproducible_from_its_generator(bank):
    aug = A.Augmenter(A.AugmentConfig(p_speed=1, p_reverb=1, p_noise=1), bank)
    x = speechlike()
    y1, p1 = aug(x, torch.Generator().manual_seed(7))
    y2, p2 = aug(x, torch.Generator().manual_seed(7))
    y3, p3 = aug(x, torch.Generator().manual_seed(8))
    assert p1 == p2 and torch.equal(y1, y2)
    assert p1 != p3
    assert y1.abs().max() <= 0.99 + 1e-6
