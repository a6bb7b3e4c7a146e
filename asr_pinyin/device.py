"""The one place that chooses where tensors live: CUDA when present, else CPU.

Override with the environment variable `ASR_PINYIN_DEVICE` (`cpu`, `cuda`, `cuda:1`).
Every model, trainer and server worker asks `get_device()`; nothing else calls `torch.cuda`.
"""
from __future__ import annotations

import os
from functools import lru_cache


@lru_cache(maxsize=1)
def get_device():
    import torch

    name = os.environ.get("ASR_PINYIN_DEVICE")
    if name:
        return torch.device(name)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def set_cpu_threads(n: int | None = None) -> None:
    """Bound intra-op threads (defaults to ASR_PINYIN_THREADS or torch's own choice)."""
    import torch

    n = n or int(os.environ.get("ASR_PINYIN_THREADS", "0") or 0)
    if n > 0:
        torch.set_num_threads(n)
