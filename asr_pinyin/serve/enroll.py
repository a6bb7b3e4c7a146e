"""Voice enrollment over the websocket (path `/enroll`): the web page's "Enroll my voice" mode.

The same flow as `asr-pinyin enroll` (asr_pinyin.enroll), with the browser as the microphone:
the client names a voice, gets the prompt set and the prompts already done, sends one take per
prompt (binary PCM between `take` and `take_end`), and hears back the result of the very checks
the terminal flow runs (`check_take`); passing takes are stored in the voice profile
(`VoiceProfile.add_take`). `adapt` runs `enroll.session.adapt` (LoRA via finetune_am) in a worker
thread, following the trainer's log.jsonl to send progress, then loads the new voice into the
running recognizer so dictation sessions can ask for it at once. Checks, storage and training
all run off the event loop; one adaptation runs at a time (they share the two cores).
Messages and error codes: docs/PROTOCOL.md, section "Enrollment".
"""
from __future__ import annotations

import asyncio
import io
import json
import logging
import shutil
import tempfile
import threading
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from websockets.exceptions import ConnectionClosed

from asr_pinyin.enroll.checks import CheckConfig, check_take
from asr_pinyin.enroll.profile import VoiceError, VoiceProfile
from asr_pinyin.recognizer.resample import AudioFormatError, decode_pcm

from . import protocol as P
from .enroll_adapt import progress

log = logging.getLogger("asr_pinyin.serve.enroll")
SR = 16000


@dataclass
class EnrollConfig:
    am: str | None = None            # base acoustic model for the checks and the adapter (None: shipped)
    prompts: str | None = None       # prompt TSV (None: the shipped set)
    min_takes: int = 60              # takes before `adapt` is accepted (capped at the prompt count)
    max_take_s: float = 30.0         # one take's audio
    val_share: float = 0.1
    max_steps: int = 300
    max_minutes: float = 10.0
    checks: CheckConfig = field(default_factory=CheckConfig)
    progress_every_s: float = 1.0
    idle_timeout_s: float = 600.0    # people pause between takes (dictation's limit is shorter)


class Hub:
    """What all enrollment sessions of one server share: prompts, the checker model, locks."""

    def __init__(self, cfg: EnrollConfig):
        self.cfg = cfg
        self.prompts: list | None = None
        self.model = None
        self.load_lock = threading.Lock()
        self.adapting = asyncio.Lock()
        self.busy: set[str] = set()    # voices with an open enrollment session

    def load(self) -> None:
        """Prompts and the checker model, once (in a worker thread: loading takes a moment)."""
        from asr_pinyin.enroll.prompts import read_prompts
        from asr_pinyin.enroll.session import load_checker_model

        with self.load_lock:
            if self.prompts is None:
                warn = io.StringIO()
                self.model = load_checker_model(self.cfg.am, out=warn)
                if warn.getvalue():
                    log.warning(warn.getvalue().strip())
                self.prompts = read_prompts(self.cfg.prompts)

    @property
    def min_takes(self) -> int:
        return max(1, min(self.cfg.min_takes, len(self.prompts or ())))


_hubs: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def hub_for(server) -> Hub:
    hub = _hubs.get(server)
    if hub is None:
        hub = _hubs[server] = Hub(server.config.enroll_config or EnrollConfig())
    return hub


# ---- client messages ---------------------------------------------------------------------------
_FIELDS = {"enroll_start": {"name": str, "version": int, "sample_rate": int, "format": str},
           "take": {"prompt": str}, "take_end": {}, "adapt": {"force": bool}, "stop": {}}
_REQUIRED = {"enroll_start": ("name",), "take": ("prompt",)}


