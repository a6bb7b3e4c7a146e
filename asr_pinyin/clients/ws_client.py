"""A small synchronous client for the asr-pinyin websocket protocol (docs/PROTOCOL.md).

    with WsClient("ws://127.0.0.1:8765/", sample_rate=16000, nbest=3) as c:
        c.send_audio(samples)              # int16 or float in [-1, 1], any length
        c.end_utterance()                  # optional: force a final now
        for msg in c.poll(): ...           # partial / final dicts that arrived so far
    # leaving the block sends stop and waits for the server's `closed`; c.finals holds every final

A background thread reads the socket, so sending never waits for results. Used by
`transcribe --server`, `dictate --server`, the examples and the tests.
"""
from __future__ import annotations

import json
import queue
import threading

import numpy as np


class ServerError(Exception):
    """The server refused or failed the session (`code` is the protocol's error code)."""

    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.code, self.message = code, message


class WsClient:
    def __init__(self, url: str, sample_rate: int = 16000, format: str = "pcm_s16le",
                 hotwords=(), nbest: int = 1, endpoint: dict | None = None, domain: str | None = None,
                 voice: str | None = None, partials: bool = True, token: str | None = None,
                 open_timeout: float = 10.0, on_message=None):
        self.url, self.sample_rate, self.format = url, sample_rate, format
        self.start_msg = {"type": "start", "version": 1, "sample_rate": sample_rate, "format": format,
                          "hotwords": list(hotwords), "nbest": nbest, "endpoint": endpoint or {},
                          "domain": domain, "voice": voice, "partials": partials}
        self.token, self.open_timeout, self.on_message = token, open_timeout, on_message
        self.ready: dict | None = None
        self.finals: list[dict] = []
        self.error: ServerError | None = None
        self.closed_reason: str | None = None
        self._inbox: queue.Queue = queue.Queue()
        self._done = threading.Event()
        self._ws = None
        self._reader: threading.Thread | None = None
        self.max_frame = 65536

    # ---- connection ------------------------------------------------------------------------
    def connect(self) -> "WsClient":
        from websockets.exceptions import InvalidHandshake, InvalidURI
        from websockets.sync.client import connect

        headers = {"Authorization": f"Bearer {self.token}"} if self.token else None
        try:
            self._ws = connect(self.url, additional_headers=headers, open_timeout=self.open_timeout,
                               max_size=2 ** 22, legacy=True)
        except InvalidURI:
            raise ServerError("bad_url", f"not a websocket URL: {self.url} (use ws://host:port/)") from None
        except (OSError, TimeoutError, InvalidHandshake) as e:
            raise ServerError("connect_failed", f"cannot connect to {self.url}: {e}") from None
        self._ws.send(json.dumps(self.start_msg, ensure_ascii=False))
        first = self._recv_json(self.open_timeout)
        if first.get("type") == "error":
            self._ws.close()
            raise ServerError(first.get("code", "error"), first.get("message", ""))
        if first.get("type") != "ready":
            self._ws.close()
            raise ServerError("protocol", f"expected ready, got {first.get('type')!r}")
        self.ready = first
        self.max_frame = int(first.get("limits", {}).get("max_frame_bytes", self.max_frame))
        self._reader = threading.Thread(target=self._read, name="ws-client-reader", daemon=True)
        self._reader.start()
        return self

    def _recv_json(self, timeout: float | None) -> dict:
        from websockets.exceptions import ConnectionClosed

        try:
            raw = self._ws.recv(timeout)
        except TimeoutError:
            raise ServerError("timeout", f"no answer from {self.url} in {timeout:g} s") from None
        except ConnectionClosed as e:
            raise ServerError("connection_closed", f"server closed the connection ({e})") from None
        return json.loads(raw)

    def _read(self) -> None:
        from websockets.exceptions import ConnectionClosed

        try:
            for raw in self._ws:
                msg = json.loads(raw)
                kind = msg.get("type")
                if kind == "final":
                    self.finals.append(msg)
                elif kind == "error":
                    self.error = ServerError(msg.get("code", "error"), msg.get("message", ""))
                elif kind == "closed":
                    self.closed_reason = msg.get("reason")
                self._inbox.put(msg)
                if self.on_message:
                    self.on_message(msg)
        except ConnectionClosed as e:
            if self.closed_reason is None and self.error is None:
                self.error = ServerError("connection_closed", f"connection lost ({e})")
        finally:
            self._done.set()

    # ---- sending ---------------------------------------------------------------------------
    def send_audio(self, samples) -> None:
        """Send samples at the start's rate, split into frames within the server's limit."""
        x = np.asarray(samples)
        if self.format == "pcm_s16le":
            if x.dtype != np.int16:
                # x32768 inverts soundfile's int16 -> float scaling exactly (16-bit files stay exact)
                x = np.clip(np.round(x.astype(np.float32) * 32768.0), -32768, 32767).astype(np.int16)
            data = x.astype("<i2").tobytes()
        else:
            if x.dtype == np.int16:
                x = x.astype(np.float32) / 32768.0
            data = x.astype("<f4").tobytes()
        step = max(4, self.max_frame // 4 * 4)
        try:
            for i in range(0, len(data), step):
                self._ws.send(data[i:i + step])
        except Exception as e:  # noqa: BLE001 - ConnectionClosed and socket errors alike
            raise self.error or ServerError("connection_closed", f"sending failed: {e}") from None

    def end_utterance(self) -> None:
        self._ws.send(json.dumps({"type": "end_utterance"}))

    def stop(self, timeout: float = 60.0) -> list[dict]:
        """Send stop, wait for `closed` (after the last final); returns every final."""
        try:
            self._ws.send(json.dumps({"type": "stop"}))
        except Exception:  # noqa: BLE001 - already closed: what we have is all there is
            pass
        if not self._done.wait(timeout):
            self._ws.close()
            raise ServerError("timeout", f"server did not close the session in {timeout:g} s")
        self._ws.close()
        if self.error is not None:
            raise self.error
        return self.finals

    # ---- receiving -------------------------------------------------------------------------
    def poll(self, timeout: float = 0.0) -> list[dict]:
        """Messages (partial, final, error, closed) that arrived; waits up to `timeout` for one."""
        out = []
        try:
            out.append(self._inbox.get(timeout=timeout) if timeout else self._inbox.get_nowait())
            while True:
                out.append(self._inbox.get_nowait())
        except queue.Empty:
            pass
        return out

    def close(self) -> None:
        if self._ws is not None:
            self._ws.close()

    def __enter__(self) -> "WsClient":
        return self.connect()

    def __exit__(self, exc_type, *exc) -> None:
        if exc_type is None:
            self.stop()
        else:
            self.close()


def transcribe_samples(url: str, samples, sample_rate: int, chunk_s: float = 1.0, **options) -> list[dict]:
    """Send a whole recording as fast as the server takes it; return its finals."""
    x = np.asarray(samples)
    with WsClient(url, sample_rate=sample_rate, partials=False, **options) as c:
        step = max(1, int(chunk_s * sample_rate))
        for i in range(0, len(x), step):
            c.send_audio(x[i:i + step])
    return c.finals
