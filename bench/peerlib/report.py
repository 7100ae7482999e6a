"""The comparison's results: one row per filter, as a markdown table and a ROC plot."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from bench.peerlib.peer import PeerScore
from training.metrics import Metrics, compute_metrics, missed_at_no_false_positive, roc_auc


@dataclass(frozen=True)
class FilterResult:
    """What one filter did on the test messages."""

    name: str
    version: str
    settings: str
    scores: list[PeerScore]
    score_seconds: float
    train_seconds: float | None  # None: trained elsewhere (mailfilter's checkpoint)

    def verdict_metrics(self, labels: Sequence[int]) -> Metrics:
        """Accuracy and error rates of the filter's own verdicts; AUC of its continuous score."""
        m = compute_metrics(labels, [1.0 if s.spam else 0.0 for s in self.scores], 0.5)
        auc = roc_auc(labels, [s.score for s in self.scores])
        return replace(m, roc_auc=auc, threshold=float("nan"))

    @property
    def messages_per_second(self) -> float:
        """Test messages over the wall seconds of the scoring phase."""
        return len(self.scores) / self.score_seconds if self.score_seconds > 0 else float("inf")


def _rate(count: int, total: int) -> str:
    return f"{100 * count / total:.2f}% ({count}/{total})" if total else "n/a"


def page_tail(table: str, results: Sequence[FilterResult], roc_stem: str,
              notes: Sequence[str]) -> list[str]:
    """The lines every comparison page ends with: the table, each filter's settings, the ROC
    plot and the notes."""
    return [
        table,
        "",
        "| filter | version | settings |",
        "|---|---|---|",
        *(f"| {r.name} | {r.version} | {r.settings} |" for r in results),
        "",
        f"![ROC curves]({roc_stem}-roc.png)",
        "",
        "Notes:",
        "",
        *(f"- {n}" for n in notes),
        "",
    ]


def markdown_table(results: Sequence[FilterResult], labels: Sequence[int]) -> str:
    """The comparison table in GitHub markdown."""
    lines = [
        "| filter | accuracy | false-positive rate | false-negative rate | ROC AUC "
        "| spam missed at 0 false positives | messages/s | training s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        m = r.verdict_metrics(labels)
        train = "—" if r.train_seconds is None else f"{r.train_seconds:.1f}"
        missed = missed_at_no_false_positive(labels, [s.score for s in r.scores])
        lines.append(
            f"| {r.name} | {100 * m.accuracy:.2f}% | {_rate(m.fp, m.fp + m.tn)} "
            f"| {_rate(m.fn, m.fn + m.tp)} | {m.roc_auc:.4f} | {_rate(missed, m.fn + m.tp)} "
            f"| {r.messages_per_second:,.1f} | {train} |")
    return "\n".join(lines)


def roc_points(labels: Sequence[int], scores: Sequence[float]) -> tuple[list[float], list[float]]:
    """(false-positive rates, true-positive rates) at every distinct score, highest first."""
    n_pos = sum(labels)
    n_neg = len(labels) - n_pos
    pairs = sorted(zip(scores, labels, strict=True), reverse=True)
    fprs, tprs = [0.0], [0.0]
    tp = fp = 0
    for i, (score, label) in enumerate(pairs):
        tp += label
        fp += 1 - label
        if i + 1 == len(pairs) or pairs[i + 1][0] != score:
            fprs.append(fp / n_neg if n_neg else 0.0)
            tprs.append(tp / n_pos if n_pos else 0.0)
    return fprs, tprs


def plot_roc(results: Sequence[FilterResult], labels: Sequence[int], path: Path,
             title: str) -> Path:
    """ROC curves on a log false-positive axis, each filter's own verdict marked, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n_spam = sum(labels)
    n_ham = len(labels) - n_spam
    floor = 0.5 / max(n_ham, 1)  # where a false-positive rate of 0 is drawn on the log axis
    fig, ax = plt.subplots(figsize=(7, 5))
    lowest = 1.0  # the least spam any filter catches at no false positive, or at its own cutoff
    for r in results:
        scores = [s.score for s in r.scores]
        fprs, tprs = roc_points(labels, scores)
        m = r.verdict_metrics(labels)
        caught = 1 - missed_at_no_false_positive(labels, scores) / n_spam if n_spam else 0.0
        lowest = min(lowest, m.recall, caught)
        (line,) = ax.step([max(f, floor) for f in fprs], tprs, where="post",
                          label=f"{r.name} (AUC {m.roc_auc:.4f})")
        ax.plot([max(m.false_positive_rate, floor)], [m.recall], "o", color=line.get_color())
    ax.set_xscale("log")
    ax.set_xlim(floor * 0.8, 1.0)
    ax.set_ylim(max(0.0, lowest - 0.05), 1.005)
    ax.set_xlabel(f"false-positive rate (log; 0 drawn at {floor:.1e})")
    ax.set_ylabel("true-positive rate (spam caught)")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="lower right", title="dot: the filter's own verdict")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
