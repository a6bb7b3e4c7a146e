"""Speed of the language stage on this machine: load + first conversion, batched throughput,
and the cost of one streaming update of a 30-syllable segment.

    .venv/bin/python bench/lm_speed.py [--model models/lm/lm.pt] [--threads 2] [--workers 2]
Prints one JSON object. `--workers N` also times bulk conversion by a pool of N worker
processes with one torch thread each (lm/pool.py), right after the one-process figures.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=None)
    ap.add_argument("--data", default="data/text/test.jsonl")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--workers", type=int, default=0, help="also time a pool of this many worker processes")
    args = ap.parse_args()
    out = {}
    # a fresh interpreter: imports + load + first conversion, as a user sees it
    code = ("import time; t=time.perf_counter(); from asr_pinyin.lm import LanguageModel; "
            f"lm=LanguageModel.load({args.model!r}); lm.convert('wo3 xiang3 qu4 bei3 jing1'); "
            "print(time.perf_counter()-t)")
    runs = [float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                                 cwd=ROOT).stdout) for _ in range(3)]
    out["load_and_first_conversion_s"] = round(min(runs), 3)

    import torch

    from asr_pinyin.lm.data import read_jsonl
    from asr_pinyin.lm.decode import LanguageModel

    torch.set_num_threads(args.threads)
    lm = LanguageModel.load(args.model)
    rows = read_jsonl(args.data, 512)
    inputs = [r["pinyin"] for r in rows]
    lm.convert_batch(inputs[:64])
    lm.convert_batch(inputs)
    for name, ngram, lex in (("full", lm.ngram, lm.lex_weight), ("no_word_bonus", lm.ngram, 0.0),
                             ("network_only", None, 0.0)):
        keep = lm.ngram, lm.lex_weight
        lm.ngram, lm.lex_weight = ngram, lex
        # the batched API as a bulk job uses it (one call, all sentences), and in calls of 64
        for label, size in (("", len(inputs)), ("_calls_of_64", 64)):
            t, c = time.perf_counter(), time.process_time()
            for i in range(0, len(inputs), size):
                lm.convert_batch(inputs[i:i + size])
            out[f"batched_sentences_per_second_{name}{label}"] = round(len(inputs) / (time.perf_counter() - t), 1)
            out[f"batched_sentences_per_cpu_second_{name}{label}"] = round(len(inputs) / (time.process_time() - c), 1)
        lm.ngram, lm.lex_weight = keep
    syls = [s for r in rows for s in r["pinyin"].split()]
    times, cpu = [], []
    for start in range(0, 600, 30):
        stream = lm.create_stream()
        stream.push(syls[start:start + 27])
        t, c = time.perf_counter(), time.process_time()
        stream.push(syls[start + 27:start + 30])  # the update that brings the segment to 30 syllables
        times.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
        stream.finalize()
    # the recognizer's input: every slot a few acoustic alternatives (here the true syllable with
    # two confusions, as `eval-lm --corrupt 1.0` builds them)
    import random

    from asr_pinyin.lm.data import confusion_table
    from asr_pinyin.lm.evaluate import input_slots

    rng, conf = random.Random(0), confusion_table()
    acoustic = [input_slots(syls[start:start + 30], rng, conf, False, 1.0) for start in range(0, 600, 30)]
    atimes = []
    for slots in acoustic:
        stream = lm.create_stream()
        stream.push(slots[:27])
        t = time.perf_counter()
        stream.push(slots[27:])
        atimes.append(time.perf_counter() - t)
        stream.finalize()
    out["stream_update_30_acoustic_slots_ms_median"] = round(statistics.median(atimes) * 1000, 2)
    out["stream_update_30_syllables_cpu_ms_median"] = round(statistics.median(cpu) * 1000, 2)
    out["stream_update_30_syllables_ms_median"] = round(statistics.median(times) * 1000, 2)
    out["stream_update_30_syllables_ms_p90"] = round(sorted(times)[int(0.9 * len(times))] * 1000, 2)
    if args.workers:
        from asr_pinyin.lm.pool import ConversionPool

        t = time.perf_counter()
        with ConversionPool(args.model, workers=args.workers) as pool:
            out["pool_start_s"] = round(time.perf_counter() - t, 2)
            pool.convert_batch(inputs[:64])
            runs = []
            for _ in range(2):
                t = time.perf_counter()
                pool.convert_batch(inputs)
                runs.append(round(len(inputs) / (time.perf_counter() - t), 1))
            out[f"pool{args.workers}_sentences_per_second_full"] = runs
    out["threads"] = args.threads
    out["int8_encoder"] = bool(getattr(lm, "int8", False))
    out["sentences"] = len(inputs)
    out["mean_syllables"] = round(sum(len(x.split()) for x in inputs) / len(inputs), 2)
    out["load_average_1min"] = round(__import__("os").getloadavg()[0], 1)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
