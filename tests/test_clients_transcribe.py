"""`asr-pinyin transcribe`: folders of mixed files, every output format, bad files, --server.

Real small models (tests/clients_fixtures.py) and real audio files of several formats, rates
and channel counts. The transcript of a file must be what the Recognizer API gives offline for
the same samples, and `--server` must write byte-identical outputs to the local run.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from asr_pinyin.clients.formats import to_srt, to_text, to_vtt
from tests.clients_fixtures import model_files, speech_like

@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return model_files(tmp_path_factory.getbasetemp() / "client-models")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """a.wav 16 kHz mono, sub/b.flac 44.1 kHz stereo, sub/c.mp3, bad.wav (not audio), empty.ogg."""
    import torch
    import torchaudio.functional as AF

    d = tmp_path_factory.mktemp("inputs")
    (d / "sub").mkdir()
    x = speech_like(10.0, seed=3)
    sf.write(d / "a.wav", x, 16000, subtype="PCM_16")
    y = AF.resample(torch.from_numpy(x), 16000, 44100).numpy()
    sf.write(d / "sub" / "b.flac", np.stack([y, 0.5 * y], axis=1), 44100)
    sf.write(d / "sub" / "c.mp3", y, 44100, format="MP3")
    (d / "bad.wav").write_bytes(b"RIFF this is not a wave file")
    (d / "empty.ogg").write_bytes(b"")
    (d / "notes.txt").write_text("not audio, not picked up from a folder")
    return d, x


class Run:
    def __init__(self, returncode, stdout, stderr):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


@pytest.fixture
def run_cli(capsys):
    """The real `asr-pinyin` entry point, in this process (no second torch import per call)."""
    from asr_pinyin.cli import main

    def run(*args):
        capsys.readouterr()
        code = main(list(args))
        out, err = capsys.readouterr()
        return Run(code, out, err)
    return run


def test_formats_cues():
    segs = [{"segment": 0, "text": "你好。", "start": 0.5, "end": 1.25, "chars": []},
            {"segment": 1, "text": "", "start": 2.0, "end": 2.5, "chars": []},
            {"segment": 2, "text": "再见！", "start": 3661.0, "end": 3662.004, "chars": []}]
    assert to_text(segs) == "你好。\n再见！\n"
    assert to_srt(segs) == ("1\n00:00:00,500 --> 00:00:01,250\n你好。\n\n"
                            "2\n01:01:01,000 --> 01:01:02,004\n再见！\n")
    assert to_vtt(segs).startswith("WEBVTT\n\n00:00:00.500 --> 00:00:01.250\n你好。\n")


def test_transcribe_folder_all_formats(models, inputs, tmp_path, run_cli):
    from asr_pinyin.recognizer import Recognizer, StreamOptions

    d, x = inputs
    am, lm = models
    out = tmp_path / "out"
    r = run_cli("transcribe", str(d), "-f", "json", "-f", "srt", "-f", "vtt", "-f", "text",
                "-o", str(out), "--am", str(am), "--lm", str(lm), "-j", "3", "--summary-json")
    assert r.returncode == 1, r.stderr                       # two files failed
    summary = json.loads(r.stdout)
    assert summary["files"] == 5 and summary["ok"] == 3
    failed = {Path(f["path"]).name: f["error"] for f in summary["failed"]}
    assert set(failed) == {"bad.wav", "empty.ogg"} and "empty" in failed["empty.ogg"]
    assert f"{d / 'bad.wav'}" in r.stderr and "Traceback" not in r.stderr
    for stem in ("a", "sub/b", "sub/c"):
        for ext in (".json", ".srt", ".vtt", ".txt"):
            assert (out / (stem + ext)).is_file(), stem + ext
    assert not (out / "bad.txt").exists()

    doc = json.loads((out / "a.json").read_text())
    assert len(doc["segments"]) >= 3                         # cut by the endpointer
    seg = doc["segments"][0]
    assert seg["text"] and len(seg["chars"]) == len(seg["pinyin"])
    starts = [c["start"] for c in seg["chars"]]
    assert starts == sorted(starts) and seg["start"] <= starts[0] and all(c["end"] > c["start"] for c in seg["chars"])
    assert (out / "a.txt").read_text() == "".join(s["text"] + "\n" for s in doc["segments"])
    assert (out / "a.srt").read_text().count(" --> ") == len(doc["segments"])
    assert (out / "a.vtt").read_text().startswith("WEBVTT")
    # the resampled stereo copy decodes to text too (not necessarily identical)
    assert json.loads((out / "sub" / "b.json").read_text())["segments"]


def test_transcribe_next_to_input_and_errors(models, inputs, tmp_path, run_cli):
    d, x = inputs
    am, lm = models
    f = tmp_path / "one.wav"
    sf.write(f, x[: 4 * 16000], 16000)
    r = run_cli("transcribe", str(f), "--am", str(am), "--lm", str(lm), "-q")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "one.txt").read_text().strip()
    assert "transcribed 1/1 files" in r.stderr
    sf.write(tmp_path / "one.flac", x[: 4 * 16000], 16000)      # same stem: outputs keep the extension
    r = run_cli("transcribe", str(tmp_path / "one.wav"), str(tmp_path / "one.flac"), "--am", str(am),
                "--lm", str(lm), "-q")
    assert r.returncode == 0 and (tmp_path / "one.wav.txt").is_file() and (tmp_path / "one.flac.txt").is_file()
    import torch
    import torchaudio.functional as AF
    hi = AF.resample(torch.from_numpy(x[: 4 * 16000]), 16000, 96000).numpy()  # above 48 kHz: converted first
    sf.write(tmp_path / "hi.wav", hi, 96000, subtype="PCM_24")
    r = run_cli("transcribe", str(tmp_path / "hi.wav"), "--am", str(am), "--lm", str(lm), "-q")
    assert r.returncode == 0 and (tmp_path / "hi.txt").read_text().strip()
    r = run_cli("transcribe", str(tmp_path / "missing.flac"), "--am", str(am), "--lm", str(lm))
    assert r.returncode == 1 and "missing.flac: no such file" in r.stderr
    r = run_cli("transcribe", str(f), "--am", str(tmp_path / "nope.pt"), "--lm", str(lm))
    assert r.returncode == 2 and r.stderr.startswith("error: ") and "Traceback" not in r.stderr


def test_transcribe_matches_offline_api_and_server(models, inputs, tmp_path):
    from asr_pinyin.clients.transcribe import LocalEngine, ServerEngine, find_audio, transcribe_files
    from asr_pinyin.serve.server import ServerConfig, ServerThread

    from asr_pinyin.recognizer import RecognizerOptions, StreamOptions

    # batches of one: with untrained models the logits are near ties, and batching a job with
    # others (padding) changes float rounding enough to flip some of them
    d, x = inputs
    am, lm = models
    local = LocalEngine(am, lm, {"nbest": 3}, RecognizerOptions(am_batch=1, lm_batch=1))
    try:
        x, _ = sf.read(d / "a.wav", dtype="float32")          # the 16-bit samples of the file
        offline = [f for f in local.rec.transcribe(x, 16000, StreamOptions(partials=False, nbest=3)) if f.text]
        s1 = transcribe_files(find_audio([d]), local, ("json", "srt"), tmp_path / "local", 2, False, lambda m: None)
        doc = json.loads((tmp_path / "local" / "a.json").read_text())
        assert [s["text"] for s in doc["segments"]] == [f.text for f in offline]
        assert [s["nbest"] for s in doc["segments"]] == [f.nbest for f in offline]
        assert [[c["pinyin"] for c in s["chars"]] for s in doc["segments"]] == [f.pinyin for f in offline]
        with ServerThread(local.rec, ServerConfig(port=0)) as st:
            remote = ServerEngine(f"ws://127.0.0.1:{st.server.port}/", options={"nbest": 3})
            s2 = transcribe_files(find_audio([d]), remote, ("json", "srt"), tmp_path / "remote", 2, False,
                                  lambda m: None)
    finally:
        local.close()
    assert s1["ok"] == s2["ok"] == 3 and s1["segments"] == s2["segments"] > 0
    for p in sorted((tmp_path / "local").rglob("*.*")):
        twin = tmp_path / "remote" / p.relative_to(tmp_path / "local")
        a, b = p.read_text(), twin.read_text()
        if p.suffix == ".json":   # same segments; only the recorded audio path may differ
            a, b = json.loads(a)["segments"], json.loads(b)["segments"]
        assert a == b, p.name


def test_server_unreachable(inputs):
    from asr_pinyin.clients.transcribe import ServerEngine, find_audio, transcribe_files

    d, _ = inputs
    s = transcribe_files(find_audio([d / "a.wav"]), ServerEngine("ws://127.0.0.1:9/"), ("text",), None, 1,
                         False, lambda m: None)
    assert s["ok"] == 0 and "cannot connect" in s["failed"][0]["error"]
