"""`asr-pinyin corpus build`: write data/text/{train,dev,test}.jsonl, it/{train,test}.jsonl."""
from __future__ import annotations

import json
import shlex
import sys


def register(sub) -> None:
    p = sub.add_parser("corpus", help="build the text corpus (sentences with pinyin labels)")
    csub = p.add_subparsers(dest="corpus_command", metavar="ACTION")
    b = csub.add_parser("build", help="clean, normalize, label, de-duplicate and split the sources")
    b.add_argument("--out", default="data/text", help="output folder (default data/text)")
    b.add_argument("--max-sentences", type=int, default=None, metavar="N",
                   help="stop each source after N kept sentences")
    b.add_argument("--tiny", action="store_true", help="a few hundred documents per source (seconds)")
    b.add_argument("--sources", default="inews,pd1998,reviews,idioms,it",
                   help="comma-separated subset of inews,pd1998,reviews,idioms,it")
    b.add_argument("--workers", type=int, default=2, help="processes (default 2)")
    b.add_argument("--quiet", action="store_true", help="no progress bars")
    b.add_argument("--json", action="store_true", help="print stats as JSON instead of a table")
    b.set_defaults(func=run_build)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def run_build(args) -> int:
    from .build import build, format_stats
    from .sources import ITERATORS, SourceMissing

    sources = tuple(s.strip() for s in args.sources.split(",") if s.strip())
    bad = [s for s in sources if s not in ITERATORS]
    if bad or not sources:
        print(f"error: unknown source(s) {bad}; choose from {','.join(ITERATORS)}", file=sys.stderr)
        return 2
    if args.max_sentences is not None and args.max_sentences < 1:
        print("error: --max-sentences must be >= 1", file=sys.stderr)
        return 2
    line = "asr-pinyin corpus build " + " ".join(shlex.quote(a) for a in sys.argv[3:]) \
        if sys.argv[1:3] == ["corpus", "build"] else "asr-pinyin corpus build"
    try:
        stats = build(args.out, sources=sources, tiny=args.tiny, max_sentences=args.max_sentences,
                      workers=max(1, args.workers), progress=not args.quiet, args_line=line)
    except SourceMissing as e:
        print(f"error: a source is missing: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"error: cannot write {args.out}: {e}", file=sys.stderr)
        return 1
    print(json.dumps(stats, ensure_ascii=False) if args.json else format_stats(stats))
    return 0
