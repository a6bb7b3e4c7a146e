"""`asr-pinyin transcribe`: audio files and folders -> text / json / srt / vtt transcripts.

Each file streams through the same recognizer path as live audio (read in blocks of a few
seconds, any rate and channel count, cut into segments by the endpointer), so hours-long
recordings use bounded memory. Files run in parallel as concurrent streams of one Recognizer,
whose stage workers batch across them; with `--server` they are concurrent websocket sessions
instead. Unreadable files are reported by path and skipped; the exit code is 1 if any failed.
"""
from __future__ import annotations

import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .formats import FORMATS, segment_dict, write_outputs

AUDIO_EXTS = {".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3"}
BLOCK_S = 4.0            # seconds read from a file at a time
MAX_BACKLOG_S = 8.0      # audio queued ahead of the acoustic stage, per file (bounds memory)


class TranscribeError(Exception):
    """A usage problem that stops the whole run (no inputs, models that cannot load)."""


@dataclass
class Job:
    path: Path
    base: Path | None            # the folder it was found under (keeps layout in --output-dir)
    duration: float = 0.0
    segments: list = field(default_factory=list)
    error: str | None = None
    outputs: list = field(default_factory=list)
    keep_ext: bool = False       # another input has the same stem: name outputs a.wav.txt


def find_audio(paths) -> list[Job]:
    """Files as given (any extension) plus audio files found recursively under folders."""
    jobs, seen = [], set()
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.suffix.lower() in AUDIO_EXTS and f.is_file())
            items = [(f, p) for f in found]
        else:
            items = [(p, None)]
        for f, base in items:
            key = f.resolve()
            if key not in seen:
                seen.add(key)
                jobs.append(Job(f, base))
    return jobs


def read_blocks(path: Path, block_s: float = BLOCK_S):
    """Yield (sample_rate, mono float32 block) from a file; AudioError when it cannot be read.

    Rates outside the recognizer's 8-48 kHz are brought to 16 kHz block by block.
    """
    import soundfile as sf

    from asr_pinyin.audio.io import AudioError, audio_info, resample

    audio_info(path)  # named errors for missing, empty, unreadable files
    try:
        with sf.SoundFile(str(path)) as f:
            sr = f.samplerate
            while True:
                block = f.read(max(1, int(block_s * sr)), dtype="float32", always_2d=True)
                if not block.shape[0]:
                    return
                mono = block.mean(axis=1)
                if not np.all(np.isfinite(mono)):
                    raise AudioError(path, "audio contains NaN or infinite samples")
                if 8000 <= sr <= 48000:
                    yield sr, mono
                else:
                    yield 16000, resample(mono, sr, 16000)
    except AudioError:
        raise
    except Exception as e:  # libsndfile decode errors mid-file
        raise AudioError(path, f"corrupt audio ({str(e).strip()[:200] or type(e).__name__})") from None


def load_adapters(rec, folder=None, voice: str | None = None) -> None:
    """Adapters for a local Recognizer: a folder of them, and an enrolled voice by name
    (ValueError with the reason when one cannot be loaded)."""
    from asr_pinyin.finetune.lora import AdapterError

    try:
        if folder:
            rec.add_adapter_dir(folder)
        if voice and voice not in rec.am.voices:
            rec.add_voice(voice)
    except (AdapterError, OSError, LookupError) as e:
        raise ValueError(str(e)) from None


class LocalEngine:
    """Transcribes with models loaded in this process (one Recognizer, one stream per file)."""

    def __init__(self, am=None, lm=None, options=None, recognizer_options=None, adapters=None):
        from asr_pinyin.recognizer import Recognizer
        from asr_pinyin.recognizer.adapters import StageLoadError

        try:
            self.rec = Recognizer.load(am, lm, recognizer_options)
        except StageLoadError as e:
            raise TranscribeError(str(e)) from None
        self.options = options or {}
        try:
            load_adapters(self.rec, adapters, self.options.get("voice"))
        except ValueError as e:
            self.rec.close()
            raise TranscribeError(str(e)) from None

    def run(self, path: Path, progress) -> list[dict]:
        from asr_pinyin.recognizer import Final, StreamError, StreamOptions

        opts = StreamOptions(hotwords=self.options.get("hotwords", []), nbest=self.options.get("nbest", 1),
                             endpoint=self.options.get("endpoint"), domain=self.options.get("domain"),
                             voice=self.options.get("voice"), partials=False)
        stream = self.rec.create_stream(opts)
        finals = []

        def collect():
            for r in stream.results():
                if isinstance(r, StreamError):
                    raise RuntimeError(f"{r.code}: {r.message}")
                if isinstance(r, Final) and r.reason != "leading_silence" and r.text:
                    finals.append(segment_dict(r))
        try:
            for sr, block in read_blocks(path):
                stream.accept_waveform(sr, block)
                stream.wait_backlog(MAX_BACKLOG_S)
                progress(block.size / sr)
                collect()
            stream.input_finished()
            stream.wait()
            collect()
        finally:
            stream.close()
        return finals

    def close(self) -> None:
        self.rec.close()


