"""Stream a WAV file to `asr-pinyin serve` in real time and print partial and final results.

A minimal websocket client (only `websockets`, `soundfile`, `numpy`): it shows the whole
protocol (docs/PROTOCOL.md) in one page, so porting it to another language is easy.

    python examples/ws_client_wav.py streams/example.wav --url ws://127.0.0.1:8765/

(start the server first with `asr-pinyin serve`). `--speed 4` sends four times faster than
real time; the file may have any sample rate from 8 to 48 kHz and any channel count.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sys

import numpy as np
import soundfile as sf
import websockets
from websockets.exceptions import ConnectionClosed, WebSocketException

FRAME_S = 0.1  # send 100 ms per binary frame, as a microphone would


async def run(path: str, url: str, speed: float, nbest: int) -> int:
    audio, sr = sf.read(path, dtype="int16", always_2d=True)
    pcm = audio.mean(axis=1).astype("<i2")                      # mono 16-bit little-endian
    async with websockets.connect(url) as ws:
        await ws.send(json.dumps({"type": "start", "version": 1, "sample_rate": sr,
                                  "format": "pcm_s16le", "nbest": nbest}))
        ready = json.loads(await ws.recv())
        if ready["type"] != "ready":
            print(f"refused: {ready}", file=sys.stderr)
            return 1
        print(f"session {ready['session']}: streaming {len(pcm) / sr:.1f} s of {path}", file=sys.stderr)

        async def send() -> None:
            step = int(sr * FRAME_S)
            for i in range(0, len(pcm), step):
                await ws.send(pcm[i:i + step].tobytes())
                await asyncio.sleep(FRAME_S / speed)            # real-time pacing
            await ws.send(json.dumps({"type": "stop"}))         # finish the last sentence

        sender = asyncio.create_task(send())
        failed = False
        async for raw in ws:                                    # until the server closes
            msg = json.loads(raw)
            if msg["type"] == "partial":
                print(f"\r\033[K… {msg['text']}", end="", file=sys.stderr, flush=True)
            elif msg["type"] == "final" and msg["text"]:
                print("\r\033[K", end="", file=sys.stderr)
                print(f"[{msg['start']:6.2f}-{msg['end']:6.2f}] {msg['text']}  "
                      f"({' '.join(msg['pinyin'])})", flush=True)
            elif msg["type"] == "error":
                print(f"\nerror {msg['code']}: {msg['message']}", file=sys.stderr)
                failed = True
            elif msg["type"] == "closed":
                print(f"closed: {msg['reason']}", file=sys.stderr)
        if not sender.done():                                   # the server ended early
            sender.cancel()
        try:
            await sender
        except (asyncio.CancelledError, ConnectionClosed):
            pass
        return 1 if failed else 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("wav")
    ap.add_argument("--url", default="ws://127.0.0.1:8765/")
    ap.add_argument("--speed", type=float, default=1.0, help="1 = real time")
    ap.add_argument("--nbest", type=int, default=1)
    args = ap.parse_args()
    try:
        return asyncio.run(run(args.wav, args.url, args.speed, args.nbest))
    except (OSError, sf.LibsndfileError, WebSocketException) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
