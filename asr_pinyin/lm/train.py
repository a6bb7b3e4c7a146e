"""Training loop: AdamW, warmup + cosine LR, dev evaluation, early stopping, resumable checkpoints.

`runs/lm/<name>/last.pt` is written every few minutes and at each evaluation (resume point);
`best.pt` holds the best dev score so far. Re-running the same command resumes.
"""
from __future__ import annotations

import math
import random
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from .config import ModelConfig, TrainConfig
from .data import (K, bucket_batches, chunk, collate, confusion_table, corpus_counts, encode_rows,
                   make_slots, read_jsonl)
from .model import PinyinLM
from .vocab import build_prior, build_vocab


def lr_at(step: int, cfg: TrainConfig) -> float:
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    t = min(1.0, (step - cfg.warmup_steps) / max(1, cfg.max_steps - cfg.warmup_steps))
    return cfg.min_lr + 0.5 * (cfg.lr - cfg.min_lr) * (1 + math.cos(math.pi * t))


def save_checkpoint(path: Path, model: PinyinLM, chars: list[str], prior: dict, **extra):
    tmp = path.with_suffix(".tmp")
    torch.save({"model_cfg": asdict(model.cfg), "chars": chars, "prior": prior,
                "state": model.state_dict(), **extra}, tmp)
    tmp.replace(path)


@torch.no_grad()
def dev_accuracy(model: PinyinLM, sents: list[np.ndarray], conf, device, mode: str, batch: int = 64) -> float:
    """Hanzi accuracy on encoded sentences: mode 'tonal', 'toneless' or 'corrupt' (10 % top-3)."""
    model.eval()
    rng = random.Random(0)
    right = total = 0
    for i in range(0, len(sents), batch):
        part = sents[i:i + batch]
        items = [(*make_slots(s, rng, conf, mode == "toneless", 0.1 if mode == "corrupt" else 0.0, 0.0,
                              eval_mode=True), s[2], s[3]) for s in part]
        b = {k: v.to(device) for k, v in collate(items).items()}
        logits, _ = model(b["tonal"], b["base"], b["prob"])
        valid = b["chars"] >= 0
        right += (logits.argmax(-1)[valid] == b["chars"][valid]).sum().item()
        total += valid.sum().item()
    model.train()
    return right / max(1, total)


def train(cfg: TrainConfig, resume: bool = True) -> Path:
    from tqdm import tqdm

    from asr_pinyin.device import get_device

    torch.manual_seed(cfg.seed)
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    device = get_device()
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    last = out / "last.pt"
    state = torch.load(last, map_location="cpu", weights_only=False) if resume and last.exists() else None

    rows = read_jsonl(cfg.train)
    for extra in cfg.extra_train:
        rows += read_jsonl(extra)
    counts, pairs = corpus_counts(rows)
    init = torch.load(cfg.init_from, map_location="cpu", weights_only=False) if cfg.init_from and not state else None
    if state or init:
        chars, prior = (state or init)["chars"], (state or init)["prior"]
        mcfg = ModelConfig(**(state or init)["model_cfg"])
    else:
        chars = build_vocab(counts, cfg.min_char_count)
        prior = build_prior(chars, pairs)
        mcfg = cfg.model
    char_id = {c: i for i, c in enumerate(chars)}
    train_sents = chunk(encode_rows(rows, char_id), mcfg.max_len)
    dev_sents = chunk(encode_rows(read_jsonl(cfg.dev, cfg.dev_sentences), char_id), mcfg.max_len)
    del rows
    print(f"train {len(train_sents)} pieces, {sum(s.shape[1] for s in train_sents)} hanzi; "
          f"dev {len(dev_sents)}; vocab {len(chars)}; device {device}", flush=True)

    model = PinyinLM(mcfg, len(chars), prior).to(device)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2 and "emb" not in n]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2 or "emb" in n]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr, betas=(0.9, 0.98))
    step, best, bad, epoch = 0, -1.0, 0, 0
    if init:
        model.load_state_dict({k: v.float() for k, v in init["state"].items()})
        print(f"initialised from {cfg.init_from}", flush=True)
    if state:
        model.load_state_dict(state["state"])
        opt.load_state_dict(state["opt"])
        step, best, bad, epoch = state["step"], state["best"], state["bad_evals"], state["epoch"]
        print(f"resumed at step {step} (best dev {best:.4f})", flush=True)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"model {n_params / 1e6:.2f} M parameters", flush=True)

    conf = confusion_table()
    rng = random.Random(cfg.seed + step)
    t_start = last_save = time.time()
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(str(out / "tb"))  # loss, accuracy, learning rate; dev accuracy per mode

    def checkpoint(path: Path):
        save_checkpoint(path, model, chars, prior, opt=opt.state_dict(), step=step, best=best,
                        bad_evals=bad, epoch=epoch, train_cfg=cfg.to_dict())

    done = False
    while not done:
        batches = bucket_batches([s.shape[1] for s in train_sents], cfg.batch_tokens, random.Random(cfg.seed + epoch))
        skip = step % len(batches) if state and epoch == state.get("epoch") else 0
        bar = tqdm(batches[skip:], desc=f"epoch {epoch}", mininterval=30, leave=False)
        for idx in bar:
            for g in opt.param_groups:
                g["lr"] = lr_at(step, cfg)
            items = []
            for i in idx:
                s = train_sents[i]
                toneless = rng.random() < cfg.toneless_rate
                corrupt = rng.uniform(0, cfg.corrupt_max)
                items.append((*make_slots(s, rng, conf, toneless, corrupt, cfg.soft_rate), s[2], s[3]))
            batch = {k: v.to(device) for k, v in collate(items).items()}
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.bf16):
                loss, stats = model.loss(batch)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            step += 1
            if step % 50 == 0:
                bar.set_postfix(loss=f"{stats['char_loss']:.3f}", acc=f"{stats['acc']:.3f}")
            if step % 10 == 0:
                writer.add_scalar("train/loss", stats["char_loss"], step)
                writer.add_scalar("train/accuracy", stats["acc"], step)
                writer.add_scalar("train/lr", lr_at(step, cfg), step)
            if step % cfg.eval_every == 0:
                accs = {m: dev_accuracy(model, dev_sents, conf, device, m) for m in ("tonal", "toneless", "corrupt")}
                score = (accs["tonal"] + accs["toneless"] + accs["corrupt"]) / 3
                for m, a in accs.items():
                    writer.add_scalar(f"dev/{m}", a, step)
                writer.flush()
                mins = (time.time() - t_start) / 60
                print(f"step {step} lr {lr_at(step, cfg):.2e} loss {stats['char_loss']:.3f} dev "
                      + " ".join(f"{m} {a:.4f}" for m, a in accs.items()) + f" ({mins:.1f} min)", flush=True)
                if score > best:
                    best, bad = score, 0
                    checkpoint(out / "best.pt")
                else:
                    bad += 1
                checkpoint(last)
                last_save = time.time()
                if bad >= cfg.patience:
                    print("early stop: dev stopped improving", flush=True)
                    done = True
                    break
            if time.time() - last_save > cfg.save_every_s:
                checkpoint(last)
                last_save = time.time()
            if step >= cfg.max_steps or (cfg.max_minutes and time.time() - t_start > cfg.max_minutes * 60):
                done = True
                break
        else:
            epoch += 1
            state = None
    writer.close()
    checkpoint(last)
    if not (out / "best.pt").exists():
        checkpoint(out / "best.pt")
    print(f"done at step {step}; best dev {best:.4f}", flush=True)
    return out / "best.pt"
