"""Real-corpus readers on tiny fixture folders in each corpus' real layout, with real (espeak) speech."""
import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from asr_pinyin.audio.io import load_audio
from asr_pinyin.speech.espeak import Espeak
from asr_pinyin.speech.readers import ReaderError, read_aishell, read_commonvoice, read_kaldi, \
    read_thchs30

SENTS = [("你好世界", "ni3 hao3 shi4 jie4"), ("今天天气很好", "jin1 tian1 tian1 qi4 hen3 hao3"),
         ("银行几点开门", "yin2 hang2 ji3 dian3 kai1 men2"), ("我们去公园", "wo3 men5 qu4 gong1 yuan2")]


@pytest.fixture(scope="module")
def speech():
    """Synthesized utterances (22.05 kHz, as espeak makes them) for the fixture corpora."""
    eng = Espeak()
    return [(text, py, eng.synth(py, "f2" if i % 2 else "m3", 190)) for i, (text, py) in
            enumerate(SENTS)]


def read(path):
    return [json.loads(line) for line in open(path, encoding="utf-8")]


def check_manifest(path, n):
    recs = read(path)
    assert len(recs) == n
    for r in recs:
        x = load_audio(path.parent / r["audio"])
        assert abs(len(x) / 16000 - r["duration"]) < 0.1
        hanzi = [c for c in r["text"] if "\u4e00" <= c <= "\u9fff"]
        assert len(r["pinyin"].split()) == len(hanzi) > 0
    return recs


def test_aishell(tmp_path, speech, capfd):
    base = tmp_path / "aishell" / "data_aishell"
    lines = []
    for i, (text, _, wav) in enumerate(speech):
        split = ["train", "train", "dev", "test"][i]
        uid = f"BAC009S000{i}W0{i:03d}"
        (base / "wav" / split / f"S000{i}").mkdir(parents=True, exist_ok=True)
        sf.write(base / "wav" / split / f"S000{i}" / f"{uid}.wav",
                 load_audio_at(wav, 16000), 16000, subtype="PCM_16")
        lines.append(f"{uid} {' '.join(text[:2])} {text[2:]}\n")  # space-separated words
    (base / "wav" / "train" / "S0000" / "BAC009S0000W0999.wav").write_bytes(b"RIFF junk")
    (base / "transcript").mkdir()
    (base / "transcript" / "aishell_transcript_v0.8.txt").write_text(
        "".join(lines) + "BAC009S0000W0999 坏 文件\n", encoding="utf-8")
    counts = read_aishell(tmp_path / "aishell", tmp_path / "out")
    assert counts["train"]["utterances"] == 2 and counts["train"]["skipped"]
    assert "BAC009S0000W0999.wav" in capfd.readouterr().err
    recs = check_manifest(tmp_path / "out" / "train.jsonl", 2)
    assert recs[0]["text"].startswith("你好世界") and recs[0]["pinyin"] == "ni3 hao3 shi4 jie4"
    assert recs[0]["speaker"] == "S0000"
    check_manifest(tmp_path / "out" / "test.jsonl", 1)


def load_audio_at(wav, sr):
    from asr_pinyin.audio.io import resample
    return resample(wav, 22050, sr)


def test_thchs30_uses_its_own_pinyin_and_follows_split_pointers(tmp_path, speech):
    base = tmp_path / "data_thchs30"
    (base / "data").mkdir(parents=True)
    (base / "train").mkdir()
    (base / "test").mkdir()
    for i, (text, py, wav) in enumerate(speech):
        uid = f"A1{i}_{i}"
        sf.write(base / "data" / f"{uid}.wav", load_audio_at(wav, 16000), 16000)
        # THCHS-30 writes the polyphone its own way: keep its label, not a G2P guess
        py = py.replace("hang2", "xing2") if "银行" in text else py
        (base / "data" / f"{uid}.wav.trn").write_text(f"{text[:2]} {text[2:]}\n{py}\nx x\n",
                                                      encoding="utf-8")
        split = "test" if i == 3 else "train"
        sf.write(base / split / f"{uid}.wav", load_audio_at(wav, 16000), 16000)
        (base / split / f"{uid}.wav.trn").write_text(f"../data/{uid}.wav.trn\n")
    (base / "train" / "A19_9.wav").write_bytes(b"")  # empty file, transcript missing too
    counts = read_thchs30(base, tmp_path / "out")
    assert counts["train"]["utterances"] == 3 and sum(counts["train"]["skipped"].values()) == 1
    recs = check_manifest(tmp_path / "out" / "train.jsonl", 3)
    assert [r["pinyin"] for r in recs if "银行" in r["text"]] == ["yin2 xing2 ji3 dian3 kai1 men2"]


