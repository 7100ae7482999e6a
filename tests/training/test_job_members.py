"""A preset with member seeds trains one member per seed from one start and ships their ensemble."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from models.checkpoint import load_checkpoint
from models.ensemble import GPTEnsemble
from tests.conftest import write_sms_file
from training.job import run_training
from training.presets import BOOK


def _preset(lr: float) -> object:
    return replace(
        BOOK, name="members", base="random", size="1x2x32x64", trainable="all",
        finetune=replace(BOOK.finetune, epochs=1, lr=lr, epoch_eval=False, crop_prob=0.25),
        max_fpr=0.0025, member_seeds=(1, 2),
    )  # fmt: skip


@pytest.mark.parametrize("lr", [0.0, 3e-3])
def test_members_share_a_start_and_ship_as_one_ensemble(tmp_path: Path, lr: float) -> None:
    data = write_sms_file(tmp_path / "sms.tsv")
    result = run_training(_preset(lr), [data], tmp_path / "run", device="cpu",  # type: ignore[arg-type]
                          progress=False)
    ckpt = load_checkpoint(result.checkpoint)
    assert ckpt.meta.members == 2 and isinstance(ckpt.model, GPTEnsemble)
    training = ckpt.meta.training
    assert training["member_seeds"] == [1, 2]
    assert [m["seed"] for m in training["members"]] == [1, 2]
    assert all(0.0 <= m["val_roc_auc"] <= 1.0 for m in training["members"])
    report = json.loads(result.metrics_path.read_text())
    assert len(report["member_histories"]) == 1
    first, second = (dict(m.named_parameters()) for m in ckpt.model.members)
    same = all(torch.equal(first[k], second[k]) for k in first)
    # with no learning both members are still the shared start; with learning, seeds differ
    assert same == (lr == 0.0)
