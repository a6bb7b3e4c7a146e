"""finetune-am on a held-out voice group in one new recording condition (issue 8).

    .venv/bin/python bench/finetune_condition.py [--condition SEED] [--out runs/ft-condition]
        [--max-minutes 10] [--replay 0.5] [--general data/speech/test.jsonl --general-limit 300]

The held-out klatt family (data/speech/heldout_voice: in no pretraining split) as a device would
hear it: every utterance of heldout_voice/train (~11 min; split by id hash into ft_train / ft_dev
by scripts/split_manifest.py's `split_rows`) and of heldout_voice/test (unseen test sentences) goes
through one fixed channel, a `speech.user.SimulatedUser`'s room, microphone and noise floor
(the voices stay the family's, drawn per utterance). Then `asr-pinyin finetune-am --method
lora` on ft_train with early stopping on ft_dev, replay from the training voices (the
ft_train sentences rendered by `enroll.replay.synth_replay`, since no pretraining corpus is
needed), and `asr-pinyin eval --no-lm` before/after on the channel's test and, with --general,
on the clean general test with the adapter on. Prints one JSON object on stdout.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.enroll_voice import run_eval  # noqa: E402
from scripts.split_manifest import split_rows  # noqa: E402


def through_channel(rows: list[dict], src_dir: Path, user, out: Path, name: str, first: int) -> Path:
    """Each row's audio recorded through `user`'s channel (take first + k); OUT/NAME.jsonl."""
    (out / name).mkdir(parents=True, exist_ok=True)
    manifest = out / f"{name}.jsonl"
    with open(manifest, "w", encoding="utf-8") as f:
        for k, r in enumerate(rows):
            dst = out / name / f"{r['id']}.flac"
            if not dst.is_file():
                user.record_file(src_dir / r["audio"], dst, first + k)
            f.write(json.dumps({**r, "audio": f"{name}/{dst.name}",
                                "channel": {"user_seed": user.seed, **user.room}}, ensure_ascii=False) + "\n")
    return manifest


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--condition", type=int, default=100, help="SimulatedUser seed whose channel is used")
    ap.add_argument("--heldout", default=str(ROOT / "data/speech/heldout_voice"))
    ap.add_argument("--out", default=str(ROOT / "runs/ft-condition"))
    ap.add_argument("--am", default=None)
    ap.add_argument("--max-minutes", type=float, default=10.0)
    ap.add_argument("--max-steps", type=int, default=300)
    ap.add_argument("--replay", type=float, default=0.5)
    ap.add_argument("--general", default=None)
    ap.add_argument("--general-limit", type=int, default=300)
    args = ap.parse_args(argv)

    from asr_pinyin.speech.user import SimulatedUser

    src, out = Path(args.heldout), Path(args.out)
    for f in ("train.jsonl", "test.jsonl"):
        if not (src / f).is_file():
            print(f"error: {src / f} not found (asr-pinyin speech synth builds it)", file=sys.stderr)
            return 2
    out.mkdir(parents=True, exist_ok=True)
    user = SimulatedUser(args.condition, "room")
    read = lambda p: [json.loads(x) for x in p.read_text("utf-8").splitlines() if x.strip()]  # noqa: E731
    parts = split_rows(read(src / "train.jsonl"))
    tr_rows, dev_rows = parts["train"], parts["dev"]
    t0 = time.time()
    ft_train = through_channel(tr_rows, src, user, out, "ft_train", 0)
    ft_dev = through_channel(dev_rows, src, user, out, "ft_dev", 10000)
    test = through_channel(read(src / "test.jsonl"), src, user, out, "test", 100000)
    result = {"condition": user.describe(), "ft_train": len(tr_rows), "ft_dev": len(dev_rows),
              "ft_train_minutes": round(sum(r["duration"] for r in tr_rows) / 60, 2),
              "render_s": round(time.time() - t0, 1)}
    cmd = [sys.executable, "-m", "asr_pinyin.cli", "finetune-am", "--manifest", str(ft_train),
           "--dev", str(ft_dev), "--method", "lora", "--out", str(out / "adapter.pt"), "--threads", "2",
           "--max-minutes", str(args.max_minutes), "--max-steps", str(args.max_steps)]
    if args.am:
        cmd += ["--base", args.am]
    if args.replay > 0:
        from asr_pinyin.enroll.replay import synth_replay
        pool = synth_replay([SimpleNamespace(id=r["id"], text=r["text"], pinyin=r["pinyin"]) for r in tr_rows],
                            out / "replay")
        cmd += ["--replay", str(args.replay), "--replay-manifest", str(pool)]
    t0 = time.time()
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    result["finetune_wall_s"] = round(time.time() - t0, 1)
    if r.returncode != 0:
        print(r.stderr[-2000:], file=sys.stderr)
        return 1
    result["finetune"] = json.loads(r.stdout.strip().splitlines()[-1]) if r.stdout.strip() else None
    adapter = out / "adapter.pt"
    before, after = run_eval(test, args.am, None, 0), run_eval(test, args.am, adapter, 0)
    result["condition_test"] = {"before": before, "after": after}
    if "error" not in before and "error" not in after and before["syllable_error_rate"]:
        b, a = before["syllable_error_rate"], after["syllable_error_rate"]
        result["condition_test"]["relative_reduction"] = round((b - a) / b, 4)
    clean = run_eval(src / "test.jsonl", args.am, adapter, 0)
    result["heldout_voice_test_clean_adapter_on"] = clean
    if args.general:
        result["general_test"] = {"base": run_eval(Path(args.general), args.am, None, args.general_limit),
                                  "adapter_on": run_eval(Path(args.general), args.am, adapter, args.general_limit)}
    print(json.dumps(result, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
