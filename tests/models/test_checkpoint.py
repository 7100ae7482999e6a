"""Checkpoints: safetensors + metadata, atomic, strict; bad files are one clear error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from models.checkpoint import (
    CheckpointError,
    CheckpointMeta,
    load_checkpoint,
    read_meta,
    save_checkpoint,
)
from models.classifier import GPTClassifier
from models.gpt import GPT, GPTConfig

CFG = GPTConfig(n_layer=2, n_head=2, n_embd=32, block_size=64)


def test_save_then_load_gives_identical_logits(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = GPTClassifier(CFG).eval()
    meta = CheckpointMeta(
        config=CFG,
        max_length=48,
        threshold=0.87,
        training={"preset": "x"},
        metrics={"test": {"accuracy": 1.0}},
    )
    path = save_checkpoint(model, meta, tmp_path / "m.safetensors")
    loaded = load_checkpoint(path)
    ids, lengths = torch.randint(0, 50257, (3, 10)), torch.tensor([10, 4, 7])
    assert torch.equal(model(ids, lengths), loaded.model(ids, lengths))
    assert loaded.meta.threshold == 0.87 and loaded.meta.max_length == 48
    assert loaded.meta.training == {"preset": "x"}
    assert read_meta(path).config == CFG
    assert not list(tmp_path.glob(".*tmp"))  # no temp file left behind


def test_language_model_round_trip(tmp_path: Path) -> None:
    gpt = GPT(CFG).eval()
    path = save_checkpoint(
        gpt, CheckpointMeta(config=CFG, kind="lm", max_length=64), tmp_path / "lm.safetensors"
    )
    ids = torch.randint(0, 50257, (2, 9))
    assert torch.equal(gpt(ids), load_checkpoint(path).model(ids))


def test_half_precision_storage_loads_as_float32(tmp_path: Path) -> None:
    model = GPTClassifier(CFG).eval()
    path = save_checkpoint(
        model,
        CheckpointMeta(config=CFG, max_length=64),
        tmp_path / "m.safetensors",
        dtype=torch.bfloat16,
    )
    loaded = load_checkpoint(path)
    assert loaded.model.head.weight.dtype == torch.float32


def test_truncated_file_is_one_clear_error(tmp_path: Path) -> None:
    path = save_checkpoint(
        GPTClassifier(CFG), CheckpointMeta(config=CFG, max_length=64), tmp_path / "m.safetensors"
    )
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="corrupt") as err:
        load_checkpoint(path)
    assert "\n" not in str(err.value)


def test_garbage_and_missing_files(tmp_path: Path) -> None:
    bad = tmp_path / "garbage.safetensors"
    bad.write_bytes(b"\x00" * 100)
    with pytest.raises(CheckpointError):
        load_checkpoint(bad)
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "nope.safetensors")


def test_foreign_safetensors_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(2)}, str(path))
    with pytest.raises(CheckpointError, match="not a mailfilter checkpoint"):
        load_checkpoint(path)


def test_config_and_tensors_that_disagree_are_rejected(tmp_path: Path) -> None:
    path = save_checkpoint(
        GPTClassifier(CFG), CheckpointMeta(config=CFG, max_length=64), tmp_path / "m.safetensors"
    )
    from safetensors import safe_open

    with safe_open(str(path), "pt") as f:
        md = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
    md["config"] = json.dumps({**json.loads(md["config"]), "n_layer": 3})
    save_file(tensors, str(path), metadata=md)
    with pytest.raises(CheckpointError, match="does not match"):
        load_checkpoint(path)
    md["config"] = json.dumps({**json.loads(md["config"]), "n_layer": 2, "n_embd": 64})
    save_file(tensors, str(path), metadata=md)
    with pytest.raises(CheckpointError, match="shape"):
        load_checkpoint(path)
