"""A pretraining resumed at its last step gives the same trained model as one run straight
through: loading a checkpoint must not move the global random state that the new
classification head is then initialised from."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import torch
from safetensors.torch import load_file

from models.checkpoint import load_checkpoint
from tests.conftest import write_sms_file
from training.job import run_training
from training.presets import DEFAULT
from training.pretrain import PretrainConfig

PRESET = replace(
    DEFAULT, name="tiny-default", size="1x2x32x32", vocab_size=256, member_seeds=(3,),
    pretrain=PretrainConfig(batch_size=4, max_steps=4, warmup_steps=1, eval_every=2,
                            eval_batches=1, save_every=2),
    finetune=replace(DEFAULT.finetune, epochs=1, batch_size=8, eval_every=5, warmup_steps=1),
    oversample=(), max_length=32,
)  # fmt: skip


def test_loading_a_checkpoint_leaves_the_random_state_alone(tmp_path: Path) -> None:
    data = write_sms_file(tmp_path / "sms.tsv", n=60)
    result = run_training(replace(PRESET, pretrain=None), [data], tmp_path / "run",
                          device="cpu", progress=False)
    before = torch.get_rng_state()
    load_checkpoint(result.checkpoint)
    assert torch.equal(before, torch.get_rng_state())


def test_resumed_pretraining_trains_the_same_model(tmp_path: Path) -> None:
    data = write_sms_file(tmp_path / "sms.tsv", n=60)
    straight = run_training(PRESET, [data], tmp_path / "straight", device="cpu", progress=False)
    resumed_dir = tmp_path / "resumed"
    resumed_dir.mkdir()
    for f in (tmp_path / "straight").glob("pretrain*"):  # pretraining done, saved at its end
        shutil.copy(f, resumed_dir / f.name)
    resumed = run_training(PRESET, [data], resumed_dir, device="cpu", progress=False)
    a, b = load_file(str(straight.checkpoint)), load_file(str(resumed.checkpoint))
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
