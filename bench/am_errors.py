"""Where the acoustic model's errors are, per voice family: tone-only vs everything else.

    .venv/bin/python bench/am_errors.py --model models/am/model.pt [--model OTHER ...] [--threads 1]

For each model and each voice family of the test manifest (the `voice.family` field the speech
build writes), full-context greedy decoding: tonal and toneless syllable error rates. Their
difference is the share of syllables whose only error is the tone (a tone-only substitution
costs one tonal edit and no toneless edit); the toneless rate is everything else. Prints one
JSON line per (model, family) and a Markdown table.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> int:
    import torch

    from asr_pinyin.acoustic.dataset import read_manifest
    from asr_pinyin.acoustic.evaluate import evaluate
    from asr_pinyin.acoustic.model import load_model

    ap = argparse.ArgumentParser()
    ap.add_argument("--model", action="append", required=True)
    ap.add_argument("--manifest", default="data/speech/test.jsonl")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    utts = read_manifest(args.manifest)[0]
    family = {}
    with open(args.manifest, encoding="utf-8") as f:
        for line in f:
            d = json.loads(line)
            family[str(d["id"])] = (d.get("voice") or {}).get("family", "?")
    groups = defaultdict(list)
    for u in utts:
        groups[family.get(str(u.id), "?")].append(u)
    rows = []
    for path in args.model:
        model = load_model(path)
        for fam in sorted(groups):
            r = evaluate(model, groups[fam], "full")
            ser, tl = r["syllable_error_rate"], r["syllable_error_rate_toneless"]
            rec = {"model": path, "family": fam, "utterances": len(groups[fam]), "ser": ser,
                   "toneless": tl, "tone_only": round(ser - tl, 4)}
            rows.append(rec)
            print(json.dumps(rec), flush=True)
    print("\n| model | voice family | utterances | SER | tone-only | everything else (toneless SER) |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {r['family']} | {r['utterances']} | {100 * r['ser']:.1f} % | "
              f"{100 * r['tone_only']:.1f} % | {100 * r['toneless']:.1f} % |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
