"""Pretraining a small GPT-2 language model on unlabeled mail text (the book's chapter 5).

Text → token ids joined by <|endoftext|> → random windows of `block_size + 1` tokens → next-token
cross-entropy. Resumable: every checkpoint holds the model and the AdamW state (safetensors, no
pickle), and a rerun with the same output path continues from the last one.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import save_file
from tqdm import tqdm

from models.checkpoint import CheckpointMeta, load_checkpoint, save_checkpoint
from models.gpt import GPT, GPTConfig
from models.tokenizer import AS_IS, EOT_ID, TextForm

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PretrainConfig:
    """Schedule for language-model pretraining."""

    batch_size: int = 16
    lr: float = 1e-3
    min_lr: float = 1e-4
    weight_decay: float = 0.1
    warmup_steps: int = 100
    max_steps: int = 2000
    max_minutes: float | None = None
    eval_every: int = 100
    eval_batches: int = 10
    save_every: int = 200
    grad_clip: float = 1.0
    seed: int = 123


@dataclass
class PretrainHistory:
    """Losses at each evaluation, for the curve and the JSON report."""

    steps: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    tokens_seen: list[int] = field(default_factory=list)
    seconds: float = 0.0


def token_stream(seqs: list[list[int]]) -> torch.Tensor:
    """All sequences in one 1-D tensor, each followed by <|endoftext|>."""
    flat: list[int] = []
    for ids in seqs:
        flat.extend(ids)
        flat.append(EOT_ID)
    return torch.tensor(flat, dtype=torch.long)


def _windows(stream: torch.Tensor, block: int, n: int, gen: torch.Generator) -> torch.Tensor:
    starts = torch.randint(0, len(stream) - block - 1, (n,), generator=gen)
    return torch.stack([stream[s : s + block + 1] for s in starts.tolist()])  # (n, block + 1)


def lm_loss(model: GPT, window: torch.Tensor) -> torch.Tensor:
    """Next-token cross-entropy, targets mapped into the model's vocabulary."""
    x, y = window[:, :-1], window[:, 1:]
    token_map = model.transformer.token_map
    if token_map is not None:
        y = token_map[y]
    logits = model(x)  # (B, T, V)
    return F.cross_entropy(logits.reshape(-1, logits.size(-1)), y.reshape(-1))


def _lr(step: int, cfg: PretrainConfig) -> float:
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = min(1.0, (step - cfg.warmup_steps) / max(1, cfg.max_steps - cfg.warmup_steps))
    return cfg.min_lr + 0.5 * (cfg.lr - cfg.min_lr) * (1 + math.cos(math.pi * progress))


def _state_path(out: Path) -> Path:
    return out.with_suffix(".optim.safetensors")


def _save(model: GPT, opt: torch.optim.Optimizer, meta: CheckpointMeta, out: Path,
          step: int, history: PretrainHistory) -> None:
    meta.training["step"] = step
    meta.training["history"] = asdict(history)
    names = {id(p): n for n, p in model.named_parameters()}
    tensors: dict[str, torch.Tensor] = {}
    for group in opt.param_groups:
        for p in group["params"]:
            for k, v in opt.state.get(p, {}).items():
                if isinstance(v, torch.Tensor) and v.dim() > 0:
                    tensors[f"{names[id(p)]}.{k}"] = v.detach().contiguous()
    tmp = _state_path(out).with_suffix(".tmp")
    save_file(tensors, str(tmp), metadata={"step": str(step)})
    tmp.replace(_state_path(out))
    save_checkpoint(model, meta, out)  # the model last: it marks the pair complete