def parse(text: str) -> dict:
    """One text frame -> a checked message dict, or ProtocolError (the dictation codes)."""
    if len(text.encode("utf-8", "surrogatepass")) > P.MAX_JSON_BYTES:
        raise P.ProtocolError("message_too_big", f"JSON messages are limited to {P.MAX_JSON_BYTES} "
                              "bytes", P.CLOSE_TOO_BIG)
    try:
        msg = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as e:
        raise P.ProtocolError("malformed_json", f"not valid JSON: {getattr(e, 'msg', e)}") from None
    if not isinstance(msg, dict):
        raise P.ProtocolError("malformed_message", "a message must be a JSON object with a \"type\"")
    kind = msg.get("type")
    if kind not in _FIELDS:
        if kind is None:
            raise P.ProtocolError("malformed_message", "message has no \"type\"")
        raise P.ProtocolError("unknown_type", f"unknown enrollment message type {str(kind)[:40]!r} "
                              f"(expected {', '.join(_FIELDS)})")
    spec = _FIELDS[kind]
    for key, value in msg.items():
        if key == "type":
            continue
        if key not in spec:
            raise P.ProtocolError("unknown_field", f"unknown {kind} field {key[:40]!r}"
                                  + (f" (known: {', '.join(spec)})" if spec else " (it takes none)"))
        want = spec[key]
        if isinstance(value, bool) and want is int or not isinstance(value, want):
            raise P.ProtocolError(f"bad_{kind}", f"{kind} field {key!r} must be {want.__name__}")
    for key in _REQUIRED.get(kind, ()):
        if key not in msg:
            raise P.ProtocolError(f"bad_{kind}", f"{kind} needs a {key!r}")
    return msg


