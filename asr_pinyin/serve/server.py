"""Websocket server (`websockets` asyncio): one Session per connection, one Recognizer for all.

The event loop only moves bytes and JSON: audio goes into the session's recognizer stream
(resampling and VAD are cheap), the model work runs in the recognizer's batching stage workers,
and results come back through `loop.call_soon_threadsafe` into the session's send queue. Plain
HTTP on the same port: `GET /health` and `GET /metrics` (answered in `process_request`, before
any websocket handshake). Every client mistake ends that session alone, with an `error` message,
a `closed` message and a close code (docs/PROTOCOL.md); a failing session never touches another.
"""
from __future__ import annotations

import asyncio
import hmac
import json
import logging
import threading
import time
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Response

from asr_pinyin.recognizer import (Final, Recognizer, StreamConfigError, StreamError,
                                   StreamOptions)
from asr_pinyin.recognizer.resample import AudioFormatError, decode_pcm

from . import metrics, protocol as P

log = logging.getLogger("asr_pinyin.serve")


@dataclass
class ServerConfig:
    host: str = "127.0.0.1"           # loopback unless asked otherwise
    port: int = 8765
    max_sessions: int = 64
    max_frame_bytes: int = 262144     # one binary frame (1.4 s of 48 kHz float32)
    idle_timeout_s: float = 30.0      # no message for this long ends the session
    max_session_s: float = 3600.0
    max_segment_ms: int = 20000       # clients may ask for less, not more
    max_backlog_s: float = 2.0        # unprocessed audio before we stop reading (backpressure)
    token: str | None = None          # shared secret: `Authorization: Bearer T` or `?token=T`
    allowed_origins: tuple[str, ...] | None = None  # browser Origins allowed (None: any)
    shutdown_grace_s: float = 10.0
    enroll: bool = True               # voice enrollment on path /enroll (serve/enroll.py)
    enroll_config: object = None      # an enroll.EnrollConfig (None: its defaults)


