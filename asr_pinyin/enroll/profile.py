"""A user's voice profile: the takes they read, and the adapter trained on them.

    voices_home()/NAME/
        takes/NNN.wav     16 kHz mono PCM, NNN = the prompt's position in the prompt set (1-based)
        takes.jsonl       one manifest line per accepted take (the project's manifest format,
                          audio relative to this file, plus prompt_id and the check figures)
        train.jsonl, val.jsonl   the split used for adaptation (val = held-back takes)
        adapter.pt        the acoustic LoRA adapter (written by finetune_am)
        report.json       before/after syllable error on the held-back takes, wall time, sizes

A take counts as done once its manifest line is written (after its WAV was renamed into place),
so stopping at any moment loses at most the take being recorded, and the next run resumes at
the first prompt without a take.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np

NAME_RE = re.compile(r"\w[\w.-]{0,63}")


class VoiceError(ValueError):
    """A bad voice name, or a voice that does not exist or has no adapter yet."""


def voices_home() -> Path:
    """$ASR_PINYIN_HOME/voices, else ~/.local/share/asr-pinyin/voices."""
    home = os.environ.get("ASR_PINYIN_HOME")
    base = Path(home) if home else Path.home() / ".local" / "share" / "asr-pinyin"
    return base / "voices"


def check_name(name: str) -> str:
    """Letters, digits, '_', '-', '.', starting with a letter or digit: a name can never be a path."""
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise VoiceError(f"bad voice name {name!r}: use 1-64 letters, digits, '_', '-' or '.', "
                         "starting with a letter or digit (no path separators)")
    return name


def list_voices(home: Path | None = None) -> dict[str, dict]:
    """Every profile folder: {name: {"takes": n, "adapter": bool}}."""
    home = home or voices_home()
    out = {}
    if home.is_dir():
        for d in sorted(home.iterdir()):
            if d.is_dir() and NAME_RE.fullmatch(d.name):
                p = VoiceProfile(d.name, home)
                out[d.name] = {"takes": len(p.takes()), "adapter": p.adapter.is_file()}
    return out


def voice_adapter_path(name: str, home: Path | None = None) -> Path:
    """The adapter of voice NAME; VoiceError (listing the voices that have one) when there is none."""
    check_name(name)
    home = home or voices_home()
    p = VoiceProfile(name, home)
    if p.adapter.is_file():
        return p.adapter
    voices = list_voices(home)
    ready = [v for v, info in voices.items() if info["adapter"]]
    known = f"voices with an adapter: {', '.join(ready)}" if ready else "no voice has an adapter yet"
    if name in voices:
        raise VoiceError(f"voice {name!r} has {voices[name]['takes']} takes but no adapter yet "
                         f"(finish `asr-pinyin enroll --name {name}`); {known} (in {home})")
    raise VoiceError(f"unknown voice {name!r}; {known} (in {home}); "
                     f"enroll one with `asr-pinyin enroll --name {name}`")


class VoiceProfile:
    def __init__(self, name: str, home: Path | None = None):
        self.name = check_name(name)
        self.dir = Path(home or voices_home()) / name
        self.takes_dir = self.dir / "takes"
        self.manifest = self.dir / "takes.jsonl"
        self.adapter = self.dir / "adapter.pt"
        self.report = self.dir / "report.json"

    def create(self) -> "VoiceProfile":
        self.takes_dir.mkdir(parents=True, exist_ok=True)
        return self

    def takes(self) -> dict[str, dict]:
        """Accepted takes by prompt id (the last line wins; lines whose WAV is gone are dropped)."""
        out: dict[str, dict] = {}
        if not self.manifest.is_file():
            return out
        for line in self.manifest.read_text(encoding="utf-8").splitlines():
            try:
                rec = json.loads(line)
                pid = rec["prompt_id"]
            except (json.JSONDecodeError, KeyError, TypeError):
                continue                      # a torn last line (killed mid-write)
            if (self.dir / rec.get("audio", "")).is_file():
                out[pid] = rec
        return out

    def take_path(self, index: int) -> Path:
        return self.takes_dir / f"{index + 1:03d}.wav"

    def add_take(self, index: int, prompt, wave: np.ndarray, checks: dict) -> dict:
        """Write takes/NNN.wav atomically, then its manifest line (that line makes it 'done')."""
        import soundfile as sf

        self.create()
        path = self.take_path(index)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        sf.write(str(tmp), np.clip(wave, -1.0, 1.0), 16000, subtype="PCM_16", format="WAV")
        os.replace(tmp, path)
        rec = {"id": f"{self.name}-{index + 1:03d}", "audio": f"takes/{path.name}",
               "text": prompt.text, "pinyin": prompt.pinyin,
               "duration": round(len(wave) / 16000, 3), "prompt_id": prompt.id, "checks": checks}
        with open(self.manifest, "a", encoding="utf-8") as f:
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")
            f.flush()
            os.fsync(f.fileno())
        return rec

    def write_split(self, val_share: float = 0.1) -> tuple[Path, Path, int, int]:
        """train.jsonl / val.jsonl from the accepted takes: every k-th take (by prompt order) held back."""
        recs = sorted(self.takes().values(), key=lambda r: r["audio"])
        n_val = max(1, round(len(recs) * val_share)) if len(recs) >= 2 else 0
        step = len(recs) / n_val if n_val else 0
        val_idx = {int(step * k + step / 2) for k in range(n_val)}
        train = [r for i, r in enumerate(recs) if i not in val_idx]
        val = [r for i, r in enumerate(recs) if i in val_idx]
        paths = self.dir / "train.jsonl", self.dir / "val.jsonl"
        for path, rows in zip(paths, (train, val)):
            path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows),
                            encoding="utf-8")
        return paths[0], paths[1], len(train), len(val)
