"""Hanzi -> tonal pinyin labels: exactly one canonical syllable per hanzi.

Convention (labels are citation tones; the same everywhere: corpus, synthesis, LM, eval):

* pypinyin `lazy_pinyin(sentence, style=TONE3, neutral_tone_with_five=True)` over the whole
  sentence, so its phrase dictionary picks polyphone readings in context (银行 yin2 hang2,
  行走 xing2 zou3, 长大 zhang3 da4, 长度 chang2 du4).
* Neutral tone: whatever pypinyin's dictionaries mark neutral stays tone 5 (的 de5, 们 men5,
  孩子 hai2 zi5), plus the particle rule below; nothing else is made neutral (事情 shi4 qing2).
* Structural particles: a 地 or 得 that pypinyin reads di4/de2 but that stands alone between
  a word and a verb/complement is de5 (认真地看 ren4 zhen1 de5 kan4, 长得好 zhang3 de5 hao3);
  the noun 地 and the verb 得 keep their readings (`_particles` says exactly when).
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
from pypinyin.constants import PHRASES_DICT
from pypinyin.seg.simpleseg import seg

from ..pinyin import in_inventory, is_valid
from .normalize import PUNCT, TERMINALS, normalize_text
from .sentences import count_hanzi, is_hanzi

MIN_HANZI = 4
MAX_HANZI = 60
CITATION = {"一": "yi1", "不": "bu4"}
# 得 stays pypinyin's reading (de2 verb, dei3 modal) before these or after these
_DE_VERB_NEXT = set("到以了病失益罪逞知悉分奖手胜利意主票不出")
_DE_MODAL_PREV = set("还就也都必须总只又可才非我你他她它们所")
_DI_NOUN_PREV = set("块片亩这那此该本各当外内之在于等把到满遍随落着")   # 地 after these: the noun
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
    # pypinyin's own segmentation made explicit (same readings) so the particle rule sees word
    # boundaries; unreadable hanzi come back as themselves, so alignment is checkable
    words = seg(text)
    syls = lazy_pinyin(words, style=Style.TONE3, neutral_tone_with_five=True,
                       errors=lambda chars: [c if is_hanzi(c) else "" for c in chars])
    syls = [s for s in syls if s]
    if len(syls) != len(hanzi):
        raise LabelError(f"{len(syls)} syllables for {len(hanzi)} hanzi in {text!r}")
    particles = _particles(words)
    out = []
    for i, (ch, syl) in enumerate(zip(hanzi, syls)):
        syl = CITATION.get(ch) or particles.get(i) or syl
        if not is_valid(syl) or not syl[-1].isdigit():
            raise LabelError(f"no canonical syllable for {ch!r} (got {syl!r}) in {text!r}")
        out.append(syl)
    return out


def _particles(words: list[str]) -> dict[int, str]:
    """Hanzi positions of the structural particles 地 and 得, which pypinyin reads di4/de2.

    Only a 地/得 that pypinyin's segmentation leaves as a word of its own, between two hanzi,
    and not forming a dictionary phrase with either neighbour is considered:
    地 -> de5 (认真地看, 远远地看) unless before 的/亚 or after 块/这/各/在/把… (这块地很大);
    得 -> de5 (长得好, 跑得快) unless before 到/以/了/不… (the verb: 得到, 得以) or after
    还/就/也/都… (modal: 还得走). Anything else keeps pypinyin's reading.
    """
    text = "".join(words)
    out, pos, i = {}, 0, 0
    for w in words:
        if w in ("地", "得"):
            p = text[i - 1] if i else ""
            n = text[i + 1] if i + 1 < len(text) else ""
            redup = i >= 2 and text[i - 2] == p                  # 远远地, 慢慢地
            if (p and n and is_hanzi(p) and is_hanzi(n)
                    and (p + w not in PHRASES_DICT or redup) and w + n not in PHRASES_DICT
                    and (w == "地" and n not in "的亚" and p not in _DI_NOUN_PREV
                         or w == "得" and n not in _DE_VERB_NEXT and p not in _DE_MODAL_PREV)):
                out[pos] = "de5"
        pos += sum(1 for c in w if is_hanzi(c))
        i += len(w)
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
