"""The enrollment flow: prompt by prompt, take, check, keep or retake; then adapt.

One loop serves both sources of audio, so a measurement or a test from files runs exactly the
code a person at a microphone runs:
- `MicSource`: records from a `sounddevice` input at the device's own rate, resamples to 16 kHz,
  stops after trailing silence (the recognizer's webrtcvad endpointer) or when Enter is pressed;
- `DirSource`: the take for prompt i is DIR/<prompt id>.<ext> or DIR/NNN.<ext> (any format and
  rate `load_audio` reads).
A failed take from the microphone is retaken (up to `max_retakes`); from files it is reported by
prompt id and skipped. Accepted takes are written as they come, so a second run resumes.
"""
from __future__ import annotations

import json
import queue
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .checks import CheckConfig, check_take
from .profile import VoiceProfile

SR = 16000
AUDIO_EXT = (".wav", ".flac", ".ogg", ".mp3")


class EnrollError(Exception):
    """Something the user must fix (no model, no adapter code, no device...): one line."""


@dataclass
class Summary:
    total: int = 0
    already: int = 0
    accepted: list[str] = field(default_factory=list)
    failed: dict[str, list[str]] = field(default_factory=dict)   # prompt id -> problems
    missing: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.failed and not self.missing

    def to_dict(self) -> dict:
        return {"total": self.total, "already": self.already, "accepted": len(self.accepted),
                "failed": self.failed, "missing": self.missing}


class DirSource:
    """Takes from audio files named after the prompt id (or its 1-based position, NNN)."""
    interactive = False

    def __init__(self, folder):
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise EnrollError(f"--from-dir {self.folder}: no such folder")

    def find(self, index: int, prompt) -> Path | None:
        for stem in (prompt.id, f"{index + 1:03d}"):
            for ext in AUDIO_EXT:
                p = self.folder / f"{stem}{ext}"
                if p.is_file():
                    return p
        return None

    def take(self, index: int, prompt) -> np.ndarray | None:
        from asr_pinyin.audio.io import AudioError, load_audio

        path = self.find(index, prompt)
        if path is None:
            return None
        try:
            return load_audio(path)
        except AudioError as e:
            raise TakeUnreadable(str(e)) from None

    def close(self) -> None:
        pass


class TakeUnreadable(Exception):
    pass


class MicSource:
    """One input stream for the whole session; each take drains what came before its prompt."""
    interactive = True

    def __init__(self, device: str | None = None, rate: int | None = None,
                 trailing_silence_ms: int = 1000, no_speech_s: float = 10.0, out=None):
        from asr_pinyin.clients.dictate import DictateError, load_sounddevice, open_input, pick_device

        self.out = out or sys.stderr
        self.trailing_silence_ms = trailing_silence_ms
        self.no_speech_s = no_speech_s
        try:
            sd = load_sounddevice()
            self.device = pick_device(sd, device)
            self.stream, self.blocks, self.sr = open_input(sd, self.device, rate)
        except DictateError as e:
            raise EnrollError(str(e)) from None
        self.enter = threading.Event()
        if sys.stdin is not None and sys.stdin.isatty():
            threading.Thread(target=self._read_enter, daemon=True).start()
        self.stream.start()
        print(f"recording from {self.device['name']!r} at {self.sr} Hz", file=self.out, flush=True)

    def _read_enter(self) -> None:
        for _ in sys.stdin:
            self.enter.set()

    def take(self, index: int, prompt) -> np.ndarray:
        from asr_pinyin.audio.io import resample
        from asr_pinyin.recognizer.endpoint import Endpointer, EndpointRules, SegmentEnd, SegmentStart

        while True:                                       # drop audio from before the prompt
            try:
                self.blocks.get_nowait()
            except queue.Empty:
                break
        self.enter.clear()
        ep = Endpointer(EndpointRules(trailing_silence_ms=self.trailing_silence_ms))
        expected = 0.5 * len(prompt.pinyin.split())
        limit = self.no_speech_s + 3 * expected + 5
        raw, start, end, t0 = [], None, None, time.monotonic()
        print("  speak now (Enter or a pause ends the take)", file=self.out, flush=True)
        while not self.enter.is_set():
            now = time.monotonic() - t0
            if now > limit or (start is None and now > self.no_speech_s):
                break
            try:
                block = self.blocks.get(timeout=0.1)
            except queue.Empty:
                continue
            raw.append(block)
            for ev in ep.accept(resample(block, self.sr)):
                if isinstance(ev, SegmentStart) and start is None:
                    start = ev.sample
                elif isinstance(ev, SegmentEnd):
                    end = ev.speech_end
            if end is not None:
                break
        wave = resample(np.concatenate(raw), self.sr) if raw else np.zeros(0, np.float32)
        if start is not None:                             # keep 0.3 s either side of the speech
            stop = (end if end is not None else len(wave)) + int(0.3 * SR)
            wave = wave[max(0, start - int(0.3 * SR)): stop]
        return wave

    def close(self) -> None:
        self.stream.abort()      # not stop(): stop() waits for buffers a stalled source may never fill
        self.stream.close()


