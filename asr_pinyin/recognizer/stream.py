"""Stream: one caller's audio in, results out (made by `Recognizer.create_stream`).

A stream is cheap state: resampler, endpointer, the open segment and its queues. Audio is cut
into segments by the endpointer, each segment into fixed chunks for the acoustic stage; every
chunk and every conversion is a job for a stage worker that batches across all streams. Every
result of a stream leaves through the language worker, in order, so a partial never follows its
final.
"""
from __future__ import annotations

import itertools
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from .endpoint import (EndpointConfigError, Endpointer, EndpointRules, LeadingSilence,
                       SegmentAudio, SegmentEnd, SegmentStart)
from .resample import AudioFormatError, StreamResampler, to_float32
from .results import Char, Final, Partial, StreamError, Syllable
from .stages import AmJob, LmJob, LmOut

if TYPE_CHECKING:
    from .recognizer import Recognizer

SR = 16000
MAX_MERGE = 8          # most queued chunks of one stream sent as one acoustic job


class RecognizerError(Exception):
    """Base of the recognizer's named errors."""


class StreamConfigError(RecognizerError, ValueError):
    """Stream options that cannot be used (the message names the option)."""


class StreamStateError(RecognizerError):
    """A call that does not fit the stream's state (audio after input_finished, a closed stream)."""


@dataclass
class StreamOptions:
    hotwords: list = field(default_factory=list)   # "词" | ("词", weight) | {"text", "weight", "pinyin"}
    nbest: int = 1
    endpoint: EndpointRules | dict | None = None
    domain: str | None = None   # language adapter
    voice: str | None = None    # acoustic adapter
    partials: bool = True


class _Segment:
    def __init__(self, seg_id: int, start: int, state):
        self.id, self.start, self.state = seg_id, start, state
        self.buf = np.zeros(0, dtype=np.float32)
        self.hyp: list[Syllable] = []
        self.processed = 0               # samples through the acoustic stage
        self.chunks = 0                  # chunks cut so far (the first one is longer)
        self.lm_cache: dict = {}         # the language stage's incremental state for partials
        self.end: SegmentEnd | None = None
        self.closed = False              # final submitted: later partials are dropped
        self.partial_busy = False
        self.partial_dirty: float | None = None  # arrival time of a newer hypothesis to convert
        self.partial_syls: list[str] | None = None  # the last partial's syllables and text:
        self.partial_text = ""                        # an unchanged hypothesis is not re-converted


@dataclass
class _AmItem:
    seg: _Segment | None
    samples: np.ndarray | None
    last: bool
    t: float                             # monotonic time the last of these samples arrived
    event: str | None = None             # "leading_silence" | "empty_forced": no compute
    at: int = 0                          # stream sample of an event


@dataclass
class _LmItem:
    stream: "Stream"
    kind: str                            # partial | final | event
    seg: _Segment | None
    job: LmJob | None
    t: float
    reason: str = ""
    at: int = 0


