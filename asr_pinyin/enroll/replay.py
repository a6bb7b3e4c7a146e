"""Replay for enrollment: the base model's own kind of speech, made on the user's machine.

Adapting to ~90 takes of one voice pulls the model toward that voice and away from everything
else; fine-tuning keeps its general accuracy by mixing in utterances of the speech it was trained
on (`finetune-am --replay`). A user's machine has no pretraining corpus, but it has the engine
that made most of it: espeak-ng, in-process (a core dependency). So the same prompt sentences
are rendered once each in voices drawn from the pretraining voice families and ranges
(`speech.voices.espeak_voice(rng, "train")`), through the speech build's own `render`: ~0.05
CPU-s an utterance, seconds for the whole prompt set. Deterministic for a seed.
"""
from __future__ import annotations

import json
from pathlib import Path


class ReplayError(RuntimeError):
    """The replay utterances could not be made (espeak-ng missing or failing)."""


def synth_replay(prompts, out_dir: Path, seed: int = 0) -> Path:
    """Render each prompt once in a pretraining voice; write OUT/replay_pool.jsonl (absolute audio
    paths) and return its path. Raises ReplayError when no utterance could be made."""
    from asr_pinyin.speech.synth import render_sentences

    out_dir = Path(out_dir)
    records, errors = [], []
    try:
        for rec in render_sentences(prompts, out_dir, "replay", "train", f"enroll-replay/{seed}"):
            (errors if "error" in rec else records).append(rec)
    except Exception as e:  # noqa: BLE001 - any failure of the synthesizer is one clear error
        raise ReplayError(f"could not synthesize replay speech ({type(e).__name__}: {e})") from None
    if not records:
        raise ReplayError(f"could not synthesize replay speech ({errors[0]['error'] if errors else 'no prompts'})")
    path = out_dir / "replay_pool.jsonl"
    with open(path, "w", encoding="utf-8") as f:
        for rec in sorted(records, key=lambda r: r["id"]):
            f.write(json.dumps({"id": rec["id"], "audio": str((out_dir / rec["audio"]).resolve()),
                                "pinyin": rec["pinyin"], "duration": rec["duration"], "voice": rec["voice"]},
                               ensure_ascii=False) + "\n")
    return path
