"""Recognizer streams on real (tiny) models and espeak speech: segments, partial cadence,
streaming == offline whatever the packets and sample rate, forced endpoints, limits, bad input."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from recognizer_fixtures import SENTENCES, dictation, make_recognizer, model_paths, silence, speech

from asr_pinyin.recognizer import (AudioFormatError, Final, Partial, StreamConfigError,
                                   StreamOptions, StreamStateError)


@pytest.fixture(scope="module")
def rec():
    r = make_recognizer()
    yield r
    r.close()


@pytest.fixture(scope="module")
def audio():
    return dictation((1, 2, 3))


def feed(rec, x, sr=16000, packet=1600, opts=None, kind="float"):
    s = rec.create_stream(opts or StreamOptions())
    for i in range(0, len(x), packet):
        piece = x[i:i + packet]
        s.accept_waveform(sr, (piece * 32767).astype(np.int16) if kind == "int16" else piece)
    s.input_finished()
    assert s.wait(60)
    return s.results()


def texts(results):
    return [(r.text, r.pinyin, r.start, r.end, r.reason) for r in results if isinstance(r, Final)]


def test_one_final_per_sentence_with_times(rec, audio):
    finals = rec.transcribe(audio)
    assert [f.reason for f in finals] == ["endpoint"] * 3
    assert [f.segment for f in finals] == [0, 1, 2]
    starts = [0.5, 0.5 + len(speech(SENTENCES[1][1])) / 16000 + 1.3]
    assert abs(finals[0].start - starts[0]) < 0.35 and abs(finals[1].start - starts[1]) < 0.45
    for f in finals:
        assert f.text and len(f.chars) == len(f.pinyin) > 0
        assert f.start < f.end < f.endpoint_at and 0 <= f.confidence <= 1
        assert all(f.start <= c.start < c.end for c in f.chars)
        assert f.endpoint_at - f.end >= 0.79  # the trailing-silence rule (0.8 s) fired
        for c in f.chars:  # the LM's alternatives per character: best first, the choice among them
            probs = [p for _, p in c.alts]
            assert 1 <= len(c.alts) <= 5 and probs == sorted(probs, reverse=True) and all(0 <= p <= 1 for p in probs)
        assert sum(c.char in [h for h, _ in c.alts] for c in f.chars) >= 0.8 * len(f.chars)
        assert f.to_dict()["chars"][0]["alts"][0][0] == f.chars[0].alts[0][0]


def test_streaming_equals_offline_for_any_packets(rec, audio):
    offline = texts(rec.transcribe(audio))
    assert texts(feed(rec, audio, packet=320)) == offline
    # int16 packets: compared with offline decoding of the same int16 samples (quantizing
    # changes the features, and a tiny model may flip a near-tie on different input)
    q = (audio * 32767).astype(np.int16)
    offline_q = texts(rec.transcribe(q))
    s = rec.create_stream(StreamOptions())
    for i in range(0, len(q), 4999):
        s.accept_waveform(16000, q[i:i + 4999])
    s.input_finished()
    assert s.wait(60)
    assert texts(s.results()) == offline_q


@pytest.mark.parametrize("sr", [8000, 44100])
def test_other_sample_rates_are_resampled_exactly(rec, audio, sr):
    import torchaudio.functional as AF
    g = math.gcd(sr, 16000)
    x = AF.resample(torch.from_numpy(audio), 16000 // g, sr // g).numpy()
    offline = [f.text for f in rec.transcribe(x, sr)]
    assert len(offline) == 3
    assert [f[0] for f in texts(feed(rec, x, sr, packet=sr // 7))] == offline


def test_partials_at_least_every_300_ms_and_before_their_final(rec, audio):
    s = rec.create_stream()
    for i in range(0, len(audio), 1600):   # as if in real time: each packet's work done first
        s.accept_waveform(16000, audio[i:i + 1600])
        assert s.wait_idle(10)
    s.input_finished()
    assert s.wait(10)
    results = s.results()
    seen_final = set()
    for seg in range(3):
        ps = [r for r in results if isinstance(r, Partial) and r.segment == seg]
        times = [p.audio_time for p in ps]
        assert len(ps) >= 3 and all(b - a <= 0.3 + 1e-6 for a, b in zip(times, times[1:]))
        assert all(p.syllables is not None for p in ps) and any(p.text for p in ps)
    for r in results:
        if isinstance(r, Final):
            seen_final.add(r.segment)
        else:
            assert r.segment not in seen_final, "a partial came after its segment's final"


def test_forced_endpoint_and_empty_forced_final(rec):
    x = np.concatenate([silence(0.3), speech(SENTENCES[1][1])])
    s = rec.create_stream()
    s.accept_waveform(16000, x)
    s.endpoint()           # mid-speech: the open segment ends now
    s.endpoint()           # nothing open: still one (empty) final
    s.input_finished()
    assert s.wait(30)
    finals = [r for r in s.results() if isinstance(r, Final)]
    assert [f.reason for f in finals] == ["forced", "forced"]
    assert finals[0].text and finals[1].text == "" and finals[1].segment == -1


def test_max_segment_length_and_leading_silence(rec):
    long = np.concatenate([speech(SENTENCES[2][1])] * 3)  # ~4 s of speech without pauses
    rules = {"max_segment_ms": 1500, "leading_silence_ms": 1000}
    results = feed(rec, np.concatenate([silence(1.5), long]), opts=StreamOptions(endpoint=rules))
    finals = [r for r in results if isinstance(r, Final)]
    assert finals[0].reason == "leading_silence" and finals[0].text == ""
    cut = [f for f in finals if f.reason == "max_length"]
    assert len(cut) >= 2 and all(f.endpoint_at - f.start <= 1.5 + 1e-6 for f in cut)


def test_nbest_and_hotwords(rec):
    x = np.concatenate([silence(0.3), speech(SENTENCES[4][1]), silence(1.0)])
    f = rec.transcribe(x, options=StreamOptions(nbest=3, partials=False))[0]
    assert 1 <= len(f.nbest) <= 3 and f.nbest[0]["score"] >= f.nbest[-1]["score"]
    # a hotword spelled like the first two decoded syllables (toneless) replaces them (a large
    # weight: the tiny LM is very sure of its 8 training sentences)
    # (compared on the characters of the syllables: the LM may put punctuation between them)
    hanzi = "".join(c.char for c in f.chars)
    phrase = _phrase_for([p[:-1] for p in f.pinyin[:2]], hanzi[:2])
    g = rec.transcribe(x, options=StreamOptions(hotwords=[(phrase, 50.0)], partials=False))[0]
    assert "".join(c.char for c in g.chars).startswith(phrase) and not hanzi.startswith(phrase)


def _phrase_for(toneless: list[str], avoid: str) -> str:
    """Common (GB2312) hanzi read as the given syllables, other than the decoded ones."""
    from pypinyin import Style, lazy_pinyin
    from asr_pinyin.lm.vocab import gb2312_hanzi
    out = []
    for syl, bad in zip(toneless, avoid):
        out.append(next(c for c in gb2312_hanzi()[200:]
                        if c != bad and lazy_pinyin(c, style=Style.NORMAL) == [syl]))
    phrase = "".join(out)
    assert lazy_pinyin(phrase, style=Style.NORMAL) == toneless
    return phrase


def test_bad_input_gets_named_errors(rec):
    with pytest.raises(StreamConfigError, match="nbest"):
        rec.create_stream(StreamOptions(nbest=0))
    with pytest.raises(StreamConfigError, match="trailing_silence_ms"):
        rec.create_stream(StreamOptions(endpoint={"trailing_silence_ms": 5}))
    with pytest.raises(StreamConfigError, match="unknown endpoint rule"):
        rec.create_stream(StreamOptions(endpoint={"silence": 1}))
    with pytest.raises(StreamConfigError, match="domain adapter"):
        rec.create_stream(StreamOptions(domain="medical"))
    with pytest.raises(StreamConfigError, match="hotword"):
        rec.create_stream(StreamOptions(hotwords=[{"phrase": "", "weight": 1}]))
    s = rec.create_stream()
    with pytest.raises(AudioFormatError, match="sample_rate"):
        s.accept_waveform(4000, np.zeros(100, np.float32))
    with pytest.raises(AudioFormatError, match="mono"):
        s.accept_waveform(16000, np.zeros((2, 100), np.float32))
    s.accept_waveform(16000, np.full(1600, np.nan, np.float32))   # NaN -> silence, no crash
    with pytest.raises(AudioFormatError, match="changed"):
        s.accept_waveform(22050, np.zeros(100, np.float32))
    s.input_finished()
    with pytest.raises(StreamStateError, match="finished"):
        s.accept_waveform(16000, np.zeros(100, np.float32))
    assert s.wait(10) and s.results() == []
    s.close()


def test_abandoned_stream_does_not_disturb_others(rec, audio):
    offline = texts(rec.transcribe(audio))
    gone = rec.create_stream()
    gone.accept_waveform(16000, audio[: len(audio) // 2])
    gone.close()           # a vanished client: queued work dropped
    assert texts(feed(rec, audio)) == offline
    assert gone not in rec.streams


def test_batched_acoustic_matches_acoustic_stream(rec):
    """The batching adapter gives each stream what AcousticStream alone gives it."""
    from asr_pinyin.acoustic.model import load_model
    from asr_pinyin.acoustic.stream import AcousticStream

    model = load_model(model_paths()[0])
    am = rec.am
    clips = [speech(p) for _, p in SENTENCES[:4]]
    ref = []
    for x in clips:
        st = AcousticStream(model, chunk_ms=am.chunk_ms, left_ms=5120)
        got = {}
        for y in st.accept_waveform(x) + st.flush():
            got[y.index] = (y.syllable, y.start, y.end)
        ref.append([got[i] for i in sorted(got)])
    am.full_final = False          # the streaming pass alone (the two-pass final: next test)
    try:
        hyp = _step_all(am, clips)
    finally:
        am.full_final = True
    assert [[(s.pinyin, s.start, s.end) for s in h] for h in hyp] == ref
    assert any(ref)


def _step_all(am, clips):
    """Feed clips through the batched stage side by side, chunk by chunk; the last hypotheses."""
    from asr_pinyin.recognizer.stages import AmJob

    states, pos, hyp = [am.new_state() for _ in clips], [0] * len(clips), [None] * len(clips)
    while any(p < len(x) for p, x in zip(pos, clips)):
        idx = [j for j in range(len(clips)) if pos[j] < len(clips[j])]
        jobs = []
        for j in idx:
            n = am.first_chunk_samples if pos[j] == 0 else am.chunk_samples
            jobs.append(AmJob(states[j], clips[j][pos[j]:pos[j] + n], pos[j] + n >= len(clips[j])))
            pos[j] += n
        for j, h in zip(idx, am.step_batch(jobs)):
            hyp[j] = h
    return hyp


def test_two_pass_final_is_the_full_context_decoding(rec):
    """A segment's final hypothesis is the offline (full-context) decoding of its audio, while the
    steps before it are the streaming ones."""
    from asr_pinyin.acoustic.evaluate import transcribe_full
    from asr_pinyin.acoustic.model import load_model

    model = load_model(model_paths()[0])
    am = rec.am
    assert am.full_final
    clips = [speech(p) for _, p in SENTENCES[:4]] + [silence(0.01)]
    offline = [[(s.syllable, s.start, s.end, s.alternatives) for s in h] for h in transcribe_full(model, clips[:4])]
    got = [[(s.pinyin, s.start, s.end, s.alts) for s in h] for h in _step_all(am, clips)]
    assert got[:4] == offline and any(offline)
    assert got[4] == []            # too short for one output frame: nothing, no error
    am.full_final = False
    try:
        streamed = [[(s.pinyin, s.start, s.end, s.alts) for s in h] for h in _step_all(am, clips[:4])]
    finally:
        am.full_final = True
    assert streamed != offline     # the streaming pass alone scores these clips differently


def test_callback_gets_every_result_and_the_stream_keeps_none(rec, audio):
    got = []
    s = rec.create_stream(on_result=got.append)
    for i in range(0, len(audio), 4000):
        s.accept_waveform(16000, audio[i:i + 4000])
    s.input_finished()
    assert s.wait(30)
    assert s.results() == []    # a long server session must not accumulate results
    assert texts(got) == texts(rec.transcribe(audio)) and any(isinstance(r, Partial) for r in got)


def test_quiet_segment_final_is_decoded_at_a_normal_level(rec):
    """A segment peaking under -12 dBFS gets its final from its audio raised to a -6 dBFS peak (the
    shipped model reads speech at -30 dB with 4x the errors); louder segments are left as they are."""
    from asr_pinyin.acoustic.evaluate import transcribe_full
    from asr_pinyin.acoustic.model import load_model
    from asr_pinyin.recognizer import batching

    model = load_model(model_paths()[0])
    am = rec.am
    clips = [speech(p) for _, p in SENTENCES[:3]]
    loud = [c * np.float32(0.7 / np.abs(c).max()) for c in clips]            # -3 dBFS: untouched
    quiet = [c * np.float32(10 ** (-40 / 20)) for c in loud]                  # -43 dBFS
    as_is = lambda xs: [[(s.syllable, s.start, s.end) for s in h] for h in transcribe_full(model, xs)]  # noqa: E731
    got = lambda xs: [[(s.pinyin, s.start, s.end) for s in h] for h in _step_all(am, xs)]  # noqa: E731
    assert got(loud) == as_is(loud)
    raised = [c * np.float32(batching.TARGET_PEAK / np.abs(c).max()) for c in quiet]
    assert got(quiet) == as_is(raised) and any(as_is(raised))
    assert as_is(quiet) != as_is(raised)       # without the correction the model hears other things
    ceiling = [c * np.float32(1e-6) for c in loud]    # faint noise is lifted by at most 40 dB
    assert got(ceiling) == as_is([c * np.float32(batching.MAX_GAIN) for c in ceiling])
