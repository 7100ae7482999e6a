"""Training-curve plots (matplotlib, headless)."""

from __future__ import annotations

from pathlib import Path

from training.finetune import History


def plot_history(history: History, path: Path, title: str = "") -> Path:
    """Loss per evaluation step and accuracy per epoch, side by side, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    ax_loss.plot(history.steps, history.train_loss, marker=".", label="train")
    ax_loss.plot(history.steps, history.val_loss, marker=".", label="validation", linestyle="--")
    ax_loss.set_xlabel("step")
    ax_loss.set_ylabel("cross-entropy loss")
    ax_loss.legend()
    ax_acc.plot(history.epochs, history.train_accuracy, marker="o", label="train")
    ax_acc.plot(
        history.epochs, history.val_accuracy, marker="o", linestyle="--", label="validation"
    )
    ax_acc.set_xlabel("epoch")
    ax_acc.set_ylabel("accuracy")
    ax_acc.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
