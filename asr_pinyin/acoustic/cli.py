"""Subcommands of the acoustic stage: `train-am`, `finetune-am`, `eval`, `transcribe-am`."""
from __future__ import annotations

import argparse
import json
import sys


def register(sub) -> None:
    p = sub.add_parser("train-am", help="train the streaming CTC acoustic model (resumes from out_dir)")
    p.add_argument("--config", required=True, help="recipe TOML path or shipped name (synth, tiny)")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override a recipe field, e.g. --set train.max_steps=100")
    p.set_defaults(func=run_train)

    p = sub.add_parser("eval", help="score the acoustic model on a manifest; prints one JSON object")
    p.add_argument("--manifest", required=True)
    p.add_argument("--mode", choices=["full", "streaming"], default="full")
    p.add_argument("--chunk-ms", type=int, default=640)
    p.add_argument("--left-ms", type=int, default=5120, help="streaming left context (-1: unlimited)")
    p.add_argument("--lookahead-ms", type=int, default=0,
                   help="streaming right context each chunk also sees (adds that much latency)")
    p.add_argument("--model", default=None, help="checkpoint (default models/am/model.pt)")
    p.add_argument("--limit", type=int, default=0, help="score only the first N utterances")
    p.add_argument("--decoding", choices=["greedy", "beam"], default="greedy")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--int8", action="store_true", help="dynamic int8 linear layers (faster on CPU)")
    p.add_argument("--lm", default=None, help="language model for `cer` (default models/lm/lm.pt)")
    p.add_argument("--no-lm", action="store_true", help="skip the language stage (cer: null)")
    p.add_argument("--adapter", default=None, help="a LoRA voice adapter file (from finetune-am or enroll)")
    p.set_defaults(func=run_eval)

    p = sub.add_parser("finetune-am", help="adapt the acoustic model to a voice or condition (LoRA or full)")
    p.add_argument("--manifest", required=True, help="training manifest (JSONL: audio, pinyin, duration)")
    p.add_argument("--method", choices=["lora", "full"], default="lora")
    p.add_argument("--out", required=True, help="adapter file (lora) or model file (full)")
    p.add_argument("--dev", default=None, help="dev manifest: early stopping and before/after SER")
    p.add_argument("--early-stop", action=argparse.BooleanOptionalAction, default=True,
                   help="with --dev: keep the dev-best state and stop when dev stops improving "
                        "(default); --no-early-stop: the fixed schedule's end, dev only measured")
    p.add_argument("--base", default=None, help="base model (default models/am/model.pt)")
    p.add_argument("--max-steps", type=int, default=300)
    p.add_argument("--max-minutes", type=float, default=10.0)
    p.add_argument("--rank", type=int, default=8)
    p.add_argument("--lora-targets", default="",
                   help="comma list of Linear layer names (suffixes) that get LoRA; default the "
                        "encoder's (qkv,out,pw1,pw2,ff1.1,ff1.4,ff2.1,ff2.4); e.g. add "
                        "tone_head,base_head,head,proj for the output heads and input projections")
    p.add_argument("--lr", type=float, default=0.0, help="0: lora 1e-3, full 2e-4")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--work-dir", default=None, help="run folder (resumable; default a temp folder)")
    p.add_argument("--replay", type=float, default=0.0,
                   help="share of training utterances drawn from general speech (0: none)")
    p.add_argument("--replay-manifest", default="data/speech/train.jsonl",
                   help="the general speech replayed (default: the pretraining corpus)")
    p.set_defaults(func=run_finetune)

    p = sub.add_parser("transcribe-am", help="audio file -> syllables with times and alternatives (JSON)")
    p.add_argument("audio")
    p.add_argument("--model", default=None)
    p.add_argument("--streaming", action="store_true", help="decode as a stream (chunked)")
    p.add_argument("--chunk-ms", type=int, default=640)
    p.add_argument("--decoding", choices=["greedy", "beam"], default="greedy")
    p.add_argument("--top-k", type=int, default=5)
    p.set_defaults(func=run_transcribe)


