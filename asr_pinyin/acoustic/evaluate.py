"""Scoring: syllable error rate (tonal and toneless), real-time factor, and CER once the LM exists.

`evaluate()` runs a model over manifest utterances in full-context mode (batched forward) or
streaming mode (`AcousticStream`, audio fed in 160 ms pieces, as a client would send it) and
returns the metrics dict that `asr-pinyin eval` prints. RTF counts feature extraction, the
encoder and decoding (not reading files).
"""
from __future__ import annotations

import time

import torch

from asr_pinyin.lm.slots import acoustic_slot
from asr_pinyin.pinyin import strip_tone

from .dataset import Utt, load_wave
from .decode import Syllable, decode
from .frontend import features
from .model import AcousticModel
from .stream import AcousticStream

PUNCT = set("，。？！、：；,.?!:;\"'“”‘’（）() 　")


def edit_distance(ref: list, hyp: list) -> int:
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        cur = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h))
        prev = cur
    return prev[-1]


@torch.no_grad()
def transcribe_full(model: AcousticModel, waves: list, method: str = "greedy", k: int = 5,
                    max_full_s: float = 60.0) -> list[list[Syllable]]:
    """Full-context decoding of a batch of 16 kHz waveforms.

    Attention memory grows with the square of the length, so a wave longer than `max_full_s`
    is decoded in 16 s chunks with one chunk of left context instead (bounded memory).
    """
    if any(len(w) > max_full_s * 16000 for w in waves):
        return [transcribe_stream(model, w, 16000, 16000, 16.0, k) if len(w) > max_full_s * 16000
                else transcribe_full(model, [w], method, k)[0] for w in waves]
    lps = forward_full(model, [features(w, model.cfg.n_mels, model.cfg.pitch_kind) for w in waves])
    return [decode(lp, method, model.frame_shift, k) if lp.numel() else [] for lp in lps]


@torch.no_grad()
def forward_full(model: AcousticModel, feats: list[torch.Tensor]) -> list[torch.Tensor]:
    """Feature sequences -> their full-context log-probs (T_i, V) on the CPU, one padded forward.
    Used by offline decoding, the recognizer's second pass and the benchmarks."""
    if not feats or max(f.shape[0] for f in feats) == 0:
        return [torch.zeros(0, model.cfg.vocab_size) for _ in feats]
    dev = model.cmvn.mean.device
    lengths = torch.tensor([f.shape[0] for f in feats], device=dev)
    x = torch.nn.utils.rnn.pad_sequence(feats, batch_first=True).to(dev)
    lp, n = model(x, lengths)
    lp, n = lp.float().cpu(), n.cpu()
    return [lp[i, : n[i]] for i in range(len(feats))]


@torch.no_grad()
def transcribe_stream(model: AcousticModel, wave, chunk_ms: int = 640, left_ms: int = 5120,
                      piece_s: float = 0.16, k: int = 5, lookahead_ms: int = 0) -> list[Syllable]:
    """Streaming decoding: the audio arrives in `piece_s` pieces; the last update of each index wins."""
    stream = AcousticStream(model, chunk_ms, left_ms, k, lookahead_ms)
    out: dict[int, Syllable] = {}
    step = int(piece_s * 16000)
    for i in range(0, max(len(wave), 1), step):
        for s in stream.accept_waveform(wave[i:i + step]):
            out[s.index] = s
    for s in stream.flush():
        out[s.index] = s
    return [out[i] for i in sorted(out)]


def load_text_decoder(path=None):
    """The language stage as `slots -> (text, pinyin)`, or None when it or its model is missing
    (cer: null). `pinyin`: each hanzi's reading among its slot's syllables.

    `slots` is what the acoustic stage hands over: one list per syllable of (syllable, prob);
    `asr_pinyin.lm.LanguageModel.convert` takes exactly that.
    """
    try:
        from asr_pinyin.lm import LanguageModel
        lm = LanguageModel.load(path)
    except Exception:
        return None

    def decode_slots(slots) -> tuple[str, list[str]]:
        if not slots:
            return "", []
        try:
            # hanzi as the labels have them: numbers stay in hanzi (no ITN) for the CER
            conv = lm.convert([list(map(tuple, s)) for s in slots], itn_numbers=False)
        except ValueError:                # input the LM refuses counts as an empty hypothesis
            return "", []
        return conv.text, [c.pinyin for c in conv.chars]
    return decode_slots


def evaluate(model: AcousticModel, utts: list[Utt], mode: str = "full", chunk_ms: int = 640,
             left_ms: int = 5120, method: str = "greedy", batch: int = 8, texts: dict | None = None,
             lm_path=None, lookahead_ms: int = 0) -> dict:
    if mode not in ("full", "streaming"):
        raise ValueError(f"mode must be full or streaming, not {mode!r}")
    model.eval()
    lm = load_text_decoder(lm_path) if texts else None
    errs = errs_tl = n_ref = char_errs = n_chars = lm_errs = lm_ref = 0
    seconds = compute = 0.0
    unreadable = 0
    for b in range(0, len(utts), batch):
        group, waves = [], []
        for u in utts[b:b + batch]:
            try:
                waves.append(load_wave(u.audio))
                group.append(u)
            except Exception:             # missing or corrupt file: counted, not fatal
                unreadable += 1
        if not group:
            continue
        t0 = time.perf_counter()
        if mode == "full":
            hyps = transcribe_full(model, waves, method)
        else:
            hyps = [transcribe_stream(model, w, chunk_ms, left_ms, lookahead_ms=lookahead_ms) for w in waves]
        compute += time.perf_counter() - t0
        for u, w, hyp in zip(group, waves, hyps):
            seconds += len(w) / 16000
            ref = u.pinyin.split()
            h = [s.syllable for s in hyp]
            errs += edit_distance(ref, h)
            errs_tl += edit_distance([strip_tone(s) for s in ref], [strip_tone(s) for s in h])
            n_ref += len(ref)
            if lm is not None and texts.get(u.id):
                ref_chars = [c for c in texts[u.id] if c not in PUNCT]
                hyp_text, lm_pinyin = lm([acoustic_slot(s.alternatives, decoded=s.syllable) for s in hyp])
                char_errs += edit_distance(ref_chars, [c for c in hyp_text if c not in PUNCT])
                lm_errs += edit_distance(ref, lm_pinyin)
                lm_ref += len(ref)
                n_chars += len(ref_chars)
    return {
        "syllable_error_rate": round(errs / max(n_ref, 1), 4),
        "syllable_error_rate_toneless": round(errs_tl / max(n_ref, 1), 4),
        "cer": round(char_errs / n_chars, 4) if n_chars else None,
        # the readings of the language stage's hanzi: what a final's `pinyin` holds
        "syllable_error_rate_after_lm": round(lm_errs / lm_ref, 4) if lm_ref else None,
        "rtf": round(compute / max(seconds, 1e-9), 4),
        "utterances": len(utts) - unreadable,
        "unreadable": unreadable,
        "audio_seconds": round(seconds, 2),
        "mode": mode,
        "chunk_ms": chunk_ms if mode == "streaming" else None,
        "lookahead_ms": lookahead_ms if mode == "streaming" else None,
        "decoding": method if mode == "full" else "greedy",
    }
