"""WsClient against a real server: results, forced endpoints, refusals become ServerError."""
from __future__ import annotations

import numpy as np
import pytest

from asr_pinyin.clients.ws_client import ServerError, WsClient, transcribe_samples
from tests.clients_fixtures import model_files, speech_like


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from asr_pinyin.recognizer import Recognizer
    from asr_pinyin.serve.server import ServerConfig, ServerThread

    rec = Recognizer.load(*model_files(tmp_path_factory.getbasetemp() / "client-models"))
    with ServerThread(rec, ServerConfig(port=0, token="s3cret")) as st:
        yield f"ws://127.0.0.1:{st.server.port}/"
    rec.close()


def test_session_with_forced_endpoint(server):
    x = speech_like(3.0, seed=7)
    seen = []
    with WsClient(server, token="s3cret", nbest=2, on_message=seen.append) as c:
        assert c.ready["type"] == "ready" and c.ready["sample_rate"] == 16000
        c.send_audio(x[: 16000 + 8000])           # mid-sentence: no endpoint yet
        c.end_utterance()                          # force one
        c.send_audio((x[24000:] * 32767).astype(np.int16))
    kinds = [m["type"] for m in seen]
    assert kinds[-1] == "closed" and c.closed_reason == "stop"
    assert any(f["reason"] == "forced" for f in c.finals)
    assert all({"text", "chars", "start", "end"} <= set(f) for f in c.finals)


def test_float32_and_helper(server):
    x = speech_like(4.0, seed=8)
    a = transcribe_samples(server, x, 16000, token="s3cret")
    b = transcribe_samples(server, np.round(x * 32768).clip(-32768, 32767).astype(np.int16), 16000,
                           token="s3cret", format="float32")
    assert [f["text"] for f in a] == [f["text"] for f in b] and a


def test_refusals(server):
    with pytest.raises(ServerError) as e:
        WsClient(server).connect()                 # no token
    assert e.value.code == "connect_failed" and "401" in str(e.value)
    with pytest.raises(ServerError) as e:
        WsClient(server, token="s3cret", nbest=99).connect()
    assert e.value.code == "bad_start" and "nbest" in e.value.message
    with pytest.raises(ServerError) as e:
        WsClient("http://127.0.0.1:1/").connect()
    assert e.value.code == "bad_url"
    with pytest.raises(ServerError) as e:
        WsClient("ws://127.0.0.1:9/").connect()
    assert e.value.code == "connect_failed"