class ServerEngine:
    """Transcribes by streaming each file to a running `asr-pinyin serve` (one session per file)."""

    def __init__(self, url: str, token: str | None = None, options=None):
        self.url, self.token, self.options = url, token, options or {}

    def run(self, path: Path, progress) -> list[dict]:
        from .ws_client import WsClient

        blocks = read_blocks(path)
        sr, first = next(blocks, (16000, np.zeros(0, np.float32)))
        # float32 on the wire: decoded samples (mp3, channel means) reach the server unrounded
        client = WsClient(self.url, sample_rate=sr, format="float32", partials=False, token=self.token,
                          hotwords=self.options.get("hotwords", []), nbest=self.options.get("nbest", 1),
                          endpoint=self.options.get("endpoint"), domain=self.options.get("domain"),
                          voice=self.options.get("voice"))
        with client:
            client.send_audio(first)
            progress(first.size / sr)
            for sr2, block in blocks:
                client.send_audio(block)
                progress(block.size / sr2)
        return [segment_dict(f) for f in client.finals if f.get("text") and f.get("reason") != "leading_silence"]

    def close(self) -> None:
        pass


class Progress:
    """A tqdm bar over audio seconds with files done and speed (x real time) in its text."""

    def __init__(self, total_s: float, n_files: int, enabled: bool):
        from tqdm import tqdm

        self.bar = tqdm(total=round(total_s, 1), unit="s", disable=None if enabled else True, dynamic_ncols=True,
                        bar_format="{percentage:3.0f}%|{bar:20}| {n:.0f}/{total:.0f} s audio "
                        "[{elapsed}<{remaining}] {desc}")
        self.files, self.n_files, self.done_s = 0, n_files, 0.0
        self.t0 = time.monotonic()
        self.lock = threading.Lock()

    def audio(self, seconds: float) -> None:
        with self.lock:
            self.done_s += seconds
            self.bar.update(seconds)
            self._postfix()

    def file_done(self) -> None:
        with self.lock:
            self.files += 1
            self._postfix()

    def _postfix(self) -> None:
        speed = self.done_s / max(1e-6, time.monotonic() - self.t0)
        self.bar.set_description_str(f"files {self.files}/{self.n_files}, {self.done_s / 3600:.2f} h, "
                                     f"{speed:.1f}x real time", refresh=False)

    def close(self) -> None:
        self.bar.close()


def transcribe_files(jobs: list[Job], engine, formats=("text",), output_dir: Path | None = None,
                     workers: int = 4, show_progress: bool = True, log=print) -> dict:
    """Run every job; write outputs; return a summary dict (also what `--summary-json` prints)."""
    import torchaudio.functional  # noqa: F401 - imported here once: lazy first imports racing
    #                                  in worker threads fail with KeyError('torchaudio')
    from asr_pinyin.audio.io import AudioError, audio_info

    todo = []
    for job in jobs:
        try:
            _, _, job.duration = audio_info(job.path)
            todo.append(job)
        except AudioError as e:
            job.error = e.reason
            log(f"skipped {job.path}: {e.reason}")
    from .formats import output_path

    stems: dict = {}
    for job in todo:
        stems.setdefault(output_path(job.path, "text", output_dir, job.base), []).append(job)
    for same in stems.values():
        for job in same if len(same) > 1 else []:
            job.keep_ext = True
    progress = Progress(sum(j.duration for j in todo), len(todo), show_progress)
    cancel = threading.Event()
    t0 = time.monotonic()

    def advance(seconds: float) -> None:
        if cancel.is_set():
            raise KeyboardInterrupt
        progress.audio(seconds)

    def one(job: Job) -> None:
        try:
            job.segments = engine.run(job.path, advance)
            meta = {"audio": str(job.path), "duration": round(job.duration, 3)}
            job.outputs = write_outputs(job.segments, job.path, formats, output_dir, job.base, meta,
                                        job.keep_ext)
        except KeyboardInterrupt:
            job.error = "interrupted"
            return
        except AudioError as e:
            job.error = e.reason
        except OSError as e:
            job.error = f"cannot write output ({e.strerror or e})"
        except Exception as e:  # noqa: BLE001 - one bad file must not stop the others
            job.error = f"{type(e).__name__}: {e}"
        finally:
            progress.file_done()
        if job.error:
            progress.bar.write(f"failed {job.path}: {job.error}", file=sys.stderr)

    pool = ThreadPoolExecutor(max_workers=max(1, workers))
    try:
        list(pool.map(one, todo))
    except KeyboardInterrupt:        # Ctrl-C: running files stop at their next block
        cancel.set()
        pool.shutdown(wait=True, cancel_futures=True)
        progress.close()
        raise
    pool.shutdown()
    progress.close()
    wall = time.monotonic() - t0
    ok = [j for j in jobs if not j.error]
    audio_s = sum(j.duration for j in ok)
    return {"files": len(jobs), "ok": len(ok), "failed": [{"path": str(j.path), "error": j.error}
                                                          for j in jobs if j.error],
            "audio_hours": round(audio_s / 3600, 4), "wall_s": round(wall, 2),
            "speed_x_realtime": round(audio_s / wall, 2) if wall > 0 else 0.0,
            "segments": sum(len(j.segments) for j in ok)}


def summary_line(s: dict) -> str:
    line = (f"transcribed {s['ok']}/{s['files']} files, {s['audio_hours'] * 60:.1f} min of audio "
            f"in {s['wall_s']:.1f} s ({s['speed_x_realtime']:.1f}x real time), {s['segments']} segments")
    if s["failed"]:
        line += f"; {len(s['failed'])} failed"
    return line