class Session:
    def __init__(self, server: "AsrServer", ws):
        self.server, self.ws = server, ws
        self.stream = None
        self.format = "pcm_s16le"
        self.sample_rate = 16000
        self.queue: asyncio.Queue = asyncio.Queue()
        self.task: asyncio.Task | None = None
        self.shutting_down = False
        self.failed = False

    def _on_result(self, result) -> None:  # called in the language worker thread
        self.server.loop.call_soon_threadsafe(self.queue.put_nowait, result)

    async def run(self) -> None:
        self.task = asyncio.current_task()
        self.sender = sender = asyncio.create_task(self._sender())
        cfg, loop = self.server.config, asyncio.get_running_loop()
        begin = last = loop.time()
        try:
            while True:
                idle_left = cfg.idle_timeout_s - (loop.time() - last)
                total_left = cfg.max_session_s - (loop.time() - begin)
                try:
                    data = await asyncio.wait_for(self.ws.recv(), max(0.0, min(idle_left, total_left)))
                except (asyncio.TimeoutError, TimeoutError):
                    code = "idle_timeout" if idle_left <= total_left else "session_timeout"
                    limit = cfg.idle_timeout_s if code == "idle_timeout" else cfg.max_session_s
                    await self._finish(code, P.CLOSE_POLICY, (code, f"no message for {limit:g} s"
                                       if code == "idle_timeout" else f"session longer than {limit:g} s"))
                    return
                last = loop.time()
                if isinstance(data, str):
                    if await self._on_text(P.parse_text(data)):
                        return
                else:
                    await self._on_audio(data)
        except P.ProtocolError as e:
            await self._abort(e.code, e.message, e.close)
        except ConnectionClosed:
            pass  # the client vanished: drop its stream, nobody else notices
        except asyncio.CancelledError:
            if not self.shutting_down:
                raise
            await self._finish("shutdown", P.CLOSE_GOING_AWAY)
        finally:
            if self.stream is not None:
                self.stream.close()
            sender.cancel()

    async def _on_text(self, msg) -> bool:
        """Handle one JSON message; True when the session is over."""
        if isinstance(msg, P.Start):
            if self.stream is not None:
                raise P.ProtocolError("already_started", "start was already sent", P.CLOSE_PROTOCOL)
            self._start(msg)
            await self.ws.send(P.message(
                "ready", version=P.VERSION, session=f"s{self.stream.id}",
                sample_rate=msg.sample_rate, format=msg.format,
                chunk_ms=getattr(self.server.recognizer.am, "chunk_ms", None),
                limits={"max_frame_bytes": self.server.config.max_frame_bytes,
                        "idle_timeout_s": self.server.config.idle_timeout_s,
                        "max_session_s": self.server.config.max_session_s,
                        "max_segment_ms": self.stream.endpointer.rules.max_segment_ms}))
            return False
        if self.stream is None:
            if isinstance(msg, P.Stop):
                await self._finish("stop", P.CLOSE_NORMAL)
                return True
            raise P.ProtocolError("not_started", "send start before end_utterance", P.CLOSE_PROTOCOL)
        if isinstance(msg, P.EndUtterance):
            self.stream.endpoint()
            return False
        await self._finish("stop", P.CLOSE_NORMAL)
        return True

    def _start(self, msg: P.Start) -> None:
        cap = self.server.config.max_segment_ms
        endpoint = dict(msg.endpoint)
        if endpoint.get("max_segment_ms", 0) > cap:
            raise P.ProtocolError("bad_start", f"endpoint.max_segment_ms above this server's limit {cap}")
        endpoint.setdefault("max_segment_ms", cap)
        try:
            self.stream = self.server.recognizer.create_stream(
                StreamOptions(msg.hotwords, msg.nbest, endpoint, msg.domain, msg.voice, msg.partials),
                on_result=self._on_result)
        except StreamConfigError as e:
            raise P.ProtocolError("bad_start", str(e)) from None
        self.format, self.sample_rate = msg.format, msg.sample_rate
        self.server.stats["sessions_total"] += 1

    async def _on_audio(self, data: bytes) -> None:
        if self.stream is None:
            raise P.ProtocolError("audio_before_start", "binary audio arrived before start",
                                  P.CLOSE_PROTOCOL)
        if len(data) > self.server.config.max_frame_bytes:
            raise P.ProtocolError("frame_too_big", f"audio frame of {len(data)} bytes exceeds "
                                  f"{self.server.config.max_frame_bytes}", P.CLOSE_TOO_BIG)
        try:
            samples = decode_pcm(data, self.format)
        except AudioFormatError as e:
            raise P.ProtocolError("bad_audio", str(e)) from None
        if samples.size:
            self.stream.accept_waveform(self.sample_rate, samples)
        limit = self.server.config.max_backlog_s
        if self.stream.backlog_seconds > limit:   # faster than we compute: stop reading a while
            self.server.stats["backpressure_waits"] += 1
            while self.stream.backlog_seconds > limit / 2 and self.stream.error is None:
                await asyncio.sleep(0.01)

    async def _sender(self) -> None:
        while True:
            r = await self.queue.get()
            if r is None:
                return
            try:
                if isinstance(r, StreamError):
                    self.failed = True
                    self.server.count_error(r.code)
                    await self.ws.send(P.error(r.code, r.message))
                    await self.ws.send(P.message("closed", reason=r.code))
                    await self.ws.close(P.CLOSE_INTERNAL, r.code)
                    return
                await self.ws.send(_wire(r))
            except ConnectionClosed:
                return

    async def _drain(self, timeout: float) -> None:
        """Wait until the stream has delivered everything and the sender has sent it."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.stream is not None and not self.stream.done and loop.time() < deadline:
            await asyncio.sleep(0.005)
        # after results already handed over by the worker threads (call_soon_threadsafe is FIFO)
        loop.call_soon(self.queue.put_nowait, None)
        try:
            await asyncio.wait_for(asyncio.shield(self.sender), max(0.0, deadline - loop.time()))
        except (asyncio.TimeoutError, TimeoutError):
            pass

    async def _finish(self, reason: str, close: int, err: tuple[str, str] | None = None) -> None:
        """End politely: finish the open segment, send its final, then error?, closed, close."""
        try:
            if self.stream is not None and not self.stream.finished and self.stream.error is None:
                self.stream.input_finished()
            grace = self.server.config.shutdown_grace_s
            if reason == "stop" and self.stream is not None:  # the client waits for all its finals
                grace += 60.0 + 4 * self.stream.backlog_seconds
            await self._drain(grace)
            if self.failed:
                return
            if err:
                self.server.count_error(err[0])
                await self.ws.send(P.error(*err))
            await self.ws.send(P.message("closed", reason=reason))
            await self.ws.close(close, reason)
        except ConnectionClosed:
            pass

    async def _abort(self, code: str, message: str, close: int) -> None:
        """A client mistake: drop the stream, say why, close with the matching code."""
        if self.stream is not None:
            self.stream.close()
        self.server.count_error(code)
        try:
            await self.ws.send(P.error(code, message))
            await self.ws.send(P.message("closed", reason=code))
            await self.ws.close(close, code)
        except ConnectionClosed:
            pass


def _wire(r) -> str:
    d = r.to_dict()
    d.pop("latency_ms", None)
    if isinstance(r, Final) and not d["nbest"]:
        d.pop("nbest")
    return json.dumps(d, ensure_ascii=False, separators=(",", ":"))


class AsrServer:
    def __init__(self, recognizer: Recognizer, config: ServerConfig | None = None):
        self.recognizer = recognizer
        self.config = config or ServerConfig()
        self.sessions: set[Session] = set()
        self.stats = {"sessions_total": 0, "backpressure_waits": 0}
        self.refused: dict[str, int] = {}
        self.errors: dict[str, int] = {}
        self.closing = False
        self.started = time.monotonic()
        self.server = None
        self.loop: asyncio.AbstractEventLoop | None = None

    def count_error(self, code: str) -> None:
        self.errors[code] = self.errors.get(code, 0) + 1

    def _refuse(self, reason: str) -> None:
        self.refused[reason] = self.refused.get(reason, 0) + 1

    async def _trim_memory(self) -> None:
        """Hand freed heap back to the OS now and then (glibc keeps it in per-thread arenas:
        without this, RSS creeps up for hours under a steady load of varied tensor sizes)."""
        try:
            import ctypes
            trim = ctypes.CDLL("libc.so.6").malloc_trim
        except (OSError, AttributeError):
            return
        while True:
            await asyncio.sleep(30)
            trim(0)

    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._trimmer = asyncio.create_task(self._trim_memory())
        cfg = self.config
        origins = None if cfg.allowed_origins is None else [*cfg.allowed_origins, None]
        frame = max(cfg.max_frame_bytes, P.MAX_JSON_BYTES)
        self.server = await serve(self._handler, cfg.host, cfg.port, process_request=self._http,
                                  origins=origins, max_size=4 * frame, max_queue=32,
                                  ping_interval=20, ping_timeout=20, close_timeout=5)

    @property
    def port(self) -> int:
        return self.server.sockets[0].getsockname()[1]

    def _authorized(self, request) -> bool:
        if not self.config.token:
            return True
        header = request.headers.get("Authorization", "")
        given = header[7:] if header.startswith("Bearer ") else None
        if given is None:
            given = (parse_qs(urlsplit(request.path).query).get("token") or [None])[0]
        return given is not None and hmac.compare_digest(given.encode(), self.config.token.encode())

    def _http(self, connection, request):
        path = urlsplit(request.path).path
        if path == "/health":
            ok = not self.closing
            body = {"status": "ok" if ok else "shutting_down", "version": P.VERSION,
                    "sessions": len(self.sessions), "max_sessions": self.config.max_sessions,
                    "models": {"acoustic": type(self.recognizer.am).__name__,
                               "language": type(self.recognizer.lm).__name__}}
            return _response(200 if ok else 503, json.dumps(body), "application/json")
        if request.headers.get("Upgrade", "").lower() != "websocket":
            from asr_pinyin.web import lookup   # the dictation page and its files (docs/CLIENTS.md)
            page = lookup(path)
            if page is not None:
                return _response(200, *page)
        if not self._authorized(request):
            self._refuse("unauthorized")
            return _response(401, "missing or wrong token\n", "text/plain; charset=utf-8")
        if path == "/metrics":
            return _response(200, metrics.render(self), "text/plain; version=0.0.4; charset=utf-8")
        if path == "/voices":   # what a start message's "voice" may name (the page's selector)
            body = {"voices": sorted(getattr(self.recognizer.am, "voices", ())), "enroll": self.config.enroll}
            return _response(200, json.dumps(body, ensure_ascii=False), "application/json")
        return None

    async def _handler(self, ws) -> None:
        if self.closing or len(self.sessions) >= self.config.max_sessions:
            reason = "shutting_down" if self.closing else "server_full"
            self._refuse(reason)
            self.count_error(reason)
            msg = ("server is shutting down" if self.closing else
                   f"server is at its limit of {self.config.max_sessions} sessions; try again later")
            try:
                await ws.send(P.error(reason, msg))
                await ws.send(P.message("closed", reason=reason))
                await ws.close(P.CLOSE_GOING_AWAY if self.closing else P.CLOSE_TRY_LATER, reason)
            except ConnectionClosed:
                pass
            return
        if urlsplit(ws.request.path).path == "/enroll":
            from .enroll import EnrollSession   # voice enrollment (docs/PROTOCOL.md, Enrollment)
            session = EnrollSession(self, ws)
        else:
            session = Session(self, ws)
        self.sessions.add(session)
        try:
            await session.run()
        except Exception:  # noqa: BLE001 - one broken session must not take the server down
            log.exception("session failed")
            try:
                await ws.send(P.error("internal_error", "internal server error"))
                await ws.close(P.CLOSE_INTERNAL, "internal_error")
            except ConnectionClosed:
                pass
        finally:
            self.sessions.discard(session)

    async def shutdown(self) -> None:
        """Stop accepting, let each session finish its open segment and close with 1001."""
        self.closing = True
        self.server.close(close_connections=False)
        for s in list(self.sessions):
            if s.task is not None:
                s.shutting_down = True
                s.task.cancel()
        deadline = time.monotonic() + self.config.shutdown_grace_s + 2
        while self.sessions and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        self.server.close()
        await self.server.wait_closed()
        self._trimmer.cancel()


def _response(status: int, body: str, content_type: str) -> Response:
    reason = {200: "OK", 401: "Unauthorized", 503: "Service Unavailable"}[status]
    data = body.encode() if isinstance(body, str) else body
    headers = Headers([("Content-Type", content_type), ("Content-Length", str(len(data))),
                       ("Cache-Control", "no-store")])
    return Response(status, reason, headers, data)


class ServerThread:
    """Run an AsrServer on its own event loop in a background thread (tests, benchmarks, demos)."""

    def __init__(self, recognizer: Recognizer, config: ServerConfig | None = None):
        self.server = AsrServer(recognizer, config)
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="asr-server", daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self.server.start())
        self._ready.set()
        self.loop.run_forever()

    def __enter__(self) -> "ServerThread":
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError("server did not start")
        return self

    @property
    def url(self) -> str:
        return f"ws://{self.server.config.host}:{self.server.port}/"

    def stop(self) -> None:
        if self.loop.is_running():
            asyncio.run_coroutine_threadsafe(self.server.shutdown(), self.loop).result(30)
            self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)

    def __exit__(self, *exc) -> None:
        self.stop()
