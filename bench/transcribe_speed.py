"""Speed and memory of `asr-pinyin transcribe` (figures for BENCHMARKS.md, section Transcription).

    .venv/bin/python bench/transcribe_speed.py --dir streams --jobs 1 4 --long-minutes 30

1. Speed: transcribes every audio file under --dir (default streams/) with -j 1, -j 4, ...; each
   run is a fresh process and prints audio hours, wall seconds, x real time, peak RSS.
2. Memory on long input (--long-minutes M > 0): one file of M minutes made by repeating a minute
   of espeak-ng speech with pauses, against a 1-minute file: peak RSS must not grow with length.
Models: the shipped ones unless --am/--lm. When --dir holds no audio, a synthetic set of
espeak-ng sentences is made (and said so in the output).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SENTENCES = ["jin1 tian1 tian1 qi4 hen3 hao3", "wo3 men5 qu4 bei3 jing1", "xie4 xie4 ni3",
             "da4 jia1 zao3 shang4 hao3", "zhong1 guo2 ren2 min2", "qing3 da3 kai1 ke4 ting1 de5 deng1",
             "ming2 tian1 xia4 wu3 san1 dian3 kai1 hui4", "zhe4 ge4 wen4 ti2 hen3 zhong4 yao4"]
CHILD = """
import json, resource, sys, time
from asr_pinyin.cli import main
t = time.time()
code = main(sys.argv[1:])
print(json.dumps({"rc": code, "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "process_s": time.time() - t}), file=sys.stderr)
"""


def speech_minute(seed: int = 0) -> np.ndarray:
    """About a minute of espeak-ng sentences with 0.6-1.5 s pauses, 16 kHz float32."""
    from asr_pinyin.audio.io import resample
    from asr_pinyin.speech.espeak import Espeak

    eng, rng, parts, total = Espeak(), np.random.default_rng(seed), [], 0
    while total < 60 * 16000:
        w = resample(eng.synth(SENTENCES[int(rng.integers(len(SENTENCES)))], rate=int(rng.integers(150, 200))),
                     eng.sample_rate, 16000)
        gap = np.zeros(int(rng.uniform(0.6, 1.5) * 16000), np.float32)
        parts += [0.7 * w, gap]
        total += w.size + gap.size
    return np.concatenate(parts)[: 60 * 16000]


def run(args: list[str]) -> dict:
    p = subprocess.run([sys.executable, "-c", CHILD, "transcribe", *args, "-q", "--summary-json"],
                       cwd=ROOT, capture_output=True, text=True)
    last = [line for line in p.stderr.splitlines() if line.startswith("{")]
    if not p.stdout.strip() or not last:
        raise SystemExit(f"transcribe failed:\n{p.stderr[-2000:]}")
    return {**json.loads(p.stdout), **json.loads(last[-1])}


def main() -> int:
    import soundfile as sf

    from asr_pinyin.clients.transcribe import find_audio

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dir", default=str(ROOT / "streams"))
    ap.add_argument("--jobs", type=int, nargs="+", default=[1, 4])
    ap.add_argument("--long-minutes", type=int, default=0)
    ap.add_argument("--am")
    ap.add_argument("--lm")
    a = ap.parse_args()
    models = [x for k in ("am", "lm") if getattr(a, k) for x in (f"--{k}", getattr(a, k))]
    tmp = Path(tempfile.mkdtemp(prefix="bench-transcribe-"))
    src = Path(a.dir)
    if not (src.is_dir() and find_audio([src])):
        src = tmp / "synthetic"
        src.mkdir()
        for i in range(8):
            sf.write(src / f"syn{i}.flac", speech_minute(i)[: 30 * 16000], 16000)
        print(f"{a.dir} has no audio: using 8 synthetic espeak-ng files of 30 s", file=sys.stderr)
    for j in a.jobs:
        r = run([str(src), "-o", str(tmp / f"out{j}"), "-j", str(j), *models])
        print(json.dumps({"set": str(src), "jobs": j, "files": r["ok"], "audio_h": r["audio_hours"],
                          "wall_s": r["wall_s"], "x_realtime": r["speed_x_realtime"],
                          "segments": r["segments"], "max_rss_mb": round(r["max_rss_mb"])}))
    if a.long_minutes:
        minute = speech_minute(99)
        for m in (1, a.long_minutes):
            f = tmp / f"long{m}.flac"
            with sf.SoundFile(f, "w", 16000, 1, format="FLAC") as out:
                for _ in range(m):
                    out.write(minute)
            r = run([str(f), "-o", str(tmp / "long"), *models])
            print(json.dumps({"long_minutes": m, "wall_s": r["wall_s"], "x_realtime": r["speed_x_realtime"],
                              "segments": r["segments"], "max_rss_mb": round(r["max_rss_mb"])}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
