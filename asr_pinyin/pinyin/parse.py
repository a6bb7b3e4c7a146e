"""Read pinyin in every form people and corpora write it, into canonical syllables.

Accepted: tone marks (`nǐ hǎo`, combining or precomposed), tone numbers (`ni3hao3`, `0` = neutral),
`ü` / `u:` / `v`, upper case, separators (spaces, `'`, `’`, `-`), and run-together input with or
without tones (`woxiangqubeijing`). Output is canonical: `ni3` (toned) or `ni` (toneless), ü as
`v` after n/l (`lv4`, `nve4`) and `u` after j/q/x/y (`ju2`, `xue2`).

Run-together input is split by a k-best search over valid syllables. Ranking, best first:
1. fewest syllables that would need an apostrophe under the spelling rules (a syllable starting
   with a/o/e after another one: `fangan` reads `fan gan`, `fang'an` must be written so);
2. fewest syllables (`xian` before `xi an`);
3. the more frequent syllables (unigram counts from jieba's word list).
Invalid input raises `PinyinError`, which names the offending text and its position.
"""
from __future__ import annotations

import heapq
import itertools
import unicodedata
from dataclasses import dataclass

from .inventory import TONELESS_SET, toneless_log_prob

_MARK_TONES = {"\u0304": 1, "\u0301": 2, "\u030c": 3, "\u0300": 4}
_SEPARATORS = set(" \t\n\r'’‘-_")
_MAX_CHARS = 10_000


class PinyinError(ValueError):
    """Input that is not pinyin. `.text` is the whole input, `.position` the offending index."""

    def __init__(self, message: str, text: str, position: int):
        super().__init__(f"{message} (at position {position} in {text!r})" if len(text) <= 80
                         else f"{message} (at position {position})")
        self.text = text
        self.position = position


def _aliases() -> dict[str, str]:
    """Spellings accepted for each canonical toneless syllable."""
    out = {s: s for s in TONELESS_SET}
    for s in TONELESS_SET:
        if s[0] in "jqxy" and s[1:2] == "u":
            out[s[0] + "v" + s[2:]] = s  # jv -> ju, xve -> xue
        if s in ("lve", "nve"):
            out[s[0] + "ue"] = s  # lue -> lve (what IME users type)
    return out


_SPELLINGS = _aliases()
_MAX_SYL = max(map(len, _SPELLINGS))
_INTERJECTIONS = frozenset({"m", "n", "ng", "hng"})


@dataclass(frozen=True)
class _Letter:
    ch: str  # a-z, ü written as v
    tone: int | None  # from a tone mark on this letter
    pos: int  # index in the original text


@dataclass
class _Chunk:
    letters: list[_Letter]
    tone: int | None  # from a tone number written after the chunk
    tone_pos: int


def _lex(text: str) -> list[_Chunk]:
    if not isinstance(text, str):
        raise TypeError(f"pinyin must be a str, not {type(text).__name__}")
    if len(text) > _MAX_CHARS:
        raise PinyinError(f"pinyin input longer than {_MAX_CHARS} characters", text[:40] + "...", _MAX_CHARS)
    if not text.strip():
        raise PinyinError("empty pinyin input", text, 0)
    chunks: list[_Chunk] = []
    cur: list[_Letter] = []
    i = 0
    while i < len(text):
        raw = text[i]
        if raw in _SEPARATORS:
            if cur:
                chunks.append(_Chunk(cur, None, -1))
                cur = []
            i += 1
            continue
        if raw.isdigit() and raw.isascii():
            if not cur:
                raise PinyinError(f"tone number {raw!r} does not follow a syllable", text, i)
            tone = int(raw)
            if tone > 5:
                raise PinyinError(f"tone number {raw!r} is not a tone (use 1-5, or 0 for neutral)", text, i)
            chunks.append(_Chunk(cur, tone or 5, i))
            cur = []
            i += 1
            continue
        if raw == ":" and cur and cur[-1].ch == "u":  # u: -> ü
            cur[-1] = _Letter("v", cur[-1].tone, cur[-1].pos)
            i += 1
            continue
        decomposed = unicodedata.normalize("NFD", raw.lower())
        base, marks = decomposed[0], decomposed[1:]
        if base == "ı":  # dotless i, as in some fonts' ǐ
            base = "i"
        if not ("a" <= base <= "z") or any(not unicodedata.combining(m) for m in marks):
            what = "a hanzi" if "\u4e00" <= raw <= "\u9fff" else f"{raw!r}"
            raise PinyinError(f"{what} is not pinyin", text, i)
        tone = None
        for m in marks:
            if m == "\u0308" and base == "u":
                base = "v"
            elif m in _MARK_TONES:
                if tone is not None:
                    raise PinyinError(f"two tone marks on {raw!r}", text, i)
                tone = _MARK_TONES[m]
            elif m == "\u0302" and base == "e":  # ê: read as e
                pass
            elif unicodedata.combining(m):
                raise PinyinError(f"{raw!r} carries a mark that pinyin does not use", text, i)
        # combining marks written as separate code points follow the letter
        j = i + 1
        while j < len(text) and unicodedata.combining(text[j]):
            m = text[j]
            if m == "\u0308" and base == "u":
                base = "v"
            elif m in _MARK_TONES and tone is None:
                tone = _MARK_TONES[m]
            else:
                raise PinyinError("misplaced combining mark", text, j)
            j += 1
        cur.append(_Letter(base, tone, i))
        i = j
    if cur:
        chunks.append(_Chunk(cur, None, -1))
    return chunks


