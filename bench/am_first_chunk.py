"""Latency of the first streamed chunk after loading, with and without the stage warm-up.

    .venv/bin/python bench/am_first_chunk.py [--runs 2] [--threads 1]

Each run is a fresh process (imports and first-call set-up are what is measured): `load_stages()`
(the shipped models), then the first and second acoustic steps of a test utterance. `off` skips
`BatchedAcoustic.warm_up`. Prints one JSON line per run.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def child(mode: str, threads: int) -> dict:
    sys.path.insert(0, str(ROOT))
    import torch

    torch.set_num_threads(threads)
    from asr_pinyin.acoustic.dataset import load_wave, read_manifest
    from asr_pinyin.recognizer.batching import BatchedAcoustic

    if mode == "off":
        BatchedAcoustic.warm_up = lambda self: None
    from asr_pinyin.recognizer.adapters import load_stages
    from asr_pinyin.recognizer.stages import AmJob

    t0 = time.perf_counter()
    am, _ = load_stages()
    t1 = time.perf_counter()
    wave = load_wave(read_manifest(ROOT / "data/speech/test.jsonl")[0][0].audio)
    state, n = am.new_state(), am.first_chunk_samples
    t2 = time.perf_counter()
    am.step_batch([AmJob(state, wave[:n], False)])
    t3 = time.perf_counter()
    am.step_batch([AmJob(state, wave[n:n + am.chunk_samples], False)])
    t4 = time.perf_counter()
    return {"warm_up": mode, "load_s": round(t1 - t0, 3), "first_step_s": round(t3 - t2, 4),
            "second_step_s": round(t4 - t3, 4), "threads": threads}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--child", choices=["on", "off"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.threads)))
        return 0
    for _ in range(args.runs):
        for mode in ("off", "on"):
            out = subprocess.run([sys.executable, __file__, "--child", mode, "--threads", str(args.threads)],
                                 capture_output=True, text=True, check=True).stdout
            print(out.strip().splitlines()[-1], flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
