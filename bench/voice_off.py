"""Adapter off means the base: sessions without a `voice` in a recognizer that has voices loaded.

    .venv/bin/python bench/voice_off.py --manifest data/speech/test.jsonl --limit 300 \
        --voices PROFILE_HOME/voices

Issue 9 asks that enrollment costs the general test at most 1 point "with the adapter off". A
voice adapter is a separate file applied per session, so the claim is that a `Recognizer` (the
object the server, `dictate` and `transcribe` share) with every enrolled voice loaded gives a
session that names no voice the very results of a recognizer that never loaded one. This runs
both over the first `--limit` utterances of a manifest, one session per utterance, and prints
one JSON object: utterances, how many finals differ (text or pinyin), and the syllable error
of the finals' pinyin against the reference for each recognizer.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv=None) -> int:
    from asr_pinyin.acoustic.dataset import read_manifest
    from asr_pinyin.acoustic.evaluate import edit_distance
    from asr_pinyin.audio.io import load_audio
    from asr_pinyin.recognizer import Recognizer, StreamOptions

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--manifest", required=True)
    ap.add_argument("--limit", type=int, default=300)
    ap.add_argument("--voices", required=True, nargs="+",
                    help="adapter files, or folders searched for */adapter.pt (a profile home's voices/)")
    args = ap.parse_args(argv)
    files = [f for v in map(Path, args.voices) for f in ([v] if v.is_file() else sorted(v.glob("*/adapter.pt")))]
    if not files:
        print(f"error: no adapter found in {args.voices}", file=sys.stderr)
        return 2
    utts = read_manifest(args.manifest)[0][: args.limit]
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "am").mkdir()
        for f in files:
            shutil.copy(f, Path(tmp) / "am" / f"{f.parent.name if f.name == 'adapter.pt' else f.stem}.pt")
        plain, loaded = Recognizer.load(), Recognizer.load()
        voices = loaded.add_adapter_dir(tmp)["voices"]
    t0 = time.time()
    differ, errors, ref_len = 0, {"plain": 0, "voices_loaded": 0}, 0
    try:
        for u in utts:
            x = load_audio(u.audio)
            out = {}
            for name, rec in (("plain", plain), ("voices_loaded", loaded)):
                finals = rec.transcribe(x, options=StreamOptions(partials=False))
                out[name] = ([f.text for f in finals], [p for f in finals for p in f.pinyin])
                errors[name] += edit_distance(out[name][1], u.pinyin.split())
            differ += out["plain"] != out["voices_loaded"]
            ref_len += len(u.pinyin.split())
    finally:
        plain.close()
        loaded.close()
    print(json.dumps({"manifest": args.manifest, "utterances": len(utts), "voices_loaded": voices,
                      "utterances_that_differ": differ,
                      "syllable_error_after_lm": {k: round(v / ref_len, 4) for k, v in errors.items()},
                      "wall_s": round(time.time() - t0, 1)}))
    return 0 if differ == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