def test_commonvoice_mp3_and_tsv(tmp_path, speech, capfd):
    root = tmp_path / "cv-corpus" / "zh-CN"
    (root / "clips").mkdir(parents=True)
    rows = ["client_id\tpath\tsentence_id\tsentence\tup_votes\tdown_votes\tage\tgender"]
    for i, (text, _, wav) in enumerate(speech):
        name = f"common_voice_zh-CN_{1000 + i}.mp3"
        sf.write(root / "clips" / name, load_audio_at(wav, 48000), 48000, format="MP3")
        rows.append(f"spk{i}\t{name}\ts{i}\t{text}，对吗？\t2\t0\t\t")
    rows.append("spk9\tcommon_voice_zh-CN_9999.mp3\ts9\t不存在的文件\t2\t0\t\t")
    rows.append("spk8\tcommon_voice_zh-CN_1000.mp3\ts8\tABC hello\t2\t0\t\t")
    (root / "validated.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    (root / "test.tsv").write_text("\n".join(rows[:1] + rows[3:5]) + "\n", encoding="utf-8")
    counts = read_commonvoice(root, tmp_path / "out")
    assert counts["validated"]["utterances"] == 4 and counts["test"]["utterances"] == 2
    err = capfd.readouterr().err
    assert "common_voice_zh-CN_9999.mp3: no such file" in err and "latin" in err
    recs = check_manifest(tmp_path / "out" / "validated.jsonl", 4)
    assert recs[0]["text"] == "你好世界，对吗？" and recs[0]["pinyin"].endswith("dui4 ma5")


def test_kaldi_with_and_without_segments(tmp_path, speech):
    data = tmp_path / "kaldi" / "train"
    (data / "wav").mkdir(parents=True)
    long = np.concatenate([np.concatenate([load_audio_at(w, 8000), np.zeros(4000, np.float32)])
                           for _, _, w in speech])
    sf.write(data / "wav" / "rec1.wav", long, 8000)  # 8 kHz telephone-rate recording
    starts, t = [], 0.0
    for _, _, w in speech:
        d = len(w) / 22050
        starts.append((t, t + d))
        t += d + 0.5
    (data / "wav.scp").write_text("rec1 wav/rec1.wav\nrec2 sox x.wav -t wav - |\n")
    (data / "text").write_text("".join(f"u{i} {s}\n" for i, (s, _) in enumerate(SENTS)),
                               encoding="utf-8")
    (data / "segments").write_text("".join(f"u{i} rec1 {a:.3f} {b:.3f}\n" for i, (a, b) in
                                           enumerate(starts)) + "u9 rec2 0 1\n")
    counts = read_kaldi(data, tmp_path / "out")
    assert counts["train"]["utterances"] == 4 and sum(counts["train"]["skipped"].values()) == 1
    recs = check_manifest(tmp_path / "out" / "train.jsonl", 4)
    assert [r["id"] for r in recs] == ["u0", "u1", "u2", "u3"]
    assert abs(recs[1]["duration"] - (starts[1][1] - starts[1][0])) < 0.01

    plain = tmp_path / "kaldi" / "dev"
    plain.mkdir()
    for i, (_, _, w) in enumerate(speech[:2]):
        sf.write(plain / f"d{i}.flac", load_audio_at(w, 16000), 16000)
    (plain / "wav.scp").write_text(f"d0 {plain / 'd0.flac'}\nd1 d1.flac\n")
    (plain / "text").write_text(f"d0 {SENTS[0][0]}\nd1 {SENTS[1][0]}\n", encoding="utf-8")
    assert read_kaldi(plain, tmp_path / "out2")["dev"]["utterances"] == 2
    check_manifest(tmp_path / "out2" / "dev.jsonl", 2)


def test_bad_layouts_are_reader_errors_and_cli_exit_codes(tmp_path):
    with pytest.raises(ReaderError, match="data_aishell"):
        read_aishell(tmp_path, tmp_path / "o")
    with pytest.raises(ReaderError, match="wav.scp"):
        read_kaldi(tmp_path, tmp_path / "o")
    with pytest.raises(ReaderError, match="tsv"):
        read_commonvoice(tmp_path, tmp_path / "o")
    r = subprocess.run([sys.executable, "-m", "asr_pinyin.cli", "speech", "import", "thchs30",
                        str(tmp_path), "--out", str(tmp_path / "o")], capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.startswith("error:") and "Traceback" not in r.stderr
