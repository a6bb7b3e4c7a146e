"""`asr-pinyin transcribe` and `asr-pinyin dictate` (nothing heavy imported here)."""
from __future__ import annotations

import argparse
import json
import sys


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--server", metavar="URL", help="use a running `asr-pinyin serve` (ws://host:port/) "
                   "instead of loading models here")
    p.add_argument("--token", help="shared token for a server started with one (or $ASR_PINYIN_TOKEN)")
    p.add_argument("--am", help="acoustic model checkpoint (default: the shipped models/am/model.pt)")
    p.add_argument("--lm", help="language model checkpoint (default: the shipped models/lm/model.pt)")
    p.add_argument("--hotword", action="append", default=[], metavar="PHRASE",
                   help="a phrase to prefer (repeat for several)")
    p.add_argument("--trailing-silence-ms", type=int, default=None,
                   help="silence that ends a segment (endpoint rule; default 800)")
    p.add_argument("--voice", help="an enrolled voice (asr-pinyin enroll --name NAME), or with "
                   "--server a voice the server has loaded")
    p.add_argument("--domain", help="language domain adapter name (from --adapters, or the server's)")
    p.add_argument("--adapters", metavar="DIR", help="load LoRA adapters from DIR/lm/*.pt (domains) "
                   "and DIR/am/*.pt (voices); local models only")


def register(sub) -> None:
    p = sub.add_parser("transcribe", help="transcribe audio files or folders (text, json, srt, vtt)",
                       description="Transcribe audio files (wav, flac, ogg, mp3; any rate and channels) "
                       "or every such file under folders. Writes PATH.txt/.json/.srt/.vtt next to each "
                       "input or under --output-dir. Exit code 1 if any file failed.")
    p.add_argument("paths", nargs="+", metavar="PATH", help="audio files or folders")
    p.add_argument("-f", "--format", action="append", choices=["text", "json", "srt", "vtt"],
                   help="output format; repeat for several (default: text)")
    p.add_argument("-o", "--output-dir", help="write outputs here (folder layout kept) instead of "
                   "next to the inputs")
    p.add_argument("-j", "--jobs", type=int, default=4, help="files transcribed at once (default 4)")
    p.add_argument("--nbest", type=int, default=1, help="n-best alternatives per segment in json")
    p.add_argument("--max-segment-ms", type=int, default=None, help="longest segment (endpoint rule)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.add_argument("--summary-json", action="store_true", help="print the summary as JSON on stdout")
    _common(p)
    p.set_defaults(func=_transcribe)

    d = sub.add_parser("dictate", help="live dictation from a microphone",
                       description="Dictate into the terminal: partial text updates in place, each "
                       "finished sentence is committed as a line. Ctrl-C stops.")
    d.add_argument("--list-devices", action="store_true", help="list input devices and exit")
    d.add_argument("--device", help="input device index or part of its name (default: system default)")
    d.add_argument("--rate", type=int, default=None, help="capture rate (default: the device's own)")
    d.add_argument("--seconds", type=float, default=None, help="stop after this many seconds")
    d.add_argument("--no-times", action="store_true", help="do not print segment times")
    _common(d)
    d.set_defaults(func=_dictate)


def _transcribe(args) -> int:
    import os
    from pathlib import Path

    from .transcribe import LocalEngine, ServerEngine, TranscribeError, find_audio, summary_line, \
        transcribe_files

    if args.jobs < 1:
        print("error: --jobs must be at least 1", file=sys.stderr)
        return 2
    if not 1 <= args.nbest <= 10:
        print("error: --nbest must be in [1, 10]", file=sys.stderr)
        return 2
    jobs = find_audio(args.paths)
    if not jobs:
        print("error: no audio files found in " + " ".join(args.paths), file=sys.stderr)
        return 2
    endpoint = {k: v for k, v in (("trailing_silence_ms", args.trailing_silence_ms),
                                  ("max_segment_ms", args.max_segment_ms)) if v}
    options = {"hotwords": args.hotword, "nbest": args.nbest, "endpoint": endpoint or None,
               "domain": args.domain, "voice": args.voice}
    try:
        if args.server:
            engine = ServerEngine(args.server, args.token or os.environ.get("ASR_PINYIN_TOKEN"), options)
        else:
            from asr_pinyin.recognizer import StreamOptions, StreamConfigError
            engine = LocalEngine(args.am, args.lm, options, adapters=args.adapters)
            try:   # check the options once, not once per file
                engine.rec.create_stream(StreamOptions(args.hotword, args.nbest, options["endpoint"],
                                                       args.domain, args.voice, partials=False)).close()
            except StreamConfigError as e:
                engine.close()
                raise TranscribeError(str(e)) from None
    except TranscribeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    try:
        summary = transcribe_files(jobs, engine, tuple(dict.fromkeys(args.format or ["text"])),
                                   Path(args.output_dir) if args.output_dir else None, args.jobs,
                                   show_progress=not args.quiet,
                                   log=lambda m: print(m, file=sys.stderr))
    finally:
        engine.close()
    print(summary_line(summary), file=sys.stderr)
    for f in summary["failed"]:
        print(f"  failed: {f['path']}: {f['error']}", file=sys.stderr)
    if args.summary_json:
        print(json.dumps(summary, ensure_ascii=False))
    return 1 if summary["failed"] else 0


def _dictate(args) -> int:
    from .dictate import DictateError, dictate

    try:
        return dictate(args)
    except DictateError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
