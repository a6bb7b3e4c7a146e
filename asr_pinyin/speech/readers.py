"""Readers for real corpora that users bring; each writes the same manifest as the generator.

Supported layouts:
* AISHELL-1: `data_aishell/wav/{train,dev,test}/SPK/ID.wav` and
  `data_aishell/transcript/aishell_transcript_v0.8.txt` ("ID word word ...").
* THCHS-30: `data_thchs30/data/ID.wav` + `ID.wav.trn` (line 1 hanzi words, line 2 pinyin);
  splits from `data_thchs30/{train,dev,test}/` when present (their .trn may point to data/).
* Common Voice zh-CN: `*.tsv` (train, dev, test, validated, ...) with `path` and `sentence`
  columns, audio in `clips/*.mp3`.
* Kaldi data folder: `wav.scp` ("UTT path"), `text` ("UTT transcript"), optional `segments`
  ("SEG REC start end"; segments are cut out to 16 kHz FLAC next to the manifest).

Manifest lines are `{"id","audio","text","pinyin","duration",...}` with `audio` relative to the
manifest. Audio stays where it is (any soundfile format/rate; `load_audio` converts). Every
utterance that cannot be used (missing, corrupt or empty audio, a transcript without hanzi, a
pinyin label that cannot be made) is reported on stderr with its path and reason, and skipped.
"""
from __future__ import annotations

import csv
import json
import os
import sys
from collections import Counter
from pathlib import Path

from ..audio.io import AudioError, audio_info, load_audio, save_flac


class ReaderError(Exception):
    """The corpus folder as a whole is unusable (missing transcript file, wrong layout)."""


def hanzi_to_pinyin(text: str) -> tuple[str, str]:
    """Normalized text and its tonal pinyin (one syllable per hanzi); ValueError with a reason.

    The one place the readers label text: the text stage's labeller when present, else pypinyin.
    """
    try:
        from ..text import label_sentence
    except ImportError:  # text stage absent: same convention straight from pypinyin
        from pypinyin import Style, lazy_pinyin
        hanzi = "".join(c for c in text if "\u3400" <= c <= "\u9fff")
        if not hanzi:
            raise ValueError("no hanzi in transcript") from None
        return text, " ".join(lazy_pinyin(hanzi, style=Style.TONE3, neutral_tone_with_five=True))
    ex, why = label_sentence(text, min_hanzi=1, max_hanzi=10_000)
    if ex is None:
        raise ValueError(f"transcript rejected by the labeller ({why})")
    py = ex["pinyin"] if isinstance(ex["pinyin"], str) else " ".join(ex["pinyin"])
    return ex["text"], py