# A segmentation cost is a tuple compared lexicographically: (apostrophe violations, syllables,
# negative log frequency). Summing tuples element-wise keeps k-best dynamic programming exact.
def _cost(base: str, first: bool) -> tuple[int, int, float]:
    return (0 if first or base[0] not in "aoe" else 1, 1, -toneless_log_prob(base))


def _add(a: tuple, b: tuple) -> tuple:
    return tuple(x + y for x, y in zip(a, b))


def _segment_chunk(text: str, chunk: _Chunk, k: int) -> list[tuple[tuple, list[str]]]:
    letters = chunk.letters
    n = len(letters)
    spell = "".join(l.ch for l in letters)
    # best[j]: up to k (cost, syllables) paths covering letters[:j]
    best: list[list[tuple[tuple, list[str]]]] = [[] for _ in range(n + 1)]
    best[0] = [((0, 0, 0.0), [])]
    for j in range(1, n + 1):
        cands = []
        for i in range(max(0, j - _MAX_SYL), j):
            if not best[i]:
                continue
            base = _SPELLINGS.get(spell[i:j])
            if base is None or (base in _INTERJECTIONS and (i, j) != (0, n)):
                continue  # m, n, ng, hng only when written alone (else 'xian' -> 'xia n')
            tones = {l.tone for l in letters[i:j] if l.tone is not None}
            if len(tones) > 1 or sum(l.tone is not None for l in letters[i:j]) > 1:
                continue  # two tone marks cannot sit in one syllable
            tone = tones.pop() if tones else None
            if j == n and chunk.tone is not None:
                if tone is not None and tone != chunk.tone:
                    continue
                tone = chunk.tone
            syl = base + (str(tone) if tone else "")
            c = _cost(base, i == 0)
            cands.extend((_add(pc, c), path + [syl]) for pc, path in best[i])
        best[j] = heapq.nsmallest(k, cands, key=lambda x: x[0])
    if not best[n]:
        reach = max(j for j in range(n + 1) if best[j])
        pos = letters[reach].pos if reach < n else letters[-1].pos
        word = text[letters[0].pos: letters[-1].pos + 1]
        raise PinyinError(f"cannot read {word!r} as pinyin syllables from {text[pos:pos + 6]!r}",
                          text, pos)
    return best[n]


def segmentations(text: str, limit: int = 10, *, toneless: bool = False) -> list[list[str]]:
    """All readings of `text` as syllables (up to `limit`), best first.

    >>> segmentations("xian")
    [['xian'], ['xi', 'an']]
    """
    chunks = _lex(text)
    per_chunk = [_segment_chunk(text, c, limit) for c in chunks]
    # k-best over the product of chunks: costs add, so a bounded best-first merge is exact.
    combos: list[tuple[tuple, list[str]]] = [((0, 0, 0.0), [])]
    for options in per_chunk:
        combos = heapq.nsmallest(limit, ((_add(c1, c2), p1 + p2)
                                         for (c1, p1), (c2, p2) in itertools.product(combos, options)),
                                 key=lambda x: x[0])
    out = []
    for _, path in combos:
        syls = [s.rstrip("12345") for s in path] if toneless else path
        if syls not in out:
            out.append(syls)
    return out


def parse_pinyin(text: str, *, toneless: bool = False) -> list[str]:
    """The best reading of `text` as canonical syllables.

    >>> parse_pinyin("Nǐ hǎo, lü:4")  # doctest: +SKIP (comma is not pinyin)
    >>> parse_pinyin("ni3hao3 lu:4")
    ['ni3', 'hao3', 'lv4']
    """
    chunks = _lex(text)
    out: list[str] = []
    for c in chunks:
        out.extend(_segment_chunk(text, c, 1)[0][1])
    return [s.rstrip("12345") for s in out] if toneless else out


def normalize_syllable(text: str) -> str:
    """One syllable in any spelling -> canonical (`'Lǘ'` -> `'lv2'`). Raises if not exactly one."""
    syls = parse_pinyin(text)
    if len(syls) != 1:
        raise PinyinError(f"expected one syllable, read {len(syls)}: {' '.join(syls)}", text, 0)
    return syls[0]


_MARKED = {"a": "āáǎà", "o": "ōóǒò", "e": "ēéěè", "i": "īíǐì", "u": "ūúǔù", "v": "ǖǘǚǜ"}


def to_tone_marks(syllable: str) -> str:
    """Canonical `lv4` -> `lǜ` (the usual placement: a/e, then o in ou, else the last vowel)."""
    base = syllable.rstrip("12345")
    tone = syllable[len(base):]
    t = int(tone) if tone else 5
    spelled = base.replace("v", "ü") if base[0] in "ln" else base
    if t == 5:
        return spelled
    vowels = [i for i, ch in enumerate(base) if ch in _MARKED]
    if not vowels:  # m, n, ng, hng
        return spelled
    if "a" in base:
        idx = base.index("a")
    elif "e" in base:
        idx = base.index("e")
    elif "ou" in base:
        idx = base.index("o")
    else:
        idx = vowels[-1]
    out = list(spelled)
    out[idx] = _MARKED[base[idx]][t - 1]
    return "".join(out)
