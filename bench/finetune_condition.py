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

With `--user SEED` the voice is one person instead of the family: a `SimulatedUser` (one klatt
variant, its own settings and small take-to-take variation, in its room) reads the same
ft_train / ft_dev sentences itself, then more train-split sentences up to `--minutes` of its
audio (default 10), and the test is `--user-test N` unseen sentences
of the text corpus' test split in that user's voice and room, rendered exactly as
bench/enroll_voice.py renders them (the same audio for the same seed), or of its dev split with
`--user-split dev` (for choosing settings). `--no-early-stop` trains the fixed schedule.
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

from bench.enroll_voice import render_prompts, run_eval, user_test_set  # noqa: E402
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


def read_by_user(rows: list[dict], user, out: Path, name: str, first: int, minutes: float = 0.0,
                 text_dir: Path | None = None) -> tuple[Path, list[dict], float]:
    """Each row's sentence read by `user` (take first + k) in their room; with `minutes`, then
    more sentences of the text corpus' train split (a seeded sample, 4-30 syllables) until the
    audio reaches that length. Returns OUT/NAME.jsonl, the sentences read and their seconds.
    Sentences the synthesizer fails on are left out."""
    import random

    from asr_pinyin.speech.synth import read_sentences

    sents = [SimpleNamespace(id=r["id"], text=r["text"], pinyin=r["pinyin"]) for r in rows]
    records: list = []
    seconds = render_prompts(sents, out / name, user.seed, user=user, first_take=first, records=records)["audio_s"]
    if minutes and seconds < minutes * 60:
        per_syllable = seconds / max(1, sum(len(r["pinyin"].split()) for r in records))
        used = {r["text"] for r in rows}
        pool = [s for s in read_sentences(text_dir, "train")
                if 4 <= len(s["pinyin"].split()) <= 30 and s["text"] not in used]
        random.Random(f"user-train/{user.seed}").shuffle(pool)
        more, need = [], (minutes * 60 - seconds) / per_syllable
        while pool and need > 0:
            more.append(SimpleNamespace(**pool.pop()))
            need -= len(more[-1].pinyin.split())
        seconds += render_prompts(more, out / name, user.seed, user=user, first_take=first + len(sents),
                                  records=records)["audio_s"]
        sents += more
    manifest = out / f"{name}.jsonl"
    with open(manifest, "w", encoding="utf-8") as f:
        for r in sorted(records, key=lambda r: r["id"]):
            f.write(json.dumps({**r, "audio": f"{name}/{r['audio']}"}, ensure_ascii=False) + "\n")
    read = {r["id"] for r in records}
    return manifest, [{"id": x.id, "text": x.text, "pinyin": x.pinyin} for x in sents if x.id in read], seconds


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
    ap.add_argument("--early-stop", action=argparse.BooleanOptionalAction, default=True,
                    help="finetune-am --early-stop on ft_dev (default) or the fixed schedule")
    ap.add_argument("--user", type=int, default=None, metavar="SEED",
                    help="one simulated user reads the sentences (see above) instead of the family")
    ap.add_argument("--user-test", type=int, default=150, metavar="N")
    ap.add_argument("--user-split", choices=("test", "dev"), default="test")
    ap.add_argument("--minutes", type=float, default=10.0,
                    help="with --user: top the ft_train sentences up to this much of the user's audio")
    ap.add_argument("--text-dir", default=str(ROOT / "data/text"))
    args = ap.parse_args(argv)

    from asr_pinyin.speech.user import SimulatedUser

    src, out = Path(args.heldout), Path(args.out)
    for f in ("train.jsonl",) + (("test.jsonl",) if args.user is None else ()):
        if not (src / f).is_file():
            print(f"error: {src / f} not found (asr-pinyin speech synth builds it)", file=sys.stderr)
            return 2
    out.mkdir(parents=True, exist_ok=True)
    user = SimulatedUser(args.condition if args.user is None else args.user, "room")
    read = lambda p: [json.loads(x) for x in p.read_text("utf-8").splitlines() if x.strip()]  # noqa: E731
    parts = split_rows(read(src / "train.jsonl"))
    tr_rows, dev_rows = parts["train"], parts["dev"]
    t0 = time.time()
    if args.user is None:         # the family's voices, through one channel
        ft_train = through_channel(tr_rows, src, user, out, "ft_train", 0)
        ft_dev = through_channel(dev_rows, src, user, out, "ft_dev", 10000)
        test = through_channel(read(src / "test.jsonl"), src, user, out, "test", 100000)
        train_s = sum(r["duration"] for r in tr_rows)
    else:                         # one person reads them
        ft_train, tr_rows, train_s = read_by_user(tr_rows, user, out, "ft_train", 0, args.minutes,
                                                  Path(args.text_dir))
        ft_dev, _, _ = read_by_user(dev_rows, user, out, "ft_dev", 10000)
        test, _ = user_test_set(user, args.user_test, Path(args.text_dir), out, split=args.user_split)
    result = {"condition": user.describe(), "user": args.user, "ft_train": len(tr_rows),
              "ft_dev": len(dev_rows), "ft_train_minutes": round(train_s / 60, 2),
              "test": str(test), "early_stop": args.early_stop, "render_s": round(time.time() - t0, 1)}
    cmd = [sys.executable, "-m", "asr_pinyin.cli", "finetune-am", "--manifest", str(ft_train),
           "--dev", str(ft_dev), "--method", "lora", "--out", str(out / "adapter.pt"), "--threads", "2",
           "--max-minutes", str(args.max_minutes), "--max-steps", str(args.max_steps),
           "--early-stop" if args.early_stop else "--no-early-stop"]
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
    if args.user is None:
        result["heldout_voice_test_clean_adapter_on"] = run_eval(src / "test.jsonl", args.am, adapter, 0)
    if args.general:
        result["general_test"] = {"base": run_eval(Path(args.general), args.am, None, args.general_limit),
                                  "adapter_on": run_eval(Path(args.general), args.am, adapter, args.general_limit)}
    print(json.dumps(result, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
