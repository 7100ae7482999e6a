"""GPT-2 in one file, nanoGPT-shaped, with GPT-2's own parameter names.

The names (`wte`, `wpe`, `h.N.attn.c_attn`, `ln_f`, ...) match OpenAI's checkpoints key for key,
so importing their weights is a rename-free copy plus a transpose of the four Conv1D matrices.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass(frozen=True)
class GPTConfig:
    """Shape of a GPT-2 model; the defaults are GPT-2 small (124M)."""

    vocab_size: int = 50257
    block_size: int = 1024
    n_layer: int = 12
    n_head: int = 12
    n_embd: int = 768
    dropout: float = 0.0
    bias: bool = True
    layer_norm_epsilon: float = 1e-5
    # 0: token ids index `wte` directly (OpenAI GPT-2). Otherwise the model reads ids of a
    # tokenizer with this many entries through a `token_map` buffer into a smaller vocabulary
    # of `vocab_size` (rare tokens share one id); see training/vocab.py.
    input_vocab_size: int = 0

    def to_dict(self) -> dict[str, object]:
        """The config as a JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, object]) -> GPTConfig:
        """Build a config from `to_dict` output, rejecting unknown keys."""
        known = set(cls.__dataclass_fields__)
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown GPT config keys: {sorted(unknown)}")
        return cls(**d)  # type: ignore[arg-type]


PRESETS: dict[str, GPTConfig] = {
    "gpt2": GPTConfig(n_layer=12, n_head=12, n_embd=768),
    "gpt2-medium": GPTConfig(n_layer=24, n_head=16, n_embd=1024),
    "gpt2-large": GPTConfig(n_layer=36, n_head=20, n_embd=1280),
    "gpt2-xl": GPTConfig(n_layer=48, n_head=25, n_embd=1600),
}


