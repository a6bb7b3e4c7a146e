"""Acoustic-model configuration: one dataclass per concern, read from a TOML recipe.

A recipe file has the sections [model], [data], [augment], [train]; any field left out keeps
the default written here. `load_config("synth")` reads a shipped recipe from
`asr_pinyin/acoustic/data/<name>.toml`; any other value is a path.
"""
from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

RECIPE_DIR = Path(__file__).parent / "data"


class ConfigError(ValueError):
    """A recipe that cannot be used: missing file, unknown section or field, bad value."""


@dataclass
class ModelConfig:
    n_mels: int = 80
    conv_channels: int = 64      # conv2d subsampling channels (2 convs, stride 2 each -> 40 ms)
    stack: int = 2               # then stack this many 40 ms frames: 2 -> 80 ms per output frame
    d_model: int = 192
    n_heads: int = 4
    ff_mult: int = 4
    n_layers: int = 8
    conv_kernel: int = 15        # causal depthwise conv in each block (frames of left context)
    dropout: float = 0.1
    # Pre-LN throughout: no LayerNorm at the end of each block, one before the head. The
    # Conformer paper's per-block final LayerNorm (pre_ln = false) makes a deep stack a post-LN
    # network: at 8 layers it sat on the CTC blank plateau for 1,500+ steps where pre-LN left it
    # in ~100 (64-utterance check, docs/ACOUSTIC.md).
    pre_ln: bool = False
    vocab_size: int = 1364       # blank (0) + 1,363 tonal syllables in asr_pinyin.pinyin.TONAL order
    # Explicit pitch features (voicing, relative log F0, slope) beside the fbank, for the tones:
    # each output frame adds a linear map of its 8 frames of pitch to the subsampled fbank.
    pitch: bool = False
    # 1: the first pitch features; 2: a held, de-glitched track and a clipped 40 ms slope
    # (frontend.py, "Version 2"); 3: version 2 on raw F0 that no longer jumps to 400 Hz where
    # a low voice goes under 60 Hz (frontend._raw_pitch). Checkpoints without the field are 1.
    pitch_version: int = 1
    # Tones shared across syllables: each tonal unit's logit also gets a term for its base
    # syllable and one for its tone, from two small zero-initialised heads. With one output per
    # tonal syllable alone, a rare syllable learns its tone from its own few examples: on dev,
    # tonal units seen < 300 times in training had their tone right 36-57 % of the time, frequent
    # ones 91-96 %. The shared tone head learns "tone 3" from every tone-3 syllable.
    factored_head: bool = False

    @property
    def pitch_kind(self) -> int:
        """What `features(..., with_pitch=)` takes: 0 no pitch, else the pitch version."""
        return self.pitch_version if self.pitch else 0

    @property
    def feat_dim(self) -> int:
        from .frontend import PITCH_DIM

        return self.n_mels + (PITCH_DIM if self.pitch else 0)

    @property
    def frame_shift_ms(self) -> int:
        return 40 * self.stack


@dataclass
class DataConfig:
    train: list[str] = field(default_factory=lambda: ["data/speech/train.jsonl"])
    dev: str = "data/speech/dev.jsonl"
    max_duration: float = 20.0       # s; longer utterances are skipped in training
    batch_seconds: float = 120.0     # dynamic batching: total audio seconds per batch
    num_workers: int = 1
    cmvn_utterances: int = 500       # utterances read to estimate global CMVN
    dev_limit: int = 200             # dev utterances scored at each validation


@dataclass
class AugmentConfig:
    speed: list[float] = field(default_factory=lambda: [0.9, 1.0, 1.1])
    # tempo perturbation (pitch and formants kept; after speed): on this share of utterances,
    # a factor drawn uniformly from tempo_range (> 1 = faster)
    tempo_prob: float = 0.0
    tempo_range: list[float] = field(default_factory=lambda: [0.8, 1.4])
    callable: str = ""               # "module:function" fn(wave, sr, rng) -> wave; "" = built-in below
    noise_prob: float = 0.0          # used when asr_pinyin.audio.augment is present
    reverb_prob: float = 0.0
    snr_db: list[float] = field(default_factory=lambda: [5.0, 25.0])
    freq_masks: int = 2
    freq_mask_width: int = 15
    time_masks: int = 2
    time_mask_frames: int = 40