class ManifestWriter:
    """Collects records per split, checks each audio file, writes `<out>/<split>.jsonl` atomically."""

    def __init__(self, out: Path):
        self.out = Path(out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.records: dict[str, list[dict]] = {}
        self.skipped: dict[str, Counter] = {}

    def skip(self, split: str, where, reason: str) -> None:
        print(f"{where}: {reason} (skipped)", file=sys.stderr)
        self.skipped.setdefault(split, Counter())[reason.split(" (")[0].split(":")[0]] += 1
        self.records.setdefault(split, [])

    def add(self, split: str, uid: str, audio: Path, text: str, pinyin: str | None = None,
            duration: float | None = None, **extra) -> None:
        audio = Path(audio)
        try:
            if duration is None:
                _, _, duration = audio_info(audio)
                if duration <= 0:  # e.g. mp3 without a frame count: decode to be sure
                    duration = len(load_audio(audio)) / 16000
            if duration <= 0:
                raise AudioError(audio, "no audio samples")
            if pinyin is None:
                text, pinyin = hanzi_to_pinyin(text)
        except AudioError as e:
            return self.skip(split, e.path, e.reason)
        except ValueError as e:
            return self.skip(split, f"{audio} [{uid}]", str(e))
        rel = os.path.relpath(audio.resolve(), self.out.resolve())
        self.records.setdefault(split, []).append(
            {"id": uid, "audio": rel, "text": text, "pinyin": pinyin,
             "duration": round(float(duration), 3), **extra})

    def close(self) -> dict:
        summary = {}
        for split, recs in self.records.items():
            recs.sort(key=lambda r: r["id"])
            path = self.out / f"{split}.jsonl"
            tmp = path.with_suffix(".jsonl.tmp")
            with open(tmp, "w", encoding="utf-8") as f:
                for r in recs:
                    f.write(json.dumps(r, ensure_ascii=False) + "\n")
            os.replace(tmp, path)
            summary[split] = {"utterances": len(recs),
                              "hours": round(sum(r["duration"] for r in recs) / 3600, 4),
                              "skipped": dict(self.skipped.get(split, {}))}
        return summary


def _find(root: Path, name: str) -> Path:
    """`root` itself when it is called `name`, else `root/name`."""
    root = Path(root)
    if root.name == name:
        return root
    if (root / name).is_dir():
        return root / name
    raise ReaderError(f"{root}: no {name}/ folder here")


def read_aishell(root: Path, out: Path) -> dict:
    base = _find(root, "data_aishell")
    trans = base / "transcript" / "aishell_transcript_v0.8.txt"
    if not trans.is_file():
        raise ReaderError(f"{trans}: AISHELL-1 transcript file not found")
    texts = {}
    with open(trans, encoding="utf-8") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 2:
                texts[parts[0]] = "".join(parts[1:])
    w = ManifestWriter(out)
    for split in ("train", "dev", "test"):
        for wav in sorted((base / "wav" / split).glob("*/*.wav")):
            uid = wav.stem
            if uid not in texts:
                w.skip(split, wav, "no transcript line for this utterance")
                continue
            w.add(split, uid, wav, texts[uid], speaker=wav.parent.name)
    return w.close()


def _thchs_trn(trn: Path) -> list[str]:
    lines = trn.read_text(encoding="utf-8").strip().splitlines()
    if len(lines) == 1 and lines[0].strip().endswith(".trn"):  # train/dev/test point into data/
        target = (trn.parent / lines[0].strip()).resolve()
        lines = target.read_text(encoding="utf-8").strip().splitlines()
    return lines


def read_thchs30(root: Path, out: Path) -> dict:
    from ..pinyin import is_valid

    base = _find(root, "data_thchs30")
    splits = {s: sorted((base / s).glob("*.wav")) for s in ("train", "dev", "test")
              if (base / s).is_dir()}
    if not splits:
        if not (base / "data").is_dir():
            raise ReaderError(f"{base}: neither data/ nor train/dev/test/ folders found")
        splits = {"all": sorted((base / "data").glob("*.wav"))}
    w = ManifestWriter(out)
    for split, wavs in splits.items():
        for wav in wavs:
            trn = wav.with_name(wav.name + ".trn")
            try:
                lines = _thchs_trn(trn)
            except (OSError, UnicodeDecodeError) as e:
                w.skip(split, trn, f"unreadable transcript ({e.__class__.__name__})")
                continue
            if not lines or not lines[0].strip():
                w.skip(split, trn, "empty transcript")
                continue
            text = "".join(lines[0].split())
            syl = lines[1].split() if len(lines) > 1 else []
            n_hanzi = sum(1 for c in text if "\u3400" <= c <= "\u9fff")
            pinyin = " ".join(syl) if len(syl) == n_hanzi and all(map(is_valid, syl)) else None
            w.add(split, wav.stem, wav, text, pinyin, speaker=wav.stem.split("_")[0])
    return w.close()


def read_commonvoice(root: Path, out: Path) -> dict:
    root = Path(root)
    tsvs = [p for p in sorted(root.glob("*.tsv"))
            if p.stem in ("train", "dev", "test", "validated", "other", "invalidated")]
    if not tsvs:
        raise ReaderError(f"{root}: no Common Voice train/dev/test/validated .tsv files")
    w = ManifestWriter(out)
    for tsv in tsvs:
        with open(tsv, encoding="utf-8", newline="") as f:
            reader = csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
            if not {"path", "sentence"} <= set(reader.fieldnames or []):
                raise ReaderError(f"{tsv}: needs 'path' and 'sentence' columns")
            for row in reader:
                clip = root / "clips" / row["path"]
                w.add(tsv.stem, Path(row["path"]).stem, clip, row["sentence"] or "",
                      speaker=row.get("client_id", ""))
    return w.close()


def _kv(path: Path) -> dict[str, str]:
    out = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            parts = line.strip().split(maxsplit=1)
            if len(parts) == 2:
                out[parts[0]] = parts[1]
    return out


def read_kaldi(root: Path, out: Path) -> dict:
    root = Path(root)
    for name in ("wav.scp", "text"):
        if not (root / name).is_file():
            raise ReaderError(f"{root / name}: Kaldi data folder needs wav.scp and text")
    wavs, texts = _kv(root / "wav.scp"), _kv(root / "text")
    split = root.name or "data"
    w = ManifestWriter(out)

    def resolve(rec: str) -> Path | None:
        spec = wavs.get(rec)
        if spec is None or spec.rstrip().endswith("|"):
            return None
        p = Path(spec)
        return p if p.is_absolute() or p.exists() else root / p

    segs = root / "segments"
    if segs.is_file():
        for line in segs.read_text(encoding="utf-8").splitlines():
            parts = line.split()
            if len(parts) != 4:
                continue
            uid, rec, start, end = parts[0], parts[1], float(parts[2]), float(parts[3])
            src = resolve(rec)
            if src is None or uid not in texts:
                w.skip(split, f"{segs} [{uid}]", "no wav.scp entry (or a pipe command)"
                       if src is None else "no text line for this segment")
                continue
            try:
                wav = load_audio(src, offset=start, duration=end - start)
            except AudioError as e:
                w.skip(split, e.path, e.reason)
                continue
            dst = Path(out) / "audio" / split / f"{uid}.flac"
            save_flac(dst, wav)
            w.add(split, uid, dst, texts[uid], duration=len(wav) / 16000,
                  source=str(src), offset=start)
    else:
        for uid in sorted(wavs):
            src = resolve(uid)
            if src is None:
                w.skip(split, f"{root / 'wav.scp'} [{uid}]", "pipe commands are not supported")
            elif uid not in texts:
                w.skip(split, src, "no text line for this utterance")
            else:
                w.add(split, uid, src, texts[uid])
    return w.close()


READERS = {"aishell": read_aishell, "thchs30": read_thchs30, "commonvoice": read_commonvoice,
           "kaldi": read_kaldi}