class CausalSelfAttention(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        assert config.n_embd % config.n_head == 0
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.resid_dropout = nn.Dropout(config.dropout)
        self.n_head = config.n_head
        self.n_embd = config.n_embd
        self.dropout = config.dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.size()
        q, k, v = self.c_attn(x).split(self.n_embd, dim=2)
        hs = C // self.n_head
        q = q.view(B, T, self.n_head, hs).transpose(1, 2)  # (B, nh, T, hs)
        k = k.view(B, T, self.n_head, hs).transpose(1, 2)  # (B, nh, T, hs)
        v = v.view(B, T, self.n_head, hs).transpose(1, 2)  # (B, nh, T, hs)
        # The causal mask is also what makes right padding harmless: no real token attends to a pad.
        y = F.scaled_dot_product_attention(
            q, k, v, dropout_p=self.dropout if self.training else 0.0, is_causal=True
        )
        y = y.transpose(1, 2).contiguous().view(B, T, C)  # (B, T, C)
        return self.resid_dropout(self.c_proj(y))

    def forward_at(self, x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        """Attention output only at position `pos[b]` of each row: (B, C).

        Keys and values are computed for every position, the query for one; the result equals
        `forward(x)[b, pos[b]]` at a fraction of the cost.
        """
        B, T, C = x.size()
        hs = C // self.n_head
        w_q, w_kv = self.c_attn.weight.split([C, 2 * C], dim=0)
        b_q, b_kv = (None, None) if self.c_attn.bias is None else self.c_attn.bias.split([C, 2 * C])
        rows = torch.arange(B, device=x.device)
        q = F.linear(x[rows, pos], w_q, b_q).view(B, self.n_head, 1, hs)  # (B, nh, 1, hs)
        k, v = F.linear(x, w_kv, b_kv).split(C, dim=2)
        k = k.view(B, T, self.n_head, hs).transpose(1, 2)  # (B, nh, T, hs)
        v = v.view(B, T, self.n_head, hs).transpose(1, 2)  # (B, nh, T, hs)
        visible = torch.arange(T, device=x.device)[None, :] <= pos[:, None]  # (B, T)
        y = F.scaled_dot_product_attention(
            q, k, v, attn_mask=visible[:, None, None, :],
            dropout_p=self.dropout if self.training else 0.0,
        )  # (B, nh, 1, hs)
        return self.resid_dropout(self.c_proj(y.reshape(B, C)))


class MLP(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # GPT-2 was trained with the tanh approximation of GELU; exact GELU breaks weight parity.
        return self.dropout(self.c_proj(F.gelu(self.c_fc(x), approximate="tanh")))


class Block(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon, bias=config.bias)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon, bias=config.bias)
        self.mlp = MLP(config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))

    def forward_at(self, x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        """The block's output at position `pos[b]` of each row only: (B, C)."""
        rows = torch.arange(x.size(0), device=x.device)
        h = x[rows, pos] + self.attn.forward_at(self.ln_1(x), pos)  # (B, C)
        return h + self.mlp(self.ln_2(h))


def set_dropout(model: nn.Module, p: float) -> None:
    """Set the embedding, residual and MLP dropout rates to `p`. Dropout on the attention
    weights stays as configured: on CPU it moves attention off its fused kernel (about 3.7x
    slower per attention call, measured at batch 32 x 256 tokens)."""
    for m in model.modules():
        if isinstance(m, nn.Dropout):
            m.p = p


class GPTTrunk(nn.Module):
    """Embeddings, the transformer blocks and the final norm: GPT-2 minus its output head."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.config = config
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        self.wpe = nn.Embedding(config.block_size, config.n_embd)
        self.drop = nn.Dropout(config.dropout)
        self.h = nn.ModuleList([Block(config) for _ in range(config.n_layer)])
        self.ln_f = nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon, bias=config.bias)
        self.token_map: torch.Tensor | None
        if config.input_vocab_size:
            identity = torch.zeros(config.input_vocab_size, dtype=torch.long)
            self.register_buffer("token_map", identity)
        else:
            self.token_map = None
        self.apply(init_weights)
        # GPT-2's scaled init of the residual projections.
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    def _embed(self, idx: torch.Tensor) -> torch.Tensor:
        B, T = idx.size()
        if T > self.config.block_size:
            raise ValueError(f"sequence of {T} tokens exceeds block size {self.config.block_size}")
        if self.token_map is not None:
            idx = self.token_map[idx]  # tokenizer ids -> model vocabulary
        pos = torch.arange(0, T, dtype=torch.long, device=idx.device)  # (T,)
        return self.drop(self.wte(idx) + self.wpe(pos))  # (B, T, C)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """Final-norm hidden states, (B, T, n_embd), for token ids (B, T)."""
        x = self._embed(idx)
        for block in self.h:
            x = block(x)
        return self.ln_f(x)  # (B, T, C)

    def forward_at(self, idx: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        """Final-norm hidden state at position `pos[b]` of each row, (B, n_embd).

        Equal to `forward(idx)[b, pos[b]]`; the last block only computes what that position needs,
        which is what a classifier reading one token per sequence wants.
        """
        x = self._embed(idx)
        *body, last = self.h
        for block in body:
            x = block(x)
        assert isinstance(last, Block)
        return self.ln_f(last.forward_at(x, pos))  # (B, C)


def init_weights(module: nn.Module) -> None:
    """GPT-2's initialisation: N(0, 0.02) weights, zero biases."""
    if isinstance(module, nn.Linear):
        nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Embedding):
        nn.init.normal_(module.weight, mean=0.0, std=0.02)


class GPT(nn.Module):
    """The GPT-2 language model: the trunk plus an output head tied to the token embedding."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.config = config
        self.transformer = GPTTrunk(config)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.lm_head.weight = self.transformer.wte.weight  # weight tying, as in GPT-2

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """Next-token logits, (B, T, vocab_size)."""
        return self.lm_head(self.transformer(idx))
