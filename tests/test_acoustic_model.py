"""Encoder: one set of weights, full-context and streaming; caches equal the masked forward."""
import numpy as np
import pytest
import torch

from asr_pinyin.acoustic.config import ModelConfig
from asr_pinyin.acoustic.frontend import num_frames
from asr_pinyin.acoustic.model import AcousticModel, chunk_mask, load_model, save_model, ModelLoadError
from asr_pinyin.acoustic.stream import AcousticStream

TINY = ModelConfig(conv_channels=8, d_model=32, n_heads=2, ff_mult=2, n_layers=2, conv_kernel=5, dropout=0.0)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)          # small tensors: threads only add contention on shared cores
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module", params=[(False, False), (True, False), (True, True)],
                ids=["conformer_ln", "pre_ln", "pre_ln_pitch_factored"])
def model(request):
    import dataclasses

    torch.manual_seed(0)
    pre_ln, pitch = request.param
    m = AcousticModel(dataclasses.replace(TINY, pre_ln=pre_ln, pitch=pitch, factored_head=pitch)).eval()
    m.cmvn.mean.fill_(-5.0)                 # a non-trivial CMVN so it is exercised
    if pitch:                               # these parts start at zero: make them count here
        torch.nn.init.normal_(m.pitch.proj.weight, std=0.3)
        torch.nn.init.normal_(m.base_head.weight, std=0.3)
        torch.nn.init.normal_(m.tone_head.weight, std=0.3)
    return m


def test_factored_head_shares_tone_and_base_terms():
    """The tone head moves every syllable of one tone by the same amount, the base head every
    tone of one base; the blank is untouched by both."""
    import dataclasses

    from asr_pinyin.acoustic.decode import UNIT_ID

    torch.manual_seed(1)
    m = AcousticModel(dataclasses.replace(TINY, factored_head=True)).eval()
    z = torch.randn(4, 32)
    plain = m.logits(z)
    torch.testing.assert_close(plain, m.head(z))            # both start at zero
    with torch.no_grad():
        m.tone_head.bias.copy_(torch.tensor([0.0, 0.0, 5.0, 0.0, 0.0]))   # + 5 to tone 3
        m.base_head.bias[m.base_index[UNIT_ID["ma1"]] - 1] = -2.0         # - 2 to every ma
    d = m.logits(z) - plain
    for unit, want in [("ni3", 5.0), ("shi3", 5.0), ("ma3", 3.0), ("ma1", -2.0), ("ma5", -2.0), ("shi4", 0.0)]:
        torch.testing.assert_close(d[:, UNIT_ID[unit]], torch.full((4,), want))
    torch.testing.assert_close(d[:, 0], torch.zeros(4))


def stream_chunks(m, feats, chunk, left_chunks):
    """Feed fbank windows the way AcousticStream does; return concatenated log-probs."""
    st, outs, i = m.init_state(), [], 0
    S, R = m.subsample.stride, m.subsample.context
    keep = left_chunks * chunk if left_chunks >= 0 else -1
    while i < feats.shape[0]:
        win = feats[i:i + (chunk - 1) * S + R]
        outs.append(m.forward_chunk(win, st, keep))
        i += chunk * S
        if win.shape[0] < (chunk - 1) * S + R:
            break
    return torch.cat(outs)


@pytest.mark.parametrize("chunk,left", [(1, -1), (3, 2), (4, 0), (5, -1)])
def test_chunk_by_chunk_equals_masked_full_forward(model, chunk, left):
    torch.manual_seed(1)
    feats = torch.randn(357, model.cfg.feat_dim)
    with torch.no_grad():
        full, n = model(feats[None], torch.tensor([357]), chunk=chunk, left_chunks=left)
    online = stream_chunks(model, feats, chunk, left)
    assert online.shape[0] == int(n[0]) == full.shape[1]
    torch.testing.assert_close(online, full[0], atol=1e-4, rtol=0)


@pytest.mark.parametrize("chunk,look", [(3, 2), (4, 1), (2, 5)])
def test_lookahead_chunk_sees_its_right_context(model, chunk, look):
    """A chunk with lookahead is computed like a masked forward whose chunks also see `look` frames
    after them (exact for the first chunk; later ones keep the cache of the frames they already
    committed, whose lookahead they saw then), and every frame is committed exactly once."""
    torch.manual_seed(2)
    feats = torch.randn(301, model.cfg.feat_dim)
    S, R = model.subsample.stride, model.subsample.context
    win = (chunk + look - 1) * S + R
    with torch.no_grad():
        ref, _ = model(feats[None, :win], torch.tensor([win]), chunk=chunk, lookahead=look)
        no_look, _ = model(feats[None, :win], torch.tensor([win]), chunk=chunk)
    st = model.init_state()
    first = model.forward_chunk(feats[:win], st, -1, commit=chunk)
    torch.testing.assert_close(first[:chunk], ref[0, :chunk], atol=1e-4, rtol=0)
    assert (first[:chunk] - no_look[0, :chunk]).abs().max() > 1e-3    # the lookahead is used
    assert st["offset"] == chunk and st["att"][0].shape[3] == chunk and st["conv"][0].shape[2] == model.cfg.conv_kernel - 1


