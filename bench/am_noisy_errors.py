"""Where the acoustic model loses accuracy in noise: test_noisy errors by condition.

    .venv/bin/python bench/am_noisy_errors.py --model models/am/model.pt [--threads 2]

Every test_noisy utterance is a clean test utterance (`clean_id`) plus a room and noise (the
`augment` field the speech build writes: noise kind and SNR, room RT60, sometimes telephone band,
clipping, gain). Both are decoded (full context, greedy), so each condition's rows give the noisy
tonal / toneless SER next to the same utterances' clean SER: what the condition itself costs.
Prints one JSON line per group and a Markdown table.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from am_errors import decoded  # noqa: E402

from asr_pinyin.acoustic.evaluate import edit_distance  # noqa: E402
from asr_pinyin.pinyin import strip_tone  # noqa: E402


def groups_of(aug: dict) -> list[str]:
    """The condition groups one utterance's `augment` record belongs to."""
    out = []
    noise = aug.get("noise")
    if noise:
        out.append(f"noise {noise['kind']}")
        snr = noise["snr_db"]
        out.append("SNR 5-10 dB" if snr < 10 else "SNR 10-15 dB" if snr < 15 else "SNR 15-20 dB")
    else:
        out.append("no noise")
    room = aug.get("reverb")
    if room:
        rt = room["rt60"]
        out.append("RT60 < 0.4 s" if rt < 0.4 else "RT60 0.4-0.6 s" if rt < 0.6 else "RT60 >= 0.6 s")
    else:
        out.append("no room")
    out += [k for k in ("telephone", "clip") if aug.get(k)]
    return out


def main() -> int:
    import torch

    from asr_pinyin.acoustic.dataset import read_manifest
    from asr_pinyin.acoustic.model import load_model

    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="models/am/model.pt")
    ap.add_argument("--noisy", default="data/speech/test_noisy.jsonl")
    ap.add_argument("--clean", default="data/speech/test.jsonl")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    meta = {}
    with open(args.noisy, encoding="utf-8") as f:
        for line in f:
            d = json.loads(line)
            meta[str(d["id"])] = d
    noisy = read_manifest(args.noisy)[0]
    clean_by_id = {str(u.id): u for u in read_manifest(args.clean)[0]}
    pairs = [(u, clean_by_id[meta[str(u.id)]["clean_id"]]) for u in noisy
             if meta[str(u.id)].get("clean_id") in clean_by_id]
    model = load_model(args.model)

    def errors(utts):
        return [(edit_distance(r, h), edit_distance([strip_tone(s) for s in r], [strip_tone(s) for s in h]), len(r))
                for r, h in decoded(model, utts)]

    e_noisy, e_clean = errors([p[0] for p in pairs]), errors([p[1] for p in pairs])
    tally = defaultdict(lambda: [0, 0, 0, 0, 0, 0])   # noisy tonal, toneless, clean tonal, toneless, syllables, utts
    for (u, _), en, ec in zip(pairs, e_noisy, e_clean):
        for g in ["all"] + groups_of(meta[str(u.id)].get("augment") or {}):
            t = tally[g]
            t[0] += en[0]; t[1] += en[1]; t[2] += ec[0]; t[3] += ec[1]; t[4] += en[2]; t[5] += 1  # noqa: E702
    rows = []
    for g, (nt, ntl, ct, ctl, n, k) in sorted(tally.items(), key=lambda kv: (kv[0] != "all", kv[0])):
        rec = {"group": g, "utterances": k, "noisy_ser": round(nt / n, 4), "noisy_toneless": round(ntl / n, 4),
               "clean_ser": round(ct / n, 4), "clean_toneless": round(ctl / n, 4)}
        rows.append(rec)
        print(json.dumps(rec), flush=True)
    print(f"\n{args.model}\n\n| condition | utterances | noisy SER (toneless) | same utterances clean | cost |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['group']} | {r['utterances']} | {100 * r['noisy_ser']:.1f} % ({100 * r['noisy_toneless']:.1f}) | "
              f"{100 * r['clean_ser']:.1f} % ({100 * r['clean_toneless']:.1f}) | "
              f"+{100 * (r['noisy_ser'] - r['clean_ser']):.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
