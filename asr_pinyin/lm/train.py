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


def lr_at(step: int, cfg: TrainConfig, minutes: float = 0.0) -> float:
    """Linear warmup, then cosine decay over max_steps (or over max_minutes of wall time when
    `time_schedule` is set: a fixed-time run on hardware of unknown speed still ends at min_lr)."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    t = min(1.0, (step - cfg.warmup_steps) / max(1, cfg.max_steps - cfg.warmup_steps))
    if cfg.time_schedule and cfg.max_minutes:
        t = max(t, min(1.0, minutes / cfg.max_minutes))
    return cfg.min_lr + 0.5 * (cfg.lr - cfg.min_lr) * (1 + math.cos(math.pi * t))


class EpochBatches(torch.utils.data.Dataset):
    """Batch i of an epoch -> collated tensors. Its random views (tone dropout, confusions) are
    seeded by (seed, epoch, i), so a batch is the same whichever DataLoader worker builds it and
    after a resume."""

    def __init__(self, sents: list[np.ndarray], batches: list[list[int]], cfg: TrainConfig, conf, epoch: int,
                 skip: int = 0):
        self.sents, self.batches, self.cfg, self.conf, self.epoch, self.skip = sents, batches, cfg, conf, epoch, skip

    def __len__(self) -> int:
        return len(self.batches) - self.skip

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        cfg = self.cfg
        i += self.skip  # resumed mid-epoch: continue with the batches not yet seen
        rng = random.Random(f"{cfg.seed}-{self.epoch}-{i}")
        items = []
        for j in self.batches[i]:
            s = self.sents[j]
            toneless = rng.random() < cfg.toneless_rate
            corrupt = rng.uniform(0, cfg.corrupt_max)
            items.append((*make_slots(s, rng, self.conf, toneless, corrupt, cfg.soft_rate), s[2], s[3]))
        return collate(items)


def load_train_split(cfg: TrainConfig, chars: list[str] | None, prior: dict | None):
    """(chars, prior, encoded train sentences), from `cfg.cache` when it holds this vocabulary.

    Reading and encoding the 90 MB JSONL takes about a minute; the cache makes a (GPU) run start in
    seconds and is written on the first run. Vocabulary and prior come from `chars`/`prior` when
    given (resume, init_from), else from the train split's counts.
    """
    cache = Path(cfg.cache) if cfg.cache else None
    if cache and cache.exists():
        z = np.load(cache, allow_pickle=False)
        c_chars = [str(c) for c in z["chars"]]
        if chars is None or c_chars == chars:
            c_prior = {"rows": z["prior_rows"].tolist(), "cols": z["prior_cols"].tolist(),
                       "logp": z["prior_logp"].tolist()}
            ends = np.cumsum(z["lengths"])
            sents = np.split(z["flat"].astype(np.int32), ends[:-1], axis=1)
            print(f"train split from cache {cache}", flush=True)
            return c_chars, prior or c_prior, sents
        print(f"cache {cache} has another vocabulary; re-encoding", flush=True)
    rows = read_jsonl(cfg.train)
    for extra in cfg.extra_train:
        rows += read_jsonl(extra)
    counts, pairs = corpus_counts(rows)
    if chars is None:
        chars = build_vocab(counts, cfg.min_char_count)
        prior = build_prior(chars, pairs)
    char_id = {c: i for i, c in enumerate(chars)}
    sents = encode_rows(rows, char_id)
    if cache:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_name(cache.name + ".tmp.npz")
        np.savez_compressed(tmp, flat=np.concatenate(sents, axis=1).astype(np.int16),
                            lengths=np.array([s.shape[1] for s in sents], dtype=np.int32),
                            chars=np.array(chars), prior_rows=np.asarray(prior["rows"], dtype=np.int32),
                            prior_cols=np.asarray(prior["cols"], dtype=np.int32),
                            prior_logp=np.asarray(prior["logp"], dtype=np.float32))
        tmp.replace(cache)
        print(f"wrote {cache}", flush=True)
    return chars, prior, sents


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

    init = torch.load(cfg.init_from, map_location="cpu", weights_only=False) if cfg.init_from and not state else None
    if state or init:
        chars, prior = (state or init)["chars"], (state or init)["prior"]
        mcfg = ModelConfig(**(state or init)["model_cfg"])
    else:
        chars = prior = None
        mcfg = cfg.model
    chars, prior, train_sents = load_train_split(cfg, chars, prior)
    char_id = {c: i for i, c in enumerate(chars)}
    train_sents = chunk(train_sents, mcfg.max_len)
    dev_sents = chunk(encode_rows(read_jsonl(cfg.dev, cfg.dev_sentences), char_id), mcfg.max_len)
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
    t_start = last_save = time.time()
    minutes_before = state.get("minutes", 0.0) if state else 0.0  # wall time of earlier runs (time_schedule)

    def elapsed() -> float:
        """Training minutes so far, earlier runs of a resumed schedule included."""
        return minutes_before + (time.time() - t_start) / 60
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(str(out / "tb"))  # loss, accuracy, learning rate; dev accuracy per mode

    def checkpoint(path: Path):
        save_checkpoint(path, model, chars, prior, opt=opt.state_dict(), step=step, best=best,
                        bad_evals=bad, epoch=epoch, train_cfg=cfg.to_dict(), minutes=elapsed())

    def evaluate(stats: dict, minutes: float) -> bool:
        """Score dev in the three input modes, keep best.pt and last.pt; True when patience ran out."""
        nonlocal best, bad, last_save
        accs = {m: dev_accuracy(model, dev_sents, conf, device, m) for m in ("tonal", "toneless", "corrupt")}
        score = (accs["tonal"] + accs["toneless"] + accs["corrupt"]) / 3
        for m, a in accs.items():
            writer.add_scalar(f"dev/{m}", a, step)
        writer.flush()
        mins = (time.time() - t_start) / 60
        print(f"step {step} lr {lr_at(step, cfg, minutes):.2e} loss {stats['char_loss']:.3f} dev "
              + " ".join(f"{m} {a:.4f}" for m, a in accs.items()) + f" ({mins:.1f} min)", flush=True)
        if score > best:
            best, bad = score, 0
            checkpoint(out / "best.pt")
        else:
            bad += 1
        checkpoint(last)
        last_save = time.time()
        return bad >= cfg.patience

    done, stats, minutes = False, None, 0.0
    while not done:
        batches = bucket_batches([s.shape[1] for s in train_sents], cfg.batch_tokens, random.Random(cfg.seed + epoch))
        skip = step % len(batches) if state and epoch == state.get("epoch") else 0
        data = EpochBatches(train_sents, batches, cfg, conf, epoch, skip)
        loader = torch.utils.data.DataLoader(data, batch_size=None, shuffle=False, num_workers=cfg.workers,
                                             pin_memory=device.type == "cuda",
                                             prefetch_factor=8 if cfg.workers else None)
        bar = tqdm(loader, desc=f"epoch {epoch}", mininterval=30, leave=False)
        for batch in bar:
            minutes = elapsed()
            for g in opt.param_groups:
                g["lr"] = lr_at(step, cfg, minutes)
            batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
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
                writer.add_scalar("train/lr", lr_at(step, cfg, minutes), step)
            if step % cfg.eval_every == 0 and evaluate(stats, minutes):
                print("early stop: dev stopped improving", flush=True)
                done = True
                break
            if time.time() - last_save > cfg.save_every_s:
                checkpoint(last)
                last_save = time.time()
            run_minutes = minutes if cfg.time_schedule else (time.time() - t_start) / 60
            if step >= cfg.max_steps or (cfg.max_minutes and run_minutes > cfg.max_minutes):
                done = True
                break
        else:
            epoch += 1
            state = None
    if stats is not None and step % cfg.eval_every != 0:
        evaluate(stats, minutes)  # the schedule's end (max_steps or time) is scored too
    writer.close()
    checkpoint(last)
    if not (out / "best.pt").exists():
        checkpoint(out / "best.pt")
    print(f"done at step {step}; best dev {best:.4f}", flush=True)
    return out / "best.pt"