@dataclass
class TrainConfig:
    out_dir: str = "runs/am"
    max_steps: int = 20000
    lr: float = 2e-3
    min_lr: float = 1e-5
    warmup_steps: int = 1000
    weight_decay: float = 0.01
    grad_clip: float = 5.0
    # dynamic chunk training (WeNet U2): half the batches full context, half a random chunk
    dynamic_chunk_prob: float = 0.5
    max_chunk_frames: int = 12       # random chunk size in output frames, 1..max
    max_left_chunks: int = 8         # random bounded left context, 1..max chunks (or unlimited)
    max_lookahead_frames: int = 0    # >0: chunked batches also see 0..max frames after each chunk
    chunk_after: int = 0             # full context only before this step (chunks once CTC has aligned)
    inter_ctc_layer: int = 0         # >0: also a CTC loss on this layer's output (same head)
    inter_ctc_weight: float = 0.0
    log_every: int = 20
    eval_every: int = 1000
    save_every: int = 500
    keep_checkpoints: int = 5
    average_last: int = 5
    threads: int = 2
    seed: int = 1234
    time_limit_s: float = 0.0        # >0: stop (after a checkpoint) once this much wall time is spent
    sortagrad: bool = False          # first epoch shortest-first (escapes the CTC blank plateau sooner)
    augment_after: int = 0           # steps before noise, rooms and SpecAugment start (speed from 0)
    init_from: str = ""              # fine-tuning: start from this checkpoint's weights and CMVN
    patience: int = 0                # >0: stop when dev SER has not improved for this many evaluations
    # the product: the average of the last `average_last` snapshots (pretraining), or with keep_best
    # the state with the best dev SER, the starting point included (fine-tuning on a small voice:
    # its last steps over-fit, and an adapter that does not beat the base on dev must not hurt it)
    keep_best: bool = False
    # parameter-efficient fine-tuning (peft LoRA on the Linear layers named here; rank 0 = off)
    lora_rank: int = 0
    lora_alpha: float = 16.0
    lora_dropout: float = 0.0        # dropout on the LoRA path's input (training only)
    lora_targets: list[str] = field(default_factory=lambda: ["qkv", "out", "pw1", "pw2", "ff1.1", "ff1.4",
                                                             "ff2.1", "ff2.4"])


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Config":
        sections = {f.name: f.type for f in dataclasses.fields(cls)}
        kwargs = {}
        for name, value in d.items():
            if name not in sections:
                raise ConfigError(f"unknown section [{name}] (known: {', '.join(sections)})")
            sub = {"model": ModelConfig, "data": DataConfig, "augment": AugmentConfig,
                   "train": TrainConfig}[name]
            known = {f.name for f in dataclasses.fields(sub)}
            bad = set(value) - known
            if bad:
                raise ConfigError(f"unknown field(s) in [{name}]: {', '.join(sorted(bad))}")
            kwargs[name] = sub(**value)
        return cls(**kwargs)


def apply_overrides(raw: dict, overrides: list[str] | None) -> dict:
    """Set each `section.key=value` (a TOML literal, else the bare string) in a recipe dict."""
    for item in overrides or []:
        key, _, val = item.partition("=")
        section, _, name = key.partition(".")
        if not name or not _:
            raise ConfigError(f"override must look like section.key=value: {item!r}")
        try:
            parsed = tomllib.loads(f"v = {val}")["v"]
        except tomllib.TOMLDecodeError:
            parsed = val
        raw.setdefault(section, {})[name] = parsed
    return raw


def load_config(path_or_name: str, overrides: list[str] | None = None) -> Config:
    """Read a recipe (a path, or a shipped name like `synth`), then apply `section.key=value`."""
    path = Path(path_or_name)
    if not path.exists() and (RECIPE_DIR / f"{path_or_name}.toml").exists():
        path = RECIPE_DIR / f"{path_or_name}.toml"
    if not path.is_file():
        raise ConfigError(f"config not found: {path_or_name}")
    try:
        raw = tomllib.loads(path.read_text("utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: {e}") from None
    cfg = Config.from_dict(apply_overrides(raw, overrides))
    if isinstance(cfg.data.train, str):
        cfg.data.train = [cfg.data.train]
    return cfg
