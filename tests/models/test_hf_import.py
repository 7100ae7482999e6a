"""Importing GPT-2 weights from Hugging Face safetensors files (as minGPT's parity test)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from models.gpt import PRESETS, GPTConfig
from models.hf_import import (
    WeightImportError,
    classifier_from_gpt2,
    load_gpt2_safetensors,
    resolve_base_model,
)

transformers = pytest.importorskip("transformers")

N_LAYER, N_HEAD, N_EMBD, N_POSITIONS, VOCAB = 2, 4, 64, 128, 1000


@pytest.fixture(scope="module")
def hf_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[torch.nn.Module, Path]:
    """A small random GPT2LMHeadModel and the directory `save_pretrained` wrote it to."""
    torch.manual_seed(1337)
    config = transformers.GPT2Config(
        n_layer=N_LAYER,
        n_head=N_HEAD,
        n_embd=N_EMBD,
        n_positions=N_POSITIONS,
        vocab_size=VOCAB,
        bos_token_id=0,
        eos_token_id=0,
    )
    model = transformers.GPT2LMHeadModel(config).eval()
    out = tmp_path_factory.mktemp("hf")
    model.save_pretrained(out, safe_serialization=True)
    return model, out


def read_tensors(path: Path) -> dict[str, torch.Tensor]:
    with safe_open(str(path), framework="pt") as f:
        names = f.keys()
        return {k: f.get_tensor(k) for k in names}


def hub_layout(hf_dir: Path, out: Path, **extra: torch.Tensor) -> Path:
    """Rewrite a save_pretrained file the way the Hub's originals are laid out, mask buffers too."""
    tensors = {
        k.removeprefix("transformer."): v
        for k, v in read_tensors(hf_dir / "model.safetensors").items()
    }
    for i in range(N_LAYER):
        tensors[f"h.{i}.attn.bias"] = torch.tril(torch.ones(N_POSITIONS, N_POSITIONS)).view(
            1, 1, N_POSITIONS, N_POSITIONS
        )
        tensors[f"h.{i}.attn.masked_bias"] = torch.tensor(-1e4)
    tensors.update(extra)
    out.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(out / "model.safetensors"))
    return out / "model.safetensors"


