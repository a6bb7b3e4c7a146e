"""How well can tones be told apart from the pitch features alone, given the true syllable spans?

A ceiling for pitch-based tone reading, independent of the acoustic model: espeak reads random
tonal syllables (`speech/syllables.py`, so the tone cannot be guessed from the syllable) in
training voice settings; its word events (one per pinyin syllable) give each syllable's start;
the frontend's raw F0 (`_raw_pitch`, version 2 or 3), held through unvoiced frames as version 2
does and taken relative to the utterance's voiced mean, gives each syllable 5 contour points, its
rise, voiced share and length; a small MLP over those of the syllable and its two neighbours is
trained on the first 75 % of the utterances and scored on the rest.

    .venv/bin/python bench/tone_ceiling.py --utterances 300 --version 2 --version 3
    .venv/bin/python bench/tone_ceiling.py --utterances 600 --version 3 --version viterbi:5 --version viterbi
    .venv/bin/python bench/tone_ceiling.py --utterances 600 --version 3 --user 4 --channel room
    .venv/bin/python bench/tone_ceiling.py --utterances 300 --version 3 --user 4 --channel room --dereverb 10,3

`--user SEED` reads the syllables in one enrollment benchmark user's voice instead
(`speech.user.SimulatedUser`: its klatt variant and settings with take-to-take variation, and
with `--channel room` its room, microphone and noise): do that user's recordings carry the tones?

`--version viterbi[:N]` scores a candidate track instead (not in the frontend; session 10): the 6
best NCCF peaks of each frame (version 3's search), the path that maximises summed correlation
minus VITERBI_PENALTY x |change of log F0| between voiced frames, decided over the whole
utterance, or N frames later (what streaming could afford: N x 10 ms more latency).
`--dereverb TAPS,DELAY` runs single-channel WPE dereverberation (the `nara-wpe` package, not a
project dependency: `pip install nara-wpe`) on every utterance before the pitch tracker (session 16:
it does not give user 4's room its tones back).
The audio is synthesized once and every version scored on it.
Prints one JSON line per version (tone accuracy, confusion matrix rows = reference tone 1-5).
"""
from __future__ import annotations

import argparse
import ctypes
import json
import random
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from asr_pinyin.acoustic import frontend as FE  # noqa: E402
from asr_pinyin.speech import espeak as E  # noqa: E402
from asr_pinyin.speech.syllables import random_sentences  # noqa: E402
from asr_pinyin.speech.user import SimulatedUser  # noqa: E402
from asr_pinyin.speech.voices import ESPEAK_TRAIN, TRAIN_VARIANTS  # noqa: E402

EVENT_WORD, EVENT_END_OF_LIST = 1, 0


class EspeakEvent(ctypes.Structure):
    """speak_lib.h's espeak_EVENT (x86-64 layout)."""
    _fields_ = [("type", ctypes.c_int), ("unique_identifier", ctypes.c_uint), ("text_position", ctypes.c_int),
                ("length", ctypes.c_int), ("audio_position", ctypes.c_int), ("sample", ctypes.c_int),
                ("user_data", ctypes.c_void_p), ("id", ctypes.c_char * 8)]


class TimedEspeak(E.Espeak):
    """`Espeak` that also records the sample at which each word (here: syllable) starts."""

    def __init__(self):
        super().__init__()
        self.word_starts: list[int] = []
        self._cb = E._CALLBACK(self._collect_timed)

    def _collect_timed(self, wav, n, events):
        self._collect(wav, n, events)
        ev = ctypes.cast(events, ctypes.POINTER(EspeakEvent))
        i = 0
        while ev[i].type != EVENT_END_OF_LIST:
            if ev[i].type == EVENT_WORD:
                self.word_starts.append(ev[i].sample)
            i += 1
        return 0


def synthesize(engine: TimedEspeak, pinyin: str, voice: dict):
    """16 kHz audio and each syllable's start frame, or None when espeak's events do not match."""
    import torchaudio.functional as AF

    syls = pinyin.split()
    engine.word_starts = []
    wav = engine.synth(pinyin, **voice)
    if len(engine.word_starts) != len(syls):
        return None
    x = FE.sanitize(AF.resample(torch.from_numpy(wav), engine.sample_rate, FE.SAMPLE_RATE))
    return x, [int(s / engine.sample_rate * 100) for s in engine.word_starts]


