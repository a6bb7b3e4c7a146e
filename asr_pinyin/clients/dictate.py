"""`asr-pinyin dictate`: live microphone dictation in the terminal.

The microphone is read with `sounddevice` (PortAudio) at the device's own sample rate, in 100 ms
blocks handed from the audio callback to the main thread through a queue; the recognizer stream
(or a websocket session with `--server`) resamples to 16 kHz. In a terminal the partial text is
redrawn in place on one line and each final is committed as its own line; when stdout is not a
terminal only finals are printed, one per line, so the output can be piped.
"""
from __future__ import annotations

import os
import queue
import shutil
import sys
import time
import unicodedata


class DictateError(Exception):
    """No PortAudio, no input device, an unknown device: a one-line message for the user."""


def load_sounddevice():
    try:
        import sounddevice as sd
    except OSError as e:  # sounddevice raises OSError when libportaudio cannot be loaded
        raise DictateError(f"PortAudio is not available ({e}); install it, e.g. "
                           "`apt-get install libportaudio2`") from None
    return sd


def input_devices(sd) -> list[dict]:
    try:
        devices = sd.query_devices()
    except Exception as e:  # noqa: BLE001 - PortAudio errors carry the reason
        raise DictateError(f"cannot list audio devices: {e}") from None
    return [dict(d, index=i) for i, d in enumerate(devices) if d["max_input_channels"] > 0]


def format_devices(sd) -> str:
    devs = input_devices(sd)
    if not devs:
        return "no audio input device found"
    try:
        default = sd.default.device[0]
    except Exception:  # noqa: BLE001
        default = -1
    lines = ["input devices (use --device INDEX or a part of the name):"]
    for d in devs:
        mark = "*" if d["index"] == default else " "
        lines.append(f"{mark} {d['index']:3d}  {d['name']}  ({d['max_input_channels']} ch, "
                     f"{d['default_samplerate']:.0f} Hz)")
    return "\n".join(lines)


def pick_device(sd, wanted: str | None) -> dict:
    """The input device by index or name part (default: the system default input)."""
    devs = input_devices(sd)
    if not devs:
        raise DictateError("no audio input device found (is a microphone connected? "
                           "`asr-pinyin dictate --list-devices` shows what PortAudio sees)")
    if wanted is None:
        try:
            return dict(sd.query_devices(kind="input"))
        except Exception:  # noqa: BLE001 - no default input: take the first one
            return devs[0]
    if wanted.isdigit():
        for d in devs:
            if d["index"] == int(wanted):
                return d
        raise DictateError(f"no input device with index {wanted} (see --list-devices)")
    hits = [d for d in devs if wanted.lower() in d["name"].lower()]
    if not hits:
        raise DictateError(f"no input device named like {wanted!r} (see --list-devices)")
    exact = [d for d in hits if d["name"].lower() == wanted.lower()]
    return (exact or hits)[0]


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


class Display:
    """Partial text redrawn in place on a terminal; finals committed line by line."""

    def __init__(self, out=None, tty: bool | None = None, times: bool = True):
        self.out = out = out or sys.stdout
        self.tty = out.isatty() if tty is None else tty
        self.times = times
        self.shown = False
        self.finals: list[str] = []

    def partial(self, text: str) -> None:
        if not self.tty:
            return
        cols = shutil.get_terminal_size((80, 24)).columns - 4
        while _width(text) > cols:          # keep the tail: one line, so \r can redraw it
            text = text[1:]
        self.out.write("\r\033[K\033[2m" + text + "\033[0m")
        self.out.flush()
        self.shown = True

    def final(self, text: str, start: float, end: float) -> None:
        self.finals.append(text)
        prefix = f"[{_clock(start)}-{_clock(end)}] " if self.times else ""
        if self.tty:
            self.out.write("\r\033[K")
        self.out.write(prefix + text + "\n")
        self.out.flush()
        self.shown = False

    def status(self, text: str) -> None:
        print(text, file=sys.stderr, flush=True)


def _clock(t: float) -> str:
    m, s = divmod(max(0.0, t), 60)
    return f"{int(m):02d}:{s:04.1f}"


