"""Incremental conversion for streaming speech: bounded work per update, revisable partials.

Syllables arrive a few at a time (`push`). Only the last `window` slots are re-decoded (with
`context` older slots as left context), so an update costs one encoder pass over at most
`window + context` slots however long the segment grows. Hanzi that leave the window are fixed.
`finalize()` decodes what is left, returns the whole segment and starts a new one.
"""
from __future__ import annotations

from .decode import CharResult, Conversion, LanguageModel
from .hotwords import compile_hotwords
from .itn import itn
from .slots import MAX_SYLLABLES, LMInputError, to_slots


class LMStream:
    def __init__(self, lm: LanguageModel, hotwords=None, window: int = 32, context: int = 8,
                 toneless: bool = False, itn_numbers: bool = True):
        if window < 1 or context < 0 or window + context > lm.model.cfg.max_len:
            raise LMInputError(f"window + context must fit the model's {lm.model.cfg.max_len} positions")
        self.lm, self.window, self.context = lm, window, context
        self.toneless, self.itn_numbers = toneless, itn_numbers
        self.hotwords = compile_hotwords(hotwords)
        self.slots: list = []  # the open segment
        self.fixed: list[CharResult] = []  # its hanzi that left the window
        self.tail: list[CharResult] = []  # latest decode of the window

    def push(self, syllables) -> Conversion:
        """Add syllables (any form `convert` takes; empty is allowed) -> partial text of the segment."""
        if syllables is not None and len(syllables):
            new = to_slots(syllables, self.toneless)
            if len(self.slots) + len(new) > MAX_SYLLABLES:
                raise LMInputError(f"segment longer than {MAX_SYLLABLES} syllables: call finalize()")
            self.slots.extend(new)
        self._decode(fast=True)
        return self._result(final=False)

    def finalize(self) -> Conversion:
        """Fix the open segment and return it (text with punctuation and ITN); start a new one."""
        self._decode()
        out = self._result(final=True)
        self.slots, self.fixed, self.tail = [], [], []
        return out

    def _decode(self, fast: bool = False):
        n = len(self.slots)
        if n == 0:
            self.tail = []
            return
        start = max(len(self.fixed), n - self.window)
        if start > len(self.fixed):  # slots leaving the window keep their last reading
            self.fixed.extend(self.tail[:start - len(self.fixed)])
        lo = max(0, start - self.context)
        conv = self.lm.convert_slots([self.slots[lo:]], self.hotwords, 1, False, True, fast=fast)[0]
        self.tail = conv.chars[start - lo:]

    def _result(self, final: bool) -> Conversion:
        chars = self.fixed + self.tail
        if not final and chars:  # a partial does not end on punctuation the speaker may continue past
            last = chars[-1]
            chars = chars[:-1] + [CharResult(last.hanzi, last.pinyin, last.confidence, last.alternatives, "")]
        raw = "".join(c.hanzi + c.punct for c in chars)
        text = itn(raw) if self.itn_numbers else raw
        return Conversion(text, chars, [(text, 0.0)], raw, stable=len(chars) if final else len(self.fixed))
