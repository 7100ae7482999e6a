"""The training job behind `mailfilter train` and `mailfilter evaluate`.

corpus → Examples → dedupe → split → token ids → fine-tune → threshold on validation →
checkpoint + metrics JSON + training-curve PNG.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import platform
import time
from collections import Counter
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch

from mailfilter.engine import pick_device
from models.checkpoint import (
    MAX_MEMBERS,
    CheckpointMeta,
    load_checkpoint,
    round_to_dtype,
    save_checkpoint,
)
from models.classifier import GPTClassifier, Trainable
from models.ensemble import GPTEnsemble
from models.gpt import GPT
from models.hf_import import classifier_from_gpt2
from models.tokenizer import AS_IS, TextForm, encode_batch
from training.base_model import (
    RandomSize,
    base_text_form,
    build_base_classifier,
    random_config,
)
from training.corpora.dedupe import dedupe
from training.corpora.example import HAM, LABELS, Example
from training.corpora.formats import read_corpus
from training.corpora.mailbox_folders import is_maildir, is_mbox, read_mail_folder
from training.corpora.split import (
    balance_by_undersampling,
    book_split,
    oversample,
    split_examples,
)
from training.data import TokenizedSet
from training.finetune import FinetuneConfig, History, finetune, predict
from training.metrics import Metrics, choose_threshold, compute_metrics, roc_auc
from training.presets import Preset
from training.pretrain import PretrainConfig, PretrainHistory, pretrain
from training.vocab import build_token_map

log = logging.getLogger(__name__)
PRETRAIN_TOKENS_PER_MESSAGE = 1024


class TrainingError(Exception):
    """The training job cannot run as asked."""


@dataclass
class TrainResult:
    """Where the job wrote its outputs, and the headline metrics."""

    checkpoint: Path
    metrics_path: Path
    plot_path: Path
    metrics: dict[str, Any]


def load_examples(paths: list[Path]) -> list[Example]:
    """Read every corpus path (format detected from the path)."""
    examples: list[Example] = []
    for p in paths:
        if not p.exists():
            raise TrainingError(f"data path not found: {p}")
        examples.extend(read_corpus(p))
    if not examples:
        raise TrainingError("no examples found in " + ", ".join(map(str, paths)))
    return examples


def load_unlabeled(paths: list[Path]) -> list[Example]:
    """Text of labeled corpora and of unlabeled Maildirs/mboxes (labels are not used)."""
    examples: list[Example] = []
    for p in paths:
        if not p.exists():
            raise TrainingError(f"data path not found: {p}")
        if is_maildir(p) or (p.is_file() and is_mbox(p)):
            examples.extend(read_mail_folder(p, HAM, subfolders=p.is_dir()))
        else:
            examples.extend(read_corpus(p))
    if not examples:
        raise TrainingError("no messages found in " + ", ".join(map(str, paths)))
    return examples


def make_splits(examples: list[Example], preset: Preset) -> tuple[dict[str, list[Example]], dict]:
    """Dedupe, balance if the preset says so, and split; returns the splits and a summary."""
    unique, report = dedupe(examples) if preset.dedupe else (examples, None)
    if preset.balance:
        unique = balance_by_undersampling(unique)
    splits = book_split(unique) if preset.split == "book" else split_examples(unique)
    summary: dict[str, Any] = {"read": len(examples), "dedupe": asdict(report) if report else None}
    for name, items in splits.items():
        counts = Counter(e.label for e in items)
        summary[name] = {LABELS[k]: counts.get(k, 0) for k in range(len(LABELS))}
    return splits, summary


def run_training(
    preset: Preset,
    data: list[Path],
    out_dir: Path,
    *,
    base: str | None = None,
    size: str | None = None,
    trainable: Trainable | None = None,
    last_blocks: int | None = None,
    epochs: int | None = None,
    max_steps: int | None = None,
    max_length: int | None = None,
    pretrain_minutes: float | None = None,
    no_pretrain: bool = False,
    device: str = "auto",
    progress: bool = True,
) -> TrainResult:
    """Run a preset end to end and write checkpoint, metrics JSON and curves into `out_dir`."""
    dev = pick_device(device)
    started = time.perf_counter()
    splits, summary = make_splits(load_examples(data), preset)
    if not splits["train"] or not splits["val"]:
        raise TrainingError("too few examples to make train and validation splits")
    recipes = member_recipes(preset)  # checked before the hour of pretraining, not after
    _check_recipes(recipes, preset, {e.corpus for e in splits["train"]})
    base = base or preset.base
    out_dir.mkdir(parents=True, exist_ok=True)
    # Tokenised once: the vocabulary, pretraining and every split's dataset all start from these.
    form = base_text_form(base, preset.text_form)
    encoded = {name: encode_batch(form.apply([e.text for e in items]))
               for name, items in splits.items()}
    model, pretrain_report = _initial_model(preset, base, size, encoded["train"], encoded["val"],
                                            out_dir, pretrain_minutes, no_pretrain, dev, progress,
                                            form)
    model.set_trainable(
        trainable or preset.trainable,
        last_blocks if last_blocks is not None else preset.last_blocks,
    )
    block = model.config.block_size
    longest = max(1, max((len(ids) for ids in encoded["train"]), default=0))
    length = min(max_length or preset.max_length or longest, block)
    sets = {name: TokenizedSet(items, length, encoded[name]) for name, items in splits.items()}
    fits = _member_training_sets(recipes, splits["train"], encoded["train"], sets["train"], length)
    cfg: FinetuneConfig = preset.finetune
    if epochs is not None:
        cfg = replace(cfg, epochs=epochs)
    if max_steps is not None:
        cfg = replace(cfg, max_steps=max_steps)
    seeds = preset.member_seeds or (cfg.seed,)
    cfg = replace(cfg, seed=seeds[0])
    members, histories = _fine_tune_members(model, fits, sets["val"], cfg, seeds, dev, progress)
    history = histories[0]
    final: GPTClassifier | GPTEnsemble = members[0] if len(members) == 1 else GPTEnsemble(members)
    store_dtype = getattr(torch, preset.store_dtype)
    round_to_dtype(final, store_dtype)  # threshold and metrics describe the file as written
    member_report = _member_report(members, histories, seeds, recipes, sets, dev)
    scores = {name: predict(final, s, dev) for name, s in sets.items() if len(s)}
    threshold = 0.5
    if preset.max_fpr is not None:
        threshold = choose_threshold(sets["val"].labels, scores["val"], preset.max_fpr)
    metrics = {name: compute_metrics(sets[name].labels, sc, threshold).to_dict()
               for name, sc in scores.items()}
    training = {
        "preset": preset.name, "base": base, "data": [str(p) for p in data],
        "trainable": trainable or preset.trainable, "finetune": asdict(cfg),
        "max_length": length, "splits": summary, "device": str(dev),
        "seconds": round(time.perf_counter() - started, 1), "torch": torch.__version__,
        "machine": f"{platform.machine()} x{os.cpu_count()}",
        "vocab_size": model.config.vocab_size, "pretrain": pretrain_report,
    } | ({"oversample": dict(preset.oversample)} if preset.oversample else {}) | (
        {"member_oversample": [dict(r) for r in recipes]} if preset.member_oversample else {}
    ) | form.metadata() | (
        {"member_seeds": list(seeds), "members": member_report} if member_report else {})
    meta = CheckpointMeta(config=model.config, max_length=length, threshold=threshold,
                          training=training, metrics={k: _headline(v) for k, v in metrics.items()},
                          members=len(members)).with_form(form)
    ckpt = save_checkpoint(final, meta, out_dir / "model.safetensors", dtype=store_dtype)
    report = {"training": training, "threshold": threshold, "metrics": metrics,
              "history": asdict(history)}
    if len(histories) > 1:
        report["member_histories"] = [asdict(h) for h in histories[1:]]
    metrics_path = out_dir / "metrics.json"
    metrics_path.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    plot_path = _plot(history, out_dir / "training-curves.png", preset.name)
    return TrainResult(ckpt, metrics_path, plot_path, metrics)


def member_recipes(preset: Preset) -> list[tuple[tuple[str, int], ...]]:
    """Each member's oversampling: the preset's `member_oversample`, or its `oversample` for
    every member (one entry per member seed; one for a single model)."""
    if preset.member_oversample:
        return list(preset.member_oversample)
    return [preset.oversample] * max(1, len(preset.member_seeds))


def _check_recipes(
    recipes: list[tuple[tuple[str, int], ...]], preset: Preset, present: set[str]
) -> None:
    """One recipe per member seed, each naming only corpora that have training messages (a
    misspelt name would otherwise oversample nothing, silently)."""
    seeds = len(preset.member_seeds) or 1
    if seeds > MAX_MEMBERS:  # else found only when the finished file is loaded
        raise TrainingError(f"preset {preset.name} has {seeds} member seeds; a checkpoint holds "
                            f"at most {MAX_MEMBERS} members")
    if len(recipes) != seeds:
        raise TrainingError(f"preset {preset.name} gives {len(recipes)} members their own "
                            f"oversampling but has {seeds} member seeds")
    absent = sorted({name for recipe in recipes for name, _ in recipe} - present)
    if absent:
        raise TrainingError(f"oversample: no training messages from {', '.join(absent)} "
                            f"(the corpora here: {', '.join(sorted(present))})")


def _member_training_sets(
    recipes: list[tuple[tuple[str, int], ...]], train: list[Example],
    encoded: list[list[int]], plain: TokenizedSet, length: int,
) -> list[TokenizedSet]:
    """What each member's fine-tuning reads: the training split, with the corpora its recipe
    names repeated (`oversample`); members with the same recipe share one set."""
    built: dict[tuple[tuple[str, int], ...], TokenizedSet] = {(): plain}
    for recipe in recipes:
        if recipe in built:
            continue
        picks = oversample(train, dict(recipe))
        built[recipe] = TokenizedSet([train[i] for i in picks], length, [encoded[i] for i in picks])
    return [built[recipe] for recipe in recipes]


def _fine_tune_members(
    model: GPTClassifier, trains: list[TokenizedSet], val: TokenizedSet, cfg: FinetuneConfig,
    seeds: tuple[int, ...], dev: torch.device, progress: bool,
) -> tuple[list[GPTClassifier], list[History]]:
    """Fine-tune one copy of `model` per seed, all from the same start (the first is `model`),
    member k reading `trains[k]`."""
    start = copy.deepcopy(model) if len(seeds) > 1 else model
    members, histories = [], []
    for k, (seed, train) in enumerate(zip(seeds, trains, strict=True)):
        member = model if k == 0 else copy.deepcopy(start)
        if len(seeds) > 1:
            log.info("fine-tuning member %d of %d (seed %d)", k + 1, len(seeds), seed)
        cfg_k = replace(cfg, seed=seed)
        histories.append(finetune(member, train, val, cfg_k, dev, progress))
        members.append(member)
    return members, histories


def _member_report(
    members: list[GPTClassifier], histories: list[History], seeds: tuple[int, ...],
    recipes: list[tuple[tuple[str, int], ...]], sets: dict[str, TokenizedSet], dev: torch.device,
) -> list[dict[str, Any]]:
    """Each member's seed, oversampling (if any), time and validation/test ROC AUC alone; empty
    for a single model."""
    if len(members) == 1:
        return []
    report = []
    for seed, recipe, member, history in zip(seeds, recipes, members, histories, strict=True):
        row: dict[str, Any] = {"seed": seed, "seconds": round(history.seconds, 1)}
        if recipe:
            row["oversample"] = dict(recipe)
        for name in ("val", "test"):
            if len(sets[name]):
                scores = predict(member, sets[name], dev)
                row[f"{name}_roc_auc"] = roc_auc(sets[name].labels, scores)
        report.append(row)
    return report


def _initial_model(
    preset: Preset, base: str, size: str | None, train_ids: list[list[int]],
    val_ids: list[list[int]], out_dir: Path, pretrain_minutes: float | None, no_pretrain: bool,
    dev: torch.device, progress: bool, form: TextForm,
) -> tuple[GPTClassifier, dict[str, Any] | None]:
    """The model fine-tuning starts from: a built base, or a language model pretrained here."""
    shape = RandomSize.parse(size or preset.size)
    if base != "random":
        return build_base_classifier(base, shape), None
    token_map = None
    if preset.vocab_size:
        token_map = build_token_map(train_ids, preset.vocab_size, min_count=3)
    if preset.pretrain is None or no_pretrain:
        return build_base_classifier("random", shape, token_map=token_map), None
    cfg = preset.pretrain
    if pretrain_minutes is not None:
        cfg = replace(cfg, max_minutes=pretrain_minutes)
    lm, history = _pretrain_lm(shape, token_map, train_ids, val_ids, cfg,
                               out_dir / "pretrain.safetensors", dev, progress, form)
    report = {"config": asdict(cfg), "steps": history.steps[-1] if history.steps else 0,
              "val_loss": history.val_loss[-1] if history.val_loss else None,
              "seconds": round(history.seconds, 1)}
    return classifier_from_gpt2(lm), report


def pretrain_on_paths(
    data: list[Path], out: Path, size: str, vocab_size: int, cfg: PretrainConfig, device: str,
    form: TextForm = AS_IS,
) -> PretrainHistory:
    """`mailfilter pretrain`: LM pretraining on the text of corpora or plain mail folders."""
    examples, _ = dedupe(load_unlabeled(data))
    splits = split_examples(examples)
    train_ids = encode_batch(form.apply([e.text for e in splits["train"]]))
    val_ids = encode_batch(form.apply([e.text for e in splits["val"]])) or train_ids[:1]
    token_map = build_token_map(train_ids, vocab_size, min_count=3)
    _, history = _pretrain_lm(RandomSize.parse(size), token_map, train_ids, val_ids, cfg, out,
                              pick_device(device), form=form)
    return history


def _pretrain_lm(
    shape: RandomSize, token_map: torch.Tensor | None, train_ids: list[list[int]],
    val_ids: list[list[int]], cfg: PretrainConfig, out: Path, dev: torch.device,
    progress: bool = True, form: TextForm = AS_IS,
) -> tuple[GPT, PretrainHistory]:
    """Pretrain (or resume) a fresh language model of this shape on the messages' token ids."""
    # Long messages are cut so a few newsletters do not dominate the language model's diet.
    cut = [ids[:PRETRAIN_TOKENS_PER_MESSAGE] for ids in train_ids]
    val_cut = [ids[:PRETRAIN_TOKENS_PER_MESSAGE] for ids in val_ids]
    return pretrain(random_config(shape, token_map), cut, val_cut, cfg, out, token_map, dev,
                    progress, form)


