"""Combine trained classifiers into one ensemble checkpoint, its threshold set on validation.

A checkpoint that is itself an ensemble (the bundled model is one) gives all its members, so
every member counts once in the mean, whichever file it came from.
The members must share shape, labels, context and tokenizer (one trunk size, one split); the
threshold is chosen for the ensemble itself on the stable split's validation messages, the
same rule a single model's training uses (`choose_threshold`, at most `max_fpr` of ham).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from models.checkpoint import (
    MAX_MEMBERS,
    Checkpoint,
    CheckpointMeta,
    load_checkpoint,
    round_to_dtype,
    save_checkpoint,
)
from models.classifier import GPTClassifier
from models.ensemble import GPTEnsemble
from training.corpora.example import Example
from training.data import TokenizedSet
from training.finetune import predict
from training.metrics import choose_threshold, compute_metrics


class EnsembleError(ValueError):
    """The checkpoints cannot be combined (one line for the user)."""


def _members(paths: list[Path], checkpoints: list[Checkpoint]) -> list[GPTClassifier]:
    """The checkpoints' classifiers (an ensemble's members each), once each checkpoint is checked
    to fit the first."""
    if len(checkpoints) < 2:
        raise EnsembleError("an ensemble needs at least two checkpoints")
    first = checkpoints[0].meta
    members = []
    for path, ck in zip(paths, checkpoints, strict=True):
        meta = ck.meta
        if isinstance(ck.model, GPTEnsemble):
            parts = ck.model.classifiers()
        elif isinstance(ck.model, GPTClassifier) and meta.members == 1:
            parts = [ck.model]
        else:
            raise EnsembleError(f"{path}: not a classifier (a language model?)")
        if meta.labels != ("ham", "spam"):
            raise EnsembleError(f"{path}: labels {meta.labels}, expected ('ham', 'spam')")
        same = (meta.config, meta.max_length, meta.pooling, meta.text_form) == (
            first.config, first.max_length, first.pooling, first.text_form
        )  # fmt: skip
        if not same:
            raise EnsembleError(
                f"{path}: shape, context, pooling or text form differs from {paths[0]}"
            )
        members.extend(parts)
    if len(members) > MAX_MEMBERS:
        raise EnsembleError(f"{len(members)} members in all; a checkpoint holds at most "
                            f"{MAX_MEMBERS}")
    return members


def combine(
    paths: list[Path],
    out: Path,
    val: list[Example],
    max_fpr: float,
    store_dtype: torch.dtype | None = torch.float16,
) -> CheckpointMeta:
    """Write the ensemble of `paths` to `out`; returns its metadata (threshold, val metrics)."""
    checkpoints = [load_checkpoint(p) for p in paths]
    members = _members(paths, checkpoints)
    if not val or len({e.label for e in val}) < 2:
        raise EnsembleError("the validation split needs both ham and spam to set a threshold")
    first = checkpoints[0].meta
    model = GPTEnsemble(members)
    round_to_dtype(model, store_dtype)  # the threshold is the stored file's
    data = TokenizedSet(val, first.max_length, form=first.text_form)
    scores = predict(model, data, torch.device("cpu"))
    threshold = choose_threshold(data.labels, scores, max_fpr)
    training: dict[str, Any] = {
        "ensemble_of": [
            {"file": p.name, "sha256": ck.sha256, "threshold": ck.meta.threshold}
            for p, ck in zip(paths, checkpoints, strict=True)
        ],
        "max_fpr": max_fpr,
        "trainable": first.training.get("trainable", "all"),
    }
    seen = [ck.meta.training.get("data") for ck in checkpoints]
    if all(seen):  # what any member learned from; unrecorded for one, unknown for the ensemble
        training["data"] = list(dict.fromkeys(str(d) for data in seen for d in data or []))
    # Shape, labels, pooling and text form are the members' own (`_members` checked they agree).
    meta = replace(
        first,
        threshold=threshold,
        training=training,
        metrics={"val": compute_metrics(data.labels, scores, threshold).to_dict()},
        members=len(members),
    )
    save_checkpoint(model, meta, out, dtype=store_dtype)
    return meta
