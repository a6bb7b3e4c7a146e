"""`asr-pinyin dictate` against a real virtual microphone (PulseAudio pipe source via PortAudio).

Speech is written into the virtual microphone in real time while `dictate` records from the
PulseAudio device at its native 44.1 kHz, with local models and with `--server`; finals must
be committed line by line. Also: device listing and choice, the no-device message, and the
terminal display (partial redrawn in place, finals committed).
"""
from __future__ import annotations

import io
import re
import subprocess
import sys
from pathlib import Path

import pytest

from asr_pinyin.clients.dictate import Display
from tests.clients_fixtures import model_files, speech_like
from tests.virtual_mic import VirtualMic, VirtualMicUnavailable

ROOT = Path(__file__).resolve().parents[1]
LINE = re.compile(r"^\[\d\d:\d\d\.\d-\d\d:\d\d\.\d\] \S+$")


@pytest.fixture(scope="module")
def mic():
    pytest.importorskip("sounddevice")
    try:
        with VirtualMic() as m:
            yield m
    except VirtualMicUnavailable as e:
        pytest.skip(str(e))


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return model_files(tmp_path_factory.getbasetemp() / "client-models")


def dictate(capsys, *args) -> tuple[int, str, str]:
    from asr_pinyin.cli import main

    capsys.readouterr()
    code = main(["dictate", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_display_in_place_then_commit():
    out = io.StringIO()
    d = Display(out, tty=True)
    d.partial("今天")
    d.partial("今天天气")
    d.final("今天天气很好。", 0.5, 2.25)
    d.partial("谢")
    text = out.getvalue()
    assert text.count("\r\033[K") == 4 and "\n" not in text.split("很好。")[0]
    assert "\r\033[K[00:00.5-00:02.2] 今天天气很好。\n" in text
    piped = io.StringIO()
    d = Display(piped, tty=False, times=False)
    d.partial("今天")
    d.final("今天天气很好。", 0.5, 2.25)
    assert piped.getvalue() == "今天天气很好。\n"          # pipes get finals only


def test_no_input_device_message(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "XDG_RUNTIME_DIR": str(tmp_path),
           "PULSE_SERVER": "unix:/nonexistent"}
    r = subprocess.run([sys.executable, "-m", "asr_pinyin.cli", "dictate", "--seconds", "1"], cwd=ROOT,
                       env=env, capture_output=True, text=True, timeout=120)
    if "no audio input device" not in r.stderr and r.returncode == 0:
        pytest.skip("this machine has a real input device")
    assert r.returncode == 2 and r.stderr.startswith("error: no audio input device found")
    assert "Traceback" not in r.stderr


def test_devices(mic, capsys):
    code, out, _ = dictate(capsys, "--list-devices")
    assert code == 0 and re.search(r"^\*?\s+\d+\s+pulse\s+\(\d+ ch, \d+ Hz\)$", out, re.M)
    code, _, err = dictate(capsys, "--device", "no-such-mic", "--seconds", "1")
    assert code == 2 and "no input device named like 'no-such-mic'" in err
    code, _, err = dictate(capsys, "--device", "999", "--seconds", "1")
    assert code == 2 and "no input device with index 999" in err


def test_dictate_local_models(mic, models, capsys):
    am, lm = models
    feeder = mic.play(speech_like(6.5, seed=4), realtime=True)
    code, out, err = dictate(capsys, "--device", "pulse", "--seconds", "7", "--am", str(am), "--lm", str(lm))
    feeder.join(10)
    assert code == 0, err
    assert re.search(r"listening on 'pulse' at \d+ Hz", err)
    lines = out.splitlines()
    assert len(lines) >= 2 and all(LINE.match(x) for x in lines), out
    assert f"{len(lines)} segment(s) dictated" in err


def test_dictate_via_server(mic, models, capsys):
    from asr_pinyin.recognizer import Recognizer
    from asr_pinyin.serve.server import ServerConfig, ServerThread

    rec = Recognizer.load(*models)
    try:
        with ServerThread(rec, ServerConfig(port=0)) as st:
            feeder = mic.play(speech_like(5.0, seed=5), realtime=True)
            code, out, err = dictate(capsys, "--device", "pulse", "--rate", "16000", "--seconds", "5.5",
                                     "--server", f"ws://127.0.0.1:{st.server.port}/", "--no-times")
            feeder.join(10)
            assert st.server.stats["sessions_total"] == 1
    finally:
        rec.close()
    assert code == 0, err
    assert "at 16000 Hz" in err
    lines = out.splitlines()
    assert lines and all(x.strip() and not x.startswith("[") for x in lines), out
