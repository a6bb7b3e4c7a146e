"""A real server on loopback, real `websockets` clients: round trip, every bad input, concurrency
equal to offline decoding, auth / origin / session-limit refusals, timeouts, graceful shutdown."""
from __future__ import annotations

import json
import socket
import threading
import time
import urllib.error
import urllib.request

import numpy as np
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from recognizer_fixtures import SENTENCES, dictation, make_recognizer, silence, speech

from asr_pinyin.serve.server import ServerConfig, ServerThread

START = {"type": "start", "version": 1, "sample_rate": 16000, "format": "pcm_s16le"}


@pytest.fixture(scope="module")
def rec():
    r = make_recognizer()
    yield r
    r.close()


@pytest.fixture(scope="module")
def server(rec):
    with ServerThread(rec, ServerConfig(port=0, max_sessions=8, idle_timeout_s=5)) as srv:
        yield srv


def pcm(x: np.ndarray) -> bytes:
    return (np.clip(x, -1, 1) * 32767).astype("<i2").tobytes()


def run_session(url, start=START, audio=b"", packet=3200, tail=({"type": "stop"},), pace=0.0,
                **kw):
    """Send start, audio frames and tail messages; collect every server message and the close."""
    msgs = []
    with connect(url, **kw) as ws:
        try:
            if start is not None:
                ws.send(start if isinstance(start, (str, bytes)) else json.dumps(start))
            for i in range(0, len(audio), packet):
                ws.send(audio[i:i + packet])
                if pace:
                    time.sleep(pace)
            for m in tail:
                ws.send(m if isinstance(m, (str, bytes)) else json.dumps(m))
        except ConnectionClosed:
            pass  # the server closed first (a refusal): read what it said
        try:
            while True:
                msgs.append(json.loads(ws.recv(timeout=30)))
        except ConnectionClosed:
            pass
        return msgs, ws.close_code


def finals(msgs):
    return [m for m in msgs if m["type"] == "final"]


def test_round_trip(server, rec):
    x = dictation((1, 2))
    # paced like a live client (5x real time): sent all at once on a loaded machine, the finals
    # can overtake every partial, which the server then rightly drops
    msgs, code = run_session(server.url, {**START, "nbest": 2}, pcm(x), pace=0.02)
    assert code == 1000
    assert msgs[0]["type"] == "ready" and msgs[0]["version"] == 1 and msgs[0]["chunk_ms"] <= 300
    assert msgs[-1] == {"type": "closed", "reason": "stop"}
    fs = finals(msgs)
    assert len(fs) == 2 and all(f["reason"] == "endpoint" for f in fs)
    for f in fs:
        assert len(f["pinyin"]) == len(f["chars"]) and f["start"] < f["end"] <= f["endpoint_at"]
        assert f["nbest"] and {"char", "pinyin", "start", "end", "conf"} <= set(f["chars"][0])
    assert any(m["type"] == "partial" for m in msgs)
    # the server's text is the offline text of the same (int16-quantised) audio
    q = np.frombuffer(pcm(x), "<i2").astype(np.float32) / 32768
    assert [f["text"] for f in fs] == [f.text for f in rec.transcribe(q)]


def test_float32_at_44k_and_end_utterance(server):
    x = np.concatenate([silence(0.3), speech(SENTENCES[3][1])])
    import torchaudio.functional as AF
    import torch
    y = AF.resample(torch.from_numpy(x), 160, 441).numpy().astype("<f4")
    msgs, code = run_session(server.url, {**START, "sample_rate": 44100, "format": "float32"},
                             y.tobytes(), packet=8820, tail=({"type": "end_utterance"}, {"type": "stop"}))
    assert code == 1000 and [f["reason"] for f in finals(msgs)] == ["forced"]


@pytest.mark.parametrize("start,audio,tail,code,close", [
    ("{not json", b"", (), "malformed_json", 1007),
    ('["start"]', b"", (), "malformed_message", 1007),
    ({"type": "begin"}, b"", (), "unknown_type", 1007),
    ({**START, "rate": 16000}, b"", (), "unknown_field", 1007),
    ({**START, "sample_rate": "16k"}, b"", (), "bad_start", 1007),
    ({**START, "sample_rate": 4000}, b"", (), "bad_start", 1007),
    ({**START, "format": "mp3"}, b"", (), "bad_start", 1007),
    ({**START, "version": 2}, b"", (), "unsupported_version", 1007),
    ({**START, "nbest": 99}, b"", (), "bad_start", 1007),
    ({**START, "endpoint": {"max_segment_ms": 90000}}, b"", (), "bad_start", 1007),
    ({**START, "domain": "nope"}, b"", (), "bad_start", 1007),
    (None, b"\0\0", (), "audio_before_start", 1002),
    (None, b"", ({"type": "end_utterance"},), "not_started", 1002),
    (START, b"\0\0\0", (), "bad_audio", 1007),
    (START, b"", (START,), "already_started", 1002),
    (START, b"", ({"type": "stop", "now": 1},), "unknown_field", 1007),
    (START, b"\0" * 300000, (), "frame_too_big", 1009),
])
def test_bad_input_gets_error_and_close_code(server, start, audio, tail, code, close):
    msgs, got = run_session(server.url, start, audio, packet=len(audio) or 1, tail=tail)
    errors = [m for m in msgs if m["type"] == "error"]
    assert errors and errors[0]["code"] == code and errors[0]["message"], msgs
    assert msgs[-1] == {"type": "closed", "reason": code} and got == close


