"""Training checkpoint -> shipped model: weights in fp16, no optimizer state."""
from __future__ import annotations

import os
from pathlib import Path

import torch


def export(checkpoint: str | Path, out: str | Path) -> int:
    ck = torch.load(checkpoint, map_location="cpu", weights_only=False)
    keep = {k: ck[k] for k in ("model_cfg", "chars", "prior")}
    keep["state"] = {k: v.half() if v.is_floating_point() else v for k, v in ck["state"].items()}
    keep["trained"] = {"step": ck.get("step"), "best_dev": ck.get("best"), "train_cfg": ck.get("train_cfg")}
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    torch.save(keep, out)
    return os.path.getsize(out)
