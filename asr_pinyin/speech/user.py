"""A simulated user: one fixed voice, recorded through one fixed channel.

Voice enrollment adapts the acoustic model to one person at their own microphone, in their own
room. `heldout_voice/` draws a new klatt variant, rate, pitch and pitch range for every
utterance: a family of voices, which no per-person adapter can fit. A `SimulatedUser` is what
enrollment is for: one klatt variant and one set of voice settings drawn once from the seed
(from the ranges `heldout_voice/` draws from: the klatt family is in no training split), with a
person's small take-to-take variation (rate +-5 %, pitch +-3, range +-5), and, with
`channel="room"`, one room impulse response (RT60 0.3-0.6 s), one microphone response (high-pass
80-200 Hz, low-pass 5-7.5 kHz, a presence bump or dip of 3-6 dB at 1.5-4 kHz) and one noise
floor (pink or brown at 20-30 dB SNR, a fresh stretch of it per take). `channel="clean"` keeps
only the voice. Both the enrollment takes and the test sentences go through the same user,
as they would for a person.
"""
from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field

import torch
import torchaudio.functional as AF

from ..audio.augment import SR, add_noise, coloured_noise, reverb, room_rir
from .espeak import FAMILIES
from .voices import ESPEAK_TRAIN, HELDOUT_FAMILY, _pick

CHANNELS = ("clean", "room")


@dataclass
class SimulatedUser:
    """Everything fixed about one user; `voice(i)` and `record(wav, i)` vary only per take."""
    seed: int
    channel: str = "room"
    variant: str = ""
    rate: int = 0
    pitch: int = 0
    pitch_range: int = 0
    room: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.channel not in CHANNELS:
            raise ValueError(f"channel must be one of {CHANNELS}, not {self.channel!r}")
        rng = random.Random(f"user/{self.seed}")
        self.variant = rng.choice(FAMILIES[HELDOUT_FAMILY])
        self.rate = _pick(rng, ESPEAK_TRAIN["rate"])
        self.pitch = _pick(rng, ESPEAK_TRAIN["pitch"])
        self.pitch_range = _pick(rng, ESPEAK_TRAIN["range"])
        if self.channel == "room":
            self.room = {"rt60": round(rng.uniform(0.3, 0.6), 2), "highpass_hz": round(rng.uniform(80, 200)),
                         "lowpass_hz": round(rng.uniform(5000, 7500)),
                         "presence_hz": round(rng.uniform(1500, 4000)),
                         "presence_db": round(rng.choice([-1, 1]) * rng.uniform(3, 6), 1),
                         "noise": rng.choice(["pink", "brown"]), "snr_db": round(rng.uniform(20, 30), 1),
                         "peak_db": round(rng.uniform(-9, -3), 1), "rir_seed": rng.randrange(2**31)}
            self._rir = room_rir(self.room["rt60"], torch.Generator().manual_seed(self.room["rir_seed"]))

    def describe(self) -> dict:
        return asdict(self)

    def voice(self, i: int) -> dict:
        """The espeak voice of take `i`: this user's settings with a person's small variation."""
        rng = random.Random(f"user/{self.seed}/take/{i}")
        return {"engine": "espeak", "family": f"espeak/{HELDOUT_FAMILY}", "variant": self.variant,
                "rate": max(80, round(self.rate * rng.uniform(0.95, 1.05))),
                "pitch": min(99, max(0, self.pitch + rng.randint(-3, 3))),
                "pitch_range": min(99, max(0, self.pitch_range + rng.randint(-5, 5))),
                "peak_db": self.room.get("peak_db", -3.0)}

    def room_and_mic(self, wav: torch.Tensor) -> torch.Tensor:
        """The room's reverberation, then the microphone's response (no noise, no level)."""
        r = self.room
        x = reverb(wav, self._rir)
        x = AF.highpass_biquad(x, SR, float(r["highpass_hz"]))
        x = AF.lowpass_biquad(x, SR, float(r["lowpass_hz"]))
        return AF.equalizer_biquad(x, SR, float(r["presence_hz"]), float(r["presence_db"]), 1.0)

    def record(self, wav: torch.Tensor, i: int) -> torch.Tensor:
        """What this user's microphone makes of take `i` (16 kHz mono float in, same out)."""
        if self.channel == "clean":
            return wav
        r = self.room
        x = self.room_and_mic(wav)
        g = torch.Generator().manual_seed((r["rir_seed"] + 7919 * (i + 1)) % 2**31)
        x = add_noise(x, coloured_noise(x.numel(), r["noise"], g), r["snr_db"])
        peak = float(x.abs().max()) if x.numel() else 0.0
        return x * (10 ** (r["peak_db"] / 20) / peak) if peak > 0 else x

    def record_file(self, src, dst, i: int) -> None:
        """`record` from one audio file to a 16 kHz FLAC (the two may be the same path)."""
        from ..audio.io import load_audio, save_flac

        save_flac(dst, self.record(torch.from_numpy(load_audio(src)), i).numpy())
