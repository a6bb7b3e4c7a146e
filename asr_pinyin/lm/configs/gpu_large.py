"""A larger encoder (6 layers, d=256, ~6 M parameters) for the same fixed-time GPU run as gpu.py.

    asr-pinyin train-lm --config asr_pinyin/lm/configs/gpu_large.py

Compared with gpu.py on dev/test accuracy and CPU conversion speed before choosing what ships.
"""
import dataclasses

from asr_pinyin.lm.config import ModelConfig
from asr_pinyin.lm.configs.gpu import config as gpu

config = dataclasses.replace(
    gpu,
    model=ModelConfig(d_model=256, n_layers=6, n_heads=4, d_ff=1024, dropout=0.1, d_out=128),
    lr=1.5e-3,
    out_dir="runs/lm/gpu_large",
)
