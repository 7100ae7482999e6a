"""`mailfilter retrain`: fine-tune the active model on the user's labels; install it only if it is
not worse on labels it never saw.

- The user's labels are split once, for good: each class's share `holdout` (20%) is held out,
  chosen by a hash of the content hash, and a label keeps its side in every later retrain. So no
  model this store installs was ever trained on a held-out label, and the comparison below is fair.
- The training set is the user's other labels mixed with a replay sample of the base training data
  (the stable train split of the corpora), so the model does not forget what it knew. Without base
  data the user's own labels, old and new, are all there is, and the result says so.
- The threshold is chosen again on the held-out labels plus the replay validation sample, with the
  checkpoint's false-positive policy (`max_fpr`).
- Worse, and refused (the current model stays): on the held-out labels, more false positives than
  the current model at its threshold, or more errors (false positives + false negatives), or a ROC
  AUC lower by more than `auc_tolerance`; or, on the replay validation sample, more errors, or a
  ROC AUC lower by more than `forget_tolerance` (it forgot the base data).

Training happens in memory; the model store is touched only by `ModelStore.install`, so an
exception, Ctrl-C or a kill leaves the installed model exactly as it was.
"""

from __future__ import annotations

import hashlib
import logging
import math
import random
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open

from mailfilter.engine import pick_device
from mailfilter.learning import retrain_pending
from mailfilter.model_store import ModelStore
from mailfilter.state import Label, State
from models.checkpoint import file_sha256, load_checkpoint, round_to_dtype
from models.classifier import GPTClassifier
from models.ensemble import GPTEnsemble
from training.corpora.dedupe import dedupe
from training.corpora.example import HAM, SPAM, Example
from training.corpora.formats import read_corpus
from training.corpora.split import bucket_of, split_examples
from training.data import TokenizedSet
from training.finetune import FinetuneConfig, finetune, predict
from training.metrics import Metrics, choose_threshold, compute_metrics

log = logging.getLogger(__name__)
DEFAULT_MAX_FPR = 0.001
_DTYPES = {"F16": torch.float16, "BF16": torch.bfloat16}


class RetrainError(Exception):
    """A retrain cannot run: the base model or the replay data is unusable."""


@dataclass(frozen=True)
class RetrainConfig:
    """How much to learn, from what, and how strict the acceptance test is."""

    min_labels: int = 20
    holdout: float = 0.2
    replay_ratio: float = 3.0  # replay examples per user training example
    replay_max: int = 2000
    replay_val_max: int = 5000  # all of the default corpora's val split, as the base threshold
    epochs: int = 3
    batch_size: int = 16
    lr: float = 1e-4
    max_steps: int | None = None
    auc_tolerance: float = 0.01
    forget_tolerance: float = 0.02
    device: str = "auto"
    seed: int = 123


@dataclass
class Replay:
    """A stable sample of the base training data: train split to mix in, val split to check."""

    train: list[Example]
    val: list[Example]
    paths: list[str] = field(default_factory=list)


@dataclass
class RetrainResult:
    """What a retrain did and why."""

    outcome: str  # installed, refused, skipped
    reason: str
    notes: list[str] = field(default_factory=list)
    labels: dict[str, Any] = field(default_factory=dict)
    replay: dict[str, Any] = field(default_factory=dict)
    current: dict[str, Any] = field(default_factory=dict)  # metrics on the held-out labels
    candidate: dict[str, Any] = field(default_factory=dict)
    threshold: float | None = None
    model: str | None = None
    base: str | None = None
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return asdict(self)


def load_replay(paths: Sequence[Path], max_train: int, max_val: int) -> Replay:
    """Read base corpora and keep a stable sample of their train and val splits."""
    examples: list[Example] = []
    for path in paths:
        if not path.exists():
            raise RetrainError(f"replay data not found: {path}")
        examples.extend(read_corpus(path))
    unique, _ = dedupe(examples)
    splits = split_examples(unique)
    return sample_replay(splits["train"], splits["val"], max_train, max_val, paths)


def sample_replay(
    train: Sequence[Example],
    val: Sequence[Example],
    max_train: int,
    max_val: int,
    paths: Sequence[Path] = (),
) -> Replay:
    """A stable sample (by a salted hash of each text) of the base data's train and val splits."""

    def sample(items: Sequence[Example], n: int) -> list[Example]:
        return sorted(items, key=lambda e: bucket_of(e, seed_salt="replay"))[:n]

    return Replay(sample(train, max_train), sample(val, max_val), [str(p) for p in paths])


