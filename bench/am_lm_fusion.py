"""How the acoustic stage's per-syllable alternatives should be handed to the language stage.

The acoustic model's CTC posteriors are peaky: at a syllable's peak frame the best unit often has
p > 0.9 even when it is wrong, and the language model (trained with corrupted slots whose true
syllable scores 0.2-1.0) then trusts it. This script decodes a manifest once (full context,
greedy), caches the log-probs, and scores end-to-end CER for several ways of building the slots:

    peak        the peak frame's top-k, renormalised over non-blank units (what ships)
    peak:P      the same with probabilities p^P, renormalised (P > 1 sharpens, P < 1 flattens)
    peak:P:F    ... and alternatives whose probability is then under F dropped
    seg:P       the mean of the posteriors over the frames the unit occupies, then p^P
    rec         the recognizer's hand-over before session 6 (decoded syllable at its
                blank-inclusive confidence + 2 alternatives)
    toneless    only the best base syllable per slot, no tone (what tones are worth)
    tl:P:F      peak:P, scaled by 1-F, plus the best base syllable without a tone at F ("this
                base, any tone": room for the language model to overrule a confident wrong tone)
    tones:P:F   peak:P, then every real tone of the best base gets at least F (renormalised)

    python bench/am_lm_fusion.py --manifest data/speech/dev.jsonl --limit 300 \\
        --variant peak --variant peak:2 --variant seg:2

Tune on dev only; confirm the chosen setting once on test with `bench/am_eval.py`.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from asr_pinyin.acoustic.dataset import load_wave, read_manifest  # noqa: E402
from asr_pinyin.acoustic.decode import UNITS, greedy  # noqa: E402
from asr_pinyin.acoustic.evaluate import PUNCT, edit_distance, forward_full  # noqa: E402
from asr_pinyin.acoustic.frontend import features  # noqa: E402
from asr_pinyin.acoustic.model import load_model  # noqa: E402
from asr_pinyin.lm.slots import acoustic_slot  # noqa: E402
from asr_pinyin.pinyin import TONAL_SET  # noqa: E402


def log_probs(model_path: str, utts, batch: int = 8) -> list[torch.Tensor]:
    model = load_model(model_path)
    model.eval()
    out = []
    for b in range(0, len(utts), batch):
        waves = [load_wave(u.audio) for u in utts[b:b + batch]]
        lps = forward_full(model, [features(w, model.cfg.n_mels, model.cfg.pitch_kind) for w in waves])
        out += [lp.half() for lp in lps]
        print(f"  decoded {len(out)}/{len(utts)}", end="\r", file=sys.stderr)
    return out


def slots_for(lp: torch.Tensor, variant: str, k: int, shift: float = 0.08) -> list[list[tuple[str, float]]]:
    """The greedy syllables of one utterance as LM slots, built the way `variant` says."""
    name, *rest = variant.split(":")
    power = float(rest[0]) if rest else 1.0
    floor = float(rest[1]) if len(rest) > 1 else 0.0
    lp = lp.float()
    out = []
    for s in greedy(lp, shift, k):
        if name == "toneless":
            out.append([(s.syllable.rstrip("12345"), 1.0)])
        elif name == "rec":         # the recognizer's slots before session 6
            out.append([(s.syllable, s.confidence)] + [a for a in s.alternatives if a[0] != s.syllable][:2])
        elif name == "peak":
            slot = acoustic_slot(s.alternatives, power, decoded=s.syllable)
            kept = [a for a in slot if a[1] >= floor] or slot[:1]   # alternatives under the floor dropped
            total = sum(p for _, p in kept)
            out.append([(u, p / total) for u, p in kept])
        elif name == "tl":
            slot = acoustic_slot(s.alternatives, power, decoded=s.syllable)
            base = slot[0][0].rstrip("12345")
            out.append([(u, (1 - floor) * p) for u, p in slot][:k - 1] + [(base, floor)])
        elif name == "tones":
            slot = dict(acoustic_slot(s.alternatives, power, decoded=s.syllable))
            base = max(slot, key=slot.get).rstrip("12345")
            for t in "12345":
                if base + t in TONAL_SET:
                    slot[base + t] = max(slot.get(base + t, 0.0), floor)
            total = sum(slot.values())
            out.append(sorted(((u, p / total) for u, p in slot.items()), key=lambda x: -x[1]))
        elif name == "seg":         # mean posterior over the unit's frames instead of its peak
            frames = slice(round(s.start / shift), round(s.end / shift))
            top = lp[frames, 1:].softmax(-1).mean(0).topk(k)
            out.append(acoustic_slot([(UNITS[int(i) + 1], float(v)) for v, i in zip(*top)], power,
                                     decoded=s.syllable))
        else:
            raise SystemExit(f"unknown variant {variant!r}")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="models/am/model.pt")
    ap.add_argument("--lm", default=None)
    ap.add_argument("--manifest", default="data/speech/dev.jsonl")
    ap.add_argument("--limit", type=int, default=300)
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--variant", action="append", default=[])
    ap.add_argument("--cache", default="", help="a .pt file for the log-probs (reused when it exists)")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    utts = read_manifest(args.manifest)[0][:args.limit]
    refs = {}
    with open(args.manifest, encoding="utf-8") as f:
        for line in f:
            d = json.loads(line)
            refs[d["id"]] = d["text"]
    t0 = time.time()
    if args.cache and Path(args.cache).is_file():
        lps = torch.load(args.cache)
    else:
        lps = log_probs(args.model, utts)
        if args.cache:
            Path(args.cache).parent.mkdir(parents=True, exist_ok=True)
            torch.save(lps, args.cache)
    t_am = time.time() - t0
    import asr_pinyin.lm.slots as lm_slots
    from asr_pinyin.lm import LanguageModel
    lm_slots.MAX_K = max(lm_slots.MAX_K, args.k)      # to try more alternatives than the API keeps
    lm = LanguageModel.load(args.lm)
    n_chars = sum(len([c for c in refs[u.id] if c not in PUNCT]) for u in utts)
    for variant in args.variant or ["peak"]:
        t1 = time.time()
        batch = [slots_for(lp, variant, args.k) for lp in lps]
        errs = 0
        for b in range(0, len(batch), 64):
            convs = lm.convert_batch([s or [("a1", 1.0)] for s in batch[b:b + 64]], itn_numbers=False)
            for u, s, c in zip(utts[b:b + 64], batch[b:b + 64], convs):
                hyp = [ch for ch in c.text if ch not in PUNCT] if s else []
                errs += edit_distance([ch for ch in refs[u.id] if ch not in PUNCT], hyp)
        print(json.dumps({"variant": variant, "k": args.k, "cer": round(errs / n_chars, 4),
                          "utterances": len(utts), "chars": n_chars, "lm_s": round(time.time() - t1, 1),
                          "am_s": round(t_am, 1)}), flush=True)


if __name__ == "__main__":
    main()
