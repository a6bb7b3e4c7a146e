"""Split a speech manifest into train/dev by a hash of each utterance id (deterministic).

    python scripts/split_manifest.py data/speech/heldout_voice/train.jsonl --dev-tenths 2
    # -> ft_train.jsonl and ft_dev.jsonl next to it (audio paths stay valid: same folder)

Used for fine-tuning on a held-out voice, whose own test split must stay untouched: early
stopping needs a dev set, and it comes out of the voice's train split.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path


def split_rows(rows: list[dict], dev_tenths: int = 2) -> dict[str, list[dict]]:
    """{"train": [...], "dev": [...]}: a row goes to dev when the SHA-1 of its id falls in the
    first `dev_tenths` tenths (bench/finetune_condition.py splits the same way)."""
    parts = {"train": [], "dev": []}
    for r in rows:
        bucket = int(hashlib.sha1(str(r["id"]).encode()).hexdigest(), 16) % 10
        parts["dev" if bucket < dev_tenths else "train"].append(r)
    return parts


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("manifest")
    ap.add_argument("--dev-tenths", type=int, default=2, help="share of utterances for dev, in tenths")
    ap.add_argument("--prefix", default="ft_")
    args = ap.parse_args()
    src = Path(args.manifest)
    rows = [json.loads(line) for line in src.read_text("utf-8").splitlines() if line.strip()]
    parts = split_rows(rows, args.dev_tenths)
    for name, part in parts.items():
        out = src.with_name(f"{args.prefix}{name}.jsonl")
        out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in part), "utf-8")
        minutes = sum(r.get("duration", 0.0) for r in part) / 60
        print(f"{out}: {len(part)} utterances, {minutes:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
