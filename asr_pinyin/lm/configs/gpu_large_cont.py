"""Second stage of the shipped network: gpu_large.py's result trained on with a new, lower cosine.

    asr-pinyin train-lm --config asr_pinyin/lm/configs/gpu_large_cont.py --fresh

The first stage (5 minutes on an H200) was still improving when its schedule ended; this warm
restart (5.5 more minutes, peak lr 8e-4) continues from its fp16 result, `init_from`.
"""
import dataclasses

from asr_pinyin.lm.configs.gpu_large import config as large

config = dataclasses.replace(
    large,
    init_from="runs/lm/gpu_large/lm_gpu_large.pt",
    lr=8e-4,
    warmup_steps=200,
    max_minutes=5.5,
    out_dir="runs/lm/gpu_large_cont",
)
