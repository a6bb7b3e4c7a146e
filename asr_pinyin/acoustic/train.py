"""`asr-pinyin train-am`: CTC training with dynamic chunks, resumable, DDP-ready.

Run alone (`asr-pinyin train-am --config synth`) or under torchrun
(`torchrun --nproc_per_node N -m asr_pinyin.cli train-am --config ...`): NCCL on GPUs, gloo on CPU.
Each run directory holds `last.pt` (everything needed to resume: weights, optimiser, step,
position in the epoch), `step_*.pt` weight snapshots (the last few are averaged at the end into
`avg.pt`), `model.pt` (the averaged weights in fp16: the shipped form) and `log.jsonl`.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import random
import signal
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from asr_pinyin.device import get_device

from .config import Config, ConfigError, ModelConfig
from .dataset import TrainSet, dynamic_batches, read_manifest, spec_augment
from .frontend import accumulate_stats
from .model import AcousticModel, count_params, load_model, save_model


def lr_at(step: int, cfg) -> float:
    """Linear warmup, then cosine decay to min_lr at max_steps."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    p = min(1.0, (step - cfg.warmup_steps) / max(1, cfg.max_steps - cfg.warmup_steps))
    return cfg.min_lr + 0.5 * (cfg.lr - cfg.min_lr) * (1 + math.cos(math.pi * p))


def sample_chunk(step: int, cfg) -> tuple[int, int, int]:
    """(chunk frames, left chunks, lookahead frames) for this step, identical on every rank
    (seeded by step; the lookahead is drawn last, so recipes without it draw what they did)."""
    rng = random.Random(cfg.seed * 1_000_003 + step)
    if rng.random() >= cfg.dynamic_chunk_prob or step < cfg.chunk_after:
        return 0, -1, 0
    left = rng.randint(1, cfg.max_left_chunks) if rng.random() < 0.5 else -1
    chunk = rng.randint(1, cfg.max_chunk_frames)
    return chunk, left, rng.randint(0, cfg.max_lookahead_frames) if cfg.max_lookahead_frames > 0 else 0


def estimate_cmvn(model: AcousticModel, utts, n: int, seed: int) -> None:
    ds = TrainSet(utts, [], None, model.cfg.n_mels, pitch=model.cfg.pitch_kind)
    pick = np.random.default_rng(seed).permutation(len(utts))[:n]
    model.cmvn.set_stats(*accumulate_stats(ds.features(utts[i], None) for i in pick))


def average_snapshots(paths: list[Path]) -> dict:
    avg = None
    for p in paths:
        sd = torch.load(p, map_location="cpu", weights_only=True)["model"]
        if avg is None:
            avg = {k: v.clone().double() if v.is_floating_point() else v.clone() for k, v in sd.items()}
        else:
            for k, v in sd.items():
                if v.is_floating_point():
                    avg[k] += v.double()
    return {k: (v / len(paths)).float() if v.is_floating_point() else v for k, v in avg.items()}


# model parts a warm start (`init_from`) may switch on: config field -> parameter name prefixes
GROWABLE = {"pitch": ("pitch.",), "factored_head": ("base_head.", "tone_head.")}


def warm_start_changes(init_cfg: ModelConfig, model_cfg: ModelConfig, source: str) -> tuple[dict, bool]:
    """What a warm start from a checkpoint with `init_cfg` changes in a recipe's `model_cfg`:
    ({GROWABLE field: switched on}, pitch version changed). The recipe's [model] must be the
    checkpoint's, except that it may add pitch or the factored head (those parts start at zero, so
    training starts at the old accuracy) or change the pitch features' version (same three
    dimensions, cleaner values); anything else is a ConfigError."""
    added = {f: getattr(model_cfg, f) and not getattr(init_cfg, f) for f in GROWABLE}
    grown = {**dataclasses.asdict(init_cfg), **{f: True for f, on in added.items() if on}}
    new_pitch = init_cfg.pitch and model_cfg.pitch and init_cfg.pitch_version != model_cfg.pitch_version
    if added["pitch"] or new_pitch:
        grown["pitch_version"] = model_cfg.pitch_version
    if grown != dataclasses.asdict(model_cfg):
        raise ConfigError(f"[model] of the recipe differs from {source}'s; copy it")
    return added, new_pitch


