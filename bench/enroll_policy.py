"""Choose enrollment's training policy on *dev* users: learning curves, never the test sentences.

    .venv/bin/python bench/enroll_policy.py --users 100 101 102 103 --out runs/enroll-policy

`enroll` trains a LoRA adapter on ~90 takes and validates it on ~10 held-back takes. How long to
train, and whether to trust an early stop on ~100 held-back syllables, is a choice to make on
users and sentences that the benchmark (bench/enroll_voice.py: test-split sentences) never sees.
For each dev user (a `SimulatedUser` whose seed no benchmark uses) this script:

1. renders the shipped prompts and `--dev-n` sentences of the text corpus' *dev* split in that
   user's voice and room (bench/enroll_voice.py's own rendering);
2. records the takes through the real `enroll --from-dir --no-adapt` path (the same take checks)
   and splits them with the profile's own `write_split`;
3. trains enrollment's own recipe (`finetune_config`) for `--max-steps` steps without stopping,
   a snapshot every `--every` steps, and scores every snapshot on the held-back takes and on the
   dev sentences;
4. replays the policies on those curves: the early stop enrollment used (keep the best on the
   held-back takes, stop after 3 evaluations without a gain), and the plain fixed schedule (the
   average of the last two snapshots, as a run without a dev set finishes).

Resumable per user (USER/curve.json). Prints one JSON object: per user and per policy the dev
sentences' syllable error before/after and its relative reduction, and the mean over users.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def prepare(seed: int, channel: str, work: Path, dev_n: int, text_dir: Path, am: str) -> tuple[Path, Path, Path]:
    """Takes recorded through enroll (no adaptation), the profile's split, and the dev sentences."""
    from enroll_voice import render_prompts, user_test_set

    from asr_pinyin.cli import main as cli
    from asr_pinyin.enroll.profile import VoiceProfile
    from asr_pinyin.enroll.prompts import read_prompts
    from asr_pinyin.speech.user import SimulatedUser

    user = SimulatedUser(seed, channel)
    prompts = read_prompts()
    takes_dir, home = work / "takes", work / "home"
    takes_dir.mkdir(parents=True, exist_ok=True)
    os.environ["ASR_PINYIN_HOME"] = str(home)
    name = f"user{seed}-{channel}"
    prof = VoiceProfile(name, home / "voices")
    if not (work / "user_dev.jsonl").is_file():
        render_prompts(prompts, takes_dir, seed, user=user)
        code = cli(["enroll", "--name", name, "--from-dir", str(takes_dir), "--am", am, "--no-adapt"])
        if code not in (0, 1):
            raise SystemExit(f"enroll failed for {name} (exit {code})")
        user_test_set(user, dev_n, text_dir, work, split="dev")
    train, val, n_train, n_val = prof.write_split(0.1)
    print(f"{name}: {n_train} takes to train, {n_val} held back", file=sys.stderr, flush=True)
    return train, val, work / "user_dev.jsonl"


def curve(train: Path, val: Path, dev: Path, work: Path, am: str, max_steps: int, every: int,
          lr: float, rank: int, targets: list[str] | None = None, overrides: list[str] = (),
          replay: float = 0.0) -> dict:
    """Train without stopping; score the base and every snapshot on the held-back takes and dev."""
    import torch

    from asr_pinyin.acoustic.config import Config, apply_overrides
    from asr_pinyin.acoustic.dataset import read_manifest
    from asr_pinyin.acoustic.evaluate import evaluate
    from asr_pinyin.acoustic.finetune import finetune_config
    from asr_pinyin.acoustic.model import load_model
    from asr_pinyin.acoustic.train import Trainer, average_snapshots

    base = load_model(am)
    extra = {}
    if replay > 0:                       # enroll --replay's own pool: the takes' sentences, training voices
        from asr_pinyin.enroll.session import replay_pool

        extra = replay_pool(train, work / "replay", replay, sys.stderr)
    cfg = finetune_config(str(train), str(work / "train"), "lora", am, str(val), max_steps, 0.0,
                          rank=rank, lr=lr, model=base, lora_targets=targets, **extra)
    cfg = Config.from_dict(apply_overrides(cfg.to_dict(), list(overrides)))   # --set, as train-am's
    tc = cfg.train
    tc.eval_every, tc.save_every, tc.patience, tc.keep_checkpoints = 0, every, 0, 10**6
    tc.keep_best, tc.time_limit_s = False, 0
    t0 = time.time()
    trainer = Trainer(cfg)
    trainer.quiet = True
    trainer.run()
    train_s = time.time() - t0
    sets = {"val": read_manifest(str(val))[0], "dev": read_manifest(str(dev))[0]}

    def score(model) -> dict:
        return {k: evaluate(model, u, "full")["syllable_error_rate"] for k, u in sets.items()}

    points = [{"step": 0, **score(base)}]
    snaps = sorted((work / "train").glob("step_*.pt"))
    for p in snaps:
        trainer.model.load_state_dict(torch.load(p, map_location="cpu", weights_only=True)["model"])
        points.append({"step": int(p.stem.split("_")[1]), **score(trainer.model)})
    trainer.model.load_state_dict(average_snapshots(snaps[-2:]))
    final = {"step": max_steps, "averaged": [p.name for p in snaps[-2:]], **score(trainer.model)}
    for p in snaps:                      # 30 MB each: the curve is what is kept
        p.unlink()
    return {"points": points, "final_avg2": final, "train_s": round(train_s, 1),
            "train_takes": len(read_manifest(str(train))[0]), "val_takes": len(sets["val"]),
            "dev_sentences": len(sets["dev"]), "max_steps": max_steps, "lr": tc.lr, "rank": rank,
            "targets": tc.lora_targets, "set": list(overrides),
            "replay": extra.get("replay", 0.0)}