VITERBI_PENALTY, VITERBI_CANDIDATES = 3.0, 6


def viterbi_pitch(padded: torch.Tensor, n: int, lag: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Voicing and a candidate-path log F0 (see the module doc); `lag` None = whole utterance."""
    c = FE.nccf(padded, n, FE.LAG_MAX_V3)                  # version 3's search
    mid = c[:, 1:-1]
    peak = (mid >= c[:, :-2]) & (mid >= c[:, 2:])
    top = torch.where(peak, mid, torch.full_like(mid, -1.0)).topk(VITERBI_CANDIDATES, 1)
    lf = np.stack([FE.peak_log_f0(c, top.indices[:, j]) for j in range(VITERBI_CANDIDATES)], 1)
    val = top.values.numpy()
    voicing = mid.max(1).values.clamp(0, 1).numpy()
    voiced = voicing >= FE.VOICED
    local = np.where(val > -1, val, -9.0)                  # no peak: a candidate never taken
    score, back, scores = local[0].copy(), np.zeros((n, VITERBI_CANDIDATES), int), [local[0].copy()]
    for t in range(1, n):
        trans = score[None, :] - VITERBI_PENALTY * np.abs(lf[t][:, None] - lf[t - 1][None, :]) * (voiced[t] and voiced[t - 1])
        back[t], score = trans.argmax(1), local[t] + trans.max(1)
        scores.append(score)
    out = np.empty(n)
    if lag is None:                                        # one backtrack over the whole utterance
        j = int(scores[-1].argmax())
        for t in range(n - 1, -1, -1):
            out[t], j = lf[t, j], back[t, j]
        return voicing, out
    for t in range(n):                                     # decide frame t at frame t + lag
        end = min(n - 1, t + lag)
        j = int(scores[end].argmax())
        for s in range(end, t, -1):
            j = back[s, j]
        out[t] = lf[t, j]
    return voicing, out


def dereverb(x: torch.Tensor, taps: int, delay: int, size: int = 512, shift: int = 128) -> torch.Tensor:
    """Offline single-channel WPE (3 iterations) on a 512/128 STFT; same length out."""
    try:
        from nara_wpe.utils import istft, stft
        from nara_wpe.wpe import wpe
    except ImportError:
        raise SystemExit("--dereverb needs the nara-wpe package: .venv/bin/pip install nara-wpe")
    spec = stft(x.numpy().astype(np.float64)[None], size=size, shift=shift).transpose(2, 0, 1)
    out = wpe(spec, taps=taps, delay=delay, iterations=3, statistics_mode="full").transpose(1, 2, 0)
    return torch.from_numpy(istft(out, size=size, shift=shift)[0][: x.numel()].astype(np.float32))


def raw_pitch(x: torch.Tensor, version: str) -> tuple[np.ndarray, np.ndarray]:
    padded, n = torch.cat([x.new_zeros(FE.PITCH_PAD), x]), FE.num_frames(x.numel())
    if version.startswith("viterbi"):
        return viterbi_pitch(padded, n, int(version.split(":")[1]) if ":" in version else None)
    return FE._raw_pitch(padded, n, int(version))


def syllable_features(x: torch.Tensor, starts: list, n_syllables: int, version: str) -> np.ndarray:
    n = FE.num_frames(x.numel())
    voicing, log_f0 = raw_pitch(x, version)
    track = FE.held_track(voicing, log_f0)[0]
    voiced = voicing >= FE.VOICED
    track = track - (track[voiced].mean() if voiced.any() else 0.0)
    starts = starts + [n]
    rows = []
    for j in range(n_syllables):
        a, b = starts[j], max(starts[j + 1], starts[j] + 2)
        v, f = voiced[a:b], track[a:b]
        pts = np.interp(np.linspace(0, v.sum() - 1, 5), np.arange(v.sum()), f[v]) if v.sum() >= 3 else np.zeros(5)
        rows.append(np.concatenate([pts, [pts[-1] - pts[0], v.mean(), (b - a) / 30]]))
    rows = np.array(rows)
    pad = np.zeros((1, rows.shape[1]))
    prev, nxt = np.concatenate([pad, rows[:-1]]), np.concatenate([rows[1:], pad])
    pos = (np.arange(n_syllables) / n_syllables)[:, None]
    return np.concatenate([rows, prev, nxt, pos], 1)


def score(X: np.ndarray, y: np.ndarray, group: np.ndarray) -> tuple[float, list]:
    torch.manual_seed(0)
    X = torch.tensor(X, dtype=torch.float32)
    X = (X - X.mean(0)) / X.std(0).clamp_min(1e-6)
    y = torch.tensor(y)
    train = torch.tensor(group < np.quantile(group, 0.75))
    net = torch.nn.Sequential(torch.nn.Linear(X.shape[1], 128), torch.nn.ReLU(), torch.nn.Linear(128, 128),
                              torch.nn.ReLU(), torch.nn.Linear(128, 5))
    opt = torch.optim.AdamW(net.parameters(), 3e-3, weight_decay=1e-3)
    for _ in range(1500):
        loss = torch.nn.functional.cross_entropy(net(X[train]), y[train])
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        pred = net(X[~train]).argmax(-1)
    confusion = torch.zeros(5, 5, dtype=torch.long)
    for a, b in zip(y[~train].tolist(), pred.tolist()):
        confusion[a, b] += 1
    return float((pred == y[~train]).float().mean()), confusion.tolist()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--utterances", type=int, default=300)
    ap.add_argument("--version", action="append",
                    help="raw F0: 2 (= 1), 3, viterbi or viterbi:N (frames of lag); repeatable")
    ap.add_argument("--seed", type=int, default=4242)
    ap.add_argument("--user", type=int, default=None, help="a SimulatedUser's voice (seed), not training voices")
    ap.add_argument("--channel", choices=("clean", "room"), default="clean", help="with --user: its channel")
    ap.add_argument("--dereverb", default=None, metavar="TAPS,DELAY", help="WPE before the tracker (nara-wpe)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    engine = TimedEspeak()
    variants = [v for v in TRAIN_VARIANTS if not v.startswith("whisper")]   # whispers have no F0
    rng = random.Random(7)
    audio = []                                   # (utterance index, tones, 16 kHz audio, starts)
    user = SimulatedUser(args.user, args.channel) if args.user is not None else None
    for k, sent in enumerate(random_sentences(args.seed, args.utterances)):
        if user is not None:
            v = user.voice(k)
            voice = {key: v[key] for key in ("variant", "rate", "pitch", "pitch_range")}
        else:
            voice = dict(variant=rng.choice(variants), rate=rng.randint(*ESPEAK_TRAIN["rate"]),
                         pitch=rng.randint(*ESPEAK_TRAIN["pitch"]), pitch_range=rng.randint(40, 80))
        got = synthesize(engine, sent["pinyin"], voice)
        if got is not None and user is not None:      # the room's delay is ~1 ms: starts stand
            got = (FE.sanitize(user.record(got[0], k)), got[1])
        if got is not None and args.dereverb:
            got = (dereverb(got[0], *map(int, args.dereverb.split(","))), got[1])
        if got is not None:
            audio.append((k, [int(s[-1]) - 1 for s in sent["pinyin"].split()], *got))
    for version in args.version or ["2", "3"]:
        feats = [syllable_features(x, starts, len(tones), version) for _, tones, x, starts in audio]
        tones = [t for _, ts, _, _ in audio for t in ts]
        group = [k for k, ts, _, _ in audio for _ in ts]
        acc, confusion = score(np.concatenate(feats), np.array(tones), np.array(group))
        print(json.dumps({"version": version, "user": args.user, "channel": args.channel if user else None,
                          "dereverb": args.dereverb, "utterances": len(audio), "syllables": len(tones),
                          "tone_accuracy": round(acc, 4), "confusion": confusion}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
