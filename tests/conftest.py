"""Shared fixtures: tiny models and the location of the real corpora (optional)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from models.checkpoint import CheckpointMeta, save_checkpoint
from models.classifier import GPTClassifier
from models.gpt import GPTConfig

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

# Tiny models gain nothing from threads, and on a busy 2-core machine extra threads only contend.
torch.set_num_threads(1)
TINY = GPTConfig(n_layer=2, n_head=2, n_embd=32, block_size=128)


def shared_data(relative: str) -> Path:
    """A path under ../shared/data, or skip the test with the reason."""
    path = SHARED_DATA / relative
    if not path.exists():
        pytest.skip(f"real corpus not available: {path} is absent (needs ../shared/data)")
    return path


def write_sms_file(path: Path, n: int = 60, more_ham: bool = False) -> Path:
    """A small SMS Spam Collection TSV: `n` spam and `n` ham rows (twice the ham with
    `more_ham`), distinct and easy to tell apart."""
    lines = []
    for i in range(n):
        lines.append(f"spam\tWINNER! Claim your free prize {i} now, call 0800{i:04d}")
        lines.append(f"ham\tare we still on for lunch at {i % 12 + 1}? see you, {i}")
        if more_ham:
            lines.append(f"ham\tok i'll call you later about the report {i}")
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def tiny_classifier() -> GPTClassifier:
    """A 2-layer, 32-wide random classifier, seeded."""
    torch.manual_seed(0)
    return GPTClassifier(TINY).eval()


@pytest.fixture
def tiny_checkpoint(tmp_path: Path, tiny_classifier: GPTClassifier) -> Path:
    """A saved tiny classifier checkpoint with max_length 64 and threshold 0.5."""
    meta = CheckpointMeta(config=TINY, max_length=64, threshold=0.5)
    return save_checkpoint(tiny_classifier, meta, tmp_path / "tiny.safetensors")