class Trainer:
    def __init__(self, cfg: Config):
        self.cfg, tc = cfg, cfg.train
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.device = get_device()
        if self.world > 1:
            import torch.distributed as dist

            if self.device.type == "cuda":
                self.device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
                torch.cuda.set_device(self.device)
            dist.init_process_group("nccl" if self.device.type == "cuda" else "gloo")
        if self.device.type == "cpu":
            torch.set_num_threads(max(1, tc.threads))
        torch.manual_seed(tc.seed)
        self.out = Path(tc.out_dir)
        resuming = (self.out / "last.pt").is_file()
        init = None
        if tc.init_from and not resuming:      # checked before the corpus is read (minutes)
            init = load_model(tc.init_from)
            added, new_pitch = warm_start_changes(init.cfg, cfg.model, tc.init_from)
        self.utts = []
        for path in cfg.data.train:
            self.utts += read_manifest(path, cfg.data.max_duration)[0]
        self.model = AcousticModel(cfg.model)
        if init is not None:                   # fine-tuning keeps the pretrained CMVN
            sd = init.state_dict()
            if added["pitch"] or new_pitch:   # fbank weights and CMVN kept, the pitch dims' CMVN estimated
                estimate_cmvn(self.model, self.utts, cfg.data.cmvn_utterances, tc.seed)
                n = cfg.model.n_mels
                for k in ("cmvn.mean", "cmvn.istd"):
                    sd[k] = torch.cat([sd[k][:n], self.model.state_dict()[k][n:]])
            if new_pitch and init.cfg.pitch_version == 1:   # v1's slope was noise: its weights from zero
                w = sd["pitch.proj.weight"].clone()
                w.view(w.shape[0], -1, 3)[:, :, 2] = 0
                sd["pitch.proj.weight"] = w
            missing, unexpected = self.model.load_state_dict(sd, strict=False)
            new_parts = tuple(p for f, on in added.items() if on for p in GROWABLE[f])
            assert not unexpected and all(k.startswith(new_parts) for k in missing), (missing, unexpected)
        self.lora = None
        if tc.lora_rank > 0:
            from asr_pinyin.finetune.lora import LoraSpec, add_lora, fingerprint

            self.base_fingerprint = fingerprint(self.model)
            self.lora = LoraSpec(targets=tuple(tc.lora_targets), r=tc.lora_rank, alpha=tc.lora_alpha,
                                 dropout=tc.lora_dropout)
            add_lora(self.model, self.lora, "voice")
        named = [(n, p) for n, p in self.model.named_parameters() if p.requires_grad]
        decay = [p for n, p in named if p.ndim >= 2]
        rest = [p for n, p in named if p.ndim < 2]
        self.opt = torch.optim.AdamW([{"params": decay, "weight_decay": tc.weight_decay},
                                      {"params": rest, "weight_decay": 0.0}], lr=tc.lr)
        self.step, self.epoch, self.batch_in_epoch = 0, 0, 0
        self.best_ser, self.bad_evals = math.inf, 0
        self.start_ser: float | None = None    # dev SER before the first step (keep_best runs)
        if resuming:
            self.resume(self.out / "last.pt")
        elif not tc.init_from:
            estimate_cmvn(self.model, self.utts, cfg.data.cmvn_utterances, tc.seed)
        self.model.to(self.device)
        self.ddp = self.model
        if self.world > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.ddp = torch.nn.parallel.DistributedDataParallel(self.model, device_ids=ids)
        self.stop = False
        self.writer = None
        self.quiet = False               # True: no JSON lines on stdout (log.jsonl and TensorBoard still)

    def log(self, **rec) -> None:
        """One JSON line to stdout and log.jsonl, and the numbers to TensorBoard (out_dir/tb)."""
        if self.rank == 0:
            rec = {"step": self.step, "time": round(time.time(), 1), **rec}
            if not self.quiet:
                print(json.dumps(rec), flush=True)
            with open(self.out / "log.jsonl", "a") as f:
                f.write(json.dumps(rec) + "\n")
            if self.writer is None:
                from torch.utils.tensorboard import SummaryWriter

                self.writer = SummaryWriter(str(self.out / "tb"))
            group = "dev" if rec.get("event") == "dev" else "train"
            for k, v in rec.items():
                if k not in ("step", "time", "epoch") and isinstance(v, (int, float)) and not isinstance(v, bool):
                    self.writer.add_scalar(f"{group}/{k}", v, self.step)
            self.writer.flush()

    def resume(self, path: Path) -> None:
        ck = torch.load(path, map_location="cpu", weights_only=True)
        self.model.load_state_dict(ck["model"])
        self.opt.load_state_dict(ck["optimizer"])
        self.step, self.epoch, self.batch_in_epoch = ck["step"], ck["epoch"], ck["batch_in_epoch"]
        self.best_ser, self.bad_evals = ck.get("best_ser", math.inf), ck.get("bad_evals", 0)

    def save(self) -> None:
        if self.rank != 0:
            return
        tc = self.cfg.train
        extra = {"optimizer": self.opt.state_dict(), "step": self.step, "epoch": self.epoch,
                 "batch_in_epoch": self.batch_in_epoch, "config": self.cfg.to_dict(),
                 "best_ser": self.best_ser, "bad_evals": self.bad_evals}
        save_model(self.model, self.out / "last.pt", extra=extra)
        save_model(self.model, self.out / f"step_{self.step:08d}.pt", extra={"step": self.step})
        snaps = sorted(self.out.glob("step_*.pt"))
        for old in snaps[: max(0, len(snaps) - max(tc.keep_checkpoints, tc.average_last))]:
            old.unlink()

    def finish(self) -> None:
        """Average the last snapshots into avg.pt and write the fp16 model.pt."""
        if self.rank != 0:
            return
        snaps = sorted(self.out.glob("step_*.pt"))[-self.cfg.train.average_last:]
        best = self.out / "best.pt"
        if self.cfg.train.keep_best and best.is_file():
            ck = torch.load(best, map_location="cpu", weights_only=True)
            self.model.load_state_dict(ck["model"])
            snaps = [best]
            self.log(event="best", step=ck["step"], ser=ck["ser"])
        elif snaps:
            self.model.load_state_dict(average_snapshots(snaps))
        if self.lora is not None:        # the product is the adapter alone
            from asr_pinyin.finetune.lora import save_adapter

            path = self.out / "adapter.pt"
            save_adapter(path, self.model, "voice", self.lora, "am", self.base_fingerprint,
                         extra={"averaged": [p.name for p in snaps], "config": self.cfg.to_dict()})
            self.log(event="finished", averaged=len(snaps), adapter=str(path))
            return
        save_model(self.model, self.out / "avg.pt", extra={"averaged": [p.name for p in snaps]})
        save_model(self.model, self.out / "model.pt", half=True,
                   extra={"averaged": [p.name for p in snaps], "config": self.cfg.to_dict()})
        self.log(event="finished", averaged=len(snaps), model=str(self.out / "model.pt"))

    def train_step(self, batch) -> float | None:
        tc, model = self.cfg.train, self.model
        x, lengths, y, ylen = batch
        if x.shape[0] == 0:
            return None
        for g in self.opt.param_groups:
            g["lr"] = lr_at(self.step, tc)
        if self.step >= tc.augment_after:      # SpecAugment on the fbank; pitch features stay
            n = model.cfg.n_mels
            fb = spec_augment(x[..., :n], self.cfg.augment, float(model.cmvn.mean[:n].mean()))
            x = torch.cat([fb, x[..., n:]], -1) if x.shape[-1] > n else fb
        chunk, left, look = sample_chunk(self.step, tc)
        self.ddp.train()
        inter = tc.inter_ctc_layer if tc.inter_ctc_weight > 0 else 0
        out = self.ddp(x.to(self.device), lengths.to(self.device), chunk, left, inter, look)
        lp, out_len = out[0], out[1]
        y, ylen = y.to(self.device), ylen.to(self.device)
        loss = F.ctc_loss(lp.transpose(0, 1), y, out_len, ylen, blank=0, reduction="sum",
                          zero_infinity=True) / x.shape[0]
        if inter:      # intermediate CTC (Lee & Watanabe 2021): the same head on a middle layer
            inter_loss = F.ctc_loss(out[2].transpose(0, 1), y, out_len, ylen, blank=0, reduction="sum",
                                    zero_infinity=True) / x.shape[0]
            loss = (1 - tc.inter_ctc_weight) * loss + tc.inter_ctc_weight * inter_loss
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip)
        self.opt.step()
        return loss.item()

    def validate(self) -> float | None:
        """Dev SER (full context) and the streaming figure, logged; None where no dev set / rank > 0."""
        if self.rank != 0 or not self.cfg.data.dev or not Path(self.cfg.data.dev).is_file():
            return None
        from .evaluate import evaluate

        dev = read_manifest(self.cfg.data.dev)[0][: self.cfg.data.dev_limit]
        full = evaluate(self.model, dev, "full")
        stream = evaluate(self.model, dev, "streaming", chunk_ms=640)
        ser = full["syllable_error_rate"]
        if ser < self.best_ser:
            self.best_ser, self.bad_evals = ser, 0
            if self.cfg.train.keep_best:
                save_model(self.model, self.out / "best.pt", extra={"step": self.step, "ser": ser})
        else:
            self.bad_evals += 1
        self.log(event="dev", ser=ser, ser_toneless=full["syllable_error_rate_toneless"],
                 ser_stream640=stream["syllable_error_rate"], best_ser=self.best_ser)
        return ser

    def agree(self, flag: bool) -> bool:
        """Stop together: any rank's stop request (signal, time limit) stops all ranks."""
        if self.world == 1:
            return flag
        import torch.distributed as dist

        t = torch.tensor([float(flag)], device=self.device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item())

    def run(self) -> Path:
        tc = self.cfg.train
        self.out.mkdir(parents=True, exist_ok=True)
        if self.rank == 0:
            (self.out / "config.json").write_text(json.dumps(self.cfg.to_dict(), indent=1))
            self.log(event="start", params=count_params(self.model), utterances=len(self.utts),
                     hours=round(sum(u.duration for u in self.utts) / 3600, 2), world=self.world,
                     device=str(self.device))
        signal.signal(signal.SIGTERM, lambda *_: setattr(self, "stop", True))
        if tc.keep_best and self.step == 0:
            self.start_ser = self.validate()   # the starting point is a candidate too
        t_start, t_log, losses = time.time(), time.time(), []
        while self.step < tc.max_steps and not self.stop:
            batches = dynamic_batches(self.utts, self.cfg.data.batch_seconds, self.epoch, tc.seed,
                                      self.rank, self.world, sortagrad=tc.sortagrad and self.epoch == 0)
            ds = TrainSet(self.utts, batches[self.batch_in_epoch:], self.cfg.augment,
                          self.cfg.model.n_mels, seed=tc.seed * 1000 + self.epoch, pitch=self.cfg.model.pitch_kind,
                          clean_batches=max(0, tc.augment_after - self.step))
            loader = torch.utils.data.DataLoader(ds, batch_size=None, num_workers=self.cfg.data.num_workers,
                                                 worker_init_fn=lambda _: torch.set_num_threads(1))
            for batch in loader:
                loss = self.train_step(batch)
                self.batch_in_epoch += 1
                if loss is None:
                    continue
                self.step += 1
                losses.append(loss)
                if self.step % tc.log_every == 0:
                    now = time.time()
                    self.log(loss=round(sum(losses) / len(losses), 3), lr=round(lr_at(self.step, tc), 6),
                             epoch=self.epoch, s_per_step=round((now - t_log) / len(losses), 3))
                    t_log, losses = now, []
                if self.step % tc.save_every == 0:
                    self.save()
                if tc.eval_every and self.step % tc.eval_every == 0 and self.step < tc.max_steps:
                    self.validate()
                timed_out = bool(tc.time_limit_s) and time.time() - t_start > tc.time_limit_s
                early = bool(tc.patience) and self.bad_evals >= tc.patience
                if early and self.rank == 0:
                    self.log(event="early_stop", best_ser=self.best_ser)
                self.stop = self.agree(self.stop or timed_out or early)
                self.finished_early = early
                if self.step >= tc.max_steps or self.stop:
                    break
            else:
                self.epoch, self.batch_in_epoch = self.epoch + 1, 0
        self.save()
        if self.step >= tc.max_steps or getattr(self, "finished_early", False):
            self.finish()
            self.validate()
        else:
            self.log(event="paused", note="rerun the same command to resume")
        if self.world > 1:
            import torch.distributed as dist

            dist.barrier()
            dist.destroy_process_group()
        return self.out