def assign_holdout(labels: Sequence[Label], fraction: float) -> dict[str, str]:
    """Sides for labels that have none yet: per class, enough to keep `fraction` held out."""
    assigned: dict[str, str] = {}
    for cls in ("ham", "spam"):
        items = [lb for lb in labels if lb.label == cls]
        held = sum(lb.split == "holdout" for lb in items)
        want = round(fraction * len(items))

        def rank(lb: Label) -> str:
            return hashlib.sha256(b"holdout\0" + lb.content_hash.encode()).hexdigest()

        for lb in sorted((lb for lb in items if lb.split is None), key=rank):
            side = "holdout" if held < want else "train"
            held += side == "holdout"
            assigned[lb.content_hash] = side
    return assigned


def worse_reasons(
    current: Metrics,
    candidate: Metrics,
    auc_tolerance: float,
    replay_current: Metrics | None = None,
    replay_candidate: Metrics | None = None,
    forget_tolerance: float = 0.02,
) -> list[str]:
    """Why `candidate` is worse than `current` (empty when it is not)."""
    reasons = []
    if candidate.fp > current.fp:
        reasons.append(f"more false positives on held-out labels ({candidate.fp} > {current.fp})")
    if candidate.fp + candidate.fn > current.fp + current.fn:
        reasons.append(
            f"more errors on held-out labels ({candidate.fp + candidate.fn} > "
            f"{current.fp + current.fn})"
        )
    if _finite(current.roc_auc, candidate.roc_auc) and (
        candidate.roc_auc < current.roc_auc - auc_tolerance
    ):
        reasons.append(
            f"lower ROC AUC on held-out labels ({candidate.roc_auc:.4f} < {current.roc_auc:.4f})"
        )
    if replay_current is None or replay_candidate is None:
        return reasons
    errors = replay_candidate.fp + replay_candidate.fn, replay_current.fp + replay_current.fn
    if errors[0] > errors[1]:
        reasons.append(f"more errors on the base validation sample ({errors[0]} > {errors[1]})")
    if _finite(replay_current.roc_auc, replay_candidate.roc_auc) and (
        replay_candidate.roc_auc < replay_current.roc_auc - forget_tolerance
    ):
        reasons.append(
            f"forgot the base data (replay ROC AUC {replay_candidate.roc_auc:.4f} < "
            f"{replay_current.roc_auc:.4f})"
        )
    return reasons


def _finite(*values: float) -> bool:
    return all(not math.isnan(v) for v in values)


def _examples(labels: Sequence[Label]) -> list[Example]:
    return [Example(lb.text, SPAM if lb.label == "spam" else HAM, lb.source) for lb in labels]


def _counts(examples: Sequence[Example]) -> dict[str, int]:
    c = Counter(e.label for e in examples)
    return {"ham": c[HAM], "spam": c[SPAM]}


def _stored_dtype(path: Path) -> torch.dtype | None:
    """The dtype the base checkpoint stores floats in (a float16 model stays float16)."""
    with safe_open(str(path), framework="pt") as f:
        for key in f.keys():  # noqa: SIM118 (safe_open is not a dict)
            kind = f.get_slice(key).get_dtype()
            if kind.startswith(("F", "BF")):
                return _DTYPES.get(kind)
    return None


def _headline(m: Metrics) -> dict[str, Any]:
    keys = ("n", "fp", "fn", "tp", "tn", "false_positive_rate", "false_negative_rate", "roc_auc")
    d = m.to_dict()
    return {k: d[k] for k in keys} | {"threshold": m.threshold}


def _both(holdout: Metrics, replay: Metrics | None) -> dict[str, Any]:
    """Headline metrics on the held-out labels and, when there is one, the replay sample."""
    out = {"holdout": _headline(holdout)}
    if replay is not None:
        out["replay"] = _headline(replay)
    return out


