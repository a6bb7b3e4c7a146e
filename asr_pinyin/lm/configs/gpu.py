"""The first model's size (3 layers, d=192) trained on one GPU in a fixed time (the shipped 6-layer
network is gpu_large.py + gpu_large_cont.py, which start from this file's data and schedule).

    asr-pinyin train-lm --config asr_pinyin/lm/configs/gpu.py

On an H200 a step of 16 k syllables takes tens of milliseconds, so 5 minutes of wall time are
about twelve epochs of the train split (the CPU recipe, base.py, saw a third of one). The cosine
schedule runs over wall time (`time_schedule`), so the run ends at min_lr whatever the GPU's speed.
Batches are built by DataLoader workers from the encoded-corpus cache (first run writes it).
"""
from asr_pinyin.lm.config import ModelConfig, TrainConfig

config = TrainConfig(
    model=ModelConfig(d_model=192, n_layers=3, n_heads=4, d_ff=768, dropout=0.1, d_out=64),
    train="data/text/train.jsonl",
    dev="data/text/dev.jsonl",
    cache="data/text/train.lm_cache.npz",
    dev_sentences=1000,
    toneless_rate=0.35,
    corrupt_max=0.2,
    soft_rate=0.2,
    batch_tokens=16384,
    lr=2e-3,
    min_lr=5e-5,
    warmup_steps=300,
    max_steps=1_000_000,  # the wall-time schedule ends the run
    max_minutes=5.0,
    time_schedule=True,
    weight_decay=0.05,
    bf16=True,
    out_dir="runs/lm/gpu",
    eval_every=1000,
    patience=100,
    workers=6,
    threads=2,
)