def _headline(m: dict[str, Any]) -> dict[str, Any]:
    keys = ("n", "accuracy", "precision", "recall", "f1", "false_positive_rate",
            "false_negative_rate", "roc_auc")
    return {k: m[k] for k in keys}


def _plot(history: History, path: Path, title: str) -> Path:
    from training.plots import plot_history

    return plot_history(history, path, title=f"mailfilter train --preset {title}")


def evaluate_checkpoint(
    checkpoint: Path, data: list[Path], split: str | None = None, device: str = "cpu"
) -> dict[str, Any]:
    """Score corpora with a checkpoint at its own threshold; optionally only one stable split."""
    examples, _ = dedupe(load_examples(data))
    if split is not None:
        examples = split_examples(examples)[split]
    metrics = evaluate_examples(checkpoint, examples, device).to_dict()
    return {"checkpoint": str(checkpoint), "data": [str(p) for p in data], "split": split,
            "metrics": metrics}


def evaluate_examples(checkpoint: Path, examples: list[Example], device: str = "cpu") -> Metrics:
    """A classifier checkpoint's metrics on these examples, at its own threshold."""
    ckpt = load_checkpoint(checkpoint, device)
    model = ckpt.model
    if not isinstance(model, GPTClassifier | GPTEnsemble):
        raise TrainingError(f"{checkpoint} is a language model, not a classifier")
    tokenized = TokenizedSet(examples, ckpt.meta.max_length, form=ckpt.meta.text_form)
    scores = predict(model, tokenized, torch.device(device))
    return compute_metrics(tokenized.labels, scores, ckpt.meta.threshold)
