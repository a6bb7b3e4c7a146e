"""The shipped model: a 3-layer Transformer encoder over syllable slots, sized for 2 shared CPU cores.

    asr-pinyin train-lm --config asr_pinyin/lm/configs/base.py

Sizing: on one bf16-capable CPU core a step of 4096 syllables takes about 1.5-2 s, so a
two-hour run sees about 15 M syllables; a ~1.3 M-parameter encoder suits that budget.
"""
from asr_pinyin.lm.config import ModelConfig, TrainConfig

config = TrainConfig(
    model=ModelConfig(d_model=192, n_layers=3, n_heads=4, d_ff=768, dropout=0.1, d_out=64),
    train="data/text/train.jsonl",
    dev="data/text/dev.jsonl",
    dev_sentences=400,
    toneless_rate=0.35,
    corrupt_max=0.2,
    soft_rate=0.2,
    batch_tokens=4096,
    lr=2e-3,
    min_lr=1e-4,
    warmup_steps=200,
    max_steps=700,  # this session: ~7 s per step on 2 shared cores; later sessions raise it and resume
    weight_decay=0.05,
    bf16=True,
    out_dir="runs/lm/base",
    eval_every=100,
    threads=1,
)