def _resume(model: GPT, opt: torch.optim.Optimizer, out: Path) -> tuple[int, PretrainHistory]:
    ckpt = load_checkpoint(out)
    model.load_state_dict(ckpt.model.state_dict())
    step = int(ckpt.meta.training.get("step", 0))
    history = PretrainHistory(**ckpt.meta.training.get("history", {}))
    state_file = _state_path(out)
    if state_file.exists():
        with safe_open(str(state_file), "pt") as f:
            if int((f.metadata() or {}).get("step", -1)) == step:
                for n, p in model.named_parameters():
                    if f"{n}.exp_avg" in f.keys():  # noqa: SIM118
                        opt.state[p] = {
                            "step": torch.tensor(float(step)),
                            "exp_avg": f.get_tensor(f"{n}.exp_avg"),
                            "exp_avg_sq": f.get_tensor(f"{n}.exp_avg_sq"),
                        }
    log.info("resuming pretraining from step %d", step)
    return step, history


def pretrain(
    config: GPTConfig,
    train_seqs: list[list[int]],
    val_seqs: list[list[int]],
    cfg: PretrainConfig,
    out: Path,
    token_map: torch.Tensor | None = None,
    device: torch.device | None = None,
    progress: bool = True,
    form: TextForm = AS_IS,
) -> tuple[GPT, PretrainHistory]:
    """Train (or resume) a language model and keep its checkpoint at `out`; `form`: how
    the texts behind `train_seqs` were read (recorded for models fine-tuned from it)."""
    device = device or torch.device("cpu")
    torch.manual_seed(cfg.seed)
    model = GPT(config)
    if token_map is not None:
        assert model.transformer.token_map is not None
        model.transformer.token_map.copy_(token_map)
    model.to(device)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr)
    meta = CheckpointMeta(config=config, kind="lm", max_length=config.block_size,
                          training={"pretrain": asdict(cfg)}).with_form(form)
    step, history = (_resume(model, opt, out) if out.exists() else (0, PretrainHistory()))
    train_stream, val_stream = token_stream(train_seqs), token_stream(val_seqs)
    block = config.block_size
    gen = torch.Generator().manual_seed(cfg.seed + step)
    val_gen_seed = cfg.seed + 1
    started = time.perf_counter()
    budget = cfg.max_minutes * 60 if cfg.max_minutes else None
    bar = tqdm(total=cfg.max_steps, initial=step, desc="pretrain", unit="step",
               disable=not progress)
    model.train()
    while step < cfg.max_steps:
        for group in opt.param_groups:
            group["lr"] = _lr(step, cfg)
        window = _windows(train_stream, block, cfg.batch_size, gen).to(device)
        loss = lm_loss(model, window)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        step += 1
        bar.update(1)
        elapsed = history.seconds + time.perf_counter() - started  # across resumes too
        out_of_time = budget is not None and elapsed > budget
        if step % cfg.eval_every == 0 or step == cfg.max_steps or out_of_time:
            val = _eval(model, val_stream, block, cfg, val_gen_seed, device)
            history.steps.append(step)
            history.train_loss.append(loss.item())
            history.val_loss.append(val)
            history.tokens_seen.append(step * cfg.batch_size * block)
            bar.set_postfix(loss=f"{loss.item():.3f}", val=f"{val:.3f}")
        if step % cfg.save_every == 0 or step == cfg.max_steps or out_of_time:
            history.seconds += time.perf_counter() - started
            started = time.perf_counter()
            _save(model, opt, meta, out, step, history)
        if out_of_time:
            log.warning("pretraining stopped by its time budget at step %d", step)
            break
    bar.close()
    model.eval()
    (out.with_suffix(".json")).write_text(json.dumps(asdict(history), indent=2) + "\n")
    return model, history


@torch.no_grad()
def _eval(model: GPT, stream: torch.Tensor, block: int, cfg: PretrainConfig, seed: int,
          device: torch.device) -> float:
    model.eval()
    gen = torch.Generator().manual_seed(seed)  # the same windows every time: comparable numbers
    losses = [lm_loss(model, _windows(stream, block, cfg.batch_size, gen).to(device)).item()
              for _ in range(cfg.eval_batches)]
    model.train()
    return sum(losses) / len(losses)
