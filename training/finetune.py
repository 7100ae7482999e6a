"""Fine-tuning a GPT-2 classifier: the book's chapter 6 loop, with evaluation during training."""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import cast

import torch
import torch.nn.functional as F
from tqdm import tqdm

from models.classifier import GPTClassifier
from models.ensemble import GPTEnsemble
from models.gpt import set_dropout
from training.data import Batch, TokenizedSet, batches, num_batches
from training.metrics import roc_auc

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FinetuneConfig:
    """Optimiser and schedule; the defaults are the book's recipe."""

    epochs: int = 5
    batch_size: int = 8
    lr: float = 5e-5
    weight_decay: float = 0.1
    eval_every: int = 50
    eval_batches: int = 5
    seed: int = 123
    max_steps: int | None = None
    grad_clip: float | None = None
    warmup_steps: int = 0
    cosine: bool = False
    epoch_eval: bool = True  # accuracy on all of train and val after each epoch
    dropout: float = 0.0  # applied while fine-tuning only; scoring runs in eval mode
    # Every this many steps (and at the end) score the whole validation split and, at the end,
    # keep the weights with the best validation ROC AUC (early stopping); None: the last weights.
    keep_best_every: int | None = None
    # An exponential moving average of the weights (decay per step) is what training returns,
    # and what keep_best_every checks; None: the weights themselves.
    ema_decay: float | None = None
    # Prefix cropping: each training message is, with this probability, read only up to a
    # random prefix (log-uniform between crop_min_tokens and its length) for that step, so that
    # how little a message says is not itself evidence of a class. 0: off.
    crop_prob: float = 0.0
    crop_min_tokens: int = 8


@dataclass
class History:
    """Losses every `eval_every` steps and accuracies every epoch, for the curves and the JSON."""

    steps: list[int] = field(default_factory=list)
    examples_seen: list[int] = field(default_factory=list)
    checked_steps: list[int] = field(default_factory=list)  # keep_best_every: when, and
    val_auc: list[float] = field(default_factory=list)  # the validation ROC AUC then
    best_step: int | None = None  # the step whose weights were kept
    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    epochs: list[int] = field(default_factory=list)
    train_accuracy: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)
    seconds: float = 0.0
    total_steps: int = 0


def crop_lengths(
    lengths: torch.Tensor, prob: float, min_tokens: int, rng: random.Random
) -> torch.Tensor:
    """Real lengths with some cut to a random prefix: the causal trunk then reads only that."""
    out = lengths.clone()
    for i, n in enumerate(lengths.tolist()):
        if n > min_tokens and rng.random() < prob:
            out[i] = round(math.exp(rng.uniform(math.log(min_tokens), math.log(n))))
    return out


def batch_loss(model: GPTClassifier, batch: Batch, device: torch.device) -> torch.Tensor:
    """Cross-entropy of the logits at each sequence's last real token."""
    logits = model(batch.ids.to(device), batch.lengths.to(device))
    return F.cross_entropy(logits, batch.labels.to(device))


@torch.no_grad()
def _mean_loss(
    model: GPTClassifier, data: TokenizedSet, cfg: FinetuneConfig, device: torch.device
) -> float:
    model.eval()
    rng = random.Random(cfg.seed)
    losses = []
    for i, batch in enumerate(batches(data, cfg.batch_size, shuffle=True, rng=rng)):
        if i >= cfg.eval_batches:
            break
        losses.append(batch_loss(model, batch, device).item())
    model.train()
    return sum(losses) / max(len(losses), 1)


@torch.no_grad()
def predict(
    model: GPTClassifier | GPTEnsemble,
    data: TokenizedSet,
    device: torch.device,
    batch_size: int = 32,
) -> list[float]:
    """p(class 1) for every example, in the dataset's order."""
    return _per_example(model, data, device, batch_size,
                        lambda logits: torch.softmax(logits.float(), dim=-1)[:, 1])


@torch.no_grad()
def predict_log_odds(
    model: GPTClassifier | GPTEnsemble,
    data: TokenizedSet,
    device: torch.device,
    batch_size: int = 32,
) -> list[float]:
    """logit(class 1) − logit(class 0) for every example, in the dataset's order, in float64
    (no float32 softmax saturation near p = 1)."""
    return _per_example(model, data, device, batch_size,
                        lambda logits: logits[:, 1].double() - logits[:, 0].double())


def _per_example(
    model: GPTClassifier | GPTEnsemble,
    data: TokenizedSet,
    device: torch.device,
    batch_size: int,
    score: Callable[[torch.Tensor], torch.Tensor],
) -> list[float]:
    """`score(logits)` per example, batches sorted by length, returned in the dataset's order."""
    was_training = model.training
    model.eval()
    order = sorted(range(len(data)), key=lambda i: len(data.ids[i]))
    scores = [0.0] * len(data)
    sorted_batches = batches(data, batch_size, shuffle=False)
    for start, batch in zip(range(0, len(order), batch_size), sorted_batches, strict=True):
        values = score(model(batch.ids.to(device), batch.lengths.to(device))).cpu().tolist()
        for i, v in zip(order[start : start + batch_size], values, strict=True):
            scores[i] = v
    model.train(was_training)
    return scores


