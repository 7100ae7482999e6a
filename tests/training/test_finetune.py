"""Fine-tuning really learns: a tiny model fits a small synthetic set exactly."""

from __future__ import annotations

import math
import random

import pytest
import torch

from models.classifier import GPTClassifier
from models.gpt import GPTConfig
from training.corpora.example import HAM, SPAM, Example
from training.data import Batch, TokenizedSet, batches, collate
from training.finetune import (
    FinetuneConfig,
    accuracy,
    crop_lengths,
    finetune,
    predict,
    predict_log_odds,
)


def _synthetic() -> list[Example]:
    spam_words = ["winner", "free money", "claim your prize", "cheap pills", "act now"]
    ham_words = ["meeting notes", "lunch tomorrow", "the patch review", "quarterly report",
                 "see you at the game"]
    out = []
    for i in range(40):
        out.append(Example(f"Subject: {spam_words[i % 5]} {i}\n\n{spam_words[(i + 1) % 5]}!!!",
                           SPAM, f"s{i}"))
        out.append(Example(f"Subject: {ham_words[i % 5]} {i}\n\nabout {ham_words[(i + 2) % 5]}",
                           HAM, f"h{i}"))
    return out


def test_tiny_model_reaches_full_train_accuracy() -> None:
    torch.manual_seed(0)
    model = GPTClassifier(GPTConfig(n_layer=2, n_head=2, n_embd=32, block_size=64))
    model.set_trainable("all")
    data = TokenizedSet(_synthetic(), max_length=64)
    cfg = FinetuneConfig(epochs=12, batch_size=8, lr=3e-3, weight_decay=0.0, eval_every=10)
    history = finetune(model, data, data, cfg, torch.device("cpu"), progress=False)
    scores = predict(model, data, torch.device("cpu"))
    assert accuracy(scores, data.labels) == 1.0
    assert history.train_loss[-1] < history.train_loss[0]
    assert history.epochs == list(range(1, 13))


def test_log_odds_are_the_scores_before_the_softmax_in_the_same_order() -> None:
    torch.manual_seed(0)
    model = GPTClassifier(GPTConfig(n_layer=1, n_head=2, n_embd=16, block_size=64)).train()
    data = TokenizedSet(_synthetic(), max_length=64)
    probs = predict(model, data, torch.device("cpu"), batch_size=7)
    odds = predict_log_odds(model, data, torch.device("cpu"), batch_size=7)
    assert model.training  # both put the model back as they found it
    assert [1 / (1 + math.exp(-x)) for x in odds] == pytest.approx(probs, abs=1e-6)
    assert len(set(odds)) > 1


def test_frozen_parameters_do_not_change() -> None:
    torch.manual_seed(0)
    model = GPTClassifier(GPTConfig(n_layer=2, n_head=2, n_embd=32, block_size=64))
    model.set_trainable("last_blocks", 1)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    data = TokenizedSet(_synthetic()[:16], max_length=64)
    finetune(model, data, data, FinetuneConfig(epochs=1, batch_size=8, lr=1e-2, eval_every=100),
             torch.device("cpu"), progress=False)
    after = dict(model.named_parameters())
    assert torch.equal(before["transformer.h.0.attn.c_attn.weight"],
                       after["transformer.h.0.attn.c_attn.weight"])
    assert torch.equal(before["transformer.wte.weight"], after["transformer.wte.weight"])
    assert not torch.equal(before["transformer.h.1.mlp.c_fc.weight"],
                           after["transformer.h.1.mlp.c_fc.weight"])
    assert not torch.equal(before["head.weight"], after["head.weight"])


def test_collate_right_pads_to_longest_in_batch() -> None:
    b = collate([[1, 2, 3], [4], [5, 6]], [1, 0, 1])
    assert b.ids.tolist() == [[1, 2, 3], [4, 50256, 50256], [5, 6, 50256]]
    assert b.lengths.tolist() == [3, 1, 2]
    assert b.labels.tolist() == [1, 0, 1]


def test_truncation_keeps_the_head_and_batches_cover_everything() -> None:
    data = TokenizedSet(_synthetic(), max_length=5)
    assert max(len(ids) for ids in data.ids) == 5
    seen = sum(len(b.labels) for b in batches(data, 7, shuffle=True))
    assert seen == len(data)


