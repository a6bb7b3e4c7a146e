"""`asr-pinyin enroll`: read the prompts aloud (or give them as files), then adapt to the voice."""
from __future__ import annotations

import argparse
import json
import sys


def register(sub) -> None:
    p = sub.add_parser(
        "enroll", help="teach the acoustic model your voice (read ~100 short prompts, ~5 minutes)",
        description="Shows one prompt at a time and records it from the microphone (or takes it from "
        "--from-dir). Each take is checked (speech present, not clipped, not too quiet, plausible "
        "length, matches the prompt) and retaken when a check fails. Finished takes are kept: "
        "running the same command again resumes at the first prompt without a take. With enough "
        "takes, a LoRA adapter is trained and stored under the voice's profile folder "
        "($ASR_PINYIN_HOME/voices/NAME or ~/.local/share/asr-pinyin/voices/NAME).")
    p.add_argument("--name", help="voice name (letters, digits, '_', '-', '.')")
    p.add_argument("--list", action="store_true", help="list enrolled voices and exit")
    p.add_argument("--device", help="input device index or part of its name (default: system default)")
    p.add_argument("--rate", type=int, default=None, help="capture rate (default: the device's own)")
    p.add_argument("--from-dir", metavar="DIR", help="take prompt i from DIR/<prompt id>.wav (or "
                   "DIR/NNN.wav, any audio format) instead of the microphone")
    p.add_argument("--prompts", metavar="TSV", help="another prompt set (id, hanzi, pinyin columns)")
    p.add_argument("--am", help="base acoustic model (default: the shipped models/am/model.pt)")
    p.add_argument("--adapt", action=argparse.BooleanOptionalAction, default=True,
                   help="train the adapter once enough takes exist (default: yes)")
    p.add_argument("--min-takes", type=int, default=60, help="takes needed before adapting (default 60)")
    p.add_argument("--force-adapt", action="store_true", help="retrain even if the adapter is up to date")
    p.add_argument("--val-share", type=float, default=0.1, help="share of takes held back (default 0.1)")
    p.add_argument("--max-steps", type=int, default=300, help="adaptation steps (default 300)")
    p.add_argument("--max-minutes", type=float, default=10.0, help="adaptation time limit (default 10)")
    p.add_argument("--early-stop", action="store_true",
                   help="keep the state best on the held-back takes and stop when they stop "
                        "improving (default: the whole schedule; the held-back takes only measure it)")
    p.add_argument("--replay", type=float, default=0.0,
                   help="share of adaptation utterances synthesized in the base model's training "
                        "voices, so it keeps its general accuracy (default 0: none)")
    p.add_argument("--max-retakes", type=int, default=3, help="retakes per prompt at the microphone")
    p.add_argument("--trailing-silence-ms", type=int, default=1000, help="pause that ends a take")
    g = p.add_argument_group("take checks")
    g.add_argument("--max-mismatch", type=float, default=0.5,
                   help="largest toneless syllable error vs the prompt (default 0.5; 1 disables)")
    g.add_argument("--min-level-dbfs", type=float, default=-40.0, help="quietest speech level (default -40)")
    g.add_argument("--max-clipped", type=float, default=0.001, help="largest share of clipped samples")
    g.add_argument("--min-speech-share", type=float, default=0.2, help="smallest share of voiced frames")
    p.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    p.set_defaults(func=run_enroll)


def _fail(msg: str) -> int:
    print(f"error: {msg}", file=sys.stderr)
    return 2


def run_enroll(args) -> int:
    from .checks import CheckConfig
    from .profile import VoiceError, VoiceProfile, list_voices, voices_home
    from .prompts import read_prompts
    from .session import DirSource, EnrollError, MicSource, adapt, load_checker_model, record

    if args.list:
        voices = list_voices()
        if not voices:
            print(f"no voices enrolled (in {voices_home()})")
        for name, info in voices.items():
            print(f"{name}\t{info['takes']} takes\t{'adapter' if info['adapter'] else 'no adapter'}")
        return 0
    if not args.name:
        return _fail("--name is required (or --list)")
    try:
        profile = VoiceProfile(args.name)
        prompts = read_prompts(args.prompts)
    except (VoiceError, FileNotFoundError, ValueError) as e:
        return _fail(str(e))
    if args.min_takes > len(prompts):
        args.min_takes = len(prompts)
    cfg = CheckConfig(max_mismatch=args.max_mismatch, min_level_dbfs=args.min_level_dbfs,
                      max_clipped_share=args.max_clipped, min_speech_share=args.min_speech_share)
    import torch

    torch.set_num_threads(min(2, torch.get_num_threads()))
    model = load_checker_model(args.am)
    source = None
    try:
        source = (DirSource(args.from_dir) if args.from_dir else
                  MicSource(args.device, args.rate, args.trailing_silence_ms))
        summary = record(profile, prompts, source, cfg, model, args.max_retakes)
    except EnrollError as e:
        return _fail(str(e))
    except KeyboardInterrupt:
        print(f"\nstopped: {len(profile.takes())}/{len(prompts)} takes kept; run the same command "
              "to resume", file=sys.stderr)
        return 130
    finally:
        if source is not None:
            source.close()
    report = None
    if args.adapt:
        try:
            report = adapt(profile, args.am, args.min_takes, args.val_share, args.max_steps,
                           args.max_minutes, progress=sys.stderr.isatty(), force=args.force_adapt,
                           replay=args.replay, early_stop=args.early_stop)
        except EnrollError as e:
            return _fail(str(e))
    if args.json:
        print(json.dumps({"voice": profile.name, "profile": str(profile.dir), **summary.to_dict(),
                          "takes": len(profile.takes()), "report": report}, ensure_ascii=False))
    return 0 if summary.complete else 1