# ---- the session -------------------------------------------------------------------------------
class EnrollSession:
    def __init__(self, server, ws):
        self.server, self.ws = server, ws
        self.hub = hub_for(server)
        self.task: asyncio.Task | None = None
        self.shutting_down = False
        self.profile: VoiceProfile | None = None
        self.format, self.rate = "pcm_s16le", SR
        self.take: tuple[int, object] | None = None     # (prompt index, prompt) while recording
        self.chunks: list[np.ndarray] = []
        self.samples = 0
        self.gone = False                                 # the client left during adaptation

    async def run(self) -> None:
        self.task = asyncio.current_task()
        cfg, loop = self.server.config, asyncio.get_running_loop()
        idle, begin = self.hub.cfg.idle_timeout_s, loop.time()
        last = begin
        try:
            if not cfg.enroll:
                raise P.ProtocolError("enroll_disabled", "voice enrollment is turned off on this "
                                      "server (asr-pinyin serve --no-enroll)", P.CLOSE_POLICY)
            while True:
                idle_left = idle - (loop.time() - last)
                total_left = cfg.max_session_s - (loop.time() - begin)
                try:
                    data = await asyncio.wait_for(self.ws.recv(), max(0.0, min(idle_left, total_left)))
                except (asyncio.TimeoutError, TimeoutError):
                    code = "idle_timeout" if idle_left <= total_left else "session_timeout"
                    limit = idle if code == "idle_timeout" else cfg.max_session_s
                    raise P.ProtocolError(code, f"no message for {limit:g} s" if code == "idle_timeout"
                                          else f"session longer than {limit:g} s", P.CLOSE_POLICY) from None
                if isinstance(data, str):
                    if await self._on_text(parse(data)):
                        return
                else:
                    self._on_audio(data)
                last = loop.time()
        except P.ProtocolError as e:
            await self._close(e.code, e.close, e.message)
        except ConnectionClosed:
            pass
        except asyncio.CancelledError:
            if not self.shutting_down:
                raise
            await self._close("shutdown", P.CLOSE_GOING_AWAY)
        finally:
            if self.profile is not None:
                self.hub.busy.discard(self.profile.name)

    async def _close(self, reason: str, code: int, message: str | None = None) -> None:
        try:
            if message is not None:
                self.server.count_error(reason)
                await self.ws.send(P.error(reason, message))
            await self.ws.send(P.message("closed", reason=reason))
            await self.ws.close(code, reason)
        except ConnectionClosed:
            pass

    async def _on_text(self, msg: dict) -> bool:
        kind = msg["type"]
        if kind == "stop":
            await self._close("stop", P.CLOSE_NORMAL)
            return True
        if kind == "enroll_start":
            await self._start(msg)
            return False
        if self.profile is None:
            raise P.ProtocolError("not_started", f"send enroll_start before {kind}", P.CLOSE_PROTOCOL)
        if kind == "take":
            if self.take is not None:
                raise P.ProtocolError("take_open", "a take is open: send take_end first", P.CLOSE_PROTOCOL)
            ids = {p.id: i for i, p in enumerate(self.hub.prompts)}
            if msg["prompt"] not in ids:
                raise P.ProtocolError("unknown_prompt", f"no prompt with id {msg['prompt'][:64]!r} "
                                      "in this server's prompt set")
            i = ids[msg["prompt"]]
            self.take, self.chunks, self.samples = (i, self.hub.prompts[i]), [], 0
            return False
        if kind == "take_end":
            if self.take is None:
                raise P.ProtocolError("no_take", "take_end without a take", P.CLOSE_PROTOCOL)
            await self._finish_take()
            return False
        if self.take is not None:
            raise P.ProtocolError("take_open", "a take is open: send take_end first", P.CLOSE_PROTOCOL)
        await self._adapt(bool(msg.get("force", False)))
        return False

    async def _start(self, msg: dict) -> None:
        if self.profile is not None:
            raise P.ProtocolError("already_started", "enroll_start was already sent", P.CLOSE_PROTOCOL)
        if msg.get("version", P.VERSION) != P.VERSION:
            raise P.ProtocolError("unsupported_version", f"protocol version {msg['version']} is not "
                                  f"supported (this server speaks version {P.VERSION})")
        fmt, rate = msg.get("format", "pcm_s16le"), msg.get("sample_rate", SR)
        if fmt not in P.FORMATS:
            raise P.ProtocolError("bad_enroll_start", f"format must be one of {', '.join(P.FORMATS)}")
        if not 8000 <= rate <= 48000:
            raise P.ProtocolError("bad_enroll_start", "sample_rate must be in [8000, 48000] Hz")
        try:
            profile = VoiceProfile(msg["name"])
        except VoiceError as e:
            raise P.ProtocolError("bad_name", str(e)) from None
        if profile.name in self.hub.busy:
            raise P.ProtocolError("voice_busy", f"voice {profile.name!r} is being enrolled in another "
                                  "session; close that one first", P.CLOSE_POLICY)
        try:
            await asyncio.to_thread(self.hub.load)
        except (OSError, ValueError) as e:
            raise P.ProtocolError("enroll_unavailable", f"cannot load the prompt set: {e}",
                                  P.CLOSE_INTERNAL) from None
        self.hub.busy.add(profile.name)
        self.profile, self.format, self.rate = profile, fmt, rate
        done = await asyncio.to_thread(profile.takes)
        prompts = self.hub.prompts
        await self.ws.send(P.message(
            "enroll_ready", version=P.VERSION, name=profile.name,
            prompts=[{"id": p.id, "text": p.text, "pinyin": p.pinyin} for p in prompts],
            done=[p.id for p in prompts if p.id in done], min_takes=self.hub.min_takes,
            max_take_s=self.hub.cfg.max_take_s, adapter=profile.adapter.is_file(),
            loaded=profile.name in self._voices(), match_check=self.hub.model is not None))

    def _voices(self) -> frozenset:
        return frozenset(getattr(self.server.recognizer.am, "voices", ()))

    def _on_audio(self, data: bytes) -> None:
        if self.take is None:
            raise P.ProtocolError("audio_before_take", "binary audio arrived outside a take "
                                  "(send take first)", P.CLOSE_PROTOCOL)
        limit = self.server.config.max_frame_bytes
        if len(data) > limit:
            raise P.ProtocolError("frame_too_big", f"audio frame of {len(data)} bytes exceeds {limit}",
                                  P.CLOSE_TOO_BIG)
        try:
            x = decode_pcm(data, self.format)
        except AudioFormatError as e:
            raise P.ProtocolError("bad_audio", str(e)) from None
        self.samples += x.size
        cap = self.hub.cfg.max_take_s
        if self.samples > cap * self.rate:
            raise P.ProtocolError("take_too_long", f"a take is limited to {cap:g} s of audio",
                                  P.CLOSE_POLICY)
        self.chunks.append(x)

    async def _finish_take(self) -> None:
        from asr_pinyin.audio.io import resample

        (index, prompt), chunks = self.take, self.chunks
        self.take, self.chunks, self.samples = None, [], 0
        raw = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
        wave = await asyncio.to_thread(resample, raw, self.rate, SR)
        res = await asyncio.to_thread(check_take, wave, prompt.pinyin, self.hub.cfg.checks, self.hub.model)
        if res.ok:
            await asyncio.to_thread(self.profile.add_take, index, prompt, wave, res.figures())
        done = await asyncio.to_thread(self.profile.takes)
        await self.ws.send(P.message("take_result", prompt=prompt.id, ok=res.ok, problems=res.problems,
                                     checks=res.figures(), duration=round(len(wave) / SR, 2),
                                     takes=len(done)))

    # ---- adaptation ----------------------------------------------------------------------------
    async def _adapt(self, force: bool) -> None:
        """Train in a child process (the trainer wants the main thread for its signal handler, and
        a process keeps torch's thread settings and the GIL away from the server), following its
        log for progress. A client that leaves does not stop it: the adapter is still written
        and loaded."""
        have, need = len(await asyncio.to_thread(self.profile.takes)), self.hub.min_takes
        if have < need:
            raise P.ProtocolError("too_few_takes", f"{have} takes; adaptation needs at least {need}",
                                  P.CLOSE_PROTOCOL)
        hub, t0 = self.hub, time.monotonic()
        if hub.adapting.locked():
            await self._send(P.message("adapt_progress", stage="queued", step=0,
                                       max_steps=hub.cfg.max_steps, elapsed_s=0.0))
        async with hub.adapting:
            scratch = Path(tempfile.mkdtemp(prefix="enroll-serve-"))
            try:
                result = await self._run_child(scratch, force, t0)
            finally:
                shutil.rmtree(scratch, ignore_errors=True)
        if "error" in result:
            raise P.ProtocolError("adapt_failed", result["error"], P.CLOSE_INTERNAL)
        report = result["report"]
        if report is None:          # nothing new since the last adapter: keep it
            report = json.loads(self.profile.report.read_text(encoding="utf-8"))
            report["up_to_date"] = True
        loaded = await self._load_voice()
        await self._send(P.message("adapted", voice=self.profile.name, report=report, **loaded))
        if self.gone:
            raise ConnectionClosed(None, None)

    async def _send(self, text: str) -> None:
        if not self.gone:
            try:
                await self.ws.send(text)
            except ConnectionClosed:
                self.gone = True

    async def _run_child(self, scratch: Path, force: bool, t0: float) -> dict:
        import sys

        cfg = self.hub.cfg
        spec = {"name": self.profile.name, "home": str(self.profile.dir.parent), "am": cfg.am,
                "min_takes": self.hub.min_takes, "val_share": cfg.val_share, "max_steps": cfg.max_steps,
                "max_minutes": cfg.max_minutes, "force": force, "scratch": str(scratch)}
        with open(scratch / "child.log", "wb") as errlog:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "asr_pinyin.serve.enroll_adapt", json.dumps(spec),
                stdin=asyncio.subprocess.DEVNULL, stdout=errlog, stderr=errlog)
        try:
            while True:
                try:
                    await asyncio.wait_for(proc.wait(), cfg.progress_every_s)
                    break
                except (asyncio.TimeoutError, TimeoutError):
                    await self._send(P.message("adapt_progress", **progress(
                        scratch, cfg.max_steps, time.monotonic() - t0)))
        except asyncio.CancelledError:      # server shutdown: the trainer stops at its next step
            if proc.returncode is None:
                proc.terminate()
            raise
        result = scratch / "result.json"
        if result.is_file():
            return json.loads(result.read_text(encoding="utf-8"))
        tail = (scratch / "child.log").read_text(encoding="utf-8", errors="replace").strip()
        log.error("adaptation process failed (exit %s): %s", proc.returncode, tail[-2000:])
        last = tail.splitlines()[-1] if tail else "no output"
        return {"error": f"adaptation process failed (exit {proc.returncode}): {last[:300]}; "
                         "the takes are kept"}

    async def _load_voice(self) -> dict:
        """Put the new adapter into the running recognizer (a voice loaded before stays as it was)."""
        from asr_pinyin.finetune.lora import AdapterError

        name = self.profile.name
        if name in self._voices():
            return {"loaded": False, "restart_needed": True,
                    "message": f"voice {name!r} was already loaded in this server: restart the server "
                               "to use the new adapter (sessions keep the old one until then)"}
        try:
            await asyncio.to_thread(self.server.recognizer.add_voice, name, self.profile.adapter)
        except (AdapterError, OSError, LookupError, ValueError) as e:
            return {"loaded": False, "restart_needed": False,
                    "message": f"the adapter was written but could not be loaded: {e}"}
        return {"loaded": True, "restart_needed": False,
                "message": f"dictation sessions can use \"voice\": {json.dumps(name, ensure_ascii=False)}"}