def retrain(
    state: State,
    store: ModelStore,
    base: Path,
    cfg: RetrainConfig,
    *,
    replay: Replay | None = None,
    if_needed: bool = False,
    progress: bool = False,
) -> RetrainResult:
    """Fine-tune `base` on the state DB's labels (+ replay) and install it unless it is worse."""
    started = time.perf_counter()
    seq = state.label_seq()
    result = RetrainResult("skipped", "", base=str(base))
    result.labels = state.label_counts()
    why_not = retrain_pending(state, cfg.min_labels, if_needed)
    if why_not is not None:
        result.reason = why_not
        return result
    labels = state.labels()
    state.set_splits(assign_holdout(labels, cfg.holdout))
    labels = state.labels()
    held = [lb for lb in labels if lb.split == "holdout"]
    train_ex, held_ex = _examples([lb for lb in labels if lb.split != "holdout"]), _examples(held)
    if not held_ex or not train_ex:
        result.reason = "too few labels to both train and hold some out"
        return result
    replay = replay or Replay([], [])
    rng = random.Random(cfg.seed)
    n_replay = min(len(replay.train), cfg.replay_max, int(cfg.replay_ratio * len(train_ex)))
    mixed = train_ex + rng.sample(replay.train, n_replay)
    if not replay.train:
        result.notes.append(
            "no base training data (set MAILFILTER_DATA or pass --replay): trained on your own "
            "labels only, old and new; the model may drift from what it knew"
        )
    result.labels = {"train": _counts(train_ex), "holdout": _counts(held_ex), "label_seq": seq}
    result.replay = {"paths": replay.paths, "train": n_replay, "val": len(replay.val)}

    ckpt = load_checkpoint(base)
    model = ckpt.model
    if not isinstance(model, GPTClassifier | GPTEnsemble):
        raise RetrainError(f"{base} is a language model, not a spam classifier")
    # An ensemble is retrained member by member, on the same data, and judged as one model.
    members = model.classifiers() if isinstance(model, GPTEnsemble) else [model]
    meta, dev = ckpt.meta, pick_device(cfg.device)
    model.to(dev)
    form = meta.text_form
    held_set = TokenizedSet(held_ex, meta.max_length, form=form)
    val_set = TokenizedSet(replay.val, meta.max_length, form=form) if replay.val else None
    cur_held = predict(model, held_set, dev)
    cur_val = predict(model, val_set, dev) if val_set else []

    trainable = meta.training.get("trainable", "all")
    ft = FinetuneConfig(
        epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr, weight_decay=0.1,
        eval_every=10**9, seed=cfg.seed, max_steps=cfg.max_steps, grad_clip=1.0,
        warmup_steps=min(10, len(mixed) // cfg.batch_size), epoch_eval=False,
    )  # fmt: skip
    mixed_set = TokenizedSet(mixed, meta.max_length, form=form)
    steps, seconds = 0, 0.0
    for k, member in enumerate(members):
        member.set_trainable(trainable, int(meta.training.get("last_blocks", 1)))
        history = finetune(member, mixed_set, held_set, replace(ft, seed=ft.seed + k), dev,
                           progress)
        steps, seconds = steps + history.total_steps, seconds + history.seconds
    store_dtype = _stored_dtype(base)
    round_to_dtype(model, store_dtype)  # judged and thresholded as it will be stored
    new_held = predict(model, held_set, dev)
    new_val = predict(model, val_set, dev) if val_set else []

    max_fpr = float(meta.training.get("max_fpr", DEFAULT_MAX_FPR))
    tune_labels = held_set.labels + (val_set.labels if val_set else [])
    threshold = choose_threshold(tune_labels, new_held + new_val, max_fpr)
    m_cur = compute_metrics(held_set.labels, cur_held, meta.threshold)
    m_new = compute_metrics(held_set.labels, new_held, threshold)
    r_cur = compute_metrics(val_set.labels, cur_val, meta.threshold) if val_set else None
    r_new = compute_metrics(val_set.labels, new_val, threshold) if val_set else None
    result.threshold = threshold
    result.current, result.candidate = _both(m_cur, r_cur), _both(m_new, r_new)
    reasons = worse_reasons(m_cur, m_new, cfg.auc_tolerance, r_cur, r_new, cfg.forget_tolerance)
    report = {"labels": result.labels, "current": result.current, "candidate": result.candidate}
    if reasons:
        result.outcome, result.reason = "refused", "; ".join(reasons)
        state.record_retrain("refused", seq, None, report | {"reason": result.reason})
        result.seconds = time.perf_counter() - started
        return result

    training = dict(meta.training)
    training["max_fpr"] = max_fpr
    training["retrain"] = {
        "parent_sha256": ckpt.sha256, "label_seq": seq, "labels": result.labels,
        "replay": result.replay, "finetune": asdict(ft), "steps": steps,
        "seconds": round(seconds, 1), "at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "history": [*meta.training.get("retrain", {}).get("history", []), ckpt.sha256],
    }  # fmt: skip
    metrics = result.candidate
    # Everything else (shape, labels, members, text form) is the parent's.
    new_meta = replace(meta, threshold=threshold, training=training, metrics=metrics)
    path = store.install(model, new_meta, base, dtype=store_dtype)
    sha = file_sha256(path)
    state.record_retrain("installed", seq, sha, report)
    result.outcome, result.model = "installed", str(path)
    result.reason = f"installed model {sha[:16]} at threshold {threshold:.4f}"
    result.seconds = time.perf_counter() - started
    return result