class Stream:
    """One caller's audio in, results out. accept_waveform may be called from any one thread."""

    def __init__(self, rec: Recognizer, options: StreamOptions, on_result, stream_id: int):
        self.rec, self.id, self.on_result = rec, stream_id, on_result
        rules = options.endpoint
        try:
            if not isinstance(rules, EndpointRules):
                rules = EndpointRules.from_dict(rules)
            rules.validate()
        except EndpointConfigError as e:
            raise StreamConfigError(str(e)) from None
        if isinstance(options.nbest, bool) or not isinstance(options.nbest, int) \
                or not 1 <= options.nbest <= 10:
            raise StreamConfigError(f"nbest must be an integer in [1, 10], got {options.nbest!r}")
        for name, value, known in (("domain", options.domain, rec.lm.domains),
                                   ("voice", options.voice, rec.am.voices)):
            if value is not None and value not in known:
                names = ", ".join(sorted(known)) or "none loaded"
                raise StreamConfigError(f"unknown {name} adapter {value!r} (available: {names})")
        if not isinstance(options.hotwords, (list, tuple)):
            raise StreamConfigError("hotwords must be a list")
        try:
            self.hotwords = rec.lm.compile_hotwords(options.hotwords)
        except ValueError as e:
            raise StreamConfigError(f"bad hotwords: {e}") from None
        self.options = options
        self.endpointer = Endpointer(rules)
        self.resampler: StreamResampler | None = None
        self._cond = threading.Condition(threading.RLock())
        self._seg: _Segment | None = None
        self._seg_ids = itertools.count()
        self._am_queue: deque[_AmItem] = deque()
        self._am_busy = False
        self._queued = 0                  # samples waiting for the acoustic stage
        self._pending = 0                 # jobs in the workers
        self._results: deque = deque()
        self.finished = False             # input_finished() was called
        self.closed = False
        self.error: StreamError | None = None
        self.samples_in = 0               # 16 kHz samples accepted

    # ---- input ---------------------------------------------------------------------------
    def accept_waveform(self, sample_rate: int, samples) -> None:
        """Queue audio (int16, or float in [-1, 1]) at `sample_rate`; returns at once."""
        x = to_float32(samples)
        with self._cond:
            self._check_open()
            if self.resampler is None:
                self.resampler = StreamResampler(sample_rate)
            elif sample_rate != self.resampler.sr:
                raise AudioFormatError(f"sample rate changed from {self.resampler.sr} to {sample_rate}")
            self._feed(self.resampler.accept(x))

    def endpoint(self) -> None:
        """Force an endpoint now (client end-of-utterance): a final always follows."""
        with self._cond:
            self._check_open()
            if self.resampler is not None:
                self._feed(self.resampler.flush())
                self.resampler = StreamResampler(self.resampler.sr)
            events = self.endpointer.force_end("forced")
            if not events:
                self._am_queue.append(_AmItem(None, None, True, time.monotonic(),
                                              event="empty_forced", at=self.endpointer.pos))
            self._handle(events, time.monotonic())
            self._pump()

    def input_finished(self) -> None:
        """No more audio: the open segment is finished and flushed."""
        with self._cond:
            self._check_open()
            if self.resampler is not None:
                self._feed(self.resampler.flush())
            self._handle(self.endpointer.force_end("input_finished"), time.monotonic())
            self.finished = True
            self._pump()
            self._cond.notify_all()

    def close(self) -> None:
        """Abandon the stream (a vanished client): queued work is dropped, results ignored."""
        with self._cond:
            self.closed = True
            self._am_queue.clear()
            self._queued = 0
            self._cond.notify_all()
        self.rec._forget(self)

    # ---- output --------------------------------------------------------------------------
    def results(self, block: bool = False, timeout: float | None = None) -> list:
        """Results so far (removed from the stream); with block, wait for one or for the end.

        Streams made with an `on_result` callback hand every result to it instead."""
        with self._cond:
            if block:
                self._cond.wait_for(lambda: self._results or self.done or self.closed, timeout)
            out = list(self._results)
            self._results.clear()
            return out

    @property
    def done(self) -> bool:
        """Input finished (or failed) and every result delivered."""
        with self._cond:
            return self.error is not None or (self.finished and self._idle())

    def wait(self, timeout: float | None = None) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self.done or self.closed, timeout)

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until every chunk and conversion submitted so far has given its result."""
        with self._cond:
            return self._cond.wait_for(lambda: self._idle() or self.error or self.closed, timeout)

    @property
    def backlog_seconds(self) -> float:
        """Audio accepted but not yet through the acoustic stage."""
        with self._cond:
            seg_buf = self._seg.buf.size if self._seg else 0
            return (self._queued + seg_buf) / SR

    def wait_backlog(self, max_seconds: float, timeout: float | None = None) -> bool:
        """Block until at most `max_seconds` of audio wait (backpressure for fast senders)."""
        with self._cond:
            return self._cond.wait_for(
                lambda: self._queued / SR <= max_seconds or self.error or self.closed, timeout)

    # ---- internals (caller thread, under the lock) ----------------------------------------
    def _check_open(self) -> None:
        if self.closed:
            raise StreamStateError("stream is closed")
        if self.finished:
            raise StreamStateError("input already finished")
        if self.error is not None:
            raise StreamStateError(f"stream failed: {self.error.message}")

    def _idle(self) -> bool:
        return self._pending == 0 and not self._am_queue and not self._am_busy

    def _feed(self, y: np.ndarray) -> None:
        if y.size:
            self.samples_in += y.size
            self._handle(self.endpointer.accept(y), time.monotonic())
            self._pump()

    def _handle(self, events: list, now: float) -> None:
        am = self.rec.am
        for ev in events:
            if isinstance(ev, SegmentStart):
                self._seg = _Segment(next(self._seg_ids), ev.sample,
                                     self.rec.am.new_state(self.options.voice))
            elif isinstance(ev, SegmentAudio):
                seg = self._seg
                seg.buf = np.concatenate([seg.buf, ev.samples]) if seg.buf.size else ev.samples
                while seg.buf.size >= (n := am.chunk_samples if seg.chunks else am.first_chunk_samples):
                    self._queue_am(_AmItem(seg, seg.buf[:n], False, now))
                    seg.buf = seg.buf[n:]
                    seg.chunks += 1
            elif isinstance(ev, SegmentEnd):
                seg = self._seg
                seg.end = ev
                self._queue_am(_AmItem(seg, seg.buf, True, now))
                seg.buf = np.zeros(0, dtype=np.float32)
                self._seg = None
            elif isinstance(ev, LeadingSilence):
                self._am_queue.append(_AmItem(None, None, True, now, "leading_silence", ev.sample))

    def _queue_am(self, item: _AmItem) -> None:
        self._am_queue.append(item)
        self._queued += item.samples.size

    def _pump(self) -> None:
        """Send this stream's next acoustic work (one job in flight: the state carries over).

        A stream that fell behind (or an offline file fed at once) sends up to `MAX_MERGE`
        queued chunks of one segment as one job: the same windows in the same order, so the
        same result, for a fraction of the round trips.
        """
        while not self._am_busy and self._am_queue and not self.closed and self.error is None:
            item = self._am_queue.popleft()
            if item.event:
                self._submit_lm(_LmItem(self, "event", None, None, item.t,
                                        reason=item.event, at=item.at))
                continue
            parts = [item]
            while (not parts[-1].last and len(parts) < MAX_MERGE and self._am_queue
                   and self._am_queue[0].event is None and self._am_queue[0].seg is item.seg):
                parts.append(self._am_queue.popleft())
            if len(parts) > 1:
                item = _AmItem(item.seg, np.concatenate([p.samples for p in parts]), parts[-1].last,
                               parts[-1].t)
            self._am_busy = True
            self._pending += 1
            job = AmJob(item.seg.state, item.samples, item.last, self.options.voice)
            self.rec.am_worker.submit(job, lambda hyp, err, item=item: self._am_done(item, hyp, err),
                                      0 if item.last else 1)

    def _submit_lm(self, item: _LmItem) -> None:
        self._pending += 1
        self.rec.lm_worker.submit(item, lambda out, err, item=item: self._lm_done(item, out, err),
                                  1 if item.kind == "partial" else 0)

    def _lm_job(self, seg: _Segment, final: bool) -> LmJob:
        return LmJob(list(seg.hyp), final, self.hotwords, self.options.nbest if final else 1,
                     self.options.domain, seg.lm_cache)

    # ---- worker callbacks ------------------------------------------------------------------
    def _am_done(self, item: _AmItem, hyp, err) -> None:
        with self._cond:
            self._am_busy = False
            self._pending -= 1
            self._queued -= item.samples.size
            if self.closed:
                self._cond.notify_all()
                return
            if err is not None:
                self._fail("acoustic_failed", f"acoustic stage failed: {type(err).__name__}: {err}")
                return
            seg = item.seg
            seg.hyp = hyp
            seg.processed += item.samples.size
            with self.rec._lock:
                self.rec.audio_seconds += item.samples.size / SR
            if item.last:
                seg.closed = True
                self._submit_lm(_LmItem(self, "final", seg, self._lm_job(seg, True), item.t,
                                        reason=seg.end.reason))
            elif self.options.partials:
                if seg.partial_busy:
                    seg.partial_dirty = item.t
                else:
                    seg.partial_busy = True
                    same = [h.pinyin for h in hyp] == seg.partial_syls
                    self._submit_lm(_LmItem(self, "partial", seg, None if same else self._lm_job(seg, False),
                                            item.t, at=seg.start + seg.processed))
            self._pump()
            self._cond.notify_all()

    def _lm_done(self, item: _LmItem, out: LmOut | None, err) -> None:
        result = None
        with self._cond:
            self._pending -= 1
            if self.closed or self.error is not None:
                self._cond.notify_all()
                return
            if err is not None:
                self._fail("language_failed", f"language stage failed: {type(err).__name__}: {err}")
                return
            latency = (time.monotonic() - item.t) * 1000
            seg = item.seg
            if item.kind == "partial":
                seg.partial_busy = False
                if not seg.closed:
                    if item.job is not None:
                        seg.partial_text = out.text if out else ""
                        seg.partial_syls = [s.pinyin for s in item.job.syllables]
                    result = Partial(seg.id, seg.partial_text, list(seg.partial_syls or []),
                                     seg.start / SR, item.at / SR, latency)
                    self.rec.partial_latency_ms.observe(latency)
                    if seg.partial_dirty is not None:  # a newer hypothesis came meanwhile
                        t, seg.partial_dirty, seg.partial_busy = seg.partial_dirty, None, True
                        self._submit_lm(_LmItem(self, "partial", seg, self._lm_job(seg, False), t,
                                                at=seg.start + seg.processed))
            elif item.kind == "final":
                result = self._final(seg, out, item.reason, latency)
            else:
                at = item.at / SR
                reason = item.reason.replace("empty_forced", "forced")
                result = Final(-1, "", [], at, at, at, 0.0, reason, [], latency)
            if result is not None:
                self._deliver(result)
            self._cond.notify_all()
        if self.done:
            self.rec._forget(self)

    def _final(self, seg: _Segment, out: LmOut | None, reason: str, latency: float) -> Final | None:
        with self.rec._lock:
            self.rec.segments[reason] = self.rec.segments.get(reason, 0) + 1
        end = seg.end
        if out is None and reason != "forced":
            return None  # the VAD heard something, the acoustic model no syllable: nothing to say
        self.rec.final_latency_ms.observe(latency)
        t0 = seg.start / SR
        chars, confs = [], []
        if out is not None:
            for (ch, py, conf, alts), syl in zip(out.chars, seg.hyp):
                c = conf * syl.conf
                chars.append(Char(ch, py, round(t0 + syl.start, 3), round(t0 + syl.end, 3), round(c, 4), alts))
                confs.append(c)
        text = out.text if out else ""
        nbest = [{"text": t, "score": round(s, 4)} for t, s in (out.nbest if out else [])]
        speech_end = end.speech_end / SR
        if seg.hyp:
            speech_end = min(speech_end, t0 + seg.hyp[-1].end + 0.3)
        return Final(seg.id, text, chars, round(t0, 3), round(max(t0, speech_end), 3),
                     round(end.sample / SR, 3), round(float(np.mean(confs)) if confs else 0.0, 4),
                     reason, nbest, latency)

    def _fail(self, code: str, message: str) -> None:
        self.error = StreamError(code, message)
        self._am_queue.clear()
        self._deliver(self.error)
        self._cond.notify_all()

    def _deliver(self, result) -> None:
        """To the callback if there is one (then `results()` stays empty: a long session must not
        keep every partial), else to the queue `results()` reads. Called under the lock, so a
        result is handed over before `done` can be seen."""
        if self.on_result:
            self.on_result(result)
        else:
            self._results.append(result)