def open_input(sd, device: dict, rate: int | None, block_ms: int = 100):
    """An InputStream at the device's native rate (or `rate`), mono float32, and its queue."""
    sr = int(rate or device["default_samplerate"])
    if not 8000 <= sr <= 48000:
        sr = 48000 if sr > 48000 else 16000   # PortAudio/the host converts; we accept 8-48 kHz
    q: queue.Queue = queue.Queue()

    def callback(indata, frames, t, status):
        q.put(indata[:, 0].copy())

    try:
        stream = sd.InputStream(device=device["index"], channels=1, samplerate=sr, dtype="float32",
                                blocksize=sr * block_ms // 1000, callback=callback)
    except Exception as e:  # noqa: BLE001 - PortAudioError: unsupported rate, busy device...
        raise DictateError(f"cannot open input device {device['name']!r} at {sr} Hz: {e}") from None
    return stream, q, sr


def run_local(rec, options, blocks, sr: int, display: Display, stop_at: float | None) -> None:
    """Feed microphone blocks into a recognizer stream; show results as they come."""
    from asr_pinyin.recognizer import Final, Partial, StreamError

    stream = rec.create_stream(options)

    def show(results) -> None:
        for r in results:
            if isinstance(r, Partial):
                display.partial(r.text)
            elif isinstance(r, Final) and r.text:
                display.final(r.text, r.start, r.end)
            elif isinstance(r, StreamError):
                raise DictateError(f"recognition failed: {r.message}")
    try:
        while stop_at is None or time.monotonic() < stop_at:
            try:
                stream.accept_waveform(sr, blocks.get(timeout=0.1))
            except queue.Empty:
                pass
            show(stream.results())
    except KeyboardInterrupt:
        pass
    finally:
        stream.input_finished()
        stream.wait(30)
        show(stream.results())
        stream.close()


def run_server(client, blocks, display: Display, stop_at: float | None) -> None:
    """The same loop against a websocket session (client: a connected WsClient)."""
    def show(msgs) -> None:
        for m in msgs:
            if m["type"] == "partial":
                display.partial(m["text"])
            elif m["type"] == "final" and m.get("text"):
                display.final(m["text"], m["start"], m["end"])
            elif m["type"] == "error":
                raise DictateError(f"server error {m.get('code')}: {m.get('message')}")
    try:
        while stop_at is None or time.monotonic() < stop_at:
            try:
                client.send_audio(blocks.get(timeout=0.1))
            except queue.Empty:
                pass
            show(client.poll())
    except KeyboardInterrupt:
        pass
    finally:
        try:
            client.stop(30)
        finally:
            show(client.poll())


def dictate(args) -> int:
    sd = load_sounddevice()
    if args.list_devices:
        print(format_devices(sd))
        return 0
    device = pick_device(sd, args.device)
    display = Display(times=not args.no_times)
    endpoint = {"trailing_silence_ms": args.trailing_silence_ms} if args.trailing_silence_ms else None
    if args.server:
        from .ws_client import ServerError, WsClient
    else:
        from asr_pinyin.recognizer import Recognizer, StreamOptions
        from asr_pinyin.recognizer.adapters import StageLoadError
        from .transcribe import load_adapters
        try:
            rec = Recognizer.load(args.am, args.lm)
        except StageLoadError as e:
            raise DictateError(str(e)) from None
        try:
            load_adapters(rec, args.adapters, args.voice)
            rec.create_stream(StreamOptions(domain=args.domain, voice=args.voice)).close()
        except Exception as e:     # an unknown voice or domain: say which, before opening the mic
            rec.close()
            raise DictateError(str(e)) from None
    mic, blocks, sr = open_input(sd, device, args.rate)
    display.status(f"listening on {device['name']!r} at {sr} Hz"
                   + (f" for {args.seconds:g} s" if args.seconds else "; Ctrl-C to stop"))
    stop_at = time.monotonic() + args.seconds if args.seconds else None
    mic.start()
    try:
        if args.server:
            try:
                client = WsClient(args.server, sample_rate=sr, hotwords=args.hotword, endpoint=endpoint,
                                  domain=args.domain, voice=args.voice,
                                  token=args.token or os.environ.get("ASR_PINYIN_TOKEN")).connect()
                run_server(client, blocks, display, stop_at)
            except ServerError as e:
                raise DictateError(str(e)) from None
        else:
            try:
                run_local(rec, StreamOptions(hotwords=args.hotword, endpoint=endpoint, domain=args.domain,
                                             voice=args.voice), blocks, sr, display, stop_at)
            finally:
                rec.close()
    finally:
        mic.abort()   # not stop(): stop() waits for buffers a stalled source may never fill
        mic.close()
    display.status(f"{len(display.finals)} segment(s) dictated")
    return 0