def load_checker_model(path=None, out=None):
    """The acoustic model for the prompt-match check, or None (with a warning) when it is missing."""
    from asr_pinyin.acoustic.model import ModelLoadError, load_model

    try:
        return load_model(path)
    except ModelLoadError as e:
        print(f"warning: {e}; the prompt-match check is skipped (adaptation needs the model too)",
              file=out or sys.stderr)
        return None


def record(profile: VoiceProfile, prompts: list, source, cfg: CheckConfig | None = None, model=None,
           max_retakes: int = 3, out=None) -> Summary:
    """Take every prompt that has no accepted take yet; returns what happened."""
    from asr_pinyin.pinyin import to_tone_marks

    out = out or sys.stderr
    profile.create()
    done = profile.takes()
    n = len(prompts)
    s = Summary(total=n, already=sum(1 for p in prompts if p.id in done))
    todo = [i for i, p in enumerate(prompts) if p.id not in done]
    if s.already:
        print(f"{s.already}/{n} takes already recorded for {profile.name!r}"
              + (f"; resuming at prompt {todo[0] + 1}" if todo else ""), file=out)
    for i in todo:
        p = prompts[i]
        tries = 1 + (max_retakes if source.interactive else 0)
        for attempt in range(tries):
            try:
                marks = " ".join(to_tone_marks(x) for x in p.pinyin.split())
            except Exception:  # noqa: BLE001 - display only
                marks = p.pinyin
            print(f"[{i + 1}/{n}] {p.text}\n        {marks}", file=out, flush=True)
            try:
                wave = source.take(i, p)
            except TakeUnreadable as e:
                s.failed[p.id] = [str(e)]
                print(f"  prompt {p.id}: {e}", file=out)
                break
            if wave is None:
                s.missing.append(p.id)
                print(f"  prompt {p.id}: no audio file", file=out)
                break
            res = check_take(wave, p.pinyin, cfg, model)
            if res.ok:
                profile.add_take(i, p, wave, res.figures())
                s.accepted.append(p.id)
                s.failed.pop(p.id, None)
                print(f"  ok ({len(wave) / SR:.1f} s)", file=out, flush=True)
                break
            s.failed[p.id] = res.problems
            more = attempt + 1 < tries
            print(f"  prompt {p.id}: " + "; ".join(res.problems)
                  + (" -> please read it again" if more else ""), file=out, flush=True)
    have = len(profile.takes())
    print(f"{have}/{n} takes recorded" + (f"; {len(s.failed)} failed, {len(s.missing)} missing"
                                         if not s.complete else ""), file=out)
    return s


