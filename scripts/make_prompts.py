"""Choose the enrollment prompt set from the text corpus and print its coverage.

    python scripts/make_prompts.py [--text data/text/train.jsonl] [--out asr_pinyin/enroll/data/prompts.tsv]

Deterministic: the same corpus gives the same file. The coverage figures (tonal syllables
covered / inventory, share of corpus syllable tokens covered, tone pairs covered / 25) are
printed as JSON and recorded in the TSV's header comment.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from asr_pinyin.enroll import prompts as P  # noqa: E402
from asr_pinyin.enroll.prompts import PROMPTS_TSV, select, write_tsv  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--text", default=str(ROOT / "data/text/train.jsonl"))
    ap.add_argument("--out", default=str(PROMPTS_TSV))
    ap.add_argument("--max-prompts", type=int, default=P.N_MAX)
    ap.add_argument("--min-prompts", type=int, default=P.N_MIN)
    ap.add_argument("--budget-syllables", type=int, default=P.BUDGET_SYLLABLES,
                    help="syllables to read in all (5 minutes at 4 syllables/s)")
    ap.add_argument("--min-len", type=int, default=P.MIN_LEN)
    ap.add_argument("--max-len", type=int, default=P.MAX_LEN)
    args = ap.parse_args(argv)
    path = Path(args.text)
    if not path.is_file():
        print(f"error: {path}: text corpus not found (build it with `asr-pinyin corpus`)", file=sys.stderr)
        return 2
    records = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    prompts, report = select(records, args.max_prompts, args.min_prompts, args.budget_syllables,
                             min_len=args.min_len, max_len=args.max_len)
    try:
        source = str(path.resolve().relative_to(ROOT))
    except ValueError:
        source = path.name
    write_tsv(Path(args.out), prompts, report, source)
    print(json.dumps(report, ensure_ascii=False))
    print(f"wrote {len(prompts)} prompts to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
