"""Our pinyin->hanzi model vs the engines people use, on the same sentences in the same run.

    .venv/bin/python bench/lm_vs_peers.py [--data data/text/test.jsonl data/text/it/test.jsonl] [--limit 1000]

Systems: ours (tonal, toneless, tonal with 10 % of slots corrupted to a top-3), Pinyin2Hanzi
0.1.1 (HMM, toneless; PyPI, MIT) and fcitx5's libime (toneless; Debian libimepinyin-dev +
libime-data + libime-data-language-model; a small C++ driver, bench/libime_driver.cpp, is built
into build/). Character accuracy compares hanzi position by position (punctuation is not scored).
Prints one JSON line per (data set, system) and a Markdown table.
"""
from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from asr_pinyin.lm.data import read_jsonl  # noqa: E402
from asr_pinyin.lm.evaluate import evaluate, reference  # noqa: E402

SC_DICT = "/usr/share/libime/sc.dict"
ZH_LM = "/usr/lib/x86_64-linux-gnu/libime/zh_CN.lm"


def score(refs, hyps: list[str], seconds: float) -> dict:
    right = total = sent = 0
    for (chars, _, _), hyp in zip(refs, hyps):
        ok = sum(a == b for a, b in zip(chars, hyp))
        right, total, sent = right + ok, total + len(chars), sent + (ok == len(chars) and len(hyp) == len(chars))
    return {"char_accuracy": round(right / total, 5), "sentence_accuracy": round(sent / len(refs), 5),
            "sentences": len(refs), "sentences_per_second": round(len(refs) / seconds, 1)}


def pinyin2hanzi(refs) -> dict:
    from Pinyin2Hanzi import DefaultHmmParams, viterbi

    hp = DefaultHmmParams()
    spell = {"jue": "jve", "que": "qve", "xue": "xve", "yue": "yve"}  # its spelling of these four
    hyps, t = [], time.perf_counter()
    for _, syls, _ in refs:
        try:
            obs = [spell.get(s.rstrip("12345"), s.rstrip("12345")) for s in syls]
            hyps.append(viterbi(hmm_params=hp, observations=obs, path_num=1)[0].path)
        except Exception:  # a syllable its tables lack: the sentence scores what it got (nothing)
            hyps.append([])
    return score(refs, hyps, time.perf_counter() - t)


def libime_driver() -> Path | None:
    exe = ROOT / "build" / "libime_driver"
    src = ROOT / "bench" / "libime_driver.cpp"
    if not (Path(SC_DICT).exists() and Path(ZH_LM).exists() and shutil.which("g++")):
        return None
    if not exe.exists() or exe.stat().st_mtime < src.stat().st_mtime:
        exe.parent.mkdir(exist_ok=True)
        subprocess.run(["g++", "-O2", "-std=c++17", str(src), "-I/usr/include/LibIME", "-I/usr/include/Fcitx5/Utils",
                        "-lIMEPinyin", "-lIMECore", "-lFcitx5Utils", "-o", str(exe)], check=True)
    return exe


def libime(refs, exe: Path) -> dict:
    lines = "".join(" ".join(s.rstrip("12345") for s in syls) + "\n" for _, syls, _ in refs)
    t = time.perf_counter()
    out = subprocess.run([str(exe), SC_DICT, ZH_LM], input=lines, capture_output=True, text=True, check=True)
    seconds = time.perf_counter() - t
    return score(refs, [list(h) for h in out.stdout.split("\n")[:len(refs)]], seconds)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", nargs="+", default=["data/text/test.jsonl", "data/text/it/test.jsonl"])
    ap.add_argument("--limit", type=int, default=1000, help="sentences per data set (a seeded random sample)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--model", default=None)
    ap.add_argument("--p2h-limit", type=int, default=100,
                    help="Pinyin2Hanzi is slow (seconds a sentence): it runs on the first N sentences, "
                         "and ours and libime are scored on that subset too")
    ap.add_argument("--only", choices=["ours", "peers"], default=None, help="run one side only")
    args = ap.parse_args()

    from asr_pinyin.lm.decode import LanguageModel

    lm = None if args.only == "peers" else LanguageModel.load(args.model)
    exe = None if args.only == "ours" else libime_driver()
    table = []
    for path in args.data:
        rows = read_jsonl(path)
        random.Random(args.seed).shuffle(rows)  # the files are ordered by source: sample across all
        rows = rows[:args.limit]
        refs = reference(rows)
        results = {}
        if lm:
            results = {"ours tonal": evaluate(lm, rows), "ours toneless": evaluate(lm, rows, toneless=True),
                       "ours tonal, 10% corrupted top-3": evaluate(lm, rows, corrupt=0.1)}
        if exe:
            results["fcitx5 libime toneless"] = libime(refs, exe)
        if args.p2h_limit:
            n = min(args.p2h_limit, len(refs))
            if args.only != "ours":
                results[f"Pinyin2Hanzi toneless (first {n})"] = pinyin2hanzi(refs[:n])
            if lm:
                results[f"ours toneless (first {n})"] = evaluate(lm, rows[:n], toneless=True)
            if exe:
                results[f"fcitx5 libime toneless (first {n})"] = libime(refs[:n], exe)
        for name, r in results.items():
            print(json.dumps({"data": path, "system": name, **r}, ensure_ascii=False), flush=True)
            table.append(f"| {Path(path).parent.name}/{Path(path).name} | {name} | {r['char_accuracy'] * 100:.2f} % "
                         f"| {r['sentence_accuracy'] * 100:.1f} % | {r['sentences']} | {r['sentences_per_second']:.0f} |")
    print("\n| data | system | char acc | sentence acc | sentences | sentences/s |\n|---|---|---|---|---|---|")
    print("\n".join(table))
    return 0


if __name__ == "__main__":
    sys.exit(main())
