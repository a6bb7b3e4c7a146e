"""The web enrollment's adaptation, run in a child process (`python -m asr_pinyin.serve.enroll_adapt
SPEC`) so training never blocks the server's event loop, and the progress the server reads back
from the trainer's log.jsonl while it runs (asr_pinyin.serve.enroll drives both)."""
from __future__ import annotations

import json
from pathlib import Path

from asr_pinyin.enroll.profile import VoiceProfile


def progress(scratch: str, max_steps: int, elapsed: float) -> dict:
    """Where the trainer is, from the last lines of its log.jsonl in the scratch folder."""
    out = {"stage": "preparing", "step": 0, "max_steps": max_steps, "elapsed_s": round(elapsed, 1)}
    logs = list(Path(scratch).glob("*/log.jsonl"))
    if not logs:
        return out
    try:
        lines = logs[0].read_text(encoding="utf-8").splitlines()
    except OSError:
        return out
    for line in lines:
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue                    # the line being written
        out["step"] = rec.get("step", out["step"])
        if "loss" in rec:
            out["loss"] = rec["loss"]
        out["stage"] = "measuring" if rec.get("event") == "finished" else "training"
    return out


def adapt_child(spec: dict) -> int:
    """`python -m asr_pinyin.serve.enroll_adapt SPEC`: run enroll.session.adapt, write result.json."""
    import sys

    from asr_pinyin.enroll.session import EnrollError, adapt

    profile = VoiceProfile(spec["name"], Path(spec["home"]))
    try:
        report = adapt(profile, spec["am"], spec["min_takes"], spec["val_share"], spec["max_steps"],
                       spec["max_minutes"], progress=False, force=spec["force"], out=sys.stderr,
                       scratch=spec["scratch"])
        result = {"report": report}
    except EnrollError as e:
        result = {"error": str(e)}
    tmp = Path(spec["scratch"]) / "result.json.tmp"
    tmp.write_text(json.dumps(result, ensure_ascii=False), encoding="utf-8")
    tmp.replace(tmp.with_suffix(""))
    return 0


if __name__ == "__main__":
    import sys

    raise SystemExit(adapt_child(json.loads(sys.argv[1])))
