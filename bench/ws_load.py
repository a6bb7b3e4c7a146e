"""Load test of `asr-pinyin serve`: N concurrent websocket clients streaming real speech in real time.

    .venv/bin/python bench/ws_load.py --clients 1,4,8,16 --seconds 30          # levels
    .venv/bin/python bench/ws_load.py --clients 16 --soak 600                  # soak at one level
    .venv/bin/python bench/ws_load.py --sequential 1000                        # short sessions

The server runs as a separate process (so its CPU and RSS are its own), started here with the
given checkpoints (`--am`, `--lm`; default: the shipped ones) or reached at `--url`. Each client
sends espeak-ng Mandarin sentences separated by pauses, in 40 ms packets on a real-time schedule,
starting at a random offset. Latencies are measured at the client:
  partial: receive time - send time of the packet holding the partial's last audio sample;
  final:   receive time - send time of the packet where the endpoint fired (`endpoint_at`);
           the endpoint wait itself (`endpoint_at - end`, the trailing-silence rule) is separate.
A level is "real time" when p95 partial <= 400 ms, p95 final <= 300 ms and no session failed.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SENTENCES = ["jin1 tian1 tian1 qi4 hen3 hao3", "wo3 men5 qu4 bei3 jing1 kai1 hui4",
             "qing3 ba3 chuang1 hu5 da3 kai1", "ming2 tian1 zao3 shang4 ba1 dian3 jian4",
             "zhe4 ge4 wen4 ti2 hen3 zhong4 yao4", "ni3 neng2 bang1 wo3 yi1 xia4 ma5",
             "da4 jia1 dou1 hen3 gao1 xing4", "xian4 zai4 kai1 shi3 lu4 yin1"]
PACKET_S = 0.04


def speech_track(seconds: float, seed: int) -> np.ndarray:
    """Sentences (two voices, varied rate) with 1.0-1.6 s pauses, ~`seconds` long, 16 kHz."""
    from asr_pinyin.audio.io import resample
    from asr_pinyin.speech.espeak import Espeak

    eng = Espeak()
    rng = random.Random(seed)
    parts, total = [np.zeros(8000, np.float32)], 0.5
    while total < seconds:
        x = resample(eng.synth(rng.choice(SENTENCES), variant=rng.choice(["", "f2"]),
                               rate=rng.randint(150, 200)), eng.sample_rate, 16000)
        gap = np.zeros(int(16000 * rng.uniform(1.0, 1.6)), np.float32)
        parts += [x, gap]
        total += (len(x) + len(gap)) / 16000
    return np.concatenate(parts)


def pctl(xs, q):
    return round(float(np.percentile(xs, q)), 1) if len(xs) else None


async def client(url: str, audio: np.ndarray, delay: float, out: dict) -> None:
    from websockets.asyncio.client import connect

    await asyncio.sleep(delay)
    pcm = (np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes()
    step = int(16000 * PACKET_S) * 2
    sent: list[float] = []
    try:
        async with connect(url, max_size=2**22) as ws:
            await ws.send(json.dumps({"type": "start", "version": 1, "sample_rate": 16000,
                                      "format": "pcm_s16le"}))
            assert json.loads(await ws.recv())["type"] == "ready"

            async def sender():
                t0 = time.monotonic()
                for k, i in enumerate(range(0, len(pcm), step)):
                    wait = t0 + k * PACKET_S - time.monotonic()
                    if wait > 0:
                        await asyncio.sleep(wait)
                    await ws.send(pcm[i:i + step])
                    sent.append(time.monotonic())
                await ws.send(json.dumps({"type": "stop"}))

            def sent_at(t: float) -> float | None:
                k = max(0, int(np.ceil(t / PACKET_S - 1e-9)) - 1)
                return sent[k] if k < len(sent) else None

            task = asyncio.create_task(sender())
            async for raw in ws:
                now = time.monotonic()
                m = json.loads(raw)
                if m["type"] == "partial":
                    t = sent_at(m["audio_time"])
                    if t is not None:
                        out["partial"].append((now - t) * 1000)
                elif m["type"] == "final":
                    t = sent_at(m["endpoint_at"])
                    if t is not None and m["reason"] == "endpoint":
                        out["final"].append((now - t) * 1000)
                        out["endpoint_wait"].append((m["endpoint_at"] - m["end"]) * 1000)
                    out["finals"] += 1
                elif m["type"] == "error":
                    out["errors"].append(m["code"])
            await task
            if ws.close_code != 1000:
                out["errors"].append(f"close {ws.close_code}")
    except Exception as e:  # noqa: BLE001 - counted as a failed session
        out["errors"].append(f"{type(e).__name__}: {e}")


def server_stats(base: str) -> dict:
    text = urllib.request.urlopen(base + "/metrics", timeout=10).read().decode()
    vals = {}
    for line in text.splitlines():
        if line and not line.startswith("#") and " " in line:
            k, v = line.rsplit(" ", 1)
            vals[k] = float(v)
    return vals


async def run_level(url: str, tracks: list[np.ndarray], n: int, base: str, rss: list) -> dict:
    outs = [{"partial": [], "final": [], "endpoint_wait": [], "finals": 0, "errors": []} for _ in range(n)]
    rng = random.Random(n)
    loop = asyncio.get_running_loop()

    async def sample_rss():
        while True:
            await asyncio.sleep(10)
            st = await loop.run_in_executor(None, server_stats, base)
            rss.append((time.time(), st["process_resident_memory_bytes"]))

    sampler = asyncio.create_task(sample_rss())
    await asyncio.gather(*(client(url, tracks[i % len(tracks)], rng.uniform(0, 1.0), outs[i])
                           for i in range(n)))
    sampler.cancel()
    merged = {k: [x for o in outs for x in o[k]] for k in ("partial", "final", "endpoint_wait", "errors")}
    merged["finals"] = sum(o["finals"] for o in outs)
    merged["failed_sessions"] = sum(1 for o in outs if o["errors"])
    return merged


async def sequential(url: str, audio: np.ndarray, n: int) -> dict:
    from websockets.asyncio.client import connect

    pcm = (audio * 32767).astype("<i2").tobytes()
    failures = finals = without_final = 0
    for _ in range(n):
        try:
            async with connect(url) as ws:
                await ws.send(json.dumps({"type": "start", "version": 1, "sample_rate": 16000,
                                          "format": "pcm_s16le", "partials": False}))
                await ws.send(pcm)
                await ws.send(json.dumps({"type": "stop"}))
                msgs = [json.loads(m) async for m in ws]
                finals += sum(m["type"] == "final" for m in msgs)
                without_final += not any(m["type"] == "final" for m in msgs)
                if msgs[-1] != {"type": "closed", "reason": "stop"} or ws.close_code != 1000:
                    failures += 1
        except Exception:  # noqa: BLE001 - counted
            failures += 1
    return {"sessions": n, "failures": failures, "finals": finals, "sessions_without_final": without_final,
            "audio_s_each": round(len(audio) / 16000, 2)}


def start_server(args) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [str(ROOT / ".venv/bin/asr-pinyin"), "serve", "--port", str(port),
           "--max-sessions", "256", "--max-backlog", "30"]
    if args.random_am:
        args.am = make_random_am(Path("/tmp/asr_ws_load_random_am.pt"))
    if args.random_lm:
        args.lm = make_random_lm(Path("/tmp/asr_ws_load_random_lm.pt"))
    cmd += ["--am", args.am] if args.am else []
    cmd += ["--lm", args.lm] if args.lm else []
    cmd += ["--one-pass"] if args.one_pass else []
    proc = subprocess.Popen(cmd, stderr=open(args.log, "w"), start_new_session=True)
    if args.server_nice:
        # Linux autogroup: CPU is shared per session first, so plain `nice` cannot lift the server
        # above other sessions' jobs; its own session's autogroup nice can (root only).
        Path(f"/proc/{proc.pid}/autogroup").write_text(str(args.server_nice))
    base = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            urllib.request.urlopen(base + "/health", timeout=1)
            return proc, base
        except OSError:
            if proc.poll() is not None:
                sys.exit(f"server exited: see {args.log}")
            time.sleep(0.2)
    sys.exit("server did not come up")


def make_random_am(path: Path) -> str:
    """An untrained acoustic model of the shipped size (default config), for timing only.

    Its blank bias is raised so it emits about as many syllables per second as speech has
    (~4-5/s), which keeps the language stage's load realistic.
    """
    import torch

    from asr_pinyin.acoustic.config import ModelConfig
    from asr_pinyin.acoustic.model import AcousticModel, save_model

    torch.manual_seed(0)
    m = AcousticModel(ModelConfig()).eval()
    with torch.no_grad():
        m.head.weight.mul_(8.0)
        m.head.bias[0] = 9.0
    save_model(m, path)
    return str(path)


def make_random_lm(path: Path) -> str:
    """An untrained language model of the default size and vocabulary (timing only)."""
    from collections import Counter

    import torch

    from asr_pinyin.lm.config import ModelConfig
    from asr_pinyin.lm.model import PinyinLM
    from asr_pinyin.lm.train import save_checkpoint
    from asr_pinyin.lm.vocab import build_prior, build_vocab

    torch.manual_seed(0)
    chars = build_vocab(Counter(), 1)
    prior = build_prior(chars, Counter())
    save_checkpoint(path, PinyinLM(ModelConfig(), len(chars), prior).eval(), chars, prior)
    return str(path)


def threads_of(pid: int) -> int:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("Threads:"):
            return int(line.split()[1])
    return -1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", help="an already running server (http://host:port); default: start one")
    ap.add_argument("--am"), ap.add_argument("--lm")
    ap.add_argument("--random-am", action="store_true",
                    help="untrained acoustic model of the shipped size (timing only, no accuracy)")
    ap.add_argument("--random-lm", action="store_true",
                    help="untrained language model of the default size (timing only, no accuracy)")
    ap.add_argument("--clients", default="1,4,8,16", help="comma-separated concurrency levels")
    ap.add_argument("--seconds", type=float, default=30.0, help="audio per client per level")
    ap.add_argument("--soak", type=float, default=0.0, help="soak: seconds of streaming at the last level")
    ap.add_argument("--sequential", type=int, default=0, help="N short sessions one after another")
    ap.add_argument("--one-pass", action="store_true",
                    help="serve finals from the streaming pass alone (no full-context pass per segment)")
    ap.add_argument("--log", default="/tmp/asr_ws_load_server.log")
    ap.add_argument("--server-nice", type=int, default=0,
                    help="autogroup nice of the server's session (negative: ahead of other jobs on a "
                         "shared machine; needs root)")
    args = ap.parse_args()

    proc, base = (None, args.url.rstrip("/")) if args.url else start_server(args)
    url = base.replace("http://", "ws://") + "/"
    try:
        if args.sequential:
            from asr_pinyin.audio.io import resample
            from asr_pinyin.speech.espeak import Espeak
            eng = Espeak()     # one short sentence with a little silence around it (~1.3 s)
            short = np.concatenate([np.zeros(3200, np.float32),
                                    resample(eng.synth("ni3 hao3 shi4 jie4", rate=200), eng.sample_rate),
                                    np.zeros(3200, np.float32)])
            before = threads_of(proc.pid) if proc else -1
            t = time.time()
            r = asyncio.run(sequential(url, short, args.sequential))
            after = server_stats(base)
            r.update(seconds=round(time.time() - t, 1), threads_before=before,
                     threads_after=threads_of(proc.pid) if proc else -1,
                     sessions_active=after["asr_sessions_active"], streams_active=after["asr_streams_active"])
            print(json.dumps({"mode": "sequential", **r}), flush=True)
            return 0
        levels = [int(x) for x in args.clients.split(",")]
        if args.soak:
            levels, args.seconds = levels[-1:], args.soak
        tracks = [speech_track(args.seconds, seed) for seed in range(4)]
        for n in levels:
            s0, t0 = server_stats(base), time.time()
            rss: list = []
            r = asyncio.run(run_level(url, tracks, n, base, rss))
            s1, wall = server_stats(base), time.time() - t0
            cpu = s1["process_cpu_seconds_total"] - s0["process_cpu_seconds_total"]
            row = {"clients": n, "audio_s": round(n * args.seconds, 1),
                   "partial_p50_ms": pctl(r["partial"], 50), "partial_p95_ms": pctl(r["partial"], 95),
                   "final_p50_ms": pctl(r["final"], 50), "final_p95_ms": pctl(r["final"], 95),
                   "endpoint_wait_ms": pctl(r["endpoint_wait"], 50), "finals": r["finals"],
                   "failed_sessions": r["failed_sessions"], "errors": sorted(set(r["errors"]))[:3],
                   "server_cpu_cores": round(cpu / wall, 2),
                   "server_rss_mb": round(s1["process_resident_memory_bytes"] / 2**20, 1),
                   "server_cpu_s_per_speech_s": round(cpu / max(1e-9, s1["asr_audio_seconds_total"]
                                                                - s0["asr_audio_seconds_total"]), 4),
                   "load_avg_1m": os.getloadavg()[0]}
            row["real_time"] = bool(row["partial_p95_ms"] is not None and row["partial_p95_ms"] <= 400
                                    and (row["final_p95_ms"] or 0) <= 300 and not r["failed_sessions"])
            if args.soak and len(rss) > 7:   # growth after a minute of warm-up
                first = rss[6][1]
                row["soak_rss_growth_pct"] = round(100 * (rss[-1][1] - first) / first, 2)
                row["soak_rss_mb_every_60s"] = [round(b / 2**20) for _, b in rss[::6]]
            print(json.dumps(row, ensure_ascii=False), flush=True)
        return 0
    finally:
        if proc:
            proc.terminate()
            proc.wait(30)


if __name__ == "__main__":
    sys.exit(main())
