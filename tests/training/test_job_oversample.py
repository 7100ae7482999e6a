"""A preset's oversampling makes fine-tuning read a corpus more often, and nothing else."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from models.checkpoint import load_checkpoint
from tests.conftest import write_sms_file
from training.job import run_training
from training.presets import BOOK, Preset


def _preset(oversample: tuple[tuple[str, int], ...]) -> Preset:
    return replace(
        BOOK, name="oversample", base="random", size="1x2x32x64", trainable="all",
        finetune=replace(BOOK.finetune, epochs=1, batch_size=4, epoch_eval=False),
        oversample=oversample,
    )  # fmt: skip


def test_oversampling_lengthens_the_epoch_and_is_recorded(tmp_path: Path) -> None:
    data = write_sms_file(tmp_path / "sms.tsv")
    runs = {}
    for k in (1, 3):
        result = run_training(_preset((("sms", k),) if k > 1 else ()), [data],
                              tmp_path / f"run{k}", device="cpu", progress=False)
        report = json.loads(result.metrics_path.read_text())
        runs[k] = (report, load_checkpoint(result.checkpoint).meta.training)
    once, thrice = runs[1][0], runs[3][0]
    assert thrice["history"]["total_steps"] >= 3 * once["history"]["total_steps"] - 2
    # the splits, and so validation and test, are the same messages either way
    assert thrice["training"]["splits"] == once["training"]["splits"]
    assert thrice["metrics"]["val"]["n"] == once["metrics"]["val"]["n"]
    # training metrics count each message once, not as often as fine-tuning read it
    assert thrice["metrics"]["train"]["n"] == once["metrics"]["train"]["n"]
    assert runs[3][1]["oversample"] == {"sms": 3} and "oversample" not in runs[1][1]
