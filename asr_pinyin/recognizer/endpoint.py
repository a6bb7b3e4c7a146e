"""Endpointing: cut a continuous 16 kHz stream into speech segments with webrtcvad.

Rules follow WeNet / sherpa-onnx, per stream:
- a segment starts when enough of the last few frames are speech (`onset_ms` of `onset_window_ms`),
  and includes `preroll_ms` of audio before the onset so the acoustic model hears the first consonant;
- it ends after `trailing_silence_ms` of non-speech following speech (the usual endpoint),
- or when it reaches `max_segment_ms` (a hard split; the next segment starts at once);
- `leading_silence_ms` > 0 reports a stream that stays silent that long (before the first segment
  or since the last one), so a client can give up on a user who says nothing.

Only segment audio goes to the acoustic model: silence costs nothing but the VAD, which is why
many idle streams are cheap. The endpointer works on absolute sample positions, so the segments it
finds do not depend on how the audio was split into packets (the server and the offline path agree).
"""
from __future__ import annotations

from collections import deque
from dataclasses import asdict, dataclass, fields

import numpy as np

SAMPLE_RATE = 16000


class EndpointConfigError(ValueError):
    """An endpoint rule with an unusable value (named in the message)."""


@dataclass
class EndpointRules:
    trailing_silence_ms: int = 800
    max_segment_ms: int = 20000
    leading_silence_ms: int = 0       # 0 = never report leading silence
    vad_mode: int = 2                 # webrtcvad aggressiveness 0..3
    frame_ms: int = 30                # webrtcvad frame: 10, 20 or 30 ms
    preroll_ms: int = 300
    onset_ms: int = 90                # speech needed inside the onset window to open a segment
    onset_window_ms: int = 150

    _LIMITS = {"trailing_silence_ms": (100, 10000), "max_segment_ms": (1000, 60000),
               "leading_silence_ms": (0, 600000), "vad_mode": (0, 3), "frame_ms": (10, 30),
               "preroll_ms": (0, 1000), "onset_ms": (10, 1000), "onset_window_ms": (10, 2000)}

    @classmethod
    def from_dict(cls, d: dict | None, base: "EndpointRules | None" = None) -> "EndpointRules":
        """Validated rules from a client's dict; unknown keys and bad values raise EndpointConfigError."""
        rules = EndpointRules(**asdict(base)) if base else cls()
        if not d:
            return rules
        if not isinstance(d, dict):
            raise EndpointConfigError("endpoint must be an object")
        known = {f.name for f in fields(cls)}
        for key, value in d.items():
            if key not in known:
                raise EndpointConfigError(f"unknown endpoint rule {key!r} (known: {', '.join(sorted(known))})")
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise EndpointConfigError(f"endpoint rule {key!r} must be a number")
            setattr(rules, key, int(value))
        rules.validate()
        return rules

    def validate(self) -> None:
        for key, (lo, hi) in self._LIMITS.items():
            v = getattr(self, key)
            if not lo <= v <= hi:
                raise EndpointConfigError(f"endpoint rule {key}={v} outside [{lo}, {hi}]")
        if self.frame_ms not in (10, 20, 30):
            raise EndpointConfigError("endpoint rule frame_ms must be 10, 20 or 30")
        if self.onset_ms > self.onset_window_ms:
            raise EndpointConfigError("endpoint rule onset_ms must not exceed onset_window_ms")


# Events, in stream order. Sample positions are absolute (16 kHz samples since the stream began).
@dataclass
class SegmentStart:
    sample: int


@dataclass
class SegmentAudio:
    samples: np.ndarray  # float32, 16 kHz, the next audio of the open segment


@dataclass
class SegmentEnd:
    sample: int          # where the segment's audio stops (the endpoint fired here)
    speech_end: int      # end of the last speech frame
    reason: str          # "endpoint" | "max_length" | "forced" | "input_finished"


@dataclass
class LeadingSilence:
    sample: int


