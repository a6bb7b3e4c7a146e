"""LoRA adapters for both models through `peft`: add, save, load several by name, pick one per batch.

A model gets adapters injected in place (`peft.inject_adapter_in_model`), so its own methods
(`encode`, `forward_chunk`, ...) keep working and the base weights stay shared: the server holds
one base model and any number of named adapters, and `use_adapter(model, name)` switches the
active one around each batch (None: the base model alone). An adapter file holds only the LoRA
matrices, its LoRA settings, and a fingerprint of the base weights it was trained on, so it is
refused on a different base model.

    spec = LoraSpec(targets=("linear1", "linear2"), r=8)
    add_lora(model, spec, "it")            # trainable LoRA, base frozen
    ... train ...
    save_adapter("it.pt", model, "it", spec, kind="lm", base=fingerprint(model))
    load_adapter(other_model, "it.pt", "it", kind="lm")
    with use_adapter(other_model, "it"):
        other_model.encode(...)
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn as nn


class AdapterError(ValueError):
    """An adapter that cannot be used: missing, corrupt, for another model kind or base model."""


@dataclass
class LoraSpec:
    targets: tuple[str, ...] = ()     # module names (suffixes) that get LoRA, e.g. ("qkv", "out")
    r: int = 8
    alpha: float = 16.0
    dropout: float = 0.0
    extra: dict = field(default_factory=dict)   # free-form, stored in the file

    def peft_config(self):
        from peft import LoraConfig

        return LoraConfig(r=self.r, lora_alpha=self.alpha, lora_dropout=self.dropout,
                          target_modules=list(self.targets))


def _key(name: str) -> str:
    """peft's adapter name for ours: prefixed, since peft stores adapters as module attributes
    and a bare name like "train" or "eval" would clash with nn.Module's own."""
    return "ad_" + "".join(c if c.isalnum() else "_" for c in name) + f"_{len(name)}"


def _tuner_layers(model: nn.Module):
    from peft.tuners.tuners_utils import BaseTunerLayer

    return [m for m in model.modules() if isinstance(m, BaseTunerLayer)]


def fingerprint(model: nn.Module) -> str:
    """Short hash of the base weights (LoRA matrices excluded), rounded to fp16 so that a
    shipped fp16 checkpoint and its float32 load agree."""
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        if "lora_" in name or not t.is_floating_point():
            continue
        name = name.replace(".base_layer", "")
        h.update(name.encode())
        h.update(t.detach().to(torch.float16).cpu().numpy().tobytes())
    return h.hexdigest()[:16]


def add_lora(model: nn.Module, spec: LoraSpec, name: str = "default", train: bool = True) -> nn.Module:
    """Inject a LoRA adapter named `name`; with `train`, freeze everything else."""
    from peft import inject_adapter_in_model

    key = _key(name)
    if any(key in getattr(m, "lora_A", {}) for m in _tuner_layers(model)):
        raise AdapterError(f"adapter {name!r} is already loaded")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        inject_adapter_in_model(spec.peft_config(), model, adapter_name=key)
    if train:
        for n, p in model.named_parameters():
            p.requires_grad = f"lora_A.{key}." in n or f"lora_B.{key}." in n
    return model


def trainable_share(model: nn.Module) -> tuple[int, int]:
    """(trainable parameters, base parameters)."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    base = sum(p.numel() for n, p in model.named_parameters() if "lora_" not in n)
    return trainable, base


def adapter_state(model: nn.Module, name: str) -> dict:
    from peft import get_peft_model_state_dict

    return {k: v.detach().cpu().clone()
            for k, v in get_peft_model_state_dict(model, adapter_name=_key(name)).items()}


def save_adapter(path, model: nn.Module, name: str, spec: LoraSpec, kind: str, base: str,
                 extra: dict | None = None) -> int:
    """Write the adapter file atomically; returns its size in bytes."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save({"kind": f"asr_pinyin.adapter.{kind}", "spec": asdict(spec), "base": base,
                "state": adapter_state(model, name), **(extra or {})}, tmp)
    os.replace(tmp, path)
    return path.stat().st_size


def read_adapter(path, kind: str) -> dict:
    path = Path(path)
    if not path.is_file():
        raise AdapterError(f"adapter not found: {path}")
    try:
        ck = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # noqa: BLE001 - one clear message for any unreadable file
        raise AdapterError(f"{path}: not a readable adapter ({type(e).__name__})") from None
    if not isinstance(ck, dict) or ck.get("kind") != f"asr_pinyin.adapter.{kind}":
        got = ck.get("kind") if isinstance(ck, dict) else type(ck).__name__
        raise AdapterError(f"{path}: not a {kind} adapter (found {got!r})")
    return ck


def load_adapter(model: nn.Module, path, name: str, kind: str, base: str | None = None) -> dict:
    """Add the adapter in `path` to `model` under `name` (frozen, inactive until `use_adapter`).

    `base`: the model's fingerprint when already known (saves hashing it again)."""
    from peft import set_peft_model_state_dict

    ck = read_adapter(path, kind)
    if (base or fingerprint(model)) != ck["base"]:
        raise AdapterError(f"{path}: trained on another base model (fingerprint {ck['base']}); "
                           "retrain it on this one")
    spec = LoraSpec(**{**ck["spec"], "targets": tuple(ck["spec"]["targets"])})
    add_lora(model, spec, name, train=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = set_peft_model_state_dict(model, ck["state"], adapter_name=_key(name))
    missing = [k for k in getattr(result, "unexpected_keys", []) if "lora_" in k]
    if missing:
        raise AdapterError(f"{path}: weights do not fit this model ({missing[:2]})")
    for p in model.parameters():
        p.requires_grad = False
    use_adapter_now(model, None)
    return ck


def loaded_adapters(model: nn.Module) -> set[str]:
    """peft's keys of the loaded adapters (see `_key`)."""
    keys = set()
    for m in _tuner_layers(model):
        keys |= set(getattr(m, "lora_A", {}))
    return keys


def use_adapter_now(model: nn.Module, name: str | None) -> None:
    """Make `name` the only active adapter (None: none, the base model alone)."""
    layers = _tuner_layers(model)
    key = None if name is None else _key(name)
    if key is not None and not any(key in getattr(m, "lora_A", {}) for m in layers):
        raise AdapterError(f"unknown adapter {name!r}")
    for m in layers:
        if key is None or key not in m.lora_A:
            m.enable_adapters(False)
        else:
            m.enable_adapters(True)
            m.set_adapter([key])


@contextlib.contextmanager
def use_adapter(model: nn.Module, name: str | None):
    """Run the block with adapter `name` active, then the base model again.

    torch's fused inference path for `nn.TransformerEncoderLayer` reads the Linear weights
    directly and would skip LoRA, so it is switched off while an adapter is active."""
    if name is None:
        yield model
        return
    use_adapter_now(model, name)
    fast = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        yield model
    finally:
        torch.backends.mha.set_fastpath_enabled(fast)
        use_adapter_now(model, None)
