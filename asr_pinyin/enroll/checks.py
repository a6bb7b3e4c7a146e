"""Checks on one enrollment take, each with a message a person can act on.

A bad take teaches the adapter the wrong thing (silence labelled as a sentence, a clipped or
buried voice, a different sentence), so every take is checked before it is kept:
- speech present: share of 30 ms frames webrtcvad calls speech;
- not clipped: share of samples at full scale;
- not too quiet: level of the voiced frames in dBFS;
- plausible length: seconds of speech (first to last voiced frame) per prompt syllable;
- matches the prompt (when an acoustic model is given): toneless syllable error of the model's
  greedy output against the prompt. Tones are left out on purpose: the base model's tones on a
  new voice are exactly what adaptation is meant to fix.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

SR = 16000
FRAME = SR * 30 // 1000


@dataclass
class CheckConfig:
    min_speech_share: float = 0.2      # voiced frames / all frames
    min_speech_s: float = 0.4
    max_clipped_share: float = 0.001   # samples at |x| >= clip_level
    clip_level: float = 0.99
    min_level_dbfs: float = -40.0      # RMS of the voiced frames
    min_s_per_syllable: float = 0.12   # speech span / prompt syllables
    max_s_per_syllable: float = 1.0
    max_mismatch: float = 0.5          # toneless syllable error vs the prompt (>= 1: no check)
    vad_mode: int = 2


@dataclass
class Check:
    name: str
    ok: bool
    value: float
    message: str = ""


@dataclass
class TakeResult:
    checks: list[Check] = field(default_factory=list)
    heard: str | None = None           # the model's syllables, when a model was given

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def problems(self) -> list[str]:
        return [c.message for c in self.checks if not c.ok]

    def figures(self) -> dict:
        d = {c.name: round(float(c.value), 4) for c in self.checks}
        if self.heard is not None:
            d["heard"] = self.heard
        return d

    def to_dict(self) -> dict:
        return {"ok": self.ok, "checks": [asdict(c) for c in self.checks], "heard": self.heard}


def voiced_frames(wave: np.ndarray, mode: int = 2) -> np.ndarray:
    """One bool per whole 30 ms frame (webrtcvad at 16 kHz)."""
    import webrtcvad

    vad = webrtcvad.Vad(mode)
    n = len(wave) // FRAME
    pcm = (np.clip(wave[: n * FRAME], -1.0, 1.0) * 32767.0).astype("<i2")
    return np.array([vad.is_speech(pcm[i * FRAME:(i + 1) * FRAME].tobytes(), SR) for i in range(n)],
                    dtype=bool)


def dbfs(x: np.ndarray) -> float:
    rms = float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if x.size else 0.0
    return 20 * np.log10(max(rms, 1e-10))


def speech_span(voiced: np.ndarray) -> tuple[int, int]:
    """(first, last + 1) voiced frame; (0, 0) when none."""
    idx = np.flatnonzero(voiced)
    return (int(idx[0]), int(idx[-1]) + 1) if idx.size else (0, 0)


def toneless_mismatch(ref: list[str], hyp: list[str]) -> float:
    from asr_pinyin.acoustic.evaluate import edit_distance
    from asr_pinyin.pinyin import strip_tone

    return edit_distance([strip_tone(s) for s in ref], [strip_tone(s) for s in hyp]) / max(len(ref), 1)


def greedy_syllables(model, wave: np.ndarray) -> list[str]:
    from asr_pinyin.acoustic.evaluate import transcribe_full

    return [s.syllable for s in transcribe_full(model, [np.asarray(wave, dtype=np.float32)])[0]]


def check_take(wave: np.ndarray, pinyin: str, cfg: CheckConfig | None = None, model=None) -> TakeResult:
    """Run every check on a 16 kHz float32 take of the prompt `pinyin`."""
    cfg = cfg or CheckConfig()
    wave = np.asarray(wave, dtype=np.float32)
    n_syl = max(len(pinyin.split()), 1)
    res = TakeResult()
    voiced = voiced_frames(wave, cfg.vad_mode)
    share = float(voiced.mean()) if voiced.size else 0.0
    first, last = speech_span(voiced)
    speech_s = (last - first) * FRAME / SR
    voiced_audio = wave[: voiced.size * FRAME].reshape(-1, FRAME)[voiced].ravel() if voiced.any() else wave
    level = dbfs(voiced_audio)
    clipped = float(np.mean(np.abs(wave) >= cfg.clip_level)) if wave.size else 0.0

    res.checks.append(Check("level_dbfs", level >= cfg.min_level_dbfs, level,
                            "no signal: the input is digital silence (muted, or the wrong device?)"
                            if level < -90 else
                            f"too quiet: {level:.0f} dBFS, speak closer or raise the input gain"))
    res.checks.append(Check("clipped_share", clipped <= cfg.max_clipped_share, clipped,
                            f"clipped: {100 * clipped:.1f} % of samples at full scale, move back "
                            "or lower the input gain"))
    speech_ok = share >= cfg.min_speech_share and speech_s >= cfg.min_speech_s
    res.checks.append(Check("speech_share", speech_ok, share,
                            "no speech heard" if not voiced.any() else
                            f"too little speech: {speech_s:.1f} s voiced ({100 * share:.0f} % of the "
                            "take), read the whole sentence"))
    if speech_ok:
        per = speech_s / n_syl
        msg = (f"too short: {speech_s:.1f} s of speech for {n_syl} syllables, read the whole sentence"
               if per < cfg.min_s_per_syllable else
               f"too long: {speech_s:.1f} s of speech for {n_syl} syllables, read the sentence once "
               "without long pauses")
        res.checks.append(Check("s_per_syllable",
                                cfg.min_s_per_syllable <= per <= cfg.max_s_per_syllable, per, msg))
    if model is not None and speech_ok and cfg.max_mismatch < 1:
        heard = greedy_syllables(model, wave)
        res.heard = " ".join(heard)
        mm = toneless_mismatch(pinyin.split(), heard)
        shown = res.heard if len(res.heard) <= 60 else res.heard[:57] + "..."
        res.checks.append(Check("mismatch", mm <= cfg.max_mismatch, mm,
                                f"does not match the prompt: heard '{shown or '(nothing)'}' "
                                f"({100 * mm:.0f} % of syllables differ), read the sentence as shown"))
    return res
