"""Pretraining: the compact vocabulary, learning, and resuming from the last checkpoint."""

from __future__ import annotations

import mailbox
import math
from dataclasses import replace
from email.message import EmailMessage
from pathlib import Path

import torch

from models.checkpoint import load_checkpoint
from models.gpt import GPTConfig
from models.tokenizer import EOT_ID, encode
from training.presets import DEFAULT
from training.pretrain import PretrainConfig, pretrain
from training.vocab import EOT, UNK, build_token_map, vocab_size_of

TEXT = ("the quick brown fox jumps over the lazy dog. " * 3 + "meeting at noon tomorrow. ") * 4


def test_token_map_keeps_frequent_tokens_and_maps_rare_ones_to_unk() -> None:
    seqs = [encode(" spam spam spam eggs eggs ham"), encode(" spam eggs")]
    tmap = build_token_map(seqs, max_size=4, min_count=2)
    assert tmap.shape == (50257,)
    spam, eggs = encode(" spam")[0], encode(" eggs")[0]
    assert tmap[spam] == 2 and tmap[eggs] == 3  # most frequent first
    assert tmap[encode(" ham")[0]] == UNK and tmap[EOT_ID] == EOT
    assert vocab_size_of(tmap) == 4
    assert torch.equal(tmap, build_token_map(list(reversed(seqs)), max_size=4, min_count=2))


def _config(tmap: torch.Tensor) -> GPTConfig:
    return GPTConfig(n_layer=1, n_head=2, n_embd=32, block_size=16,
                     vocab_size=vocab_size_of(tmap), input_vocab_size=50257)


def test_language_model_learns_and_resumes(tmp_path: Path) -> None:
    seqs = [encode(TEXT)] * 4
    tmap = build_token_map(seqs, max_size=64, min_count=1)
    cfg = PretrainConfig(batch_size=8, lr=3e-3, warmup_steps=2, max_steps=30, eval_every=10,
                         eval_batches=2, save_every=10)
    out = tmp_path / "lm.safetensors"
    model, history = pretrain(_config(tmap), seqs, seqs, cfg, out, tmap, progress=False)
    chance = math.log(vocab_size_of(tmap))  # the loss of a uniform guess
    assert history.val_loss[-1] < history.val_loss[0] and history.val_loss[-1] < 0.6 * chance
    assert out.exists() and out.with_suffix(".optim.safetensors").exists()
    saved = load_checkpoint(out)
    assert saved.meta.kind == "lm" and saved.meta.training["step"] == 30

    # Asking for more steps continues from step 30 with the saved weights and optimiser state.
    _, resumed = pretrain(_config(tmap), seqs, seqs, replace(cfg, max_steps=40), out, tmap,
                          progress=False)
    assert resumed.steps == [10, 20, 30, 40]
    assert load_checkpoint(out).meta.training["step"] == 40


def _unlabeled_maildir(path: Path) -> None:
    """30 plain messages with a sender, as a user's own mail folder."""
    box = mailbox.Maildir(path, create=True)
    for i in range(30):
        msg = EmailMessage()
        msg["From"] = f"friend{i}@example.org"
        msg["Subject"] = f"note {i}"
        msg.set_content(TEXT)
        box.add(msg)


def test_pretrain_command_reads_an_unlabeled_maildir(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from mailfilter.cli import app

    _unlabeled_maildir(tmp_path / "Mail")
    out = tmp_path / "lm.safetensors"
    result = CliRunner().invoke(app, ["pretrain", str(tmp_path / "Mail"), "-o", str(out),
                                      "--size", "1x2x32x16", "--vocab-size", "64", "--steps", "3",
                                      "--batch-size", "4", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    meta = load_checkpoint(out).meta
    assert meta.kind == "lm" and meta.text_form == DEFAULT.text_form


def test_time_budget_counts_time_spent_before_a_resume(tmp_path: Path) -> None:
    seqs = [encode(TEXT)] * 2
    tmap = build_token_map(seqs, max_size=64, min_count=1)
    cfg = PretrainConfig(batch_size=2, warmup_steps=1, max_steps=1000, eval_every=1000,
                         eval_batches=1, save_every=1000, max_minutes=1e-9)
    out = tmp_path / "lm.safetensors"
    _, first = pretrain(_config(tmap), seqs, seqs, cfg, out, tmap, progress=False)
    assert first.steps == [1]  # the budget ends the run after its first step, which is saved
    _, second = pretrain(_config(tmap), seqs, seqs, cfg, out, tmap, progress=False)
    assert second.steps == [1, 2]  # a resumed run is already over budget: one step, then stop


def test_pretrain_command_records_the_text_form_asked_for_and_refuses_an_unknown_one(
    tmp_path: Path,
) -> None:
    from typer.testing import CliRunner

    from mailfilter.cli import app
    from models.tokenizer import TextForm

    _unlabeled_maildir(tmp_path / "Mail")
    out = tmp_path / "lm.safetensors"
    common = [str(tmp_path / "Mail"), "-o", str(out), "--size", "1x2x32x16", "--vocab-size", "64",
              "--steps", "2", "--batch-size", "4", "--device", "cpu"]
    for option in ("--text-sender", "--text-punct"):
        bad = CliRunner().invoke(app, ["pretrain", *common, option, "hide"])
        assert bad.exit_code == 2 and option in bad.output and not out.exists()
    ok = CliRunner().invoke(app, ["pretrain", *common, "--text-sender", "drop",
                                  "--text-case", "keep", "--text-punct", "split"])
    assert ok.exit_code == 0, ok.output
    assert load_checkpoint(out).meta.text_form == TextForm("keep", "drop", "split")
