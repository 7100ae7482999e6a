"""The classifier reads the last real token, so padding and batch company never change a score."""

from __future__ import annotations

import pytest
import torch

from models.classifier import GPTClassifier
from models.gpt import GPT, GPTConfig
from models.tokenizer import EOT_ID

CFG = GPTConfig(n_layer=2, n_head=4, n_embd=64, block_size=64)


def _model() -> GPTClassifier:
    torch.manual_seed(1)
    return GPTClassifier(CFG).eval()


def test_score_alone_equals_score_in_batch_with_longer_sequences() -> None:
    model = _model()
    torch.manual_seed(2)
    short = torch.randint(0, 50000, (7,))
    longer = [torch.randint(0, 50000, (n,)) for n in (20, 33, 64)]
    alone = model(short[None, :], torch.tensor([7]))
    batch = torch.full((4, 64), EOT_ID)
    for row, seq in enumerate([short, *longer]):
        batch[row, : len(seq)] = seq
    lengths = torch.tensor([7, 20, 33, 64])
    batched = model(batch, lengths)
    assert torch.allclose(alone[0], batched[0], atol=1e-5)


def test_last_position_pooling_is_changed_by_padding() -> None:
    model = _model()
    model.pooling = "last_position"
    seq = torch.randint(0, 50000, (1, 7))
    padded = torch.cat([seq, torch.full((1, 5), EOT_ID)], dim=1)
    assert not torch.allclose(model(seq), model(padded), atol=1e-4)


def test_head_has_two_classes_and_gpt2_parameter_names() -> None:
    model = _model()
    assert model(torch.zeros(3, 5, dtype=torch.long), torch.tensor([5, 2, 1])).shape == (3, 2)
    names = set(dict(model.named_parameters()))
    assert {
        "transformer.wte.weight",
        "transformer.h.0.attn.c_attn.weight",
        "transformer.h.1.mlp.c_proj.bias",
        "transformer.ln_f.weight",
    } <= names


@pytest.mark.parametrize(
    ("mode", "blocks", "trainable_prefixes"),
    [
        ("head", 1, {"head"}),
        ("last_blocks", 1, {"head", "transformer.h.1", "transformer.ln_f"}),
        ("last_blocks", 2, {"head", "transformer.h.0", "transformer.h.1", "transformer.ln_f"}),
        (
            "all",
            1,
            {
                "head",
                "transformer.h.0",
                "transformer.h.1",
                "transformer.ln_f",
                "transformer.wte",
                "transformer.wpe",
            },
        ),
    ],
)
def test_set_trainable(mode: str, blocks: int, trainable_prefixes: set[str]) -> None:
    model = _model()
    model.set_trainable(mode, blocks)  # type: ignore[arg-type]
    trainable = {n.rsplit(".", 1)[0] for n, p in model.named_parameters() if p.requires_grad}
    got = {
        t
        if t == "head"
        else ".".join(t.split(".")[:3])
        if ".h." in t
        else ".".join(t.split(".")[:2])
        for t in trainable
    }
    assert got == trainable_prefixes


def test_lm_head_is_tied_to_token_embedding() -> None:
    gpt = GPT(CFG)
    assert gpt.lm_head.weight.data_ptr() == gpt.transformer.wte.weight.data_ptr()
    assert gpt(torch.zeros(1, 3, dtype=torch.long)).shape == (1, 3, CFG.vocab_size)


def test_sequence_longer_than_block_size_is_rejected() -> None:
    with pytest.raises(ValueError, match="exceeds block size"):
        _model()(torch.zeros(1, 65, dtype=torch.long), torch.tensor([65]))


def test_pooled_forward_equals_full_forward_at_each_last_real_token() -> None:
    model = _model()
    torch.manual_seed(3)
    ids = torch.randint(0, 50000, (5, 40))
    lengths = torch.tensor([40, 1, 17, 39, 2])
    full = model.transformer(ids)  # (B, T, C)
    expected = model.head(full[torch.arange(5), lengths - 1])
    assert torch.allclose(model(ids, lengths), expected, atol=1e-5)


def test_set_dropout_reaches_every_layer_and_eval_mode_ignores_it() -> None:
    from models.gpt import set_dropout

    model = _model()
    seq = torch.randint(0, 50000, (2, 16))
    reference = model(seq)
    set_dropout(model, 0.5)
    model.train()
    assert not torch.allclose(model(seq), model(seq))  # dropout is live while training
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            assert module.p == 0.5
    model.eval()
    assert torch.allclose(model(seq), reference)  # and off when scoring
    set_dropout(model, 0.0)
    model.train()
    assert torch.allclose(model(seq), reference, atol=1e-6)
