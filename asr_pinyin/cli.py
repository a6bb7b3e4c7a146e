"""`asr-pinyin` command line. Each stage adds its subcommands from its own `cli.py`.

A stage's `asr_pinyin/<stage>/cli.py` defines `register(subparsers)`, which adds parsers whose
`func(args) -> int` does the work. Those modules import nothing heavy at module level (torch is
imported inside the handlers), so `asr-pinyin --help` stays fast.
"""
from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

import asr_pinyin


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="asr-pinyin", description=asr_pinyin.__doc__)
    parser.add_argument("--version", action="version", version=asr_pinyin.__version__)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(asr_pinyin.__path__), key=lambda m: m.name):
        if not info.ispkg:
            continue
        try:
            mod = importlib.import_module(f"asr_pinyin.{info.name}.cli")
        except ModuleNotFoundError as e:
            if e.name == f"asr_pinyin.{info.name}.cli":
                continue
            raise
        mod.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
