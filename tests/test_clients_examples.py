"""The examples run as their docstrings say (`python examples/X.py ...`) against a real server.

ws_client_wav.py must print the same finals the server gives offline for the file; the
smart-speaker loop must make one request per utterance of a file with three utterances and
print a text and an action for each. The command handler maps texts to actions.
"""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile as sf

from tests.clients_fixtures import model_files, speech_like

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples"))


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from asr_pinyin.recognizer import Recognizer, RecognizerOptions
    from asr_pinyin.serve.server import ServerConfig, ServerThread

    am, lm = model_files(tmp_path_factory.getbasetemp() / "client-models")
    rec = Recognizer.load(am, lm, RecognizerOptions(am_batch=1, lm_batch=1))  # rounding as offline
    with ServerThread(rec, ServerConfig(port=0)) as st:
        yield rec, f"ws://127.0.0.1:{st.server.port}/"
    rec.close()


def example(*args, timeout=120):
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def test_docstrings_name_their_command():
    for name in ("ws_client_wav.py", "smart_speaker.py"):
        doc = (ROOT / "examples" / name).read_text()
        assert f"    python examples/{name} " in doc


def test_ws_client_wav(server, tmp_path):
    from asr_pinyin.recognizer import StreamOptions

    rec, url = server
    wav = tmp_path / "speech.wav"
    sf.write(wav, speech_like(6.0, seed=6), 16000, subtype="PCM_16")
    r = example("examples/ws_client_wav.py", str(wav), "--url", url, "--speed", "3")
    assert r.returncode == 0, r.stderr
    assert "closed: stop" in r.stderr
    got = [re.match(r"^\[\s*[\d.]+-\s*[\d.]+\] (\S+)  \(", line).group(1) for line in r.stdout.splitlines()]
    x, _ = sf.read(wav, dtype="int16")
    offline = [f.text for f in rec.transcribe(x, 16000, StreamOptions(partials=False)) if f.text]
    assert got == offline and len(got) >= 2
    bad = example("examples/ws_client_wav.py", str(tmp_path / "missing.wav"), "--url", url)
    assert bad.returncode == 1 and bad.stderr.startswith("error:") and "Traceback" not in bad.stderr


def test_smart_speaker_one_request_per_utterance(server, tmp_path):
    _, url = server
    from tests.recognizer_fixtures import dictation

    wav = tmp_path / "commands.wav"
    sf.write(wav, dictation((1, 2, 3), gap=1.2), 16000, subtype="PCM_16")
    r = example("examples/smart_speaker.py", "--wav", str(wav), "--url", url, "--speed", "0")
    assert r.returncode == 0, r.stderr
    heard = re.findall(r"^\[utterance (\d)\] [\d.]+-[\d.]+ s: (.+)$", r.stdout, re.M)
    actions = re.findall(r"^    action: (.+)$", r.stdout, re.M)
    assert [n for n, _ in heard] == ["1", "2", "3"] and len(actions) == 3
    assert all(text != "(nothing recognized)" for _, text in heard), r.stdout
    assert "3 utterance(s)" in r.stderr
    down = example("examples/smart_speaker.py", "--wav", str(wav), "--url", "ws://127.0.0.1:9/", "--speed", "0")
    assert down.returncode == 1 and down.stderr.startswith("error:") and "Traceback" not in down.stderr


def test_command_handler():
    from smart_speaker import handle

    assert handle("请帮我打开客厅的灯。") == "turn the lights ON"
    assert handle("关灯") == "turn the lights OFF"
    assert handle("现在几点了？") == "say the time"
    assert handle("明天天气怎么样") == "read the weather forecast"
    assert handle("播放一首音乐") == "play music"
    assert handle("你好").startswith("no command matched")