def test_stream_with_lookahead_any_pieces_every_frame_once(model):
    wave = (np.random.default_rng(3).standard_normal(16000 * 3) * 0.1).astype(np.float32)
    expected = int(model.subsample.out_lengths(torch.tensor([num_frames(wave.size)]))[0])
    for look in (0, 160, 400):
        outs = []
        for piece in (2560, 1999):
            s = AcousticStream(model, chunk_ms=320, lookahead_ms=look)
            got = []
            for p in range(0, wave.size, piece):
                got += s.accept_waveform(wave[p:p + piece])
                assert s.frames <= expected - s.lookahead         # lookahead frames are not final yet
            got += s.flush()
            assert s.frames == expected
            last = {x.index: x for x in got}
            outs.append([(x.syllable, x.start, x.end) for _, x in sorted(last.items())])
        assert outs[0] == outs[1]                                  # same result whatever the pieces


def test_full_context_equals_streaming_when_chunk_covers_utterance(model):
    feats = torch.randn(200, model.cfg.feat_dim)
    with torch.no_grad():
        full, _ = model(feats[None], torch.tensor([200]))            # chunk=0: full context
    online = stream_chunks(model, feats, chunk=1000, left_chunks=-1)
    torch.testing.assert_close(online, full[0], atol=1e-4, rtol=0)


def test_padding_does_not_change_outputs(model):
    a, b = torch.randn(150, model.cfg.feat_dim), torch.randn(90, model.cfg.feat_dim)
    x = torch.nn.utils.rnn.pad_sequence([a, b], batch_first=True)
    with torch.no_grad():
        batch, n = model(x, torch.tensor([150, 90]), chunk=3, left_chunks=1)
        alone, m = model(b[None], torch.tensor([90]), chunk=3, left_chunks=1)
    assert int(n[1]) == alone.shape[1]
    torch.testing.assert_close(batch[1, : int(n[1])], alone[0], atol=1e-4, rtol=0)


def test_chunk_mask_bounds_left_context():
    m = chunk_mask(6, 2, 1)
    assert m[5].tolist() == [False, False, True, True, True, True]
    assert m[2].tolist() == [True, True, True, True, False, False]
    assert chunk_mask(6, 0, -1) is None
    m = chunk_mask(6, 2, -1, lookahead=1)
    assert m[0].tolist() == [True, True, True, False, False, False]
    assert m[5].tolist() == [True] * 6


def test_stream_bad_input_and_bounded_memory(model):
    s = AcousticStream(model, chunk_ms=320, left_ms=640)
    assert s.accept_waveform(np.zeros(1, np.float32)) == []               # 1 sample
    bad = np.full(4000, np.nan, np.float32)
    bad[::3] = np.inf
    s.accept_waveform(bad)                                                  # NaN / inf
    rng = np.random.default_rng(0)
    for _ in range(60):                                                     # 60 s of noise
        s.accept_waveform((rng.standard_normal(16000) * 0.05).astype(np.float32))
        assert s.frontend.fbank.buf.numel() < 400 and s.feats.shape[0] < s.window
        assert s.frontend.buf.numel() < 512                                 # pitch window
        for att in s.state["att"]:
            assert att.shape[3] <= s.keep
    s.flush()
    total = 1 + 4000 + 60 * 16000
    expected = model.subsample.out_lengths(torch.tensor([num_frames(total)]))
    assert s.frames == int(expected[0])                                     # all audio decoded
    assert s.seconds == total / 16000


def test_silence_and_tiny_inputs_decode_to_lists(model):
    for n in (0, 1, 399, 1600, 16000):
        s = AcousticStream(model)
        out = s.accept_waveform(np.zeros(n, np.float32)) + s.flush()
        assert isinstance(out, list)


def test_save_load_fp16_roundtrip(model, tmp_path):
    save_model(model, tmp_path / "m.pt", half=True)
    m2 = load_model(tmp_path / "m.pt")
    feats = torch.randn(1, 120, model.cfg.feat_dim)
    with torch.no_grad():
        a, _ = model(feats, torch.tensor([120]))
        b, _ = m2(feats, torch.tensor([120]))
    assert (a.argmax(-1) == b.argmax(-1)).float().mean() > 0.9
    with pytest.raises(ModelLoadError):
        load_model(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ModelLoadError):
        load_model(tmp_path / "junk.pt")


def test_long_offline_input_is_decoded_in_bounded_chunks(model):
    from asr_pinyin.acoustic.evaluate import transcribe_full, transcribe_stream

    wave = (np.random.default_rng(1).standard_normal(16000 * 40) * 0.05).astype(np.float32)
    long = transcribe_full(model, [wave[:16000], wave], max_full_s=20)
    assert long[1] == transcribe_stream(model, wave, 16000, 16000, piece_s=16.0)
    assert long[0] == transcribe_full(model, [wave[:16000]])[0]


def test_batched_chunks_equal_single_stream_chunks(model):
    """The server's batched forward (recognizer.batching) == forward_chunk per stream, pitch too."""
    from asr_pinyin.recognizer.batching import forward_chunk_batch

    torch.manual_seed(2)
    S, R = model.subsample.stride, model.subsample.context
    chunk, keep = 3, 6
    win = (chunk - 1) * S + R
    feats = [torch.randn(5 * chunk * S + R, model.cfg.feat_dim) for _ in range(3)]
    alone_states = [model.init_state() for _ in feats]
    batch_states = [model.init_state() for _ in feats]
    for i in range(0, 4 * chunk * S, chunk * S):
        windows = torch.stack([f[i:i + win] for f in feats])
        batched = forward_chunk_batch(model, windows, batch_states, keep)
        for b, f in enumerate(feats):
            alone = model.forward_chunk(f[i:i + win], alone_states[b], keep)
            torch.testing.assert_close(batched[b], alone, atol=1e-4, rtol=0)
