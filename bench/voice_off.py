"""Adapter off means the base: sessions without a `voice` in a recognizer that has voices loaded.

    .venv/bin/python bench/voice_off.py --manifest data/speech/test.jsonl --limit 300 \
        --voices ASR_PINYIN_HOME/voices

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
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv=None) -> int:
    from asr_pinyin.acoustic.dataset import read_manifest
    from asr_pinyin.acoustic.evaluate import edit_distance
    from asr_pinyin.audio.io import load_audio
    from asr_pinyin.enroll.profile import list_voices, voice_adapter_path
    from asr_pinyin.recognizer import Recognizer, StreamOptions

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--manifest", required=True)
    ap.add_argument("--limit", type=int, default=300)
    ap.add_argument("--voices", required=True, nargs="+", type=Path, metavar="VOICES_HOME",
                    help="enrolled voices folders ($ASR_PINYIN_HOME/voices); every voice with an adapter loads")
    args = ap.parse_args(argv)
    found = {(name, home) for home in args.voices for name, info in list_voices(home).items() if info["adapter"]}
    if not found:
        print(f"error: no enrolled voice with an adapter in {[str(v) for v in args.voices]}", file=sys.stderr)
        return 2
    utts = read_manifest(args.manifest)[0][: args.limit]
    plain, loaded = Recognizer.load(), Recognizer.load()
    for name, home in sorted(found):
        loaded.add_voice(name, voice_adapter_path(name, home))
    voices = sorted(name for name, _ in found)
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
