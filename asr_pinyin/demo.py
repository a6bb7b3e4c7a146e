"""`make demo`: the whole pipeline on the bundled example, with whatever models are shipped.

1. text: normalization and pinyin labels for a sentence with numbers and dates;
2. input method: the language model converts tonal and run-together toneless pinyin;
3. speech: the sentences of `streams/demo.jsonl` are synthesized (espeak-ng, deterministic),
   streamed through the `Recognizer` (acoustic model -> language model), and compared with the
   reference text.
A stage whose model is not shipped yet is reported and skipped, never faked.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STREAMS = ROOT / "streams" / "demo.jsonl"
EXAMPLE = "2024年3月5日，北京的气温比昨天上升了3.5%。我们明天去天安门广场吧！"


def _section(title: str) -> None:
    print(f"\n== {title} ==")


def text_demo() -> None:
    from asr_pinyin.text import hanzi_to_pinyin, normalize_text, split_sentences

    _section("text -> labels")
    print("input:     ", EXAMPLE)
    for sent in split_sentences(normalize_text(EXAMPLE)):
        hanzi = "".join(c for c in sent if "\u4e00" <= c <= "\u9fff")
        print("normalized:", sent)
        print("pinyin:    ", " ".join(hanzi_to_pinyin(hanzi)))


def lm_demo():
    from asr_pinyin.lm import LanguageModel

    _section("pinyin -> hanzi (input method)")
    try:
        t0 = time.perf_counter()
        lm = LanguageModel.load()
    except FileNotFoundError as e:
        print(f"skipped: {e}")
        return None
    print(f"language model loaded in {time.perf_counter() - t0:.2f} s")
    for text, toneless in (("wo3 xiang3 qu4 bei3 jing1 kan4 kan5", False),
                           ("jintiantianqizhenbucuo", True), ("woxiangqubeijing", True)):
        conv = lm.convert(text, toneless=toneless, nbest=3)
        alts = " | ".join(t for t, _ in conv.nbest[1:])
        print(f"{text:40s} -> {conv.text}   (also: {alts})")
    return lm


def speech_demo() -> int:
    from asr_pinyin.acoustic.model import default_model_path

    _section("speech -> text (streaming recognizer)")
    if not default_model_path().exists():
        print(f"skipped: no acoustic model shipped yet at {default_model_path().relative_to(ROOT)} "
              "(see docs/ACOUSTIC.md for the training recipe)")
        return 0
    from asr_pinyin.recognizer import Recognizer

    recognizer = Recognizer.load()
    for ref, audio16 in demo_utterances():
        t0 = time.perf_counter()
        finals = recognizer.transcribe(audio16, 16000)
        dt = time.perf_counter() - t0
        hyp = "".join(f.text for f in finals)
        print(f"ref: {ref['text']}\nhyp: {hyp}   ({len(audio16) / 16000:.1f} s audio, {dt:.2f} s)")
    recognizer.close()
    return 0


def demo_utterances():
    """(reference row, 16 kHz float32 audio) for each line of streams/demo.jsonl, rendered by
    espeak-ng from its pinyin (same text and voice settings -> identical samples)."""
    import torch
    import torchaudio

    from asr_pinyin.speech.espeak import Espeak, synth_isolated

    engine = Espeak()
    for line in STREAMS.read_text("utf-8").splitlines():
        ref = json.loads(line)
        audio = synth_isolated(engine, ref["pinyin"], variant="", rate=170, pitch=50)
        yield ref, torchaudio.functional.resample(torch.from_numpy(audio), engine.sample_rate, 16000).numpy()


def main() -> int:
    text_demo()
    lm_demo()
    return speech_demo()


if __name__ == "__main__":
    sys.exit(main())
