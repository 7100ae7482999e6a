"""An ensemble checkpoint: the members' mean log-odds, saved and loaded like any classifier."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from models.checkpoint import CheckpointError, CheckpointMeta, load_checkpoint, save_checkpoint
from models.classifier import GPTClassifier, right_pad
from models.ensemble import GPTEnsemble
from models.gpt import GPTConfig

CFG = GPTConfig(n_layer=1, n_head=2, n_embd=16, block_size=32)


def members(n: int) -> list[GPTClassifier]:
    out = []
    for seed in range(n):
        torch.manual_seed(seed)
        out.append(GPTClassifier(CFG).eval())
    return out


def test_p_spam_is_the_sigmoid_of_the_members_mean_log_odds() -> None:
    ms = members(3)
    ids, lengths = right_pad([[5, 6, 7, 8], [9, 10], [11, 12, 13]])
    with torch.no_grad():
        got = torch.softmax(GPTEnsemble(ms)(ids, lengths), dim=-1)[:, 1]
        odds = torch.stack([m(ids, lengths)[:, 1] - m(ids, lengths)[:, 0] for m in ms]).mean(0)
    assert torch.allclose(got, torch.sigmoid(odds), atol=1e-6)
    single = torch.softmax(ms[0](ids, lengths), dim=-1)[:, 1]
    assert not torch.allclose(got, single)  # the other members count


def test_an_ensemble_checkpoint_round_trips(tmp_path: Path) -> None:
    model = GPTEnsemble(members(2)).eval()
    meta = CheckpointMeta(config=CFG, max_length=32, threshold=0.7, members=2)
    path = save_checkpoint(model, meta, tmp_path / "ens.safetensors")
    loaded = load_checkpoint(path)
    assert loaded.meta.members == 2 and isinstance(loaded.model, GPTEnsemble)
    ids, lengths = right_pad([[1, 2, 3], [4, 5]])
    with torch.no_grad():
        assert torch.equal(loaded.model(ids, lengths), model(ids, lengths))


def test_single_model_checkpoints_carry_no_members_key(tmp_path: Path) -> None:
    path = save_checkpoint(
        members(1)[0], CheckpointMeta(config=CFG, max_length=32), tmp_path / "one.safetensors"
    )
    with safe_open(str(path), framework="pt") as f:
        assert "members" not in (f.metadata() or {})
    assert load_checkpoint(path).meta.members == 1


@pytest.mark.parametrize("members_value", ["0", "99", "two"])
def test_a_bad_members_count_is_a_checkpoint_error(tmp_path: Path, members_value: str) -> None:
    model = GPTEnsemble(members(2))
    path = save_checkpoint(
        model, CheckpointMeta(config=CFG, max_length=32, members=2), tmp_path / "e.safetensors"
    )
    with safe_open(str(path), framework="pt") as f:
        md = dict(f.metadata() or {})
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
    from safetensors.torch import save_file

    save_file(tensors, str(path), metadata={**md, "members": members_value})
    with pytest.raises(CheckpointError, match=r"members|invalid"):
        load_checkpoint(path)


def test_a_checkpoint_with_fewer_member_tensors_than_it_claims_is_refused(tmp_path: Path) -> None:
    model = GPTEnsemble(members(2))
    path = save_checkpoint(
        model, CheckpointMeta(config=CFG, max_length=32, members=3), tmp_path / "e.safetensors"
    )
    with pytest.raises(CheckpointError, match="does not match"):
        load_checkpoint(path)
