"""Voice enrollment on a voice no model has heard: syllable error before/after (issue 9).

    .venv/bin/python bench/enroll_voice.py [--am models/am/model.pt] [--seed 0] [--keep DIR]

1. Renders the shipped prompt set with the held-out espeak `klatt` family (variant and rate,
   pitch, pitch range drawn per prompt exactly as `asr_pinyin.speech.voices` draws them for
   `heldout_voice/`; that family is in no training, dev or test split) through the speech build's
   own `render`, into a temporary folder named by prompt id.
2. Enrolls that "speaker" through `asr-pinyin enroll --from-dir` (the code path a microphone user
   runs: the same checks, profile, split and adaptation), in a private $ASR_PINYIN_HOME.
3. Scores `asr-pinyin eval` on data/speech/heldout_voice/test.jsonl (unseen sentences of the
   family) with the base model and with base + adapter (`--adapter`), and optionally the general
   test set (--general) with the adapter on. Prints one JSON object on stdout.

With `--user SEED [--channel clean|room]` the enrolled speaker is one `SimulatedUser` instead of
the whole family: one klatt variant with fixed settings (a person's small take-to-take
variation), and with `room` one fixed room, microphone and noise floor, as a person enrolling in
their own room (far-field: source and microphone anywhere in it, see BENCHMARKS.md). The takes
and `--user-test N` unseen test-split sentences (data/text/test.jsonl, never in any training split) are rendered by the same user and scored before/after, instead of
heldout_voice/test.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def render_prompts(prompts, out: Path, seed: int, user=None, first_take: int = 0,
                   records: list | None = None) -> dict:
    """One FLAC per prompt (DIR/<prompt id>.flac) in the held-out voice family (variant, rate,
    pitch and range drawn per prompt as `heldout_voice/train` draws them), or spoken by `user`
    (a SimulatedUser: its voice for take first_take + i, then its channel). Manifest records of
    the kept files are appended to `records` when given."""
    from asr_pinyin.speech.synth import render_sentences

    work = out / "_render"
    seconds, variants, errors = 0.0, {}, []
    voice_for = None if user is None else (lambda i: user.voice(first_take + i))
    index = {p.id: k for k, p in enumerate(prompts)}
    # the speech build's own worker pool (forkserver: espeak forks per utterance, never from here)
    for rec in render_sentences(prompts, work, "heldout_voice/enroll", "heldout_voice/train", f"enroll/{seed}",
                                jobs=2, voice_for=voice_for):
        if "error" in rec:
            errors.append(f"{rec['text_id']}: {rec['error']}")
            continue
        src, dst = work / "heldout_voice" / rec["audio"], out / f"{rec['text_id']}.flac"
        if user is not None:          # the user's room and microphone, in place
            user.record_file(src, src, first_take + index[rec["text_id"]])
        os.replace(src, dst)
        seconds += rec["duration"]
        variants[rec["voice"]["variant"]] = variants.get(rec["voice"]["variant"], 0) + 1
        if records is not None:
            records.append({"id": rec["text_id"], "audio": dst.name, "text": rec["text"],
                            "pinyin": rec["pinyin"], "duration": rec["duration"], "voice": rec["voice"]})
    return {"prompts": len(prompts), "rendered": len(prompts) - len(errors), "audio_s": round(seconds, 1),
            "variants": dict(sorted(variants.items())), "errors": errors[:5]}


def user_test_set(user, n: int, text_dir: Path, out: Path, split: str = "test") -> tuple[Path, dict]:
    """`n` sentences of one text split (a seeded sample of TEXT_DIR/SPLIT.jsonl, 4-30 syllables)
    spoken by `user` (takes 100000 + i, never the prompts' draws), as OUT/user_SPLIT.jsonl.
    `test` scores enrollment; `dev` is for choosing its settings (bench/enroll_policy.py)."""
    import random
    from types import SimpleNamespace

    from asr_pinyin.speech.synth import read_sentences

    pool = [s for s in read_sentences(text_dir, split) if 4 <= len(s["pinyin"].split()) <= 30]
    random.Random(f"user-{split}/{user.seed}").shuffle(pool)
    sents = [SimpleNamespace(**s) for s in pool[:n]]
    audio = out / f"user_{split}"
    audio.mkdir(parents=True, exist_ok=True)
    records: list = []
    info = render_prompts(sents, audio, user.seed, user=user, first_take=100000, records=records)
    manifest = out / f"user_{split}.jsonl"
    with open(manifest, "w", encoding="utf-8") as f:
        for r in sorted(records, key=lambda r: r["id"]):
            r["audio"] = f"user_{split}/{r['audio']}"
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    return manifest, info


def run_eval(manifest: Path, am: str | None, adapter: Path | None, limit: int, lm: bool = False) -> dict:
    """`asr-pinyin eval` in a fresh process (2 threads); its JSON, or {"error": ...}."""
    cmd = [sys.executable, "-m", "asr_pinyin.cli", "eval", "--manifest", str(manifest), "--threads", "2"]
    if not lm:
        cmd.append("--no-lm")
    if am:
        cmd += ["--model", am]
    if adapter:
        cmd += ["--adapter", str(adapter)]
    if limit:
        cmd += ["--limit", str(limit)]
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if r.returncode != 0:
        msg = r.stderr.strip().splitlines()[-1] if r.stderr.strip() else f"exit {r.returncode}"
        if adapter and "--adapter" in r.stderr:
            msg = f"`asr-pinyin eval` has no --adapter option yet ({msg})"
        return {"error": msg}
    return json.loads(r.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--am", default=None, help="base acoustic model (default models/am/model.pt)")
    ap.add_argument("--seed", type=int, default=0, help="voice draws of the enrolled 'speaker'")
    ap.add_argument("--test", default=str(ROOT / "data/speech/heldout_voice/test.jsonl"))
    ap.add_argument("--general", default=None, help="also score this manifest with the adapter on "
                    "(e.g. data/speech/test.jsonl)")
    ap.add_argument("--general-limit", type=int, default=200)
    ap.add_argument("--max-steps", type=int, default=300)
    ap.add_argument("--max-minutes", type=float, default=10.0)
    ap.add_argument("--replay", type=float, default=0.0, help="enroll --replay share (0: none)")
    ap.add_argument("--early-stop", action="store_true",
                    help="enroll --early-stop (the policy before session 14: the held-back best)")
    ap.add_argument("--max-mismatch", type=float, default=0.5, help="take check threshold (1: off)")
    ap.add_argument("--limit-prompts", type=int, default=0, help="use only the first N prompts")
    ap.add_argument("--keep", default=None, help="keep the rendered takes and profile in this folder")
    ap.add_argument("--user", type=int, default=None, metavar="SEED",
                    help="enroll one simulated user (speech/user.py) instead of the klatt family")
    ap.add_argument("--channel", choices=("clean", "room"), default="room",
                    help="the simulated user's recording channel (default room)")
    ap.add_argument("--user-test", type=int, default=150, metavar="N",
                    help="unseen test sentences the simulated user speaks for scoring (default 150)")
    ap.add_argument("--text-dir", default=str(ROOT / "data/text"), help="text corpus (for --user)")
    ap.add_argument("--with-lm", action="store_true", help="also score CER after the language stage")
    args = ap.parse_args(argv)

    from asr_pinyin.acoustic.model import ModelLoadError, default_model_path, load_model
    from asr_pinyin.cli import main as cli
    from asr_pinyin.enroll.prompts import read_prompts

    am = args.am or str(default_model_path())
    try:
        load_model(am)
    except ModelLoadError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    user = None
    if args.user is not None:
        from asr_pinyin.speech.user import SimulatedUser
        user = SimulatedUser(args.user, args.channel)
        if not (Path(args.text_dir) / "test.jsonl").is_file():
            print(f"error: {args.text_dir}/test.jsonl not found (asr-pinyin corpus build makes it)",
                  file=sys.stderr)
            return 2
    elif not Path(args.test).is_file():
        print(f"error: {args.test}: held-out voice test set not found (asr-pinyin synth builds it)",
              file=sys.stderr)
        return 2
    prompts = read_prompts()
    if args.limit_prompts:
        prompts = prompts[: args.limit_prompts]
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="enroll-bench-"))
    takes_dir, home = work / "takes", work / "home"
    takes_dir.mkdir(parents=True, exist_ok=True)
    os.environ["ASR_PINYIN_HOME"] = str(home)
    prompt_file = work / "prompts.tsv"
    prompt_file.write_text("id\thanzi\tpinyin\n" + "".join(f"{p.id}\t{p.text}\t{p.pinyin}\n" for p in prompts),
                           encoding="utf-8")
    t0 = time.time()
    rendered = render_prompts(prompts, takes_dir, args.seed, user=user)
    print(f"rendered {rendered['rendered']} prompts ({rendered['audio_s']:.0f} s of audio) in "
          f"{time.time() - t0:.0f} s", file=sys.stderr)
    name = f"klatt-seed{args.seed}" if user is None else f"user{user.seed}-{user.channel}"
    test = Path(args.test)
    if user is not None:
        test, test_info = user_test_set(user, args.user_test, Path(args.text_dir), work)
        print(f"rendered {test_info['rendered']} test sentences ({test_info['audio_s']:.0f} s) for "
              f"{name}", file=sys.stderr)
    t0 = time.time()
    code = cli(["enroll", "--name", name, "--from-dir", str(takes_dir), "--prompts", str(prompt_file),
                "--am", am, "--min-takes", str(max(2, int(0.6 * len(prompts)))),
                "--max-steps", str(args.max_steps), "--max-minutes", str(args.max_minutes),
                "--max-mismatch", str(args.max_mismatch), "--replay", str(args.replay), "--force-adapt"]
               + (["--early-stop"] if args.early_stop else []))
    enroll_s = time.time() - t0
    from asr_pinyin.enroll.profile import VoiceProfile

    prof = VoiceProfile(name, home / "voices")
    report = json.loads(prof.report.read_text()) if prof.report.is_file() else None
    result = {"am": am, "seed": args.seed, "render": rendered, "enroll_exit": code,
              "takes": len(prof.takes()), "enroll_wall_s": round(enroll_s, 1), "adapt_report": report}
    if user is not None:
        result["user"] = {**user.describe(), "test": str(test), "test_render": test_info}
    key = "heldout_voice_test" if user is None else "user_test"
    if prof.adapter.is_file():
        before = run_eval(test, am, None, 0, args.with_lm)
        after = run_eval(test, am, prof.adapter, 0, args.with_lm)
        result[key] = {"before": before, "after": after}
        if "error" not in before and "error" not in after:
            b, a = before["syllable_error_rate"], after["syllable_error_rate"]
            result[key]["relative_reduction"] = round((b - a) / b, 4) if b else None
        if args.general:
            result["general_test"] = {
                "base": run_eval(Path(args.general), am, None, args.general_limit),
                "adapter_on": run_eval(Path(args.general), am, prof.adapter, args.general_limit)}
    else:
        result[key] = {"error": "no adapter was written (see the enroll output above)"}
    print(json.dumps(result, ensure_ascii=False))
    if not args.keep:
        import shutil
        shutil.rmtree(work, ignore_errors=True)
    return 0 if prof.adapter.is_file() else 1


if __name__ == "__main__":
    sys.exit(main())
