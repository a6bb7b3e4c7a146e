"""`asr-pinyin finetune-lm`: adapt the pretrained pinyin->hanzi model to a domain from text alone.

    asr-pinyin finetune-lm --data data/text/it/train.jsonl --method lora --out adapters/lm/it.pt

Domain text is plain text (.txt files or a folder of them: the corpus builder's cleaning and
labelling turns it into hanzi + pinyin pairs) or JSONL `{"text", "pinyin"}`. A slice of it
(by sentence hash) is held out as the dev set for early stopping; a share of each batch
replays general text, so the adapted model keeps its general accuracy.

- `--method lora` (peft): the base stays frozen; the adapter file holds the LoRA matrices and a
  hanzi trigram counted from the domain text, mixed with the general n-gram at decode time.
  Load it with `LanguageModel.add_adapter`, `eval-lm --adapter`, or the server's adapter folder.
- `--method full`: every weight trains; the output is a whole model in the shipped format.

Training hygiene is the same as every train command here: warmup + cosine LR, early stopping on
dev, TensorBoard logs (`--logdir`, default OUT.runs/), resumable `last.pt` in the work folder,
seed control, a wall-time limit. Under `torchrun --nproc_per_node N -m asr_pinyin.cli finetune-lm
...` each process draws its own batches and DistributedDataParallel averages the gradients (gloo
on CPU, NCCL on GPUs); rank 0 evaluates, decides early stopping for all, and writes the output.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from .config import ModelConfig
from .data import chunk, collate, confusion_table, encode_rows, make_slots, read_jsonl
from .model import PinyinLM

LM_TARGETS = ("linear1", "linear2", "char_proj", "char_head")


@dataclass
class FinetuneConfig:
    data: str
    out: str
    method: str = "lora"              # lora | full
    base: str = ""                    # "" = models/lm/lm.pt
    general: str = "data/text/train.jsonl"  # replayed text ("" = none)
    replay: float = 0.3               # share of each batch drawn from general text
    rank: int = 8
    alpha: float = 16.0
    lr: float = 0.0                   # 0 = per method (lora 2e-3, full 3e-4)
    batch_tokens: int = 4096
    max_steps: int = 600
    warmup_steps: int = 50
    eval_every: int = 50
    patience: int = 4
    max_minutes: float = 20.0
    dev_share: float = 0.05
    toneless_rate: float = 0.35
    corrupt_max: float = 0.2
    ngram_mix: float = 0.2            # weight of the domain n-gram against the general one (chosen on dev)
    seed: int = 1234
    threads: int = 2
    logdir: str = ""                  # TensorBoard ("" = <out>.runs)

    def work_dir(self) -> Path:
        return Path(self.out).with_suffix(".work")


def read_domain_text(path: str | Path) -> list[dict]:
    """JSONL pairs, or plain text (a file or a folder of .txt) labelled by the corpus builder."""
    from asr_pinyin.corpus.build import process_doc

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"domain text not found: {path}")
    if path.is_file() and path.suffix == ".jsonl":
        return read_jsonl(path)
    files = sorted(path.rglob("*.txt")) if path.is_dir() else [path]
    rows = []
    for f in files:
        for text, pinyin in process_doc(f.read_text("utf-8", errors="replace"))[0]:
            rows.append({"text": text, "pinyin": pinyin})
    if not rows:
        raise ValueError(f"{path}: no usable Chinese sentences")
    return rows


def split_dev(rows: list[dict], share: float) -> tuple[list[dict], list[dict]]:
    """Deterministic train/dev split by sentence hash (the same sentence always lands the same side)."""
    def h(r):
        return int(hashlib.md5(r["text"].encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    cut = share
    if rows and not any(h(r) < share for r in rows):     # small sets: at least the lowest-hash sentence
        cut = min(h(r) for r in rows) + 1e-12
    dev = [r for r in rows if h(r) < cut]
    train = [r for r in rows if h(r) >= cut]
    return train, dev[:500]


def load_base(path: str | Path | None):
    from .decode import DEFAULT_PATH

    path = Path(path) if path else DEFAULT_PATH
    ck = torch.load(path, map_location="cpu", weights_only=False)
    model = PinyinLM(ModelConfig(**ck["model_cfg"]), len(ck["chars"]), ck["prior"])
    model.load_state_dict({k: v.float() for k, v in ck["state"].items()})
    return model, ck, path


class _Loss(torch.nn.Module):
    """`model.loss` as a forward pass, so DistributedDataParallel sees (and syncs) it."""

    def __init__(self, model: PinyinLM):
        super().__init__()
        self.model = model

    def forward(self, batch):
        return self.model.loss(batch)


def _lr_at(step, cfg: FinetuneConfig, lr: float) -> float:
    if step < cfg.warmup_steps:
        return lr * (step + 1) / cfg.warmup_steps
    t = min(1.0, (step - cfg.warmup_steps) / max(1, cfg.max_steps - cfg.warmup_steps))
    return lr * (0.1 + 0.45 * (1 + math.cos(math.pi * t)))


def finetune(cfg: FinetuneConfig, progress: bool = True) -> dict:
    """Train, early-stop on domain dev, write the adapter (lora) or model (full); returns a report."""
    from torch.utils.tensorboard import SummaryWriter
    from tqdm import tqdm

    from asr_pinyin.device import get_device
    from asr_pinyin.finetune.lora import LoraSpec, add_lora, fingerprint, save_adapter, trainable_share

    from .train import dev_accuracy

    if cfg.method not in ("lora", "full"):
        raise ValueError(f"--method must be lora or full, not {cfg.method!r}")
    torch.manual_seed(cfg.seed)
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    device = get_device()
    world, rank = int(os.environ.get("WORLD_SIZE", "1")), int(os.environ.get("RANK", "0"))
    dist = None
    if world > 1:
        import torch.distributed as dist

        if device.type == "cuda":
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    progress = progress and rank == 0
    t0 = time.time()
    rows = read_domain_text(cfg.data)
    train_rows, dev_rows = split_dev(rows, cfg.dev_share)
    model, ck, base_path = load_base(cfg.base or None)
    chars = ck["chars"]
    char_id = {c: i for i, c in enumerate(chars)}
    L = model.cfg.max_len
    dom = chunk(encode_rows(train_rows, char_id), L)
    dev = chunk(encode_rows(dev_rows, char_id), L)
    gen = chunk(encode_rows(read_jsonl(cfg.general, 60_000), char_id), L) if cfg.general and cfg.replay > 0 \
        and Path(cfg.general).is_file() else []
    if not dom or not dev:
        raise ValueError(f"{cfg.data}: too little usable text ({len(dom)} train, {len(dev)} dev sentences)")
    base_fp = fingerprint(model)
    spec = LoraSpec(targets=LM_TARGETS, r=cfg.rank, alpha=cfg.alpha)
    if cfg.method == "lora":
        add_lora(model, spec, "train")
    model.to(device)
    trainable, total = trainable_share(model)
    params = [p for p in model.parameters() if p.requires_grad]
    lr = cfg.lr or (2e-3 if cfg.method == "lora" else 3e-4)
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.01 if cfg.method == "lora" else 0.05)
    work = cfg.work_dir()
    work.mkdir(parents=True, exist_ok=True)
    step, best, bad, best_state = 0, -1.0, 0, None
    conf = confusion_table()
    step_fn = _Loss(model)
    if dist is not None:
        step_fn = torch.nn.parallel.DistributedDataParallel(
            step_fn, device_ids=[device.index] if device.type == "cuda" else None)
    if (work / "last.pt").is_file():                       # resume
        st = torch.load(work / "last.pt", map_location="cpu", weights_only=False)
        if st.get("config") == asdict(cfg):
            model.load_state_dict(st["model"], strict=False)
            opt.load_state_dict(st["opt"])
            step, best, bad, best_state = st["step"], st["best"], st["bad"], st["best_state"]
    writer = SummaryWriter(cfg.logdir or str(Path(cfg.out).with_suffix(".runs"))) if rank == 0 else None

    def score(m) -> dict:
        return {mode: dev_accuracy(m, dev, conf, device, mode) for mode in ("tonal", "toneless", "corrupt")}

    def trainable_state():
        return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()
                if cfg.method == "full" or "lora_" in k}

    before = score(model) if step == 0 and rank == 0 else None
    if before:
        writer.add_scalar("dev/mean_accuracy", sum(before.values()) / 3, 0)
    rng = random.Random(cfg.seed + step + 100_003 * rank)     # each process its own batches
    bar = tqdm(total=cfg.max_steps, initial=step, desc=f"finetune-lm ({cfg.method})", disable=not progress,
               mininterval=5)
    stop = "max_steps"
    while step < cfg.max_steps:
        batch_items, n_tok = [], 0
        while n_tok < cfg.batch_tokens:
            pool = gen if gen and rng.random() < cfg.replay else dom
            s = pool[rng.randrange(len(pool))]
            toneless = rng.random() < cfg.toneless_rate
            batch_items.append((*make_slots(s, rng, conf, toneless, rng.uniform(0, cfg.corrupt_max), 0.2),
                                s[2], s[3]))
            n_tok += s.shape[1]
        for g in opt.param_groups:
            g["lr"] = _lr_at(step, cfg, lr)
        batch = {k: v.to(device) for k, v in collate(batch_items).items()}
        model.train()
        loss, stats = step_fn(batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        step += 1
        bar.update(1)
        if writer is not None:
            writer.add_scalar("train/loss", stats["char_loss"], step)
            writer.add_scalar("train/accuracy", stats["acc"], step)
            writer.add_scalar("train/lr", _lr_at(step, cfg, lr), step)
        why = ""
        if rank == 0 and (step % cfg.eval_every == 0 or step == cfg.max_steps):
            accs = score(model)
            mean = sum(accs.values()) / 3
            writer.add_scalar("dev/mean_accuracy", mean, step)
            bar.set_postfix(dev=f"{mean:.4f}", loss=f"{stats['char_loss']:.3f}")
            if mean > best:
                best, bad, best_state = mean, 0, trainable_state()
            else:
                bad += 1
            torch.save({"config": asdict(cfg), "model": trainable_state(), "opt": opt.state_dict(),
                        "step": step, "best": best, "bad": bad, "best_state": best_state}, work / "last.pt")
            why = "early_stop" if bad >= cfg.patience else ""
        if not why and cfg.max_minutes and time.time() - t0 > cfg.max_minutes * 60:
            why = "time_limit"
        if dist is not None:                          # every rank stops at the same step
            flag = torch.tensor([{"": 0, "time_limit": 1, "early_stop": 2}[why]], device=device)
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            why = {0: "", 1: "time_limit", 2: "early_stop"}[int(flag.item())]
        if why:
            stop = why
            break
    bar.close()
    if dist is not None:
        dist.barrier()
        dist.destroy_process_group()
    if rank != 0:
        return {"rank": rank, "steps": step, "stopped": stop}
    writer.close()
    if best_state is not None:
        model.load_state_dict(best_state, strict=False)
    out = Path(cfg.out)
    report = {"method": cfg.method, "steps": step, "stopped": stop, "wall_s": round(time.time() - t0, 1),
              "train_sentences": len(train_rows), "dev_sentences": len(dev_rows), "best_dev": round(best, 5),
              "world": world,
              "dev_before": before, "trainable_params": trainable, "base_params": total,
              "trainable_share": round(trainable / total, 5), "base": str(base_path)}
    if cfg.method == "lora":
        from .export import build_ngram_rows
        from .ngram import pack

        ngram = build_ngram_rows(train_rows, chars)
        report["bytes"] = save_adapter(out, model, "train", spec, "lm", base_fp,
                                       extra={"ngram": pack(ngram), "ngram_mix": cfg.ngram_mix,
                                              "report": report, "data": str(cfg.data)})
    else:
        keep = {k: ck[k] for k in ("model_cfg", "chars", "prior") if k in ck}
        keep.update({k: ck[k] for k in ("ngram", "ngram_weight", "uni_weight", "lexicon", "lex_weight") if k in ck})
        keep["state"] = {k: v.half() if v.is_floating_point() else v for k, v in model.state_dict().items()}
        keep["trained"] = {"finetuned_from": str(base_path), "report": report}
        out.parent.mkdir(parents=True, exist_ok=True)
        torch.save(keep, out)
        report["bytes"] = out.stat().st_size
    (out.with_suffix(".json")).write_text(json.dumps(report, indent=1, ensure_ascii=False))
    return report

