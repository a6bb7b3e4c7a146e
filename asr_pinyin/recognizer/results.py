"""What a stream gives back: partial results while a segment is spoken, one final per segment.

Times are seconds of stream audio (16 kHz samples since the stream began / 16000), so a client
can line results up with what it sent. Everything converts to plain JSON with `to_dict()`.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass
class Syllable:
    """One syllable from the acoustic stage, times relative to its segment's start."""
    pinyin: str
    start: float
    end: float
    conf: float = 1.0
    alts: list[tuple[str, float]] = field(default_factory=list)  # top-k (syllable, prob), best first


@dataclass
class Char:
    char: str
    pinyin: str
    start: float
    end: float
    conf: float
    alts: list[tuple[str, float]] = field(default_factory=list)  # hanzi alternatives (hanzi, prob), best first


@dataclass
class Partial:
    """Revisable text of the open segment (the final may change it)."""
    segment: int
    text: str
    syllables: list[str]
    start: float          # segment start
    audio_time: float     # stream audio covered by this result (its end), for latency accounting
    latency_ms: float = 0.0

    type = "partial"

    def to_dict(self) -> dict:
        return {"type": "partial", **asdict(self)}


@dataclass
class Final:
    """A finished segment: text with punctuation and digits, per-character pinyin and times."""
    segment: int
    text: str
    chars: list[Char]
    start: float
    end: float            # end of speech in the segment
    endpoint_at: float    # stream time where the endpoint fired (end + trailing silence)
    confidence: float
    reason: str           # endpoint | max_length | forced | input_finished | leading_silence
    nbest: list[dict] = field(default_factory=list)  # [{"text", "score"}] when asked
    latency_ms: float = 0.0

    type = "final"

    @property
    def pinyin(self) -> list[str]:
        return [c.pinyin for c in self.chars]

    def to_dict(self) -> dict:
        d = asdict(self)
        d["pinyin"] = self.pinyin
        return {"type": "final", **d}


@dataclass
class StreamError:
    """A stage failed on this stream's data; the stream stops, others go on."""
    code: str
    message: str

    type = "error"

    def to_dict(self) -> dict:
        return {"type": "error", "code": self.code, "message": self.message}
