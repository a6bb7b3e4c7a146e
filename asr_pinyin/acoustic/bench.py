"""Speed figures for the acoustic recipe: `python -m asr_pinyin.acoustic.bench --manifest M`.

Prints one JSON object: parameters, fp16 checkpoint size, CPU seconds per training step (one
dynamic batch of the recipe's size, forward + backward + AdamW), data-loading CPU seconds per
batch (with augmentation), and one-core real-time factors in streaming (320/640 ms chunks) and
full-context mode. CPU time (not wall time) is reported too, so figures taken on a shared
machine still say what one free core would do.
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
import torch.nn.functional as F

from .config import load_config
from .dataset import TrainSet, dynamic_batches, load_wave, read_manifest
from .evaluate import transcribe_full, transcribe_stream
from .model import AcousticModel, count_params, load_model, save_model


def timed(fn):
    c, w = time.process_time(), time.perf_counter()
    fn()
    return time.process_time() - c, time.perf_counter() - w


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--manifest", required=True)
    ap.add_argument("--config", default="synth")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    cfg = load_config(args.config)
    model = AcousticModel(cfg.model)
    utts, _ = read_manifest(args.manifest)
    batches = dynamic_batches(utts, cfg.data.batch_seconds, 0, 0)
    batches.sort(key=lambda b: -sum(utts[i].duration for i in b))
    ds = TrainSet(utts, batches, cfg.augment, cfg.model.n_mels, pitch=cfg.model.pitch_kind)
    ds[0]                                                    # warm up imports and kernels
    data_cpu, data_wall = timed(lambda: ds[0])
    x, lengths, y, ylen = ds[0]
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def step():
        model.train()
        lp, n = model(x, lengths, 8, -1)
        loss = F.ctc_loss(lp.transpose(0, 1), y, n, ylen, reduction="sum", zero_infinity=True)
        opt.zero_grad()
        loss.backward()
        opt.step()
    step()
    times = [timed(step) for _ in range(args.steps)]
    model.eval()
    wave = np.concatenate([load_wave(u.audio) for u in utts[:8]])
    sec = len(wave) / 16000
    transcribe_stream(model, wave[:32000])
    res = {"params": count_params(model), "frame_ms": cfg.model.frame_shift_ms}
    save_model(model, "/tmp/.am_bench.pt", half=True)
    import os
    res["fp16_checkpoint_mb"] = round(os.path.getsize("/tmp/.am_bench.pt") / 2**20, 2)
    res["batch_audio_s"] = round(float(sum(utts[i].duration for i in batches[0])), 1)
    res["train_step_cpu_s"] = round(float(np.median([t[0] for t in times])), 2)
    res["train_step_wall_s"] = round(float(np.median([t[1] for t in times])), 2)
    res["data_batch_cpu_s"] = round(data_cpu, 2)
    res["threads"] = args.threads
    for chunk in (320, 640):
        c, w = timed(lambda: transcribe_stream(model, wave, chunk))
        res[f"rtf_stream{chunk}_cpu"], res[f"rtf_stream{chunk}_wall"] = round(c / sec, 4), round(w / sec, 4)
    c, w = timed(lambda: transcribe_full(model, [wave]))
    res["rtf_full_cpu"], res["rtf_full_wall"] = round(c / sec, 4), round(w / sec, 4)
    q = load_model("/tmp/.am_bench.pt", int8=True)
    for chunk in (320, 640):
        c, w = timed(lambda: transcribe_stream(q, wave, chunk))
        res[f"rtf_stream{chunk}_int8_cpu"] = round(c / sec, 4)
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
