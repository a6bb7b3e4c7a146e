"""The recognizer's parts alone: webrtcvad endpointer, streaming resampler, batching stage worker."""
from __future__ import annotations

import math
import threading
import time

import numpy as np
import pytest
import torch

from recognizer_fixtures import SENTENCES, silence, speech

from asr_pinyin.recognizer.endpoint import (EndpointConfigError, Endpointer, EndpointRules,
                                            SegmentAudio)
from asr_pinyin.recognizer.resample import AudioFormatError, StreamResampler, decode_pcm
from asr_pinyin.recognizer.workers import StageStopped, StageWorker


def run_endpointer(x, packet, rules=None):
    ep, events = Endpointer(rules), []
    for i in range(0, len(x), packet):
        events += ep.accept(x[i:i + packet])
    events += ep.force_end("input_finished")
    audio = sum(e.samples.size for e in events if isinstance(e, SegmentAudio))
    marks = [(type(e).__name__, e.sample, getattr(e, "reason", "")) for e in events
             if not isinstance(e, SegmentAudio)]
    return marks, audio


def test_endpointer_segments_do_not_depend_on_packets():
    a, b = speech(SENTENCES[1][1]), speech(SENTENCES[2][1])
    x = np.concatenate([silence(0.6), a, silence(1.2), b, silence(0.3)])
    marks, audio = run_endpointer(x, 160)
    assert marks == run_endpointer(x, 7919)[0]
    kinds = [(m[0], m[2]) for m in marks]
    assert kinds == [("SegmentStart", ""), ("SegmentEnd", "endpoint"),
                     ("SegmentStart", ""), ("SegmentEnd", "input_finished")]
    start0, end0 = marks[0][1] / 16000, marks[1][1] / 16000
    assert 0.2 < start0 < 0.65 and end0 - (0.6 + len(a) / 16000) == pytest.approx(0.8, abs=0.15)
    # each segment's audio runs exactly from its start to its end
    assert audio == (marks[1][1] - marks[0][1]) + (marks[3][1] - marks[2][1])


def test_endpointer_rules_are_validated():
    with pytest.raises(EndpointConfigError, match="frame_ms"):
        EndpointRules.from_dict({"frame_ms": 25})
    with pytest.raises(EndpointConfigError, match="must be a number"):
        EndpointRules.from_dict({"vad_mode": "2"})
    assert EndpointRules.from_dict({"trailing_silence_ms": 500}).trailing_silence_ms == 500
    marks, _ = run_endpointer(np.concatenate([silence(0.3), speech(SENTENCES[2][1]), silence(1.0)]),
                              480, EndpointRules(trailing_silence_ms=300))
    assert [m[2] for m in marks if m[0] == "SegmentEnd"] == ["endpoint"] * len(marks[1::2])


@pytest.mark.parametrize("sr", [8000, 11025, 22050, 44100, 48000])
def test_stream_resampler_is_exact_across_packet_splits(sr):
    import torchaudio.functional as AF
    rng = np.random.default_rng(sr)
    x = (rng.standard_normal(sr) * 0.1).astype(np.float32)
    r, parts, i = StreamResampler(sr), [], 0
    while i < len(x):
        n = int(rng.integers(1, 4000))
        parts.append(r.accept(x[i:i + n]))
        i += n
    got = np.concatenate(parts + [r.flush()])
    one = StreamResampler(sr)
    whole = np.concatenate([one.accept(x), one.flush()])
    g = math.gcd(sr, 16000)
    ref = AF.resample(torch.from_numpy(x), sr // g, 16000 // g).numpy()
    assert got.shape == whole.shape == ref.shape
    assert np.abs(got - whole).max() < 1e-6 and np.abs(got - ref).max() < 1e-4


def test_pcm_decoding_errors():
    assert decode_pcm(b"\x00\x80", "pcm_s16le")[0] == -1.0
    with pytest.raises(AudioFormatError, match="odd byte count"):
        decode_pcm(b"\0" * 3, "pcm_s16le")
    with pytest.raises(AudioFormatError, match="multiple of 4"):
        decode_pcm(b"\0" * 6, "float32")
    with pytest.raises(AudioFormatError, match="unknown audio format"):
        decode_pcm(b"", "mp3")
    nan = np.array([np.nan, np.inf, 2.0], "<f4").tobytes()
    assert decode_pcm(nan, "float32").tolist() == [0.0, 0.0, 1.0]
    with pytest.raises(AudioFormatError, match="sample_rate"):
        StreamResampler(96000)


def test_stage_worker_batches_isolates_failures_and_drains_on_stop():
    def square(batch):
        if "bad" in batch:
            raise ValueError("bad item")
        time.sleep(0.02)
        return [x * x for x in batch]

    w = StageWorker("test", square, max_batch=8, max_wait_ms=30)
    got, done = {}, threading.Event()

    def cb(key):
        def f(result, err):
            got[key] = err if err is not None else result
            if len(got) == 21:
                done.set()
        return f

    for i in range(20):
        w.submit(i, cb(i))
    w.submit("bad", cb("bad"))
    w.stop()                       # queued work still finishes
    assert done.wait(5)
    assert [got[i] for i in range(20)] == [i * i for i in range(20)]
    assert isinstance(got["bad"], ValueError)
    assert w.batches < 21 and w.jobs >= 21 and w.batch_sizes.count == w.batches
    with pytest.raises(StageStopped):
        w.submit(1, cb(1))
