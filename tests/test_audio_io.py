"""Audio I/O: every format/rate/channel layout comes back as 16 kHz mono; bad files name a reason."""
import numpy as np
import pytest
import soundfile as sf

from asr_pinyin.audio.io import AudioError, audio_info, load_audio, save_flac


def tone(sr, seconds=1.0, freq=440.0, channels=1):
    t = np.arange(int(sr * seconds)) / sr
    x = (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    return np.stack([x] * channels, axis=1) if channels > 1 else x


def peak_hz(x, sr=16000):
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return np.argmax(spec) * sr / len(x)


@pytest.mark.parametrize("fmt,ext,sr,ch", [("WAV", "wav", 8000, 1), ("WAV", "wav", 44100, 2),
                                          ("FLAC", "flac", 22050, 1), ("OGG", "ogg", 48000, 2),
                                          ("MP3", "mp3", 24000, 1)])
def test_any_format_rate_and_channels_become_16k_mono(tmp_path, fmt, ext, sr, ch):
    path = tmp_path / f"a.{ext}"
    sf.write(path, tone(sr, channels=ch), sr, format=fmt)
    x = load_audio(path)
    assert x.dtype == np.float32 and x.ndim == 1
    assert abs(len(x) - 16000) < 16000 * 0.08  # mp3 adds encoder padding
    assert abs(peak_hz(x) - 440) < 5
    assert 0.3 < np.abs(x).max() < 0.6


def test_offset_and_duration_read_a_span(tmp_path):
    sr = 8000
    x = np.concatenate([tone(sr, 1.0, 300), tone(sr, 1.0, 900)])
    sf.write(tmp_path / "two.wav", x, sr)
    span = load_audio(tmp_path / "two.wav", offset=1.0, duration=0.5)
    assert len(span) == 8000
    assert abs(peak_hz(span) - 900) < 10


def test_bad_files_raise_audio_error_naming_path_and_reason(tmp_path):
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    junk = tmp_path / "junk.flac"
    junk.write_bytes(np.random.default_rng(0).bytes(5000))
    text = tmp_path / "notes.wav"
    text.write_text("this is not audio\n")
    header_only = tmp_path / "header.wav"
    sf.write(header_only, np.zeros(0, np.float32), 16000)
    for path, reason in [(tmp_path / "missing.wav", "no such file"), (empty, "empty file"),
                         (junk, "unreadable"), (text, "unreadable"), (header_only, "no audio")]:
        with pytest.raises(AudioError) as e:
            load_audio(path)
        assert str(path) in str(e.value) and reason in e.value.reason
    with pytest.raises(AudioError):
        audio_info(junk)


def test_save_flac_writes_16k_pcm16_and_leaves_no_temp_file(tmp_path):
    x = tone(16000)
    save_flac(tmp_path / "sub" / "x.flac", x)
    info = sf.info(tmp_path / "sub" / "x.flac")
    assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
    assert np.abs(load_audio(tmp_path / "sub" / "x.flac") - x).max() < 1e-3
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["x.flac"]
