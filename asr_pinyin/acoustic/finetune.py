"""`asr-pinyin finetune-am`: adapt the pretrained acoustic model to a new voice or condition.

    asr-pinyin finetune-am --manifest data/speech/heldout_voice/train.jsonl --method lora \\
        --dev data/speech/heldout_voice/test.jsonl --out adapters/am/klatt.pt

The same `Trainer` as pretraining (dynamic chunks, SpecAugment, speed perturbation, TensorBoard,
resume, early stopping on dev, torchrun), started from the shipped weights and CMVN:
- `lora`: peft LoRA on the encoder's Linear layers, base frozen; the output is a small adapter
  file that the recognizer loads per session (`voice`) next to the one base model.
- `full`: every weight trains; the output is a whole model file (fp16).
- `replay` P: that share of the training utterances is drawn from general speech (a manifest
  such as the pretraining corpus' data/speech/train.jsonl), so the adapted model keeps its
  general accuracy; the voice's own utterances are all used.
Voice enrollment (`asr-pinyin enroll`) calls `finetune_am` on a user's recorded prompts.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from .config import Config, ConfigError


def finetune_config(train_manifest: str, work_dir: str, method: str = "lora", base: str | None = None,
                    dev_manifest: str | None = None, max_steps: int = 300, max_minutes: float = 10.0,
                    rank: int = 8, lr: float = 0.0, seed: int = 1234, threads: int = 2,
                    model=None, replay: float = 0.0, replay_manifest: str = "",
                    lora_targets: list[str] | None = None, early_stop: bool = True) -> Config:
    """A fine-tuning recipe from the base model's own architecture (`model`: the base, if loaded).

    With a dev set and `early_stop`, the product is the dev-best state (the base included) and
    training stops after 3 evaluations without a gain. `early_stop=False` keeps the dev set for
    the before/after figures and the logs only: the product is the fixed schedule's end (the
    average of the last two snapshots). Enrollment uses that: its dev set is ~10 held-back takes
    (~100 syllables), too few to choose a step on (bench/enroll_policy.py, BENCHMARKS.md).
    """
    import dataclasses

    from .model import default_model_path, load_model

    if method not in ("lora", "full"):
        raise ConfigError(f"method must be lora or full, not {method!r}")
    base = str(base or default_model_path())
    model = model or load_model(base)
    cfg = Config()
    cfg.model = dataclasses.replace(model.cfg)
    cfg.data.train = [train_manifest]
    if replay > 0:
        cfg.data.train.append(replay_sample(train_manifest, replay_manifest, replay, work_dir, seed))
    cfg.data.dev = dev_manifest or ""
    cfg.data.batch_seconds = 60.0
    cfg.data.dev_limit = 200
    cfg.augment.noise_prob, cfg.augment.reverb_prob = 0.0, 0.0
    tc = cfg.train
    tc.out_dir, tc.init_from, tc.seed, tc.threads = work_dir, base, seed, threads
    tc.max_steps, tc.warmup_steps = max_steps, max(10, max_steps // 10)
    tc.lr = lr or (1e-3 if method == "lora" else 2e-4)
    tc.min_lr = tc.lr / 20
    tc.lora_rank = rank if method == "lora" else 0
    if lora_targets:
        tc.lora_targets = list(lora_targets)
    tc.eval_every = max(25, max_steps // 6) if dev_manifest else 0
    tc.save_every = tc.eval_every or 50
    tc.patience = 3 if dev_manifest and early_stop else 0
    tc.keep_best = bool(dev_manifest) and early_stop
    tc.average_last = 2
    tc.keep_checkpoints = 2
    tc.log_every = 10
    tc.time_limit_s = max_minutes * 60
    return cfg


def replay_sample(train_manifest: str, general: str, share: float, work_dir: str, seed: int) -> str:
    """Write WORK/replay.jsonl: general utterances (absolute audio paths) that make up `share` of
    the training set next to the voice's own; returns its path."""
    import math
    import random

    from .dataset import read_manifest

    if not 0 < share < 1:
        raise ConfigError(f"replay must be in (0, 1), not {share}")
    if not general or not Path(general).is_file():
        raise ConfigError(f"replay needs a general speech manifest; not found: {general or '(none)'}")
    own = len(read_manifest(train_manifest)[0])
    pool = read_manifest(general)[0]
    n = min(len(pool), math.ceil(own * share / (1 - share)))
    picked = random.Random(seed).sample(pool, n)
    out = Path(work_dir) / "replay.jsonl"
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", encoding="utf-8") as f:
        for u in picked:
            f.write(json.dumps({"id": f"replay-{u.id}", "audio": str(Path(u.audio).resolve()),
                                "pinyin": u.pinyin, "duration": u.duration}, ensure_ascii=False) + "\n")
    return str(out)


