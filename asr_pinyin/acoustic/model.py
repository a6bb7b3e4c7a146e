"""Streaming Conformer-CTC encoder: fbank -> per-frame log-probs over blank + tonal syllables.

    fbank (10 ms) -> CMVN -> conv2d x2 (stride 2 each, 40 ms) -> stack 2 frames (80 ms)
      (+ a linear map of the same 80 ms of pitch features when the config has `pitch`)
      -> N x [FF/2, chunked self-attention (RoPE), causal conv, FF/2] -> linear -> log-softmax

One set of weights serves two modes. Full context: every frame sees the whole utterance.
Streaming: frames are grouped in chunks of C output frames; a frame sees its own chunk and L
chunks to the left (bounded memory), never the future. The depthwise conv is causal, so the
only look-ahead is inside a chunk. Training samples a random C and L per batch (WeNet U2's
dynamic chunk training), so both modes work from one checkpoint. `forward_chunk` runs the
same computation incrementally with per-layer caches (keys/values of the last L*C frames,
the last kernel-1 conv inputs) and gives the same output as `forward` with that chunk mask.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .config import ModelConfig
from .frontend import GlobalCMVN


class Subsampling(nn.Module):
    """Two stride-2 3x3 convs (no time padding) then stacking: stride 4*stack, context 7+4*(stack-1)."""

    def __init__(self, n_mels: int, channels: int, stack: int, d_model: int):
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(1, channels, 3, 2), nn.ReLU(),
                                  nn.Conv2d(channels, channels, 3, 2), nn.ReLU())
        freq = ((n_mels - 3) // 2 + 1 - 3) // 2 + 1
        self.stack = stack
        self.proj = nn.Linear(stack * channels * freq, d_model)
        self.stride = 4 * stack
        self.context = 7 + 4 * (stack - 1)   # input frames needed for the first output frame

    def out_lengths(self, n: torch.Tensor) -> torch.Tensor:
        n4 = ((n - 3).div(2, rounding_mode="floor") + 1 - 3).div(2, rounding_mode="floor") + 1
        return n4.clamp_min(0).div(self.stack, rounding_mode="floor")

    def forward(self, x: torch.Tensor) -> torch.Tensor:      # (B, T, n_mels) -> (B, T', d)
        if x.shape[1] < self.context:
            return x.new_zeros(x.shape[0], 0, self.proj.out_features)
        h = self.conv(x.unsqueeze(1))                        # (B, C, T4, F4)
        b, c, t, f = h.shape
        t = t // self.stack * self.stack
        h = h[:, :, :t].permute(0, 2, 1, 3).reshape(b, t // self.stack, self.stack * c * f)
        return self.proj(h)


class PitchPath(nn.Module):
    """Pitch frames (B, T, P) -> (B, T', d): each output frame's `stride` frames, flattened, mapped.

    Output frame k reads input frames [k*stride, (k+1)*stride), inside the fbank convs' window
    for the same frame, so streaming windows hold them. Zero-initialised: adding the path to a
    trained model changes nothing until training uses it.
    """

    def __init__(self, dim: int, stride: int, d_model: int):
        super().__init__()
        self.stride = stride
        self.proj = nn.Linear(stride * dim, d_model)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, p: torch.Tensor, t_out: int) -> torch.Tensor:
        b, _, dim = p.shape
        return self.proj(p[:, : t_out * self.stride].reshape(b, t_out, self.stride * dim))


def rope_angles(pos: torch.Tensor, head_dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """cos/sin tables for rotary position embedding at positions `pos` (computed once per forward)."""
    half = head_dim // 2
    freq = 10000.0 ** (-torch.arange(half, device=pos.device, dtype=torch.float64) / half)
    ang = pos.to(torch.float64)[..., None] * freq            # float64: exact even hours into a stream
    return ang.cos().float(), ang.sin().float()


def rope(x: torch.Tensor, cos_sin: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """Rotate (B, H, T, Dh) pairs of channels: attention scores then depend only on distance."""
    cos, sin = cos_sin
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)


class SelfAttention(nn.Module):
    def __init__(self, d: int, heads: int, dropout: float):
        super().__init__()
        self.h, self.dropout = heads, dropout
        self.qkv = nn.Linear(d, 3 * d)
        self.out = nn.Linear(d, d)

    def forward(self, x, rot, mask=None, cache=None, keep: int = -1, commit: int | None = None):
        """`commit`: cache only the first `commit` frames of x (the rest is lookahead, seen now and
        computed again with the next chunk); None: all of them."""
        b, t, d = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.h, d // self.h).permute(2, 0, 3, 1, 4)
        q, k = rope(q, rot), rope(k, rot)
        if cache is not None:                                 # (2, B, H, Tc, Dh): rotated k, v
            k, v = torch.cat([cache[0], k], 2), torch.cat([cache[1], v], 2)
        new_cache = torch.stack([k, v])
        if commit is not None:
            new_cache = new_cache[:, :, :, : new_cache.shape[3] - (t - commit)]
        if keep >= 0:
            new_cache = new_cache[:, :, :, new_cache.shape[3] - min(keep, new_cache.shape[3]):]
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask,
                                           dropout_p=self.dropout if self.training else 0.0)
        return self.out(y.transpose(1, 2).reshape(b, t, d)), new_cache


class CausalConv(nn.Module):
    """Pointwise -> GLU -> causal depthwise -> LayerNorm -> SiLU -> pointwise."""

    def __init__(self, d: int, kernel: int):
        super().__init__()
        self.k = kernel
        self.pw1 = nn.Linear(d, 2 * d)
        self.dw = nn.Conv1d(d, d, kernel, groups=d)
        self.norm = nn.LayerNorm(d)
        self.pw2 = nn.Linear(d, d)

    def forward(self, x, cache=None, commit: int | None = None):   # x (B, T, d); cache (B, d, k-1)
        h = F.glu(self.pw1(x), dim=-1).transpose(1, 2)
        if cache is None:
            cache = h.new_zeros(h.shape[0], h.shape[1], self.k - 1)
        h = torch.cat([cache, h], dim=2)
        end = h.shape[2] if commit is None else self.k - 1 + commit     # history up to the last committed frame
        new_cache = h[:, :, end - (self.k - 1):end]
        h = self.dw(h).transpose(1, 2)
        return self.pw2(F.silu(self.norm(h))), new_cache


class FeedForward(nn.Sequential):
    def __init__(self, d: int, mult: int, dropout: float):
        super().__init__(nn.LayerNorm(d), nn.Linear(d, mult * d), nn.SiLU(), nn.Dropout(dropout),
                         nn.Linear(mult * d, d))


class ConformerBlock(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        d = cfg.d_model
        self.ff1 = FeedForward(d, cfg.ff_mult, cfg.dropout)
        self.ff2 = FeedForward(d, cfg.ff_mult, cfg.dropout)
        self.norm_att, self.norm_conv = nn.LayerNorm(d), nn.LayerNorm(d)
        self.norm_out = nn.Identity() if cfg.pre_ln else nn.LayerNorm(d)
        self.att = SelfAttention(d, cfg.n_heads, cfg.dropout)
        self.conv = CausalConv(d, cfg.conv_kernel)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x, rot, mask=None, att_cache=None, conv_cache=None, keep: int = -1,
                commit: int | None = None):
        x = x + 0.5 * self.drop(self.ff1(x))
        a, att_cache = self.att(self.norm_att(x), rot, mask, att_cache, keep, commit)
        x = x + self.drop(a)
        c, conv_cache = self.conv(self.norm_conv(x), conv_cache, commit)
        x = x + self.drop(c)
        x = x + 0.5 * self.drop(self.ff2(x))
        return self.norm_out(x), att_cache, conv_cache


def chunk_mask(t: int, chunk: int, left_chunks: int, device=None, lookahead: int = 0) -> torch.Tensor | None:
    """(T, T) bool: frame i sees frame j when j's chunk is i's or one of `left_chunks` before, or
    j is among the `lookahead` frames after i's chunk."""
    if chunk <= 0 or chunk >= t and left_chunks < 0:
        return None
    pos = torch.arange(t, device=device)
    c = pos // chunk
    ok = pos[None, :] < (c[:, None] + 1) * chunk + lookahead
    if left_chunks >= 0:
        ok &= c[None, :] >= c[:, None] - left_chunks
    return ok


class AcousticModel(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.cmvn = GlobalCMVN(cfg.feat_dim)
        self.subsample = Subsampling(cfg.n_mels, cfg.conv_channels, cfg.stack, cfg.d_model)
        self.pitch = PitchPath(cfg.feat_dim - cfg.n_mels, self.subsample.stride, cfg.d_model) if cfg.pitch else None
        self.drop = nn.Dropout(cfg.dropout)
        self.layers = nn.ModuleList(ConformerBlock(cfg) for _ in range(cfg.n_layers))
        self.final_norm = nn.LayerNorm(cfg.d_model) if cfg.pre_ln else nn.Identity()
        self.head = nn.Linear(cfg.d_model, cfg.vocab_size)
        if cfg.factored_head:
            from asr_pinyin.pinyin import TONAL, TONELESS

            assert cfg.vocab_size == len(TONAL) + 1, "factored_head needs the tonal syllable vocabulary"
            base_id = {b: i for i, b in enumerate(TONELESS)}
            # column 0 of each padded head output is a constant 0 for the blank
            self.register_buffer("base_index", torch.tensor([0] + [base_id[s[:-1]] + 1 for s in TONAL]), persistent=False)
            self.register_buffer("tone_index", torch.tensor([0] + [int(s[-1]) for s in TONAL]), persistent=False)
            self.base_head = nn.Linear(cfg.d_model, len(TONELESS))
            self.tone_head = nn.Linear(cfg.d_model, 5)
            for lin in (self.base_head, self.tone_head):   # zero: a warm start begins at the old model
                nn.init.zeros_(lin.weight)
                nn.init.zeros_(lin.bias)

    def logits(self, z: torch.Tensor) -> torch.Tensor:
        """Normalised encoder output (..., d) -> unit logits (..., V)."""
        out = self.head(z)
        if self.cfg.factored_head:
            pad = (1, 0)
            out = out + F.pad(self.base_head(z), pad).index_select(-1, self.base_index) \
                + F.pad(self.tone_head(z), pad).index_select(-1, self.tone_index)
        return out

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised features (B, T, feat_dim) -> (B, T', d): fbank convs (+ the pitch path)."""
        h = self.subsample(x[..., : self.cfg.n_mels])
        if self.pitch is not None and h.shape[1]:
            h = h + self.pitch(x[..., self.cfg.n_mels:], h.shape[1])
        return h

    @property
    def frame_shift(self) -> float:
        """Seconds per output frame."""
        return 0.01 * self.subsample.stride

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor, chunk: int = 0,
                left_chunks: int = -1, inter_layer: int = 0, lookahead: int = 0):
        """(B, T, feat_dim) raw features -> (B, T', V) log-probs and output lengths.

        chunk <= 0: full context; otherwise chunked attention with `left_chunks` (<0: unlimited)
        and `lookahead` frames of right context after each chunk.
        inter_layer > 0 (training): also the head's log-probs on that layer's output, third.
        """
        x = self.cmvn(feats)
        x = x.masked_fill((torch.arange(x.shape[1], device=x.device)[None] >= lengths[:, None])[..., None], 0.0)
        x = self.drop(self.embed(x))
        out_len = self.subsample.out_lengths(lengths)
        t = x.shape[1]
        pos = torch.arange(t, device=x.device)
        valid = pos[None] < out_len[:, None]                                  # (B, T')
        mask = chunk_mask(t, chunk, left_chunks, x.device, lookahead)
        key_ok = valid[:, None, None, :] | torch.eye(t, dtype=torch.bool, device=x.device)
        mask = key_ok if mask is None else key_ok & mask
        rot = rope_angles(pos, self.cfg.d_model // self.cfg.n_heads)
        inter = None
        for i, layer in enumerate(self.layers, 1):
            x, _, _ = layer(x, rot, mask)
            if i == inter_layer:
                inter = self.logits(self.final_norm(x)).log_softmax(-1)
        if inter is not None:
            return self.logits(self.final_norm(x)).log_softmax(-1), out_len, inter
        return self.logits(self.final_norm(x)).log_softmax(-1), out_len

    # ---- streaming -------------------------------------------------------------------------
    def init_state(self) -> dict:
        return {"att": [None] * len(self.layers), "conv": [None] * len(self.layers), "offset": 0}

    @torch.inference_mode()
    def forward_chunk(self, feats: torch.Tensor, state: dict, keep: int = -1,
                      commit: int | None = None) -> torch.Tensor:
        """Raw feature window (T, feat_dim) for one chunk -> (T', V) log-probs; updates `state`.

        The window holds (C-1)*stride + context frames for C output frames (fewer at the end);
        the caller advances by C*stride frames. `keep` = left-context frames cached (<0: all).
        `commit` < T': only the first `commit` output frames are final, cached and returned; the
        others are lookahead (right context the committed frames attend to), fed again with the
        next chunk.
        """
        x = self.embed(self.cmvn(feats.to(self.cmvn.mean.device)).unsqueeze(0))
        t = x.shape[1]
        if t == 0:
            return x.new_zeros(0, self.cfg.vocab_size)
        pos = torch.arange(state["offset"], state["offset"] + t, device=x.device)
        rot = rope_angles(pos, self.cfg.d_model // self.cfg.n_heads)
        commit = t if commit is None else min(commit, t)
        for i, layer in enumerate(self.layers):
            x, state["att"][i], state["conv"][i] = layer(x, rot, None, state["att"][i],
                                                         state["conv"][i], keep, commit)
        state["offset"] += commit
        return self.logits(self.final_norm(x[0, :commit])).log_softmax(-1)


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# ---- checkpoints ---------------------------------------------------------------------------
class ModelLoadError(Exception):
    """A checkpoint that cannot be loaded: missing, corrupt, or not an acoustic model."""


def default_model_path():
    import os
    from pathlib import Path

    env = os.environ.get("ASR_PINYIN_AM")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "models" / "am" / "model.pt"


def save_model(model: AcousticModel, path, half: bool = False, extra: dict | None = None) -> None:
    """Weights + model config (+ CMVN, a buffer); `half` stores fp16 (the shipped form)."""
    import dataclasses
    import os
    from pathlib import Path

    sd = {k: (v.half() if half and v.is_floating_point() else v).cpu() for k, v in model.state_dict().items()}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save({"kind": "asr_pinyin.acoustic", "model_config": dataclasses.asdict(model.cfg),
                "model": sd, **(extra or {})}, tmp)
    os.replace(tmp, path)


def load_model(path=None, device=None, int8: bool = False) -> AcousticModel:
    """Load a checkpoint written by `save_model` or by training (float32, eval mode).

    `int8`: dynamic int8 quantisation of the linear layers (CPU inference only): about 25 %
    less time per streaming chunk, same decisions within rounding.
    """
    from pathlib import Path

    path = Path(path) if path else default_model_path()
    if not path.is_file():
        raise ModelLoadError(f"acoustic model not found: {path} (train one with `asr-pinyin train-am`)")
    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise ModelLoadError(f"{path}: not a readable checkpoint ({type(e).__name__})") from None
    if not isinstance(ck, dict) or ck.get("kind") != "asr_pinyin.acoustic":
        raise ModelLoadError(f"{path}: not an asr-pinyin acoustic model checkpoint")
    model = AcousticModel(ModelConfig(**ck["model_config"]))
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in ck["model"].items()})
    model.eval()
    if int8:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")      # torch.ao's eager API is deprecated but works
            model = torch.ao.quantization.quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8)
        return model
    return model.to(device or "cpu")