def accuracy(scores: list[float], labels: list[int], threshold: float = 0.5) -> float:
    """Share of examples whose thresholded score matches the label."""
    hits = sum((s >= threshold) == bool(y) for s, y in zip(scores, labels, strict=True))
    return hits / max(len(labels), 1)


def _lr_at(step: int, total: int, cfg: FinetuneConfig) -> float:
    if cfg.warmup_steps and step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    if cfg.cosine and total > cfg.warmup_steps:
        progress = (step - cfg.warmup_steps) / (total - cfg.warmup_steps)
        return cfg.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0))))
    return cfg.lr


def finetune(
    model: GPTClassifier,
    train: TokenizedSet,
    val: TokenizedSet,
    cfg: FinetuneConfig,
    device: torch.device,
    progress: bool = True,
) -> History:
    """Train the parameters that require grad with AdamW; evaluate as the book does."""
    torch.manual_seed(cfg.seed)
    rng = random.Random(cfg.seed)
    if not 0.0 <= cfg.crop_prob <= 1.0 or cfg.crop_min_tokens < 1:
        raise ValueError(f"crop_prob must be in [0, 1] and crop_min_tokens >= 1: {cfg}")
    crop_rng = random.Random(cfg.seed + 1)  # its own stream: cropping leaves the shuffle alone
    set_dropout(model, cfg.dropout)
    model.to(device).train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    per_epoch = num_batches(train, cfg.batch_size)
    total = per_epoch * cfg.epochs
    if cfg.max_steps is not None:
        total = min(total, cfg.max_steps)
    history = History(total_steps=total)
    best: dict[str, torch.Tensor] | None = None
    ema = _averaged(model, cfg.ema_decay)
    scored = model if ema is None else cast(GPTClassifier, ema.module)  # what is checked
    step = seen = 0
    start = time.perf_counter()
    bar = tqdm(total=total, desc="fine-tune", unit="step", disable=not progress, leave=False)
    for epoch in range(1, cfg.epochs + 1):
        for batch in batches(train, cfg.batch_size, shuffle=True, rng=rng):
            if step >= total:
                break
            for group in optimizer.param_groups:
                group["lr"] = _lr_at(step, total, cfg)
            optimizer.zero_grad(set_to_none=True)
            if cfg.crop_prob:
                lengths = crop_lengths(batch.lengths, cfg.crop_prob, cfg.crop_min_tokens, crop_rng)
                batch = replace(batch, lengths=lengths)
            loss = batch_loss(model, batch, device)
            loss.backward()
            if cfg.grad_clip:
                torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
            optimizer.step()
            if ema is not None:
                ema.update_parameters(model)
            step += 1
            seen += len(batch.labels)
            bar.update(1)
            if cfg.keep_best_every and (step % cfg.keep_best_every == 0 or step == total):
                best = _check_best(scored, val, device, step, history, best)
            if step % cfg.eval_every == 0:
                tl, vl = _mean_loss(model, train, cfg, device), _mean_loss(model, val, cfg, device)
                history.steps.append(step)
                history.examples_seen.append(seen)
                history.train_loss.append(tl)
                history.val_loss.append(vl)
                bar.set_postfix(train_loss=f"{tl:.3f}", val_loss=f"{vl:.3f}")
                log.info("step %d: train loss %.4f, val loss %.4f", step, tl, vl)
        if not cfg.epoch_eval:
            if step >= total:
                break
            continue
        train_acc = accuracy(predict(model, train, device), train.labels)
        val_acc = accuracy(predict(model, val, device), val.labels)
        history.epochs.append(epoch)
        history.train_accuracy.append(train_acc)
        history.val_accuracy.append(val_acc)
        log.info("epoch %d: train acc %.4f, val acc %.4f", epoch, train_acc, val_acc)
        if step >= total:
            break
    bar.close()
    if ema is not None and best is None:
        model.load_state_dict(ema.module.state_dict())
        log.info("using the moving average of the weights (decay %s)", cfg.ema_decay)
    if best is not None:
        model.load_state_dict(best)
        log.info("kept the weights of step %s (validation ROC AUC %.5f)", history.best_step,
                 max(history.val_auc))
    history.seconds = time.perf_counter() - start
    model.eval()
    return history


def _averaged(
    model: GPTClassifier, decay: float | None
) -> torch.optim.swa_utils.AveragedModel | None:
    """An exponential moving average of `model`'s parameters, or None for no averaging."""
    if decay is None:
        return None
    if not 0.0 < decay < 1.0:
        raise ValueError(f"ema_decay must be between 0 and 1: {decay}")
    multi = torch.optim.swa_utils.get_ema_multi_avg_fn(decay)
    return torch.optim.swa_utils.AveragedModel(model, multi_avg_fn=multi)


def _check_best(
    model: GPTClassifier, val: TokenizedSet, device: torch.device, step: int, history: History,
    best: dict[str, torch.Tensor] | None,
) -> dict[str, torch.Tensor] | None:
    """Score all of `val`; a copy of the weights when they beat every earlier check."""
    auc = roc_auc(val.labels, predict(model, val, device))
    history.checked_steps.append(step)
    history.val_auc.append(auc)
    log.info("step %d: validation ROC AUC %.5f", step, auc)
    if best is None or auc > max(history.val_auc[:-1]):
        history.best_step = step
        return {k: v.detach().clone() for k, v in model.state_dict().items()}
    return best
