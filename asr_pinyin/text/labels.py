"""Hanzi -> tonal pinyin labels: exactly one canonical syllable per hanzi.

Convention (labels are citation tones; the same everywhere: corpus, synthesis, LM, eval):

* pypinyin `lazy_pinyin(sentence, style=TONE3, neutral_tone_with_five=True)` over the whole
  sentence, so its phrase dictionary picks polyphone readings in context (银行 yin2 hang2,
  行走 xing2 zou3, 长大 zhang3 da4, 长度 chang2 du4).
* Neutral tone: whatever pypinyin's dictionaries mark neutral stays tone 5 (的 de5, 们 men5,
  东西 dong1 xi5); nothing else is made neutral.
* 一 and 不 are always their citation tones, yi1 and bu4. pypinyin's phrase dictionary bakes
  sandhi into some phrases (一个 yi2 ge4, 不要 bu2 yao4) and not others; we undo it, so the
  label never depends on which phrase the segmenter happened to find. Sandhi (一/不 and the
  third-tone rule) is a property of the speech, not of the label; the synthesizer or acoustic
  model handles it.
* ü is written v (lv4, nve4); every syllable must be valid (`asr_pinyin.pinyin.is_valid`), and
  `make_example` also requires it to be in the acoustic inventory (`in_inventory`).

`hanzi_to_pinyin` raises `LabelError` when this cannot hold (a hanzi pypinyin cannot read, a
non-canonical syllable). `make_example` never raises for text: it returns None, and
`label_sentence` returns the reason (one of REASONS).
"""
from __future__ import annotations

from pypinyin import Style, lazy_pinyin

from ..pinyin import in_inventory, is_valid
from .normalize import PUNCT, TERMINALS, normalize_text
from .sentences import count_hanzi, is_hanzi

MIN_HANZI = 4
MAX_HANZI = 60
CITATION = {"一": "yi1", "不": "bu4"}
REASONS = ("empty", "too_short", "too_long", "latin", "symbol", "rare_hanzi", "oov_syllable",
           "label_error")


class LabelError(ValueError):
    """A sentence whose hanzi cannot be given one canonical syllable each."""


def hanzi_to_pinyin(text: str) -> list[str]:
    """One tonal syllable per hanzi of `text` (other characters get none), in order."""
    if not isinstance(text, str):
        raise TypeError(f"hanzi_to_pinyin expects str, got {type(text).__name__}")
    hanzi = [c for c in text if is_hanzi(c)]
    if not hanzi:
        return []
    # unreadable hanzi come back as the character itself, so alignment is checkable
    syls = lazy_pinyin(text, style=Style.TONE3, neutral_tone_with_five=True,
                       errors=lambda chars: [c if is_hanzi(c) else "" for c in chars])
    syls = [s for s in syls if s]
    if len(syls) != len(hanzi):
        raise LabelError(f"{len(syls)} syllables for {len(hanzi)} hanzi in {text!r}")
    out = []
    for ch, syl in zip(hanzi, syls):
        syl = CITATION.get(ch, syl)
        if not is_valid(syl) or not syl[-1].isdigit():
            raise LabelError(f"no canonical syllable for {ch!r} (got {syl!r}) in {text!r}")
        out.append(syl)
    return out


def in_gb2312(ch: str) -> bool:
    """The 6,763 GB2312 hanzi bound the LM's vocabulary; rarer ones drop the sentence."""
    try:
        ch.encode("gb2312")
        return True
    except UnicodeEncodeError:
        return False


def label_sentence(text: str, *, normalize: bool = True,
                   min_hanzi: int = MIN_HANZI, max_hanzi: int = MAX_HANZI):
    """-> (example, None) or (None, reason). `example` is {"text", "pinyin"}."""
    if not isinstance(text, str):
        return None, "empty"
    s = normalize_text(text) if normalize else text.strip()
    s = s.replace("\n", "").lstrip(PUNCT)
    if not s:
        return None, "empty"
    for c in s:
        if not (is_hanzi(c) or c in PUNCT):
            return None, "latin" if c.isascii() and c.isalpha() else "symbol"
    n = count_hanzi(s)
    if n < min_hanzi:
        return None, "too_short"
    if n > max_hanzi:
        return None, "too_long"
    if not all(in_gb2312(c) for c in s if is_hanzi(c)):
        return None, "rare_hanzi"
    try:
        syls = hanzi_to_pinyin(s)
    except LabelError:
        return None, "label_error"
    if not all(in_inventory(x) for x in syls):
        return None, "oov_syllable"
    if s[-1] not in TERMINALS:                 # every example ends with a terminal mark
        s = s.rstrip(PUNCT) + "。"
    return {"text": s, "pinyin": " ".join(syls)}, None


def make_example(text: str) -> dict | None:
    """A labelled example {"text", "pinyin"}, or None (see `label_sentence` for why)."""
    return label_sentence(text)[0]
