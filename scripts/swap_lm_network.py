"""Put a newly trained network into a shipped language-model file, keeping its n-gram and lexicon.

    python scripts/swap_lm_network.py models/lm/lm.pt runs/lm/gpu_large/best.pt models/lm/lm.pt \
        [--ngram-weight W] [--lex-weight W]

The network checkpoint (a training best.pt, or the fp16 copy `train_lm_fixed_time.py` writes) must
use the shipped file's vocabulary: the n-gram and lexicon are indexed by it. Weights are stored
in fp16, as `export-lm` does.
"""
from __future__ import annotations

import argparse
import sys

import torch


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("shipped")
    ap.add_argument("network")
    ap.add_argument("out")
    ap.add_argument("--ngram-weight", type=float)
    ap.add_argument("--uni-weight", type=float)
    ap.add_argument("--lex-weight", type=float)
    args = ap.parse_args()
    base = torch.load(args.shipped, map_location="cpu", weights_only=False)
    net = torch.load(args.network, map_location="cpu", weights_only=False)
    if net["chars"] != base["chars"]:
        print("error: the network's vocabulary differs from the shipped file's", file=sys.stderr)
        return 2
    base["model_cfg"] = net["model_cfg"]
    base["prior"] = net["prior"]
    base["state"] = {k: v.half() if v.is_floating_point() else v for k, v in net["state"].items()}
    base["trained"] = net.get("trained") or {"step": net.get("step"), "best_dev": net.get("best"),
                                             "train_cfg": net.get("train_cfg")}
    for key in ("ngram_weight", "uni_weight", "lex_weight"):
        value = getattr(args, key)
        if value is not None:
            base[key] = value
    torch.save(base, args.out)
    print(f"wrote {args.out}: network {net['model_cfg']}, "
          + ", ".join(f"{k} {base.get(k)}" for k in ("ngram_weight", "uni_weight", "lex_weight")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
