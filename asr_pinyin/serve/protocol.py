"""The websocket protocol, version 1: typed client messages, validation, server messages.

Client -> server: one JSON `start`, then binary audio frames, any number of `end_utterance`, and
`stop`. Server -> client: `ready`, `partial`, `final`, `error`, `closed` (JSON text frames).
docs/PROTOCOL.md is the reference; every rule it states is checked here, and a violation raises
ProtocolError carrying the error code sent to the client and the websocket close code.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

VERSION = 1
FORMATS = ("pcm_s16le", "float32")
MAX_JSON_BYTES = 65536

# websocket close codes (RFC 6455 section 7.4.1, plus 1013 from the IANA registry)
CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001      # server shutting down
CLOSE_PROTOCOL = 1002        # messages in the wrong order (audio before start, start twice)
CLOSE_UNSUPPORTED = 1003     # text where audio was expected is fine; this is for unknown frames
CLOSE_INVALID = 1007         # malformed JSON, bad field values, bad audio bytes
CLOSE_POLICY = 1008          # auth, timeouts, limits
CLOSE_TOO_BIG = 1009         # frame larger than the limit
CLOSE_INTERNAL = 1011        # a model stage failed on this session
CLOSE_TRY_LATER = 1013       # server full


class ProtocolError(Exception):
    """A client message the server cannot accept: `code` for the client, `close` for the socket."""

    def __init__(self, code: str, message: str, close: int = CLOSE_INVALID):
        super().__init__(message)
        self.code, self.message, self.close = code, message, close


@dataclass
class Start:
    sample_rate: int = 16000
    format: str = "pcm_s16le"
    hotwords: list = field(default_factory=list)
    nbest: int = 1
    endpoint: dict = field(default_factory=dict)
    domain: str | None = None
    voice: str | None = None
    partials: bool = True
    version: int = VERSION


@dataclass
class EndUtterance:
    pass


@dataclass
class Stop:
    pass


_START_TYPES = {"sample_rate": int, "format": str, "hotwords": list, "nbest": int, "endpoint": dict,
                "domain": (str, type(None)), "voice": (str, type(None)), "partials": bool,
                "version": int}


def parse_text(text: str) -> Start | EndUtterance | Stop:
    """One text frame -> a typed message, or ProtocolError naming what is wrong."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_JSON_BYTES:
        raise ProtocolError("message_too_big", f"JSON messages are limited to {MAX_JSON_BYTES} bytes",
                            CLOSE_TOO_BIG)
    try:
        msg = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as e:
        raise ProtocolError("malformed_json", f"not valid JSON: {getattr(e, 'msg', e)}") from None
    if not isinstance(msg, dict):
        raise ProtocolError("malformed_message", "a message must be a JSON object with a \"type\"")
    kind = msg.get("type")
    if kind == "start":
        return _start(msg)
    if kind in ("end_utterance", "stop"):
        extra = set(msg) - {"type"}
        if extra:
            raise ProtocolError("unknown_field", f"{kind} takes no fields (got {', '.join(sorted(extra))})")
        return EndUtterance() if kind == "end_utterance" else Stop()
    if kind is None:
        raise ProtocolError("malformed_message", "message has no \"type\"")
    raise ProtocolError("unknown_type", f"unknown message type {str(kind)[:40]!r} "
                        "(expected start, end_utterance or stop)")


def _start(msg: dict) -> Start:
    fields_ = {k: v for k, v in msg.items() if k != "type"}
    for key, value in fields_.items():
        if key not in _START_TYPES:
            raise ProtocolError("unknown_field", f"unknown start field {key[:40]!r} "
                                f"(known: {', '.join(_START_TYPES)})")
        want = _START_TYPES[key]
        if isinstance(value, bool) and want is int or not isinstance(value, want):
            name = want.__name__ if isinstance(want, type) else "string or null"
            raise ProtocolError("bad_start", f"start field {key!r} must be {name}")
    start = Start(**fields_)
    if start.version != VERSION:
        raise ProtocolError("unsupported_version", f"protocol version {start.version} is not "
                            f"supported (this server speaks version {VERSION})")
    if start.format not in FORMATS:
        raise ProtocolError("bad_start", f"format must be one of {', '.join(FORMATS)}")
    if not 8000 <= start.sample_rate <= 48000:
        raise ProtocolError("bad_start", "sample_rate must be in [8000, 48000] Hz")
    return start


def message(kind: str, **fields_) -> str:
    """A server message as JSON text (compact, hanzi unescaped)."""
    return json.dumps({"type": kind, **fields_}, ensure_ascii=False, separators=(",", ":"))


def error(code: str, msg: str) -> str:
    return message("error", code=code, message=msg)