def _fail(msg: str) -> int:
    print(f"error: {msg}", file=sys.stderr)
    return 2


def run_train(args) -> int:
    from .config import ConfigError, load_config
    from .dataset import ManifestError
    from .model import ModelLoadError
    from .train import Trainer

    try:
        cfg = load_config(args.config, args.set)
        out = Trainer(cfg).run()
    except (ConfigError, ManifestError, ModelLoadError) as e:
        return _fail(str(e))
    print(f"run directory: {out}", file=sys.stderr)
    return 0


def run_eval(args) -> int:
    import torch

    from .dataset import ManifestError, read_manifest
    from .evaluate import evaluate
    from .model import ModelLoadError, load_model

    torch.set_num_threads(max(1, args.threads))
    from asr_pinyin.finetune.lora import AdapterError, load_adapter, use_adapter_now

    if args.adapter and args.int8:
        return _fail("--adapter and --int8 cannot be combined")
    try:
        model = load_model(args.model, int8=args.int8)
        if args.adapter:
            load_adapter(model, args.adapter, "adapter", "am")
            use_adapter_now(model, "adapter")
        utts, skipped = read_manifest(args.manifest)
    except (ModelLoadError, ManifestError, AdapterError) as e:
        return _fail(str(e))
    if args.limit > 0:
        utts = utts[: args.limit]
    texts = {}
    with open(args.manifest, encoding="utf-8") as f:
        if args.no_lm:
            f = []
        for line in f:
            try:
                d = json.loads(line)
                texts[str(d.get("id"))] = d.get("text", "")
            except (json.JSONDecodeError, AttributeError):
                pass
    try:
        res = evaluate(model, utts, args.mode, args.chunk_ms, args.left_ms, args.decoding, texts=texts,
                       lm_path=args.lm, lookahead_ms=args.lookahead_ms)
    except Exception as e:                # an unreadable audio file names itself in the message
        return _fail(str(e))
    res["skipped"] = {k: v for k, v in skipped.items() if v}
    if args.adapter:
        res["adapter"] = args.adapter
    print(json.dumps(res, ensure_ascii=False))
    return 0


def run_finetune(args) -> int:
    from .config import ConfigError
    from .dataset import ManifestError
    from .finetune import finetune_am
    from .model import ModelLoadError

    try:
        report = finetune_am(args.manifest, args.out, args.method, args.base, args.dev, args.max_steps,
                             args.max_minutes, rank=args.rank, lr=args.lr, seed=args.seed,
                             threads=args.threads, work_dir=args.work_dir, replay=args.replay,
                             replay_manifest=args.replay_manifest,
                             lora_targets=[t.strip() for t in args.lora_targets.split(",") if t.strip()],
                             early_stop=args.early_stop)
    except (ConfigError, ManifestError, ModelLoadError, OSError) as e:
        return _fail(str(e))
    if "rank" not in report:            # under torchrun only rank 0 reports (stdout is shared)
        print(json.dumps(report))
    return 0


def run_transcribe(args) -> int:
    import torch

    from .dataset import load_wave
    from .evaluate import transcribe_full, transcribe_stream
    from .model import ModelLoadError, load_model

    torch.set_num_threads(1)
    try:
        model = load_model(args.model)
        wave = load_wave(args.audio)
    except ModelLoadError as e:
        return _fail(str(e))
    except Exception as e:
        return _fail(f"{args.audio}: {e}")
    if args.streaming:
        syl = transcribe_stream(model, wave, args.chunk_ms, k=args.top_k)
    else:
        syl = transcribe_full(model, [wave], args.decoding, args.top_k)[0]
    print(json.dumps({"pinyin": " ".join(s.syllable for s in syl),
                      "syllables": [s.to_dict() for s in syl]}, ensure_ascii=False))
    return 0
