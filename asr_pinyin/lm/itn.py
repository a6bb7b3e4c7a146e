"""Inverse text normalisation: Chinese numerals -> digits where a reader expects digits.

Rules (conservative; the model's hanzi stay when in doubt):
- `百分之X` -> `X%` (百分之五 -> 5%, 百分之三点五 -> 3.5%);
- a run of two or more digit hanzi before 年 is a year, read digit by digit (二零二四年 -> 2024年);
- a run of three or more digit hanzi is read digit by digit (phone numbers, codes);
- a run with a multiplier (十 百 千 万 亿), two hanzi or longer, is a number (三百五十 -> 350),
  with an optional decimal part (三点五 -> 3.5 needs a multiplier or a digit on both sides);
- single numerals stay hanzi (一个人, 第一次), except before 月/日/号 in dates (三月五日 -> 3月5日);
- numerals inside a known idiom (一心一意, 十全十美, 三心二意...) are never touched.
Numbers are converted with `cn2an`.
"""
from __future__ import annotations

import re
import warnings
from functools import lru_cache
from importlib import resources

DIGITS = "零〇一二三四五六七八九"
MULT = "十百千万亿"
_DIGIT_VALUE = {c: str(i) for i, c in enumerate("零一二三四五六七八九")} | {"〇": "0"}
_RUN = re.compile(f"[{DIGITS}{MULT}两]+(?:点[{DIGITS}]+)?")
_PERCENT = re.compile(f"百分之([{DIGITS}{MULT}两]+(?:点[{DIGITS}]+)?)")


@lru_cache(maxsize=1)
def _idioms() -> tuple[frozenset, int]:
    text = resources.files("asr_pinyin.lm").joinpath("data/number_idioms.txt").read_text("utf-8")
    words = frozenset(w for w in text.split("\n") if w and not w.startswith("#"))
    return words, max(map(len, words))


def _in_idiom(text: str, start: int, end: int) -> bool:
    words, longest = _idioms()
    for i in range(max(0, end - longest), start + 1):
        for j in range(max(end, i + 2), min(len(text), i + longest) + 1):
            if text[i:j] in words:
                return True
    return False


@lru_cache(maxsize=4096)
def _value(run: str) -> str | None:
    import cn2an

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            v = cn2an.cn2an(run, "normal")
    except Exception:
        return None
    if isinstance(v, float) and v.is_integer() and "点" not in run:
        v = int(v)
    return str(v)


def _convert_run(text: str, m: re.Match) -> str:
    run = m.group(0)
    if _in_idiom(text, m.start(), m.end()):
        return run
    nxt = text[m.end():m.end() + 1]
    digits_only = all(c in DIGITS for c in run)
    if digits_only and (len(run) >= 3 or (len(run) >= 2 and nxt == "年")):
        return "".join(_DIGIT_VALUE[c] for c in run)
    has_mult = any(c in MULT for c in run)
    if (has_mult and len(run) >= 2) or ("点" in run and len(run) >= 3) or (len(run) <= 3 and nxt != "" and nxt in "月日号" and run != "两"):
        return _value(run) or run
    return run


def itn(text: str) -> str:
    """Numbers written as a reader expects them; everything else unchanged."""
    if not any(c in DIGITS or c in MULT or c == "两" for c in text):
        return text
    text = _PERCENT.sub(lambda m: (_value(m.group(1)) or m.group(0)) + "%" if _value(m.group(1)) else m.group(0), text)
    return _RUN.sub(lambda m: _convert_run(text, m), text)
