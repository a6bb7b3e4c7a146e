"""An int8 copy of the network's encoder for CPU inference.

The encoder's matrix products are ~70 % of a conversion's CPU time. On x86 CPUs with VNNI,
`torch._int_mm` (int8 x int8 -> int32) runs them at about twice the bf16 rate (measured:
436 vs 219 GFLOP/s on one core here). Weights are quantized once per output channel, each
slot's activations per slot on the fly; layer norms, attention, GELU and the residual stream
stay float32. torch's own dynamic quantization (`torch.ao`) is deprecated and does not run
`nn.TransformerEncoderLayer`, hence these few lines. Accuracy against bf16: BENCHMARKS.md.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .model import PinyinLM
from .vocab import PAD_B


class Int8Linear:
    """y = x W^T + b with W int8 per output channel and x int8 per row (symmetric scales)."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor):
        w = weight.detach().float().cpu()
        self.scale = w.abs().amax(1).clamp(min=1e-12) / 127
        self.weight = (w / self.scale[:, None]).round().clamp(-127, 127).to(torch.int8).t().contiguous()
        self.bias = bias.detach().float().cpu()

    def __call__(self, x: torch.Tensor) -> torch.Tensor:  # [N, in] float32 -> [N, out]
        s = x.abs().amax(-1, keepdim=True).clamp_(min=1e-12).div_(127)
        q = torch.div(x, s).round_().to(torch.int8)
        return torch.addcmul(self.bias, torch._int_mm(q, self.weight).float().mul_(s), self.scale)


def int8_pays_off(bf16: bool) -> bool:
    """Whether int8 products beat the float ones this CPU would run otherwise (bf16 or fp32),
    timed on the encoder's largest product (~10 ms). CPUs without VNNI run `_int_mm` on a slow
    path, and a torch build may lack it on the CPU altogether."""
    import time

    try:
        a, w = torch.randn(256, 256), torch.randn(256, 1024)
        qa, qw = a.to(torch.int8), w.to(torch.int8)
        fa, fw = (a.bfloat16(), w.bfloat16()) if bf16 else (a, w)

        def best(fn) -> float:
            fn()
            times = []
            for _ in range(3):
                t = time.perf_counter()
                fn()
                times.append(time.perf_counter() - t)
            return min(times)
        return best(lambda: torch._int_mm(qa, qw)) * 1.2 < best(lambda: fa @ fw)
    except (RuntimeError, AttributeError):
        return False


class Int8Encoder:
    """`PinyinLM.hidden` with int8 matrix products (inference only, CPU, no adapters). Holds
    detached copies of the weights, so later changes to the model (adapters) do not reach it."""

    def __init__(self, model: PinyinLM):
        def t(x):
            return x.detach().float().cpu().clone()

        self.max_len, self.n_heads = model.cfg.max_len, model.cfg.n_heads
        self.tonal_emb, self.base_emb, self.pos_emb = t(model.tonal_emb.weight), t(model.base_emb.weight), t(model.pos_emb.weight)
        self.layers = []
        for layer in model.encoder.layers:
            att = layer.self_attn
            self.layers.append(((t(layer.norm1.weight), t(layer.norm1.bias), layer.norm1.eps),
                                Int8Linear(att.in_proj_weight, att.in_proj_bias),
                                Int8Linear(att.out_proj.weight, att.out_proj.bias),
                                (t(layer.norm2.weight), t(layer.norm2.bias), layer.norm2.eps),
                                Int8Linear(layer.linear1.weight, layer.linear1.bias),
                                Int8Linear(layer.linear2.weight, layer.linear2.bias)))
        self.norm = (t(model.norm.weight), t(model.norm.bias), model.norm.eps)
        self.char_proj = (t(model.char_proj.weight), t(model.char_proj.bias))
        self.punct_head = (t(model.punct_head.weight), t(model.punct_head.bias))

    @torch.no_grad()
    def hidden(self, tonal, base, prob):
        B, T, _ = tonal.shape
        if T > self.max_len:
            raise ValueError(f"{T} slots exceed the model's {self.max_len} positions")
        emb = F.embedding(tonal, self.tonal_emb) + F.embedding(base, self.base_emb)
        x = (emb * prob.float().unsqueeze(-1)).sum(2) + self.pos_emb[:T]
        d = x.shape[-1]
        x = x.reshape(B * T, d)
        H, dh = self.n_heads, d // self.n_heads
        pad = base[..., 0] == PAD_B
        mask = torch.zeros(B, 1, 1, T).masked_fill_(pad[:, None, None, :], float("-inf"))
        for norm1, qkv, out, norm2, ff1, ff2 in self.layers:
            q, k, v = qkv(F.layer_norm(x, (d,), *norm1)).view(B, T, 3, H, dh).permute(2, 0, 3, 1, 4)
            att = torch.matmul(q, k.transpose(-1, -2)).mul_(dh ** -0.5).add_(mask).softmax(-1)
            x = x + out(torch.matmul(att, v).transpose(1, 2).reshape(B * T, d))
            x = x + ff2(F.gelu(ff1(F.layer_norm(x, (d,), *norm2))))
        h = F.layer_norm(x, (d,), *self.norm).view(B, T, d)
        return F.linear(h, *self.char_proj), F.linear(h, *self.punct_head)


class _Hidden(torch.nn.Module):
    def __init__(self, encoder: Int8Encoder):
        super().__init__()
        self.encoder = encoder

    def forward(self, tonal, base, prob):
        return self.encoder.hidden(tonal, base, prob)


def traced(encoder: Int8Encoder):
    """`encoder.hidden` as a TorchScript trace, or the eager function where tracing fails.

    Why: a traced graph runs its ops in C++ without returning to the interpreter, so it does
    not wait for the GIL between ops. `LanguageModel` runs the encoder on a worker thread while
    its own thread searches in Python; the eager encoder then took ~100x longer (a 25 ms
    forward took 3 s next to a busy Python thread; traced: 39 ms). Shapes stay dynamic (sizes
    are read from the inputs inside the trace; tested against the eager function)."""
    import warnings

    example = (torch.zeros(2, 3, 2, dtype=torch.long), torch.zeros(2, 3, 2, dtype=torch.long), torch.ones(2, 3, 2))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fn = torch.jit.trace(_Hidden(encoder), example, check_trace=False)
        fn = torch.no_grad()(fn)
        for _ in range(2):  # TorchScript profiles and optimizes the first two runs (~25 ms each): here, not in a user's first update
            fn(*example)
    except Exception:  # noqa: BLE001 - tracing is an optimisation; a torch without it still works
        return encoder.hidden
    return fn
