"""The dictation page end to end in a real headless Chromium, with a WAV file as its microphone.

The real server (small models) runs on loopback and serves the page at `/`; Chromium (Debian
`chromium`, driven by Playwright through `executable_path`) captures the WAV through
getUserMedia, the AudioWorklet resamples it to 16 kHz and streams it over the websocket.
Checks: the protocol flow, the audio the page sent (it must be the WAV, resampled), the text on
the page (exactly the finals the server sent, and the same text offline decoding gives for
the audio the page sent), alternatives on click and replacement, copy to clipboard.
Screenshots go to a tmp folder (`make screenshots`: docs/img/).
"""
from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.clients_fixtures import CHROMIUM, chromium_args, model_files, screenshot_dir, speech_like

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian chromium is not installed")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from asr_pinyin.recognizer import Recognizer, RecognizerOptions
    from asr_pinyin.serve.server import ServerConfig, ServerThread

    # batches of one, so offline decoding rounds exactly as the server did (untrained models
    # have near-tie logits that padding in a batch can flip)
    am, lm = model_files(tmp_path_factory.getbasetemp() / "client-models")
    rec = Recognizer.load(am, lm, RecognizerOptions(am_batch=1, lm_batch=1))
    with ServerThread(rec, ServerConfig(port=0)) as st:
        yield rec, f"http://127.0.0.1:{st.server.port}"
    rec.close()


def test_static_files_served(server):
    from asr_pinyin.web import lookup, static_dir

    _, http = server
    page = urllib.request.urlopen(http + "/", timeout=10)
    assert page.headers["Content-Type"].startswith("text/html")
    assert page.read() == (static_dir() / "index.html").read_bytes()
    for name in ("app.js", "mic-worklet.js", "style.css"):
        assert urllib.request.urlopen(f"{http}/{name}", timeout=10).read() == (static_dir() / name).read_bytes()
    assert lookup("/../serve/server.py") is None and lookup("/.hidden") is None


def test_dictation_in_chromium(server, tmp_path):
    playwright = pytest.importorskip("playwright.sync_api")
    rec, http = server
    wav = tmp_path / "mic.wav"
    audio = speech_like(9.0, seed=1)
    sf.write(wav, audio, 16000, subtype="PCM_16")
    args = chromium_args(wav)
    received, sent = [], []
    img = screenshot_dir(tmp_path)
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)
        ctx = browser.new_context(viewport={"width": 1000, "height": 640})
        ctx.grant_permissions(["clipboard-read", "clipboard-write"], origin=http)
        page = ctx.new_page()

        def on_ws(ws):
            ws.on("framereceived", lambda payload: received.append(json.loads(payload)))
            ws.on("framesent", lambda payload: sent.append(payload))
        page.on("websocket", on_ws)
        page.goto(http + "/")
        page.click("#start")
        page.wait_for_selector("#status[data-state=listening]", timeout=20000)
        page.wait_for_selector("#finals .final .ch", timeout=30000)
        page.wait_for_function("document.querySelectorAll('#finals .final').length >= 2", timeout=30000)
        page.wait_for_function("document.getElementById('partial').textContent.length > 0", timeout=20000)
        page.screenshot(path=str(img / "web_dictation.png"))
        page.click("#stop")
        page.wait_for_function("window.asrEvents.some(m => m.type === 'closed')", timeout=30000)

        # the page shows exactly the finals the server sent, in order
        finals = [m for m in received if m["type"] == "final" and m["text"]]
        shown = page.eval_on_selector_all("#finals .final", "ps => ps.map(p => p.textContent)")
        assert shown == [m["text"] for m in finals]
        kinds = [m["type"] for m in received]
        assert kinds[0] == "ready" and kinds[-1] == "closed" and "partial" in kinds
        assert kinds.index("partial") < kinds.index("final")

        # a click on a character with alternatives shows them; choosing one replaces it
        span = page.locator("#finals .ch.has-alts").first
        before = span.text_content()
        span.click()
        page.wait_for_selector("#alts:not([hidden]) button.alt")
        options = page.locator("#alts button.alt").all_text_contents()
        assert options and before not in options
        seg = finals[int(span.evaluate("s => [...document.querySelectorAll('#finals .final')]"
                                       ".indexOf(s.parentElement)"))]
        hyps = {h["text"] for h in seg["nbest"]}
        assert any(o in h for o in options for h in hyps)
        page.screenshot(path=str(img / "web_alternatives.png"))
        page.locator("#alts button.alt").first.click()
        assert span.text_content() == options[0]
        assert "edited" in span.get_attribute("class")

        page.click("#copy")
        page.wait_for_selector("#toast:not([hidden])")
        clip = page.evaluate("navigator.clipboard.readText()")
        assert clip == "\n".join(page.eval_on_selector_all("#finals .final", "ps => ps.map(p => p.textContent)"))
        browser.close()

    # what the page sent is the WAV (looped by Chromium), resampled 16k -> 48k -> 16k
    pcm = np.frombuffer(b"".join(s for s in sent if isinstance(s, bytes)), dtype="<i2")
    got = pcm.astype(np.float32) / 32768.0
    assert got.size > 3 * 16000
    ref = audio[:4 * 16000]
    probe = got[: 6 * 16000]
    corr = np.correlate(probe, ref[16000:3 * 16000], mode="valid")
    lag = int(np.argmax(corr)) - 16000
    seg = probe[16000 + lag: 3 * 16000 + lag] if lag >= -16000 else None
    assert seg is not None and seg.size == 2 * 16000
    rho = np.dot(seg, ref[16000:3 * 16000]) / (np.linalg.norm(seg) * np.linalg.norm(ref[16000:3 * 16000]))
    assert rho > 0.95, f"page audio does not match the WAV (correlation {rho:.3f})"

    # offline decoding of the very audio the page sent gives the text the page shows
    from asr_pinyin.recognizer import StreamOptions
    offline = rec.transcribe(pcm, 16000, StreamOptions(partials=False, nbest=5))
    assert [f.text for f in offline if f.text] == [m["text"] for m in finals]
