"""The acoustic model on every held-out set, in one run: prints JSON lines and a markdown table.

    .venv/bin/python bench/am_eval.py [--model models/am/model.pt] [--threads 2] [--limit N]

Sets (data/speech, from `asr-pinyin speech synth`): test (unseen sentences and voice settings),
test_noisy (the same utterances with noise and rooms), heldout_voice/test (the klatt voice family,
never in training). Modes: full context, streaming at 640 and 320 ms chunks (5.12 s left context), and 640 ms chunks
that also see 160 ms after them (lookahead: 160 ms more latency).
CER runs the language stage (models/lm/lm.pt) on the acoustic top-k slots; "SER after LM" scores
the readings of the hanzi it chose (what a recognizer final reports as pinyin).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

import torch

from asr_pinyin.acoustic.dataset import read_manifest
from asr_pinyin.acoustic.evaluate import evaluate
from asr_pinyin.acoustic.model import load_model

# (set, mode, chunk ms, lookahead ms): lookahead = right context each streaming chunk also sees
RUNS = [("test", "full", 0, 0), ("test", "streaming", 640, 0), ("test", "streaming", 640, 160),
        ("test", "streaming", 320, 0), ("test_noisy", "full", 0, 0), ("test_noisy", "streaming", 640, 0),
        ("heldout_voice/test", "full", 0, 0)]


def texts_of(path: str) -> dict:
    with open(path, encoding="utf-8") as f:
        return {str(d["id"]): d.get("text", "") for d in map(json.loads, f)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=None)
    ap.add_argument("--data", default="data/speech")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--adapter", default=None, help="a LoRA voice adapter to apply")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model = load_model(args.model)
    if args.adapter:
        from asr_pinyin.finetune.lora import load_adapter, use_adapter_now

        load_adapter(model, args.adapter, "adapter", "am")
        use_adapter_now(model, "adapter")
    rows, missing = [], []
    for split, mode, chunk, look in RUNS:
        path = f"{args.data}/{split}.jsonl"
        if not os.path.isfile(path):    # a partial speech build: the noisy sets come after train
            if split not in missing:
                print(f"note: {path} not found, its rows are skipped (finish `make data`)",
                      file=sys.stderr, flush=True)
                missing.append(split)
            continue
        utts = read_manifest(path)[0]
        if args.limit:
            utts = utts[: args.limit]
        t0 = time.time()
        r = evaluate(model, utts, mode, chunk or 640, texts=texts_of(path), lookahead_ms=look)
        r.update(split=split, wall_s=round(time.time() - t0, 1))
        print(json.dumps(r), flush=True)
        rows.append(r)
    print(f"\nmachine: {platform.machine()}, {torch.get_num_threads()} torch threads, {platform.node()}")
    print("| set | mode | SER tonal | SER toneless | CER | SER after LM | RTF | utterances | hours |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        mode = r["mode"] + (f" {r['chunk_ms']} ms" if r["chunk_ms"] else "") \
            + (f" + {r['lookahead_ms']} ms lookahead" if r.get("lookahead_ms") else "")
        cer = f"{100 * r['cer']:.2f} %" if r["cer"] is not None else "-"
        after = r.get("syllable_error_rate_after_lm")
        after = f"{100 * after:.2f} %" if after is not None else "-"
        print(f"| {r['split']} | {mode} | {100 * r['syllable_error_rate']:.2f} % | "
              f"{100 * r['syllable_error_rate_toneless']:.2f} % | {cer} | {after} | {r['rtf']:.3f} | {r['utterances']} | "
              f"{r['audio_seconds'] / 3600:.2f} |")
    for split in missing:
        print(f"| {split} | (not built) | - | - | - | - | - | 0 | - |")


if __name__ == "__main__":
    main()
