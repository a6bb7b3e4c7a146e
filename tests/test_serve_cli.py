"""`asr-pinyin serve` as a user runs it: clear errors, a real process that serves and stops cleanly;
many sequential sessions leave no sessions, streams, tasks or threads behind."""
from __future__ import annotations

import asyncio
import json
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request

import numpy as np
from websockets.sync.client import connect

from recognizer_fixtures import SENTENCES, make_recognizer, model_paths, silence, speech

from asr_pinyin.serve.server import ServerConfig, ServerThread

CLI = [sys.executable, "-m", "asr_pinyin.cli"]


def test_missing_model_is_a_one_line_error(tmp_path, capsys):
    from asr_pinyin.cli import main

    assert main(["serve", "--am", str(tmp_path / "nope.pt")]) == 1
    assert capsys.readouterr().err.startswith("error: acoustic model not found")
    am, _ = model_paths()
    assert main(["serve", "--am", str(am), "--lm", str(tmp_path / "nope.pt")]) == 1
    assert "language model not found" in capsys.readouterr().err
    assert main(["serve", "--port", "70000"]) == 2


def test_serve_process_health_session_and_sigterm():
    am, lm = model_paths()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(CLI + ["serve", "--port", str(port), "--am", str(am), "--lm", str(lm)],
                            stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(300):
            try:
                health = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/health").read())
                break
            except OSError:
                assert proc.poll() is None, proc.stderr.read()
                time.sleep(0.1)
        assert health["status"] == "ok"
        x = np.concatenate([silence(0.3), speech(SENTENCES[1][1])])
        with connect(f"ws://127.0.0.1:{port}/") as ws:
            ws.send(json.dumps({"type": "start", "version": 1, "sample_rate": 16000, "format": "float32"}))
            assert json.loads(ws.recv())["type"] == "ready"
            ws.send(x.astype("<f4").tobytes())
            time.sleep(0.5)
            proc.send_signal(signal.SIGTERM)     # graceful: the open segment still gets its final
            msgs = [json.loads(m) for m in ws]
        assert msgs[-1] == {"type": "closed", "reason": "shutdown"}
        assert any(m["type"] == "final" and m["text"] for m in msgs)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()


def test_sequential_sessions_leak_nothing():
    rec = make_recognizer()
    x = (np.concatenate([silence(0.2), speech(SENTENCES[0][1]), silence(0.2)]) * 32767).astype("<i2").tobytes()
    try:
        with ServerThread(rec, ServerConfig(port=0)) as srv:
            def one():
                with connect(srv.url) as ws:
                    ws.send(json.dumps({"type": "start", "version": 1, "sample_rate": 16000,
                                        "format": "pcm_s16le", "partials": False}))
                    ws.send(x)
                    ws.send(json.dumps({"type": "stop"}))
                    msgs = [json.loads(m) for m in ws]
                    assert msgs[-1] == {"type": "closed", "reason": "stop"} and ws.close_code == 1000
                    assert [m["type"] for m in msgs] == ["ready", "final", "closed"]
            one()
            time.sleep(0.3)   # let the first connection's closing tasks end
            threads = threading.active_count()
            tasks = asyncio.run_coroutine_threadsafe(_count_tasks(), srv.loop).result(5)
            for _ in range(40):
                one()
            time.sleep(0.3)
            assert threading.active_count() == threads
            assert asyncio.run_coroutine_threadsafe(_count_tasks(), srv.loop).result(5) == tasks
            assert not srv.server.sessions and not rec.streams
            assert srv.server.stats["sessions_total"] == 41 and not srv.server.errors
    finally:
        rec.close()


async def _count_tasks() -> int:
    return len(asyncio.all_tasks())
