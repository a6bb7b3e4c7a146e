"""Recognizer (models, device, stage workers: one per process) and Stream (one per caller).

    rec = Recognizer.load()                          # or Recognizer(am=..., lm=...)
    stream = rec.create_stream(StreamOptions(hotwords=["张三"], nbest=3))
    stream.accept_waveform(16000, samples)           # any rate 8-48 kHz, int16 or float
    for r in stream.results(): ...                   # Partial / Final / StreamError
    stream.input_finished(); stream.wait()

A stream is cheap state: resampler, endpointer, the open segment and its queues. Audio is cut
into segments by the endpointer, each segment into fixed chunks for the acoustic stage; every
chunk and every conversion is a job for a stage worker that batches across all streams. Every
result of a stream leaves through the language worker, in order, so a partial never follows its
final. Offline transcription (`transcribe`) is the same path fed as fast as the stages allow.
"""
from __future__ import annotations

import itertools
import sys
import threading
from dataclasses import dataclass

from .resample import to_float32
from .results import Final, StreamError
from .stages import AcousticStage, LanguageStage, LmOut
from .stats import Histogram
from .stream import SR, RecognizerError, Stream, StreamOptions, StreamStateError, _LmItem
from .workers import StageWorker

LATENCY_BUCKETS_MS = (10, 25, 50, 100, 150, 200, 300, 400, 600, 800, 1000, 2000, 5000)


@dataclass
class RecognizerOptions:
    am_batch: int = 32          # most acoustic chunks in one batch
    am_wait_ms: float = 4.0     # how long a batch waits to fill once the first job is in
    lm_batch: int = 64
    lm_wait_ms: float = 4.0
    threads: int | None = None  # torch threads for each stage worker (None: leave as is)
    gil_switch_ms: float | None = 0.2  # lower Python's GIL switch interval to this (None: leave)
    two_pass: bool = True       # Recognizer.load: finals from a full-context pass per segment


class Recognizer:
    """Loads the two stages once and runs their batching workers; makes streams."""

    def __init__(self, am: AcousticStage, lm: LanguageStage, options: RecognizerOptions | None = None):
        self.am, self.lm = am, lm
        self.options = o = options or RecognizerOptions()
        if o.gil_switch_ms:
            # The stage workers run hundreds of short torch ops per batch, each releasing and
            # retaking the GIL; with Python's default 5 ms switch interval a busy event loop makes
            # every retake wait up to 5 ms (a convoy: batches took 10x their CPU time). Process-wide.
            sys.setswitchinterval(min(sys.getswitchinterval(), o.gil_switch_ms / 1000))
        self.am_worker = StageWorker("acoustic", am.step_batch, o.am_batch, o.am_wait_ms, o.threads)
        self.lm_worker = StageWorker("language", self._lm_batch, o.lm_batch, o.lm_wait_ms, o.threads)
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self.streams: set[Stream] = set()
        self.streams_total = 0
        self.audio_seconds = 0.0          # audio through the acoustic stage
        self.partial_latency_ms = Histogram(LATENCY_BUCKETS_MS)
        self.final_latency_ms = Histogram(LATENCY_BUCKETS_MS)
        self.segments: dict[str, int] = {}
        self.closed = False

    @classmethod
    def load(cls, am_path=None, lm_path=None, options: RecognizerOptions | None = None) -> "Recognizer":
        """The shipped models (or the checkpoints given), on asr_pinyin.device.get_device()."""
        from .adapters import load_stages

        am, lm = load_stages(am_path, lm_path, two_pass=(options or RecognizerOptions()).two_pass)
        return cls(am, lm, options)

    # ---- adapters: loaded next to the base models, chosen per stream ----------------------
    def add_domain(self, name: str, path) -> None:
        """A LoRA language adapter (`finetune-lm`); streams pick it with StreamOptions(domain=name)."""
        self.lm.add_domain(name, path)

    def add_voice(self, name: str, path=None) -> None:
        """A LoRA acoustic adapter (`finetune-am`), or with no path the enrolled voice `name`
        (`asr-pinyin enroll`); streams pick it with StreamOptions(voice=name)."""
        if path is None:
            from asr_pinyin.enroll.profile import voice_adapter_path

            path = voice_adapter_path(name)
        self.am.add_voice(name, path)

    def add_adapter_dir(self, folder) -> dict[str, list[str]]:
        """Every adapter in `folder`: lm/NAME.pt as domains, am/NAME.pt as voices."""
        from pathlib import Path

        from asr_pinyin.finetune.lora import AdapterError

        folder = Path(folder)
        if not folder.is_dir():
            raise AdapterError(f"adapter folder not found: {folder}")
        found = {"domains": [], "voices": []}
        for f in sorted((folder / "lm").glob("*.pt")):
            self.add_domain(f.stem, f)
            found["domains"].append(f.stem)
        for f in sorted((folder / "am").glob("*.pt")):
            self.add_voice(f.stem, f)
            found["voices"].append(f.stem)
        return found

    def create_stream(self, options: StreamOptions | None = None, on_result=None) -> "Stream":
        if self.closed:
            raise StreamStateError("recognizer is closed")
        s = Stream(self, options or StreamOptions(), on_result, next(self._ids))
        with self._lock:
            self.streams.add(s)
            self.streams_total += 1
        return s

    def transcribe(self, samples, sample_rate: int = SR, options: StreamOptions | None = None,
                   timeout: float | None = None) -> list[Final]:
        """Offline: feed the streaming path as fast as it goes; return the finals in order."""
        stream = self.create_stream(options or StreamOptions(partials=False))
        try:
            x = to_float32(samples)
            block = sample_rate * 10
            for i in range(0, max(len(x), 1), block):
                stream.accept_waveform(sample_rate, x[i:i + block])
                stream.wait_backlog(30.0)      # bounded memory on hours-long input
            stream.input_finished()
            if not stream.wait(timeout):
                raise RecognizerError("transcription timed out")
            out = []
            for r in stream.results():
                if isinstance(r, StreamError):
                    raise RecognizerError(f"{r.code}: {r.message}")
                if isinstance(r, Final) and r.reason != "leading_silence":
                    out.append(r)
            return out
        finally:
            stream.close()

    @property
    def rtf(self) -> float:
        """Acoustic + language compute seconds per second of audio processed."""
        busy = self.am_worker.busy_seconds + self.lm_worker.busy_seconds
        return busy / self.audio_seconds if self.audio_seconds else 0.0

    def close(self, timeout: float = 10.0) -> None:
        """Stop the workers after the queued work is done."""
        self.closed = True
        self.am_worker.stop(timeout)
        self.lm_worker.stop(timeout)

    def _forget(self, stream: "Stream") -> None:
        with self._lock:
            self.streams.discard(stream)

    def _lm_batch(self, items: list[_LmItem]) -> list[LmOut | None]:
        todo = [i for i, it in enumerate(items) if it.job is not None and it.job.syllables]
        outs: list[LmOut | None] = [None] * len(items)
        if todo:
            for i, out in zip(todo, self.lm.convert_batch([items[i].job for i in todo])):
                outs[i] = out
        return outs
