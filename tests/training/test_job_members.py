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
from training.job import TrainingError, run_training
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


def _run(tmp_path: Path, name: str, **changes: object) -> object:
    data = write_sms_file(tmp_path / "sms.tsv")
    preset = replace(_preset(3e-3), **changes)  # type: ignore[arg-type]
    torch.manual_seed(0)  # the random trunk: the same start in every run
    return run_training(preset, [data], tmp_path / name, device="cpu", progress=False)


def test_members_with_their_own_recipes_are_the_runs_they_stand_for(tmp_path: Path) -> None:
    """One seed twice, once reading the data as it is and once reading it three times an epoch:
    each member is bit for bit the single model that recipe trains alone (with that seed)."""
    seed = BOOK.finetune.seed  # what a single model is seeded with
    mixed = _run(tmp_path, "mixed", member_seeds=(seed, seed),
                 member_oversample=((), (("sms", 3),)))
    plain = _run(tmp_path, "plain", member_seeds=())
    thrice = _run(tmp_path, "thrice", member_seeds=(), oversample=(("sms", 3),))
    ckpt = load_checkpoint(mixed.checkpoint)  # type: ignore[attr-defined]
    assert ckpt.meta.members == 2
    assert ckpt.meta.training["member_oversample"] == [{}, {"sms": 3}]
    assert [m.get("oversample") for m in ckpt.meta.training["members"]] == [None, {"sms": 3}]
    for member, alone in zip(ckpt.model.members, (plain, thrice), strict=True):
        single = dict(load_checkpoint(alone.checkpoint).model.named_parameters())  # type: ignore[attr-defined]
        assert all(torch.equal(p, single[k]) for k, p in member.named_parameters())
    report = json.loads(mixed.metrics_path.read_text())  # type: ignore[attr-defined]
    steps = [report["history"]["total_steps"], report["member_histories"][0]["total_steps"]]
    assert steps[1] >= 3 * steps[0] - 2


def test_a_recipe_per_member_must_match_the_seeds(tmp_path: Path) -> None:
    with pytest.raises(TrainingError, match="3 member seeds"):
        _run(tmp_path, "bad", member_seeds=(1, 2, 3), member_oversample=((), (("sms", 2),)))
    with pytest.raises(TrainingError, match="no training messages from smss"):
        _run(tmp_path, "typo", member_seeds=(1, 2), member_oversample=((), (("smss", 2),)))
    with pytest.raises(TrainingError, match="at most 8 members"):
        _run(tmp_path, "many", member_seeds=tuple(range(9)))
    assert not any((tmp_path / d).exists() for d in ("bad", "typo", "many"))
