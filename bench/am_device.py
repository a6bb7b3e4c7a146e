"""Acoustic model compute on the chosen device (CUDA when present): checks and speed figures.

    python bench/am_device.py [--config synth] [--model PATH] [--streams 1,64,256] [--batch 32]

Runs the recipe's architecture (weights from --model, else random: speed does not depend on the
weights) on `asr_pinyin.device.get_device()` and prints one JSON object:
- check: batched streaming (`forward_chunk_batch`, the server's path) against the chunk-masked
  full forward on the same device (max |log-prob| difference; must be ~0),
- a training step (CTC + intermediate CTC, AdamW, bf16 autocast on CUDA) on a batch of the
  recipe's size: seconds per step,
- offline throughput: batched full-context forward, audio seconds per wall second (fp32; bf16),
- streaming throughput: N concurrent streams decoded in 640 ms chunks, audio seconds per second
  and milliseconds per batched chunk (what the server's batcher does each tick).
Run it on the CPU too (`ASR_PINYIN_DEVICE=cpu`) for the side-by-side baseline.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from asr_pinyin.acoustic.config import load_config  # noqa: E402
from asr_pinyin.acoustic.model import AcousticModel, count_params, load_model  # noqa: E402
from asr_pinyin.device import get_device  # noqa: E402
from asr_pinyin.recognizer.batching import forward_chunk_batch  # noqa: E402


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(fn, device, repeat: int = 3) -> float:
    fn()  # warm-up (kernels, allocator)
    sync(device)
    t = time.perf_counter()
    for _ in range(repeat):
        fn()
    sync(device)
    return (time.perf_counter() - t) / repeat


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="synth")
    ap.add_argument("--model", help="trained checkpoint (default: random weights, same architecture)")
    ap.add_argument("--batch", type=int, default=32, help="utterances per offline batch")
    ap.add_argument("--seconds", type=float, default=10.0, help="length of each utterance")
    ap.add_argument("--streams", default="1,16,64,256", help="concurrent streams to time")
    ap.add_argument("--chunk-ms", type=int, default=640)
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = get_device()
    torch.manual_seed(0)
    cfg = load_config(args.config)
    if args.model:
        model = load_model(args.model, device=device)
    else:
        model = AcousticModel(cfg.model).to(device)
    model.eval()
    mcfg = model.cfg
    n_mels, stride, ctx = mcfg.feat_dim, model.subsample.stride, model.subsample.context  # fbank (+ pitch) dims
    out = {"device": torch.cuda.get_device_name() if device.type == "cuda" else f"cpu x{torch.get_num_threads()}",
           "parameters": count_params(model), "torch": torch.__version__}
    frames = int(args.seconds * 100)

    # ---- check: batched streaming == chunk-masked full forward, on this device --------------
    chunk = args.chunk_ms // 10 // stride                     # output frames per chunk
    feats = torch.randn(3, frames, n_mels, device=device) * 3 + 5
    with torch.no_grad():
        full, _ = model(feats, torch.full((3,), frames, device=device), chunk=chunk)
    states = [model.init_state() for _ in range(3)]
    window, advance = (chunk - 1) * stride + ctx, chunk * stride
    outs, pos = [], 0
    while pos + ctx <= frames:
        outs.append(forward_chunk_batch(model, feats[:, pos:pos + window], states, -1))
        pos += advance
    stream = torch.cat(outs, 1)
    n = min(stream.shape[1], full.shape[1])
    out["check_stream_vs_full_max_abs_diff"] = float((stream[:, :n] - full[:, :n]).abs().max())
    out["check_frames"] = n

    # ---- training step ---------------------------------------------------------------------
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    bt = max(1, int(cfg.data.batch_seconds // args.seconds))  # the recipe's batch of audio
    x = torch.randn(bt, frames, n_mels, device=device) * 3 + 5
    lens = torch.full((bt,), frames, device=device)
    tgt = torch.randint(1, mcfg.vocab_size, (bt, int(args.seconds * 4)), device=device)
    tlen = torch.full((bt,), tgt.shape[1], device=device)

    def step():
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            lp, ol, inter = model(x, lens, inter_layer=max(1, mcfg.n_layers // 2))
        loss = F.ctc_loss(lp.float().transpose(0, 1), tgt, ol, tlen, zero_infinity=True)
        loss = loss + 0.3 * F.ctc_loss(inter.float().transpose(0, 1), tgt, ol, tlen, zero_infinity=True)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    out["train_batch_seconds_audio"] = bt * args.seconds
    out["train_s_per_step"] = round(timed(step, device, 2), 4)
    model.eval()

    # ---- offline throughput ----------------------------------------------------------------
    xb = torch.randn(args.batch, frames, n_mels, device=device) * 3 + 5
    lb = torch.full((args.batch,), frames, device=device)
    audio = args.batch * args.seconds
    with torch.inference_mode():
        t32 = timed(lambda: model(xb, lb), device)
        out["offline_fp32_audio_s_per_s"] = round(audio / t32, 1)
        if device.type == "cuda":
            with torch.autocast("cuda", dtype=torch.bfloat16):
                t16 = timed(lambda: model(xb, lb), device)
            out["offline_bf16_audio_s_per_s"] = round(audio / t16, 1)
    out["offline_batch"] = f"{args.batch} x {args.seconds:g} s"

    # ---- streaming throughput: N streams, chunk by chunk ------------------------------------
    res = {}
    for nstreams in [int(s) for s in args.streams.split(",")]:
        feats = torch.randn(nstreams, frames, n_mels, device=device) * 3 + 5

        def run():
            st = [model.init_state() for _ in range(nstreams)]
            p, k = 0, 0
            while p + window <= frames:
                forward_chunk_batch(model, feats[:, p:p + window], st, 64)  # 64 frames = 5.1 s left context
                p += advance
                k += 1
            return k

        with torch.inference_mode():
            k = run()
            sec = timed(run, device, 2)
        res[str(nstreams)] = {"audio_s_per_s": round(nstreams * k * args.chunk_ms / 1000 / sec, 1),
                              "ms_per_batched_chunk": round(1000 * sec / k, 2)}
    out[f"streaming_{args.chunk_ms}ms"] = res
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
