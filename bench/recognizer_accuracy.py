"""Accuracy of what users get: the Recognizer's finals (the server, `transcribe`, `dictate`), with
the full-context second pass at each segment's end and without it, side by side.

    python bench/recognizer_accuracy.py [--manifest data/speech/test.jsonl] [--limit N] [--threads 1]

Each utterance goes through `Recognizer.transcribe` (VAD segments, 240 ms streaming chunks, the
language stage) of both recognizers in turn. Prints one JSON line per mode: tonal / toneless
syllable error rate of the finals' pinyin (each hanzi's reading among its slot's acoustic
alternatives, so the language model's context fixes acoustic tone errors here: not the acoustic
model's SER, which `asr-pinyin eval` gives), CER of their text (punctuation ignored; the digits
that ITN wrote are turned back into hanzi with `cn2an.transform`, not always the way the labels
write them, so CER here runs a little above `asr-pinyin eval`'s), and the acoustic
+ language compute per audio second.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from asr_pinyin.acoustic.dataset import load_wave, read_manifest  # noqa: E402
from asr_pinyin.acoustic.evaluate import PUNCT, edit_distance  # noqa: E402
from asr_pinyin.pinyin import strip_tone  # noqa: E402


def to_hanzi_numbers(text: str) -> str:
    """Undo ITN for scoring: digits back to hanzi (cn2an reads years digit by digit)."""
    import cn2an

    try:
        return cn2an.transform(text, "an2cn")
    except Exception:        # cn2an refuses some mixed strings: score them as they are
        return text


def main() -> None:
    import torch

    from asr_pinyin.recognizer import Recognizer, RecognizerOptions

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--manifest", default="data/speech/test.jsonl")
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--gain-db", type=float, default=0.0, help="play every utterance this much louder (< 0: quieter)")
    ap.add_argument("--every", type=int, default=1, help="only every N-th utterance")
    ap.add_argument("--no-level", action="store_true",
                    help="A/B: finals of quiet segments without the level correction (batching.QUIET_PEAK = 0)")
    args = ap.parse_args()
    if args.no_level:
        import asr_pinyin.recognizer.batching as batching
        batching.QUIET_PEAK = 0.0
    torch.set_num_threads(args.threads)
    utts = read_manifest(args.manifest)[0]
    utts = utts[::args.every]
    utts = utts[:args.limit] if args.limit else utts
    with open(args.manifest, encoding="utf-8") as f:
        texts = {d["id"]: d.get("text", "") for d in map(json.loads, f)}
    modes = {"two_pass": Recognizer.load(options=RecognizerOptions(threads=args.threads, two_pass=True)),
             "one_pass": Recognizer.load(options=RecognizerOptions(threads=args.threads, two_pass=False))}
    stats = {m: {"errs": 0, "errs_tl": 0, "syl": 0, "cerr": 0, "chars": 0, "wall": 0.0} for m in modes}
    seconds = 0.0
    for n, u in enumerate(utts, 1):
        wave = load_wave(u.audio) * (10 ** (args.gain_db / 20))
        seconds += len(wave) / 16000
        ref_syl = u.pinyin.split()
        ref_chars = [c for c in texts.get(u.id, "") if c not in PUNCT]
        for m, rec in modes.items():
            t0 = time.perf_counter()
            finals = rec.transcribe(wave, 16000, timeout=600)
            st = stats[m]
            st["wall"] += time.perf_counter() - t0
            hyp_syl = [c.pinyin for f in finals for c in f.chars]
            hyp_chars = [c for c in to_hanzi_numbers("".join(f.text for f in finals)) if c not in PUNCT]
            st["errs"] += edit_distance(ref_syl, hyp_syl)
            st["errs_tl"] += edit_distance([strip_tone(s) for s in ref_syl], [strip_tone(s) for s in hyp_syl])
            st["syl"] += len(ref_syl)
            st["cerr"] += edit_distance(ref_chars, hyp_chars)
            st["chars"] += len(ref_chars)
        print(f"  {n}/{len(utts)}", end="\r", file=sys.stderr)
    for m, rec in modes.items():
        st = stats[m]
        print(json.dumps({"mode": m, "manifest": args.manifest, "gain_db": args.gain_db, "utterances": len(utts),
                          "audio_seconds": round(seconds, 1),
                          "syllable_error_rate": round(st["errs"] / st["syl"], 4),
                          "syllable_error_rate_toneless": round(st["errs_tl"] / st["syl"], 4),
                          "cer": round(st["cerr"] / max(st["chars"], 1), 4),
                          "compute_per_audio_second": round(rec.rtf, 4),
                          "wall_per_audio_second": round(st["wall"] / seconds, 4),
                          "threads": args.threads}), flush=True)
        rec.close()


if __name__ == "__main__":
    main()