def dev_ser(model, manifest: str, limit: int = 200) -> float:
    from .dataset import read_manifest
    from .evaluate import evaluate

    utts = read_manifest(manifest)[0][:limit]
    return evaluate(model, utts, "full")["syllable_error_rate"]


def finetune_am(train_manifest: str, out: str, method: str = "lora", base: str | None = None,
                dev_manifest: str | None = None, max_steps: int = 300, max_minutes: float = 10.0,
                progress: bool = True, rank: int = 8, lr: float = 0.0, seed: int = 1234,
                threads: int = 2, work_dir: str | None = None, replay: float = 0.0,
                replay_manifest: str = "", lora_targets: list[str] | None = None,
                early_stop: bool = True) -> dict:
    """Fine-tune, then write the adapter (lora) or model (full) to `out`; returns a report with
    the dev syllable error rate before and after when `dev_manifest` is given (`early_stop`:
    see finetune_config)."""
    import torch

    from asr_pinyin.finetune.lora import load_adapter, use_adapter_now

    from .model import load_model
    from .train import Trainer

    t0 = time.time()
    work = Path(work_dir) if work_dir else Path(tempfile.mkdtemp(prefix="finetune-am-"))
    base_model = load_model(base)                 # once: the recipe and the before/after SER use it
    cfg = finetune_config(train_manifest, str(work), method, base, dev_manifest, max_steps, max_minutes,
                          rank, lr, seed, threads, model=base_model, replay=replay,
                          replay_manifest=replay_manifest, lora_targets=lora_targets,
                          early_stop=early_stop)
    torch.set_num_threads(max(1, threads))
    rank = int(os.environ.get("RANK", "0"))       # under torchrun, rank 0 measures and writes
    trainer = Trainer(cfg)
    trainer.quiet = not progress
    trainer.run()
    if rank != 0:
        return {"rank": rank, "steps": trainer.step}
    before = trainer.start_ser                    # measured at step 0 (keep_best: set when dev is)
    if before is None and dev_manifest:           # a resumed run: measure the base now
        before = dev_ser(base_model, dev_manifest)
    product = work / ("adapter.pt" if method == "lora" else "model.pt")
    if not product.is_file():              # stopped by the time limit: finish with what exists
        trainer.finish()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(product, out)
    after = None
    if dev_manifest:
        if method == "lora":
            load_adapter(base_model, out, "new", "am")
            use_adapter_now(base_model, "new")
            after = dev_ser(base_model, dev_manifest)
        else:
            after = dev_ser(load_model(out), dev_manifest)
    trainable = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
    total = sum(p.numel() for n, p in trainer.model.named_parameters() if "lora_" not in n)
    report = {"method": method, "steps": trainer.step, "wall_s": round(time.time() - t0, 1),
              "train_manifest": train_manifest, "dev_manifest": dev_manifest,
              "ser_before": before, "ser_after": after, "trainable_params": trainable,
              "trainable_share": round(trainable / total, 5), "bytes": out.stat().st_size,
              "replay": replay, "early_stop": cfg.train.keep_best,
              "lora_targets": cfg.train.lora_targets if method == "lora" else None,
              "base": cfg.train.init_from, "out": str(out)}
    out.with_suffix(".json").write_text(json.dumps(report, indent=1))
    return report
