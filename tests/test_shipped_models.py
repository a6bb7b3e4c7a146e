"""Quality checks of the shipped models (models/) on a few sentences and bundled utterances.

Not the benchmarks (BENCHMARKS.md has those, on 1,000 held-out sentences): these catch a broken
or swapped checkpoint, a lost n-gram or an adapter trained for another base. Sentences are
everyday ones written for this test (not from any corpus split); pinyin comes from pypinyin.
"""
from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parents[1]
LM_FILE = ROOT / "models" / "lm" / "lm.pt"
AM_FILE = ROOT / "models" / "am" / "model.pt"
IT_ADAPTER = ROOT / "models" / "adapters" / "lm" / "it.pt"
CER_LIMIT = 0.4  # shipped models on the three espeak demo utterances: 0.25 measured (2026-11-28)

GENERAL = [
    "今天天气很好，我们去公园散步吧。",
    "请把会议改到下午三点。",
    "这家饭店的菜又便宜又好吃。",
    "我明天早上要坐火车去上海。",
    "孩子们在学校里学习数学和语文。",
    "政府决定加快城市交通建设。",
    "他每天晚上都给家里打电话。",
    "这本书的作者是一位年轻的女教师。",
    "经济发展需要更多的科技人才。",
    "医生建议他多喝水，早点休息。",
]
IT = [
    "该选项用于显示文件的详细信息。",
    "如果没有指定参数，程序将从标准输入读取数据。",
    "此命令需要超级用户权限才能运行。",
    "配置文件中的每一行包含一个选项。",
]


def _pinyin(text: str) -> tuple[str, str]:
    """Hanzi only, and their tonal pinyin (neutral tone 5, ü as v)."""
    from pypinyin import Style, lazy_pinyin

    han = "".join(c for c in text if "\u4e00" <= c <= "\u9fff")
    py = lazy_pinyin(han, style=Style.TONE3, neutral_tone_with_five=True)
    return han, " ".join(p.replace("ü", "v") for p in py)


def _accuracy(lm, sentences, toneless: bool, domain=None) -> float:
    from asr_pinyin.lm.slots import to_slots

    right = total = 0
    pairs = [_pinyin(s) for s in sentences]
    convs = lm.convert_slots([to_slots(p, toneless) for _, p in pairs], itn_numbers=False, domain=domain)
    for (han, _), conv in zip(pairs, convs):
        hyp = "".join(c for c in conv.text if "\u4e00" <= c <= "\u9fff")
        right += sum(a == b for a, b in zip(han, hyp))
        total += len(han)
    return right / total


@pytest.fixture(scope="module")
def lm():
    if not LM_FILE.exists():
        pytest.skip("no shipped language model")
    from asr_pinyin.lm import LanguageModel

    return LanguageModel.load(LM_FILE)


def test_shipped_lm_converts_everyday_sentences(lm):
    assert _accuracy(lm, GENERAL, toneless=False) >= 0.95
    assert _accuracy(lm, GENERAL, toneless=True) >= 0.9


def test_final_pinyin_follows_the_chosen_hanzi(lm):
    """When context makes the LM take an acoustic alternative, the reported pinyin is that one."""
    slots = [[(s, 1.0)] for s in "wo3 men5 qu4 bei3".split()] + [[("jin1", 0.6), ("jing1", 0.4)]]
    conv = lm.convert(slots)
    assert conv.text.startswith("我们去北京")
    assert [c.pinyin for c in conv.chars] == ["wo3", "men5", "qu4", "bei3", "jing1"]
    # a slot whose first syllable won keeps it
    conv = lm.convert([[("ni3", 1.0)], [("hao3", 0.7), ("hao4", 0.3)]])
    assert [c.pinyin for c in conv.chars] == ["ni3", "hao3"]


def test_shipped_it_adapter_fits_the_shipped_base(lm):
    if not IT_ADAPTER.exists():
        pytest.skip("no shipped IT adapter")
    base = _accuracy(lm, IT, toneless=True)
    lm.add_adapter("it", IT_ADAPTER)
    adapted = _accuracy(lm, IT, toneless=True, domain="it")
    assert adapted >= base and adapted >= 0.9, (base, adapted)
    assert _accuracy(lm, GENERAL, toneless=False) >= 0.95      # the base is untouched without domain


@pytest.fixture(scope="module")
def demo_audio():
    """The bundled demo utterances (streams/demo.jsonl), rendered by espeak-ng as `make demo` does."""
    from asr_pinyin.demo import demo_utterances

    return list(demo_utterances())


def _cer(ref: str, hyp: str) -> float:
    from asr_pinyin.acoustic.evaluate import edit_distance

    ref = [c for c in ref if "\u4e00" <= c <= "\u9fff"]
    hyp = [c for c in hyp if "\u4e00" <= c <= "\u9fff"]
    return edit_distance(ref, hyp) / max(1, len(ref))


def test_shipped_recognizer_on_bundled_utterances(demo_audio):
    if not AM_FILE.exists() or not LM_FILE.exists():
        pytest.skip("no shipped acoustic model")
    from asr_pinyin.recognizer import Recognizer

    rec = Recognizer.load()
    try:
        errors = chars = 0
        for ref, audio in demo_audio:
            hyp = "".join(f.text for f in rec.transcribe(audio, 16000))
            n = sum("\u4e00" <= c <= "\u9fff" for c in ref["text"])
            errors += _cer(ref["text"], hyp) * n
            chars += n
    finally:
        rec.close()
    assert errors / chars <= CER_LIMIT, errors / chars
