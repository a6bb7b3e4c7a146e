"""Transcript writers: plain text, JSON (segments with per-character pinyin and times), SRT, WebVTT.

Every writer takes the list of final segments as plain dicts, the shape the websocket protocol
sends (`Final.to_dict()` minus latency): {"segment", "text", "start", "end", "confidence",
"chars": [{"char", "pinyin", "start", "end", "conf"}], "nbest"?}. So local and `--server`
transcription write byte-identical files for the same results.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

FORMATS = ("text", "json", "srt", "vtt")
SUFFIX = {"text": ".txt", "json": ".json", "srt": ".srt", "vtt": ".vtt"}


def segment_dict(final) -> dict:
    """A recognizer Final (or an already-plain dict from the server) -> the dict the writers use."""
    d = final if isinstance(final, dict) else final.to_dict()
    keep = ("segment", "text", "pinyin", "start", "end", "confidence", "reason", "chars", "nbest")
    out = {k: d[k] for k in keep if k in d}
    out["chars"] = [c if isinstance(c, dict) else dict(c) for c in out.get("chars", [])]
    return out


def _clock(t: float, sep: str) -> str:
    ms = max(0, int(round(t * 1000)))
    h, ms = divmod(ms, 3600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def _cues(segments: list[dict]) -> list[dict]:
    """Segments with text, times made strictly increasing (players reject overlaps)."""
    cues, last_end = [], 0.0
    for s in segments:
        if not s.get("text"):
            continue
        start = max(float(s["start"]), last_end)
        end = max(float(s["end"]), start + 0.2)
        cues.append({**s, "start": start, "end": end})
        last_end = end
    return cues


def to_text(segments: list[dict], meta: dict | None = None) -> str:
    return "".join(s["text"] + "\n" for s in segments if s.get("text"))


def to_json(segments: list[dict], meta: dict | None = None) -> str:
    body = {**(meta or {}), "text": "".join(s.get("text", "") for s in segments), "segments": segments}
    return json.dumps(body, ensure_ascii=False, indent=1) + "\n"


def to_srt(segments: list[dict], meta: dict | None = None) -> str:
    blocks = [f"{i}\n{_clock(c['start'], ',')} --> {_clock(c['end'], ',')}\n{c['text']}\n"
              for i, c in enumerate(_cues(segments), 1)]
    return "\n".join(blocks)


def to_vtt(segments: list[dict], meta: dict | None = None) -> str:
    blocks = [f"{_clock(c['start'], '.')} --> {_clock(c['end'], '.')}\n{c['text']}\n"
              for c in _cues(segments)]
    return "WEBVTT\n\n" + "\n".join(blocks)


WRITERS = {"text": to_text, "json": to_json, "srt": to_srt, "vtt": to_vtt}


def output_path(audio: Path, fmt: str, output_dir: Path | None, base: Path | None = None,
                keep_ext: bool = False) -> Path:
    """Next to the input, or under output_dir keeping the path below `base` (a folder given).

    keep_ext: `a.wav` -> `a.wav.txt`, for inputs whose stems collide (a.wav and a.mp3)."""
    name = (audio.name + SUFFIX[fmt]) if keep_ext else audio.with_suffix(SUFFIX[fmt]).name
    if output_dir is None:
        return audio.with_name(name)
    rel = audio.parent.relative_to(base) if base is not None else Path()
    return output_dir / rel / name


def write_outputs(segments: list[dict], audio: Path, formats, output_dir: Path | None = None,
                  base: Path | None = None, meta: dict | None = None, keep_ext: bool = False) -> list[Path]:
    """Write every requested format atomically (temp file + rename); returns the paths."""
    paths = []
    for fmt in formats:
        path = output_path(audio, fmt, output_dir, base, keep_ext)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(WRITERS[fmt](segments, meta), encoding="utf-8")
        os.replace(tmp, path)
        paths.append(path)
    return paths
