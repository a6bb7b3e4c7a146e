"""Streaming real-time factor of acoustic models side by side, in one run (issue 5: RTF <= 0.05).

    .venv/bin/python bench/am_stream_speed.py --model models/am/model.pt [--model OTHER ...]
        [--int8] [--chunk-ms 320 640] [--lookahead-ms 0 160] [--limit 20] [--repeats 3] [--threads 1]

Each model (and, with --int8, its dynamic-int8 copy) decodes the same test utterances as a stream
(`AcousticStream`, audio in 160 ms pieces: features incl. pitch, encoder with caches, greedy CTC),
in turns, `--repeats` times; the best turn per model counts, so a neighbour's burst on a shared
machine does not decide the ratio. `--lookahead-ms`: each chunk also sees that much audio after it
(computed again with the next chunk). Prints one JSON line per (model, chunk, lookahead), the
process's peak RSS, and a Markdown table.
"""
from __future__ import annotations

import argparse
import json
import platform
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> int:
    import torch

    from asr_pinyin.acoustic.dataset import load_wave, read_manifest
    from asr_pinyin.acoustic.evaluate import transcribe_stream
    from asr_pinyin.acoustic.model import load_model

    ap = argparse.ArgumentParser()
    ap.add_argument("--model", action="append", required=True)
    ap.add_argument("--int8", action="store_true", help="also each model with dynamic int8 linear layers")
    ap.add_argument("--manifest", default=str(ROOT / "data/speech/test.jsonl"))
    ap.add_argument("--chunk-ms", type=int, nargs="+", default=[320, 640])
    ap.add_argument("--lookahead-ms", type=int, nargs="+", default=[0])
    ap.add_argument("--limit", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    waves = [load_wave(u.audio) for u in read_manifest(args.manifest)[0][: args.limit]]
    seconds = sum(len(w) for w in waves) / 16000
    models = {}
    for path in args.model:
        models[path] = load_model(path)
        if args.int8:
            models[f"{path} (int8)"] = load_model(path, int8=True)
    runs = [(c, a) for c in args.chunk_ms for a in args.lookahead_ms]
    best = {(name, c, a): float("inf") for name in models for c, a in runs}
    for _ in range(args.repeats):
        for c, a in runs:
            for name, m in models.items():
                t0 = time.perf_counter()
                for w in waves:
                    transcribe_stream(m, w, c, lookahead_ms=a)
                best[name, c, a] = min(best[name, c, a], (time.perf_counter() - t0) / seconds)
    rows = []
    for (name, c, a), rtf in best.items():
        rows.append({"model": name, "chunk_ms": c, "lookahead_ms": a, "rtf": round(rtf, 4), "utterances": len(waves),
                     "audio_seconds": round(seconds, 1), "threads": args.threads})
        print(json.dumps(rows[-1]), flush=True)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\nmachine: {platform.machine()}, {args.threads} torch thread(s), best of {args.repeats}, "
          f"peak RSS {peak_mb:.0f} MB (all models loaded)")
    print("| model | chunk | lookahead | streaming RTF |\n|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {r['chunk_ms']} ms | {r['lookahead_ms']} ms | {r['rtf']:.4f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
