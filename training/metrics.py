"""Classification metrics computed from labels and p(spam): no sklearn needed."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Metrics:
    """Binary metrics with spam as the positive class, at one threshold."""

    n: int
    accuracy: float
    precision: float
    recall: float
    f1: float
    false_positive_rate: float
    false_negative_rate: float
    roc_auc: float
    threshold: float
    tn: int
    fp: int
    fn: int
    tp: int

    def to_dict(self) -> dict[str, float | int | dict[str, int]]:
        """JSON-ready form with the confusion matrix grouped."""
        d: dict[str, float | int | dict[str, int]] = dict(asdict(self))
        d["confusion_matrix"] = {"tn": self.tn, "fp": self.fp, "fn": self.fn, "tp": self.tp}
        return d


def roc_auc(labels: Sequence[int], scores: Sequence[float]) -> float:
    """Area under the ROC curve (Mann-Whitney U, ties counted half); nan with one class only."""
    pairs = sorted(zip(scores, labels, strict=True))
    n_pos = sum(labels)
    n_neg = len(labels) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    rank_sum = 0.0
    i = 0
    while i < len(pairs):
        j = i
        while j < len(pairs) and pairs[j][0] == pairs[i][0]:
            j += 1
        mid_rank = (i + j + 1) / 2  # ranks are 1-based; tied scores share the mean rank
        rank_sum += mid_rank * sum(label for _, label in pairs[i:j])
        i = j
    return (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def missed_at_no_false_positive(labels: Sequence[int], scores: Sequence[float]) -> int:
    """Spam a filter's ranking must miss to flag no ham: those scoring at or below the
    highest-scoring ham (a tie cannot be split by any threshold). None when there is no ham."""
    top_ham = max((s for y, s in zip(labels, scores, strict=True) if not y), default=None)
    if top_ham is None:
        return 0
    return sum(1 for y, s in zip(labels, scores, strict=True) if y and s <= top_ham)


def _ratio(a: int, b: int) -> float:
    return a / b if b else 0.0


def compute_metrics(labels: Sequence[int], scores: Sequence[float], threshold: float) -> Metrics:
    """All metrics at `threshold` (score >= threshold means spam)."""
    tp = fp = tn = fn = 0
    for y, s in zip(labels, scores, strict=True):
        pred = s >= threshold
        if pred and y:
            tp += 1
        elif pred:
            fp += 1
        elif y:
            fn += 1
        else:
            tn += 1
    precision = _ratio(tp, tp + fp)
    recall = _ratio(tp, tp + fn)
    return Metrics(
        n=len(labels),
        accuracy=_ratio(tp + tn, len(labels)),
        precision=precision,
        recall=recall,
        f1=2 * precision * recall / (precision + recall) if precision + recall else 0.0,
        false_positive_rate=_ratio(fp, fp + tn),
        false_negative_rate=_ratio(fn, fn + tp),
        roc_auc=roc_auc(labels, scores),
        threshold=threshold,
        tn=tn,
        fp=fp,
        fn=fn,
        tp=tp,
    )


def choose_threshold(
    labels: Sequence[int], scores: Sequence[float], max_fpr: float, floor: float = 0.5
) -> float:
    """The lowest threshold (at least `floor`) whose false-positive rate on these labels is within
    `max_fpr`: catch as much spam as possible while keeping ham losses rare."""
    ham = sorted((s for y, s in zip(labels, scores, strict=True) if not y), reverse=True)
    if not ham:
        return floor
    allowed = int(max_fpr * len(ham))  # how many ham may score at or above the threshold
    if allowed >= len(ham):
        return floor
    # Just above the (allowed+1)-th highest ham score, so at most `allowed` ham are flagged.
    bound = ham[allowed]
    return max(floor, min(1.0, math.nextafter(bound, 2.0)))