def adapt(profile: VoiceProfile, base=None, min_takes: int = 60, val_share: float = 0.1,
          max_steps: int = 300, max_minutes: float = 10.0, progress: bool = True, force: bool = False,
          out=None, scratch: str | None = None, replay: float = 0.0,
          early_stop: bool = False) -> dict | None:
    """Train the voice's LoRA adapter on its takes (held-back share validates it); write report.json.

    The adapter is the end of the fixed schedule (`max_steps`), measured on the held-back takes
    but not chosen by them: ~10 takes are too few to pick a step on (on dev users, the early stop
    they drove kept worse states or the base itself: bench/enroll_policy.py, BENCHMARKS.md).
    `early_stop=True` brings it back (keep the held-back best, stop when they stop improving).

    Returns the report, or None when there are too few takes or the adapter is already up to date.
    `scratch`: the folder the trainer's temporary work dir is made in (the server follows its
    log.jsonl there to report progress); default: the system's temp folder.
    `replay` P > 0: P of the training utterances are the training takes' sentences synthesized in
    the base model's own training voices (`enroll/replay.py`); without espeak-ng, none (a note).
    """
    out = out or sys.stderr
    takes = profile.takes()
    if len(takes) < min_takes:
        print(f"{len(takes)} takes; adaptation needs at least {min_takes} "
              f"(run `asr-pinyin enroll --name {profile.name}` again to record more)", file=out)
        return None
    if not force and profile.adapter.is_file() and profile.report.is_file():
        try:
            old = json.loads(profile.report.read_text(encoding="utf-8"))
            if old.get("takes") == len(takes):
                print(f"adapter for {profile.name!r} is up to date ({len(takes)} takes): "
                      f"{profile.adapter}", file=out)
                return None
        except (json.JSONDecodeError, OSError):
            pass
    from asr_pinyin.acoustic.model import ModelLoadError

    try:
        from asr_pinyin.acoustic.finetune import finetune_am
    except ImportError as e:
        raise EnrollError(f"acoustic adaptation is not available in this build ({e}); the "
                          f"{len(takes)} takes are kept: run the same command again once it is") from None
    train, val, n_train, n_val = profile.write_split(val_share)
    print(f"adapting to {profile.name!r}: {n_train} takes to train, {n_val} held back", file=out, flush=True)
    import inspect
    import tempfile

    with tempfile.TemporaryDirectory(prefix="enroll-adapt-", dir=scratch) as work:   # trainer checkpoints: scratch
        extra = {"work_dir": work} if "work_dir" in inspect.signature(finetune_am).parameters else {}
        if replay > 0:
            extra.update(replay_pool(train, Path(work) / "replay", replay, out))
        try:
            rep = finetune_am(str(train), str(profile.adapter), method="lora",
                              base=str(base) if base else None, dev_manifest=str(val) if n_val else None,
                              max_steps=max_steps, max_minutes=max_minutes, progress=progress,
                              early_stop=early_stop, **extra)
        except (ModelLoadError, ValueError) as e:      # no base model, bad recipe or manifest
            raise EnrollError(f"adaptation failed: {e}; the {len(takes)} takes are kept") from None
    report = {"voice": profile.name, "takes": len(takes), "train_takes": n_train, "val_takes": n_val,
              "replay": extra.get("replay", 0.0),
              "base": str(base) if base else "default", "adapter": str(profile.adapter), **rep}
    tmp = profile.report.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(report, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    tmp.replace(profile.report)
    before, after = rep.get("ser_before"), rep.get("ser_after")
    if before is not None and after is not None:
        print(f"syllable error on the {n_val} held-back takes: {before:.3f} -> {after:.3f}", file=out)
        if after > before:
            print(f"warning: the adapter is worse on the {n_val} held-back takes. They are few, and "
                  "on test voices such adapters still helped unseen sentences (BENCHMARKS.md); "
                  f"try `--voice {profile.name}`, and delete {profile.adapter} if it does not help",
                  file=out)
    print(f"adapter written: {profile.adapter}", file=out)
    return report


def replay_pool(train_manifest: Path, work: Path, share: float, out) -> dict:
    """finetune_am's replay arguments for a pool synthesized from the training takes' sentences,
    or {} (with a note) when it cannot be made: adapting without replay still works."""
    from types import SimpleNamespace

    from .replay import ReplayError, synth_replay

    rows = [json.loads(line) for line in Path(train_manifest).read_text(encoding="utf-8").splitlines() if line]
    sentences = [SimpleNamespace(id=r.get("prompt_id", r["id"]), text=r.get("text", ""), pinyin=r["pinyin"])
                 for r in rows]
    try:
        pool = synth_replay(sentences, work)
    except ReplayError as e:
        print(f"note: {e}; adapting without replay", file=out)
        return {}
    print(f"replay: {share:.0%} of the training utterances from {pool.parent.name}/{pool.name} "
          "(the takes' sentences in the base model's training voices)", file=out, flush=True)
    return {"replay": share, "replay_manifest": str(pool)}
