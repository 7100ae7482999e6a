"""A checkpoint stored in half precision: its threshold and metrics describe the file as written."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from models.checkpoint import load_checkpoint, round_to_dtype
from tests.conftest import write_sms_file
from training.data import TokenizedSet
from training.finetune import predict
from training.job import load_examples, make_splits, run_training
from training.metrics import choose_threshold, compute_metrics
from training.presets import BOOK, Preset


def _preset(store_dtype: str) -> Preset:
    # No learning: the random members score every message near 0.5, so the threshold is set by
    # a ham's score (not the 0.5 floor) and moves with the last bits of the weights.
    return replace(
        BOOK, name="half", base="random", size="1x2x32x64", trainable="all",
        finetune=replace(BOOK.finetune, epochs=1, lr=0.0, epoch_eval=False),
        max_fpr=0.05, store_dtype=store_dtype, member_seeds=(1, 2),
    )  # fmt: skip


@pytest.mark.parametrize("store_dtype", ["float16", "bfloat16"])
def test_threshold_and_metrics_are_those_of_the_stored_weights(
    tmp_path: Path, store_dtype: str
) -> None:
    data = write_sms_file(tmp_path / "sms.tsv", more_ham=True)
    preset = _preset(store_dtype)
    result = run_training(preset, [data], tmp_path / "run", device="cpu", progress=False)
    ckpt = load_checkpoint(result.checkpoint)
    splits, _ = make_splits(load_examples([data]), preset)
    val = TokenizedSet(splits["val"], ckpt.meta.max_length, form=ckpt.meta.text_form)
    scores = predict(ckpt.model, val, torch.device("cpu"))
    assert ckpt.meta.threshold == choose_threshold(val.labels, scores, preset.max_fpr or 0.0)
    report = json.loads(result.metrics_path.read_text())
    again = compute_metrics(val.labels, scores, ckpt.meta.threshold).to_dict()
    assert report["metrics"]["val"]["roc_auc"] == again["roc_auc"]
    assert report["metrics"]["val"]["false_positive_rate"] == again["false_positive_rate"]


def test_round_to_dtype_gives_what_the_dtype_holds_and_leaves_integers() -> None:
    layer = torch.nn.Linear(3, 3)
    layer.register_buffer("ids", torch.tensor([1, 70000]))
    with torch.no_grad():
        layer.weight.fill_(1 + 2**-12)  # between two float16 values
    round_to_dtype(layer, None)
    assert torch.equal(layer.weight, torch.full((3, 3), 1 + 2**-12))
    round_to_dtype(layer, torch.float16)
    assert layer.weight.dtype == torch.float32
    assert torch.equal(layer.weight, torch.full((3, 3), 1.0))
    assert layer.ids.tolist() == [1, 70000]
