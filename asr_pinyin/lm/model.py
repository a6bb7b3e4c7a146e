"""The network: a Transformer encoder over syllable slots that picks one hanzi per slot.

A slot is up to K syllables with probabilities (acoustic top-k), or one syllable with prob 1.
Its embedding is sum_k p_k * (E_tonal[syl_k] + E_base[toneless(syl_k)]); tone-unknown input uses
the NOTONE tonal row, so clean tonal, toneless and uncertain input share one model. Output
logits are masked to hanzi readable as one of the slot's syllables; a second head predicts the
punctuation that follows each hanzi.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .config import ModelConfig
from .vocab import N_BASE, N_TONAL, PAD_B, PAD_ROW, PAD_T, PRIOR_ROWS, PUNCT


class PinyinLM(nn.Module):
    def __init__(self, cfg: ModelConfig, n_chars: int, prior: dict):
        super().__init__()
        self.cfg = cfg
        d = cfg.d_model
        self.tonal_emb = nn.Embedding(N_TONAL + 2, d, padding_idx=PAD_T)
        self.base_emb = nn.Embedding(N_BASE + 1, d, padding_idx=PAD_B)
        self.pos_emb = nn.Embedding(cfg.max_len, d)
        self.drop = nn.Dropout(cfg.dropout)
        layer = nn.TransformerEncoderLayer(d, cfg.n_heads, cfg.d_ff, cfg.dropout, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, cfg.n_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d)
        self.char_proj = nn.Linear(d, cfg.d_out)
        self.char_head = nn.Linear(cfg.d_out, n_chars)
        self.punct_head = nn.Linear(d, len(PUNCT))
        # log P(hanzi | syllable) as a dense [PRIOR_ROWS, V] table (-inf: not a reading)
        table = torch.full((PRIOR_ROWS, n_chars), float("-inf"))
        table[torch.as_tensor(prior["rows"]), torch.as_tensor(prior["cols"])] = torch.as_tensor(prior["logp"]).float()
        self.register_buffer("prior_table", table, persistent=False)
        self.apply(self._init)

    @staticmethod
    def _init(m):
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=0.02)
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.zeros_(m.bias)

    def prior(self, tonal, base, prob) -> torch.Tensor:
        """[B,T,K] slots -> [B,T,V] log sum_k p_k P(hanzi | syllable_k); -inf where no syllable reads it."""
        row = self.prior_rows(tonal, base)
        logp = prob.clamp(min=1e-9).log()
        out = self.prior_table[row[..., 0]]
        multi = row[..., 1:] != PAD_ROW if row.shape[-1] > 1 else None
        if multi is None or not multi.any():
            return out
        # only slots with alternatives need the mixture (most slots have one syllable)
        sel = multi.any(-1).nonzero(as_tuple=True)
        mix = out[sel] + logp[sel][:, :1]
        for k in range(1, row.shape[-1]):
            mix = torch.logaddexp(mix, self.prior_table[row[sel][:, k]] + logp[sel][:, k:k + 1])
        out[sel] = mix
        return out

    @staticmethod
    def prior_row(tonal: int, base: int) -> int:
        """`prior_rows` for one syllable given as plain ints (no padding)."""
        return tonal if tonal < N_TONAL else N_TONAL + min(base, N_BASE - 1)

    @staticmethod
    def prior_rows(tonal, base) -> torch.Tensor:
        """[B,T,K] slots -> [B,T,K] rows of the prior table (PAD_ROW for padding)."""
        row = torch.where(tonal < N_TONAL, tonal, N_TONAL + base.clamp(max=N_BASE - 1))
        return torch.where(base == PAD_B, PAD_ROW, row)

    def hidden(self, tonal, base, prob):
        """tonal/base [B,T,K] long, prob [B,T,K] -> (head input [B,T,d_out], punct logits [B,T,P])."""
        B, T, _ = tonal.shape
        if T > self.cfg.max_len:
            raise ValueError(f"{T} slots exceed the model's {self.cfg.max_len} positions")
        x = ((self.tonal_emb(tonal) + self.base_emb(base)) * prob.unsqueeze(-1)).sum(2)
        x = x + self.pos_emb(torch.arange(T, device=x.device))
        pad = base[..., 0] == PAD_B
        h = self.encoder(self.drop(x), src_key_padding_mask=pad if pad.any() else None)
        h = self.norm(h)
        return self.char_proj(h), self.punct_head(h)

    def encode(self, tonal, base, prob):
        """tonal/base [B,T,K] long, prob [B,T,K] -> (raw hanzi logits [B,T,V], punct logits [B,T,P])."""
        h, punct = self.hidden(tonal, base, prob)
        return self.char_head(h).float(), punct

    def forward(self, tonal, base, prob):
        """Hanzi logits [B,T,V] = network + log prior (-inf where no syllable reads it), punct logits."""
        logits, punct = self.encode(tonal, base, prob)
        return logits + self.prior(tonal, base, prob), punct

    def loss(self, batch: dict) -> tuple[torch.Tensor, dict]:
        logits, punct = self.encode(batch["tonal"], batch["base"], batch["prob"])
        chars = batch["chars"]
        valid = chars >= 0
        prior = self.prior(batch["tonal"], batch["base"], batch["prob"])[valid]
        target = chars[valid]
        # the target always gets some prior, so label noise or <unk> still gives a finite loss
        t_prior = prior.gather(1, target.unsqueeze(1))
        prior = prior.scatter(1, target.unsqueeze(1), t_prior.clamp(min=-12.0))
        logits = logits[valid] + prior
        char_loss = F.cross_entropy(logits, target)
        punct_loss = F.cross_entropy(punct[valid], batch["punct"][valid])
        with torch.no_grad():
            acc = (logits.argmax(-1) == target).float().mean().item()
        return char_loss + 0.3 * punct_loss, {"char_loss": char_loss.item(),
                                              "punct_loss": punct_loss.item(), "acc": acc}
