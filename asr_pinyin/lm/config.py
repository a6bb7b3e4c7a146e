"""Configuration of the pinyin->hanzi model and its training, read top to bottom.

A config file (e.g. `asr_pinyin/lm/configs/base.py`) is plain Python that defines `config`, a
`TrainConfig`. Every field has a default, so a file only states what it changes.
"""
from __future__ import annotations

import runpy
from dataclasses import asdict, dataclass, field


@dataclass
class ModelConfig:
    d_model: int = 256
    n_layers: int = 4
    n_heads: int = 4
    d_ff: int = 1024
    dropout: float = 0.1
    max_len: int = 128  # positions; longer inputs are decoded in overlapping windows
    d_out: int = 128  # bottleneck before the hanzi softmax (keeps the big output matrix cheap)


@dataclass
class TrainConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    # data: text sets in the shared JSONL format {"id","text","pinyin"}
    train: str = "data/text/train.jsonl"
    dev: str = "data/text/dev.jsonl"
    extra_train: list[str] = field(default_factory=list)  # more JSONL files mixed into train
    min_char_count: int = 3  # hanzi outside GB2312 enter the vocabulary from this count
    dev_sentences: int = 1000  # dev subset scored at each evaluation
    # input views of each sentence (what the model learns to read)
    toneless_rate: float = 0.3  # sentences given without tones (IME typing)
    corrupt_max: float = 0.2  # per sentence, a rate in [0, corrupt_max] of slots get top-3 confusions
    soft_rate: float = 0.2  # clean slots that still carry low-scored alternatives (acoustic n-best)
    # optimisation
    batch_tokens: int = 4096  # syllables per batch (length-bucketed)
    lr: float = 1e-3
    min_lr: float = 1e-4
    warmup_steps: int = 500
    max_steps: int = 60_000  # cosine schedule length
    weight_decay: float = 0.05
    grad_clip: float = 1.0
    bf16: bool = True  # autocast matmuls to bfloat16 (2-3x faster on CPUs with AVX512-BF16, and on GPUs)
    # bookkeeping
    out_dir: str = "runs/lm/base"
    eval_every: int = 500  # steps
    save_every_s: float = 180.0  # write last.pt at least this often
    patience: int = 10  # evaluations without dev improvement before stopping
    max_minutes: float = 0.0  # stop after this wall time (0: no limit)
    time_schedule: bool = False  # cosine over max_minutes of wall time instead of max_steps (fixed-time GPU runs)
    workers: int = 0  # DataLoader processes building batches (0: in the training process)
    cache: str = ""  # .npz of the encoded train split (+ vocabulary); written once, then read (fast start)
    threads: int = 1  # CPU threads (the machine is shared)
    seed: int = 1234
    init_from: str = ""  # start (not resume) from a shipped model's weights and vocabulary, e.g. models/lm/lm.pt

    def to_dict(self) -> dict:
        return asdict(self)


def load_config(path: str | None) -> TrainConfig:
    """Run a config file and return its `config` (defaults when `path` is None)."""
    if path is None:
        return TrainConfig()
    ns = runpy.run_path(path)
    cfg = ns.get("config")
    if not isinstance(cfg, TrainConfig):
        raise ValueError(f"{path} must define `config = TrainConfig(...)`")
    return cfg