def test_vanishing_client_and_concurrency_match_offline(server, rec):
    """Clients that vanish mid-stream don't disturb 4 concurrent sessions: same text as offline."""
    x = dictation((2, 4), gap=1.0)
    want = [f.text for f in rec.transcribe(np.frombuffer(pcm(x), "<i2").astype(np.float32) / 32768)]
    assert want
    out, errs = [None] * 4, []

    def client(i):
        try:
            out[i] = [f["text"] for f in finals(run_session(server.url, START, pcm(x), pace=0.002)[0])]
        except Exception as e:  # noqa: BLE001 - reported below
            errs.append(e)

    def vanish():
        s = socket.create_connection(("127.0.0.1", int(server.url.rsplit(":", 1)[1].strip("/"))))
        with connect(server.url, sock=s) as ws:
            ws.send(json.dumps(START))
            ws.recv()
            ws.send(pcm(x)[:64000])
            s.shutdown(socket.SHUT_RDWR)   # gone without a close frame

    threads = [threading.Thread(target=client, args=(i,)) for i in range(4)]
    threads += [threading.Thread(target=vanish) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errs and out == [want] * 4
    deadline = time.time() + 5
    while server.server.sessions and time.time() < deadline:
        time.sleep(0.05)
    assert not server.server.sessions and not rec.streams


def test_health_and_metrics(server):
    base = server.url.replace("ws://", "http://")
    health = json.loads(urllib.request.urlopen(base + "health").read())
    assert health["status"] == "ok" and health["version"] == 1
    text = urllib.request.urlopen(base + "metrics").read().decode()
    for name in ("asr_sessions_active", "asr_real_time_factor", "asr_stage_queue_depth",
                 "asr_partial_latency_ms_bucket", "asr_final_latency_ms_count",
                 "process_resident_memory_bytes"):
        assert f"\n{name}" in text or text.startswith(name)
    assert 'asr_session_errors_total{code="bad_audio"}' in text


def test_auth_origin_and_session_limit(rec):
    cfg = ServerConfig(port=0, token="s3cret", max_sessions=1, allowed_origins=("http://ok.example",))
    with ServerThread(rec, cfg) as srv:
        with pytest.raises(InvalidStatus) as e:
            connect(srv.url)
        assert e.value.response.status_code == 401
        with pytest.raises(InvalidStatus) as e:
            connect(srv.url + "?token=wrong")
        assert e.value.response.status_code == 401
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(srv.url.replace("ws://", "http://") + "metrics")
        assert e.value.code == 401
        with pytest.raises(InvalidStatus) as e:
            connect(srv.url + "?token=s3cret", origin="http://evil.example")
        assert e.value.response.status_code == 403
        auth = {"additional_headers": {"Authorization": "Bearer s3cret"}}
        with connect(srv.url, **auth) as first:
            first.send(json.dumps(START))
            assert json.loads(first.recv())["type"] == "ready"
            msgs, code = run_session(srv.url + "?token=s3cret", START)
            assert msgs[0]["code"] == "server_full" and code == 1013
        assert srv.server.refused == {"unauthorized": 3, "server_full": 1}


def test_idle_timeout_finishes_the_open_segment(rec):
    with ServerThread(rec, ServerConfig(port=0, idle_timeout_s=1.0)) as srv:
        x = np.concatenate([silence(0.3), speech(SENTENCES[1][1])])   # speech, no endpoint yet
        msgs, code = run_session(srv.url, START, pcm(x), tail=())
    assert [m["type"] for m in msgs[-3:]] == ["final", "error", "closed"]
    assert msgs[-2]["code"] == "idle_timeout" and msgs[-3]["text"] and code == 1008


def test_graceful_shutdown_finishes_open_segments(rec):
    srv = ServerThread(rec, ServerConfig(port=0)).__enter__()
    x = np.concatenate([silence(0.3), speech(SENTENCES[2][1])])
    with connect(srv.url) as ws:
        ws.send(json.dumps(START))
        ws.recv()
        ws.send(pcm(x))
        time.sleep(0.3)
        threading.Thread(target=srv.stop).start()
        msgs = []
        try:
            while True:
                msgs.append(json.loads(ws.recv(timeout=20)))
        except ConnectionClosed:
            pass
        assert ws.close_code == 1001
    assert msgs[-1] == {"type": "closed", "reason": "shutdown"}
    assert finals(msgs) and finals(msgs)[-1]["reason"] == "input_finished"