def test_keep_best_restores_the_weights_with_the_best_validation_auc() -> None:
    from training.metrics import roc_auc

    torch.manual_seed(0)
    model = GPTClassifier(GPTConfig(n_layer=2, n_head=2, n_embd=32, block_size=64))
    train = TokenizedSet(_synthetic(), max_length=64)
    # Every third validation label is the opposite of training's, so the validation AUC moves
    # up and down while the model fits the training set.
    flipped = [Example(e.text, 1 - e.label if i % 3 == 0 else e.label, e.source)
               for i, e in enumerate(_synthetic())]
    val = TokenizedSet(flipped, max_length=64)
    cfg = FinetuneConfig(epochs=4, batch_size=8, lr=3e-4, weight_decay=0.0, eval_every=100,
                         keep_best_every=2, epoch_eval=False)
    history = finetune(model, train, val, cfg, torch.device("cpu"), progress=False)
    assert len(history.val_auc) >= 5 and history.best_step != history.checked_steps[-1]
    assert history.best_step == history.checked_steps[history.val_auc.index(max(history.val_auc))]
    kept = roc_auc(val.labels, predict(model, val, torch.device("cpu")))
    assert abs(kept - max(history.val_auc)) < 1e-9


def test_ema_returns_the_moving_average_of_the_weights_after_each_step() -> None:
    """With a constant learning rate, runs of 1..n steps are prefixes of one another, so the
    average can be computed from them: e_1 = w_1, e_k = d * e_(k-1) + (1 - d) * w_k."""
    train = TokenizedSet(_synthetic(), max_length=64)

    def run(steps: int, decay: float | None) -> dict[str, torch.Tensor]:
        torch.manual_seed(0)
        model = GPTClassifier(GPTConfig(n_layer=1, n_head=2, n_embd=16, block_size=64))
        cfg = FinetuneConfig(epochs=1, batch_size=8, lr=1e-2, weight_decay=0.0, eval_every=100,
                             epoch_eval=False, max_steps=steps, ema_decay=decay)
        finetune(model, train, train, cfg, torch.device("cpu"), progress=False)
        return {k: v.clone() for k, v in model.named_parameters()}

    decay = 0.6
    weights = [run(k, None) for k in (1, 2, 3)]
    expected = weights[0]
    for w in weights[1:]:
        expected = {k: decay * expected[k] + (1 - decay) * w[k] for k in w}
    got = run(3, decay)
    assert not torch.allclose(got["head.weight"], weights[-1]["head.weight"])
    for k, v in got.items():
        assert torch.allclose(v, expected[k], atol=1e-6), k


def test_crop_lengths_cuts_only_to_a_prefix_of_at_least_the_minimum() -> None:
    rng = random.Random(0)
    lengths = torch.tensor([3, 8, 9, 40, 256] * 200)
    cut = crop_lengths(lengths, 1.0, 8, rng)
    assert cut[lengths <= 8].tolist() == lengths[lengths <= 8].tolist()  # too short to cut
    long = lengths > 8
    assert bool(((cut[long] >= 8) & (cut[long] <= lengths[long])).all())
    assert int((cut[lengths == 256] < 32).sum()) > 50  # log-uniform: short prefixes are common
    assert torch.equal(crop_lengths(lengths, 0.0, 8, rng), lengths)
    half = crop_lengths(lengths[lengths == 256], 0.5, 8, random.Random(1))
    assert 60 < int((half < 256).sum()) < 140


def test_finetune_crops_lengths_but_keeps_the_shuffle(monkeypatch: pytest.MonkeyPatch) -> None:
    import training.finetune as ft

    seen: list[tuple[list[int], list[int], list[int]]] = []
    real = ft.batch_loss

    def spy(model: GPTClassifier, batch: Batch, device: torch.device) -> torch.Tensor:
        full = [int((row != 50256).sum()) for row in batch.ids]
        seen.append((batch.labels.tolist(), batch.lengths.tolist(), full))
        return real(model, batch, device)

    monkeypatch.setattr(ft, "batch_loss", spy)
    train = TokenizedSet(_synthetic(), max_length=64)

    def run(prob: float) -> list[tuple[list[int], list[int], list[int]]]:
        seen.clear()
        torch.manual_seed(0)
        model = GPTClassifier(GPTConfig(n_layer=1, n_head=2, n_embd=16, block_size=64))
        cfg = FinetuneConfig(epochs=2, batch_size=8, eval_every=1000, epoch_eval=False,
                             crop_prob=prob, crop_min_tokens=4)
        finetune(model, train, train, cfg, torch.device("cpu"), progress=False)
        return list(seen)

    plain, cropped = run(0.0), run(1.0)
    assert [labels for labels, _, _ in plain] == [labels for labels, _, _ in cropped]
    assert all(lengths == full for _, lengths, full in plain)
    pairs = [(n, f) for _, lengths, full in cropped for n, f in zip(lengths, full, strict=True)]
    assert all(min(4, f) <= n <= f for n, f in pairs)
    assert sum(n < f for n, f in pairs) > len(pairs) // 2


def test_bad_crop_settings_are_refused() -> None:
    model = GPTClassifier(GPTConfig(n_layer=1, n_head=2, n_embd=16, block_size=64))
    data = TokenizedSet(_synthetic()[:8], max_length=64)
    with pytest.raises(ValueError, match="crop_prob"):
        finetune(model, data, data, FinetuneConfig(crop_prob=1.5), torch.device("cpu"),
                 progress=False)