class Endpointer:
    """Feeds 16 kHz float32 audio through webrtcvad and returns segment events."""

    def __init__(self, rules: EndpointRules | None = None):
        import webrtcvad

        self.rules = rules or EndpointRules()
        self.rules.validate()
        self.vad = webrtcvad.Vad(self.rules.vad_mode)
        r = self.rules
        self.frame = SAMPLE_RATE * r.frame_ms // 1000
        self._pending = np.zeros(0, dtype=np.float32)  # less than one frame, not yet judged
        self._preroll: deque[np.ndarray] = deque(maxlen=max(1, r.preroll_ms // r.frame_ms))
        self._window: deque[bool] = deque(maxlen=max(1, r.onset_window_ms // r.frame_ms))
        self._onset_frames = max(1, r.onset_ms // r.frame_ms)
        self.pos = 0                 # absolute sample index of the next frame to judge
        self.in_segment = False
        self.seg_start = 0
        self.last_speech_end = 0
        self.silence_since = 0       # where the current stretch without a segment began
        self._reported_silence = False

    def accept(self, samples: np.ndarray) -> list:
        """Judge whole frames of `samples` (float32 in [-1, 1]); return events in order."""
        buf = np.concatenate([self._pending, samples]) if self._pending.size else samples
        n = (buf.size // self.frame) * self.frame
        self._pending = buf[n:].copy()
        events: list = []
        for i in range(0, n, self.frame):
            self._frame(buf[i:i + self.frame], events)
        return _merge_audio(events)

    def force_end(self, reason: str = "forced") -> list:
        """End the open segment now (client end-of-utterance or end of input), pending audio included."""
        events: list = []
        if self.in_segment:
            if self._pending.size:
                events.append(SegmentAudio(self._pending))
                self.pos += self._pending.size
            self._pending = np.zeros(0, dtype=np.float32)
            self._close(self.pos, reason, events)
        return events

    # one frame of the state machine
    def _frame(self, frame: np.ndarray, events: list) -> None:
        r = self.rules
        pcm = (np.clip(frame, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()
        speech = self.vad.is_speech(pcm, SAMPLE_RATE)
        end = self.pos + self.frame
        self.pos = end
        self._window.append(speech)
        if not self.in_segment:
            self._preroll.append(frame)
            if sum(self._window) >= self._onset_frames:
                audio = np.concatenate(list(self._preroll))
                self.in_segment = True
                self.seg_start = end - audio.size
                self.last_speech_end = end
                self._preroll.clear()
                events.append(SegmentStart(self.seg_start))
                events.append(SegmentAudio(audio))
            elif (r.leading_silence_ms and not self._reported_silence
                  and end - self.silence_since >= r.leading_silence_ms * SAMPLE_RATE // 1000):
                self._reported_silence = True
                events.append(LeadingSilence(end))
            return
        events.append(SegmentAudio(frame))
        if speech:
            self.last_speech_end = end
        if end - self.last_speech_end >= r.trailing_silence_ms * SAMPLE_RATE // 1000:
            self._close(end, "endpoint", events)
        elif end - self.seg_start >= r.max_segment_ms * SAMPLE_RATE // 1000:
            self._close(end, "max_length", events)
            self.in_segment = True            # speech goes on: open the next segment at once
            self.seg_start = end
            self.last_speech_end = end
            events.append(SegmentStart(end))

    def _close(self, end: int, reason: str, events: list) -> None:
        events.append(SegmentEnd(end, min(self.last_speech_end, end), reason))
        self.in_segment = False
        self.silence_since = end
        self._reported_silence = False
        self._window.clear()
        self._preroll.clear()


def _merge_audio(events: list) -> list:
    """Join consecutive SegmentAudio events into one (fewer, larger arrays downstream)."""
    out: list = []
    for ev in events:
        if isinstance(ev, SegmentAudio) and out and isinstance(out[-1], SegmentAudio):
            out[-1] = SegmentAudio(np.concatenate([out[-1].samples, ev.samples]))
        else:
            out.append(ev)
    return out