def assert_same_logits(ours: torch.nn.Module, theirs: torch.nn.Module) -> None:
    idx = torch.randint(0, VOCAB, (2, 17), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = theirs(idx).logits
        got = ours(idx)
    assert got.shape == expected.shape == (2, 17, VOCAB)
    assert torch.allclose(got, expected, atol=1e-5), (got - expected).abs().max()


def test_save_pretrained_layout_gives_transformers_logits(hf_model):
    theirs, hf_dir = hf_model
    ours = load_gpt2_safetensors(hf_dir / "model.safetensors")  # n_head from config.json
    assert ours.config == GPTConfig(
        vocab_size=VOCAB, block_size=N_POSITIONS, n_layer=N_LAYER, n_head=N_HEAD, n_embd=N_EMBD
    )
    assert not ours.training
    assert ours.lm_head.weight is ours.transformer.wte.weight
    assert not any(p.is_meta for p in ours.parameters())
    assert_same_logits(ours, theirs)


def test_hub_layout_with_mask_buffers_gives_transformers_logits(hf_model, tmp_path):
    theirs, hf_dir = hf_model
    path = hub_layout(hf_dir, tmp_path / "hub")
    assert_same_logits(load_gpt2_safetensors(path, n_head=N_HEAD), theirs)


def test_half_precision_file_is_loaded_as_float32(hf_model, tmp_path):
    _, hf_dir = hf_model
    tensors = {k: v.half() for k, v in read_tensors(hf_dir / "model.safetensors").items()}
    save_file(tensors, str(tmp_path / "model.safetensors"))
    ours = load_gpt2_safetensors(tmp_path / "model.safetensors", n_head=N_HEAD)
    assert {p.dtype for p in ours.parameters()} == {torch.float32}


def test_tied_lm_head_is_accepted_and_untied_one_rejected(hf_model, tmp_path):
    theirs, hf_dir = hf_model
    tensors = read_tensors(hf_dir / "model.safetensors")
    tensors["lm_head.weight"] = tensors["transformer.wte.weight"].clone()
    save_file(tensors, str(tmp_path / "model.safetensors"))
    assert_same_logits(load_gpt2_safetensors(tmp_path / "model.safetensors", n_head=N_HEAD), theirs)

    tensors["lm_head.weight"] = torch.randn(VOCAB, N_EMBD)
    save_file(tensors, str(tmp_path / "model.safetensors"))
    with pytest.raises(WeightImportError, match="not tied"):
        load_gpt2_safetensors(tmp_path / "model.safetensors", n_head=N_HEAD)


def test_n_head_comes_from_the_preset_matching_n_embd_and_n_layer(hf_model, tmp_path, monkeypatch):
    theirs, hf_dir = hf_model
    path = hub_layout(hf_dir, tmp_path)  # no config.json beside it
    with pytest.raises(WeightImportError, match="pass n_head"):
        load_gpt2_safetensors(path)
    monkeypatch.setitem(PRESETS, "tiny", GPTConfig(n_layer=N_LAYER, n_head=N_HEAD, n_embd=N_EMBD))
    assert_same_logits(load_gpt2_safetensors(path), theirs)


def test_n_head_contradicting_config_json_is_rejected(hf_model):
    _, hf_dir = hf_model
    with pytest.raises(WeightImportError, match="contradicts"):
        load_gpt2_safetensors(hf_dir / "model.safetensors", n_head=8)


def test_unsupported_config_json_is_rejected(hf_model, tmp_path):
    _, hf_dir = hf_model
    path = hub_layout(hf_dir, tmp_path)
    config = json.loads((hf_dir / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**config, "activation_function": "relu"}))
    with pytest.raises(WeightImportError, match="relu"):
        load_gpt2_safetensors(path)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t: t.pop("transformer.h.1.mlp.c_fc.bias"), "missing"),
        (lambda t: t.pop("transformer.ln_f.weight"), "missing"),
        (lambda t: t.update({"score.weight": torch.zeros(2, N_EMBD)}), "unexpected"),
        (lambda t: t.update({"transformer.h.0.ln_1.weight": torch.ones(N_EMBD + 1)}), "shape"),
        # A square-looking mistake: the Conv1D weight stored already transposed.
        (
            lambda t: t.update(
                {"transformer.h.0.attn.c_attn.weight": torch.zeros(3 * N_EMBD, N_EMBD)}
            ),
            "shape",
        ),
        (lambda t: t.pop("transformer.wte.weight"), "not a GPT-2"),
    ],
)
def test_missing_unexpected_or_misshapen_keys_are_one_line_errors(
    hf_model, tmp_path, edit, message
):
    _, hf_dir = hf_model
    tensors = read_tensors(hf_dir / "model.safetensors")
    edit(tensors)
    save_file(tensors, str(tmp_path / "model.safetensors"))
    with pytest.raises(WeightImportError, match=message) as e:
        load_gpt2_safetensors(tmp_path / "model.safetensors", n_head=N_HEAD)
    assert "\n" not in str(e.value)


def test_unreadable_files_are_weight_import_errors(tmp_path):
    with pytest.raises(WeightImportError, match="not found"):
        load_gpt2_safetensors(tmp_path / "absent.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(WeightImportError, match="unreadable"):
        load_gpt2_safetensors(tmp_path / "junk.safetensors")


def test_classifier_gets_a_copy_of_the_trunk(hf_model):
    _, hf_dir = hf_model
    gpt = load_gpt2_safetensors(hf_dir / "model.safetensors")
    clf = classifier_from_gpt2(gpt, num_classes=3).eval()
    assert clf.head.weight.shape == (3, N_EMBD)
    assert not any(p.is_meta for p in clf.parameters())
    idx = torch.randint(0, VOCAB, (1, 9))
    with torch.no_grad():
        assert torch.equal(clf.transformer(idx), gpt.transformer(idx))
        assert torch.isfinite(clf(idx, torch.tensor([9]))).all()
        clf.transformer.wte.weight.zero_()
    assert gpt.transformer.wte.weight.abs().sum() > 0  # a copy, not shared storage


def test_resolve_base_model_reads_a_local_file_or_directory(hf_model, tmp_path):
    theirs, hf_dir = hf_model
    assert_same_logits(resolve_base_model(hf_dir), theirs)
    assert_same_logits(resolve_base_model(str(hf_dir / "model.safetensors")), theirs)
    with pytest.raises(WeightImportError, match="neither a GPT-2 preset"):
        resolve_base_model(str(tmp_path / "gpt3"))
