"""A smart-speaker loop: a local VAD waits for speech, each utterance is one server request.

While nobody speaks nothing is sent. When the local webrtcvad hears speech, the loop opens a
websocket session, sends the utterance (with 300 ms of audio from before the onset) until
`--silence-ms` of silence, sends `stop`, prints the final text and what a command handler
would do with it, and goes back to waiting. Start the server first (`asr-pinyin serve`), then:

    python examples/smart_speaker.py --wav streams/example.wav --url ws://127.0.0.1:8765/

Without `--wav` it listens to the default microphone (`sounddevice`); `--speed 0` reads a file
as fast as possible instead of in real time.
"""
from __future__ import annotations

import argparse
import collections
import json
import re
import sys
import time

import numpy as np

SR = 16000
FRAME = SR * 30 // 1000            # webrtcvad frame: 30 ms

# --- what a command handler would do with the text ------------------------------------------
RULES = [
    (r"(打开|开).{0,4}灯|开灯", "turn the lights ON"),
    (r"(关掉|关闭|关).{0,4}灯|关灯", "turn the lights OFF"),
    (r"几点|时间", "say the time"),
    (r"天气|下雨|温度", "read the weather forecast"),
    (r"(播放|放).{0,6}(音乐|歌)|来一首", "play music"),
    (r"(暂停|停止|别放了)", "pause playback"),
    (r"(大声|音量.{0,2}(大|高)|调高)", "volume up"),
    (r"(小声|音量.{0,2}(小|低)|调低)", "volume down"),
    (r"(闹钟|叫醒)", "set an alarm"),
]


def handle(text: str) -> str:
    """The action for an utterance's text (first matching rule), or a polite shrug."""
    for pattern, action in RULES:
        if re.search(pattern, text):
            return action
    return "no command matched (would answer: 抱歉，我没听懂)"


# --- audio sources: 30 ms int16 frames at 16 kHz ---------------------------------------------
def wav_frames(path: str, speed: float):
    import soundfile as sf
    from scipy.signal import resample_poly

    audio, sr = sf.read(path, dtype="float32", always_2d=True)
    x = audio.mean(axis=1)
    if sr != SR:
        g = np.gcd(sr, SR)
        x = resample_poly(x, SR // g, sr // g).astype(np.float32)
    pcm = (np.clip(x, -1, 1) * 32767).astype("<i2")
    pcm = np.concatenate([pcm, np.zeros(SR, dtype="<i2")])  # a second of room silence at the end
    t0 = time.monotonic()
    for n, i in enumerate(range(0, len(pcm) - FRAME + 1, FRAME)):
        if speed > 0:
            time.sleep(max(0.0, t0 + n * 0.03 / speed - time.monotonic()))
        yield pcm[i:i + FRAME]


def mic_frames():
    import queue

    import sounddevice as sd

    q: queue.Queue = queue.Queue()
    with sd.InputStream(samplerate=SR, channels=1, dtype="int16", blocksize=FRAME,
                        callback=lambda data, *_: q.put(data[:, 0].copy())):
        while True:
            yield q.get()


# --- the loop ---------------------------------------------------------------------------------
class Request:
    """One utterance = one websocket session (start, audio, stop -> final text)."""

    def __init__(self, url: str):
        from websockets.exceptions import WebSocketException
        from websockets.sync.client import connect

        try:
            self.ws = connect(url, open_timeout=10, legacy=True)
        except WebSocketException as e:
            raise RuntimeError(f"cannot open a session at {url}: {e}") from None
        self.ws.send(json.dumps({"type": "start", "version": 1, "sample_rate": SR,
                                 "format": "pcm_s16le", "partials": False,
                                 "endpoint": {"trailing_silence_ms": 3000}}))
        ready = json.loads(self.ws.recv(10))
        if ready["type"] != "ready":
            raise RuntimeError(f"server refused: {ready.get('message', ready)}")

    def send(self, frames) -> None:
        self.ws.send(b"".join(f.tobytes() for f in frames))

    def finish(self) -> str:
        self.ws.send(json.dumps({"type": "stop"}))
        texts = []
        for raw in self.ws:             # finals, then `closed`, then the server closes
            msg = json.loads(raw)
            if msg["type"] == "final":
                texts.append(msg["text"])
            elif msg["type"] == "error":
                raise RuntimeError(f"{msg['code']}: {msg['message']}")
        return "".join(texts)


def loop(frames, url: str, silence_ms: int = 600, max_utterance_s: float = 10.0, vad_mode: int = 2) -> int:
    import webrtcvad

    vad = webrtcvad.Vad(vad_mode)
    preroll = collections.deque(maxlen=10)          # 300 ms before the onset
    recent = collections.deque(maxlen=5)            # onset: 3 of the last 5 frames are speech
    req, utt, silent, n, t = None, [], 0, 0, 0.0
    for frame in frames:
        t += 0.03
        speech = vad.is_speech(frame.tobytes(), SR)
        if req is None:
            preroll.append(frame)
            recent.append(speech)
            if sum(recent) >= 3:
                n += 1
                start = t - 0.03 * len(preroll)
                req = Request(url)
                utt = list(preroll)
                silent = 0
                print(f"[utterance {n}] listening from {start:.2f} s", file=sys.stderr, flush=True)
            continue
        utt.append(frame)
        silent = 0 if speech else silent + 30
        if len(utt) >= 10:                           # stream to the server as we go
            req.send(utt)
            utt = []
        if silent >= silence_ms or t - start >= max_utterance_s:
            req.send(utt)
            text = req.finish()
            print(f"[utterance {n}] {start:.2f}-{t:.2f} s: {text or '(nothing recognized)'}", flush=True)
            print(f"    action: {handle(text)}", flush=True)
            req, utt = None, []
            preroll.clear()
            recent.clear()
    if req is not None:                              # the input ended mid-utterance
        req.send(utt)
        text = req.finish()
        print(f"[utterance {n}] {start:.2f}-{t:.2f} s: {text or '(nothing recognized)'}", flush=True)
        print(f"    action: {handle(text)}", flush=True)
    return n


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--url", default="ws://127.0.0.1:8765/")
    ap.add_argument("--wav", help="read this file instead of the microphone")
    ap.add_argument("--speed", type=float, default=1.0, help="file pacing: 1 = real time, 0 = no wait")
    ap.add_argument("--silence-ms", type=int, default=600, help="silence that ends an utterance")
    args = ap.parse_args()
    try:
        frames = wav_frames(args.wav, args.speed) if args.wav else mic_frames()
        n = loop(frames, args.url, args.silence_ms)
    except KeyboardInterrupt:
        return 0
    except (OSError, RuntimeError, ImportError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"{n} utterance(s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
