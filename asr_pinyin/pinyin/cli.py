"""`asr-pinyin pinyin TEXT`: show how pinyin input is read (segmentations, canonical form)."""
from __future__ import annotations

import json
import sys


def register(sub) -> None:
    p = sub.add_parser("pinyin", help="read pinyin in any form; print canonical syllables")
    p.add_argument("text", nargs="+", help="pinyin: tone marks, tone numbers, run-together...")
    p.add_argument("--all", type=int, default=0, metavar="K", help="print the K best segmentations")
    p.add_argument("--toneless", action="store_true", help="drop tones from the output")
    p.set_defaults(func=run)


def run(args) -> int:
    from .parse import PinyinError, parse_pinyin, segmentations

    text = " ".join(args.text)
    try:
        if args.all:
            for seg in segmentations(text, args.all, toneless=args.toneless):
                print(" ".join(seg))
        else:
            print(" ".join(parse_pinyin(text, toneless=args.toneless)))
    except PinyinError as e:
        print(json.dumps({"error": str(e), "position": e.position}, ensure_ascii=False), file=sys.stderr)
        return 1
    return 0