def early_stop(points: list[dict], every: int, patience: int = 3) -> dict:
    """enroll's early stop replayed: evaluate on the held-back takes every `every` steps (the
    base first), keep the best (strictly lower), stop after `patience` evaluations without a gain."""
    best, bad = None, 0
    for pt in points:
        if pt["step"] % every:
            continue
        if best is None or pt["val"] < best["val"]:
            best, bad = pt, 0
        else:
            bad += 1
            if bad >= patience:
                break
    return best


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, nargs="+", default=[100, 101, 102, 103],
                    help="dev users' seeds (never the benchmark's 0-5)")
    ap.add_argument("--channel", choices=("clean", "room"), default="room")
    ap.add_argument("--dev-n", type=int, default=100, help="dev-split sentences per user")
    ap.add_argument("--max-steps", type=int, default=300)
    ap.add_argument("--every", type=int, default=50, help="snapshot and score every N steps")
    ap.add_argument("--eval-every", type=int, default=50, help="the early stop's evaluation interval")
    ap.add_argument("--lr", type=float, default=0.0, help="0: the recipe's own (1e-3 for LoRA)")
    ap.add_argument("--rank", type=int, default=8)
    ap.add_argument("--targets", nargs="+", default=None, metavar="NAME",
                    help="LoRA target modules (default: the recipe's encoder Linear layers); "
                    "+NAME adds to the default list")
    ap.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE",
                    help="override one recipe field, e.g. augment.tempo_prob=0.5 (repeatable)")
    ap.add_argument("--replay", type=float, default=0.0, help="enroll --replay share (0: none)")
    ap.add_argument("--am", default=None)
    ap.add_argument("--text-dir", default=str(ROOT / "data/text"))
    ap.add_argument("--out", default=str(ROOT / "runs/enroll-policy"))
    args = ap.parse_args(argv)

    import torch

    from asr_pinyin.acoustic.model import default_model_path

    torch.set_num_threads(2)
    am = args.am or str(default_model_path())
    from asr_pinyin.acoustic.config import TrainConfig

    targets = None
    if args.targets:
        plus = [t[1:] for t in args.targets if t.startswith("+")]
        targets = ([t for t in args.targets if not t.startswith("+")] or TrainConfig().lora_targets) + plus
    tag = f"s{args.max_steps}-lr{args.lr or 'default'}-r{args.rank}" + (f"-t{'.'.join(targets)}" if targets else "")
    tag += f"-replay{args.replay}" if args.replay else ""
    tag += "".join(f"-{kv}" for kv in args.set)
    tag = re.sub(r"[^\w.+-]", "", tag)              # a folder and file name
    summary = {"policy_run": tag, "users": {}}
    for seed in args.users:
        work = Path(args.out) / f"user{seed}-{args.channel}"
        result = work / f"curve-{tag}.json"
        if result.is_file():
            c = json.loads(result.read_text())
        else:
            train, val, dev = prepare(seed, args.channel, work, args.dev_n, Path(args.text_dir), am)
            c = curve(train, val, dev, work / tag, am, args.max_steps, args.every, args.lr, args.rank, targets, args.set,
                      args.replay)
            result.write_text(json.dumps(c, indent=1))
        base = c["points"][0]["dev"]
        es = early_stop(c["points"], args.eval_every)
        pol = {"early_stop": {"step": es["step"], "dev": es["dev"]},
               "fixed_avg2": {"step": c["max_steps"], "dev": c["final_avg2"]["dev"]},
               "oracle_snapshot": min(({"step": p["step"], "dev": p["dev"]} for p in c["points"]),
                                      key=lambda p: p["dev"])}
        for p in pol.values():
            p["relative"] = round((base - p["dev"]) / base, 4) if base else None
        summary["users"][seed] = {"dev_before": base, "train_s": c["train_s"], "policies": pol,
                                  "curve": [(p["step"], round(p["val"], 4), round(p["dev"], 4))
                                            for p in c["points"]]}
        print(json.dumps({seed: summary["users"][seed]}), file=sys.stderr, flush=True)
    users = summary["users"].values()
    summary["mean_relative"] = {k: round(sum(u["policies"][k]["relative"] for u in users) / len(users), 4)
                                for k in ("early_stop", "fixed_avg2", "oracle_snapshot")}
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
