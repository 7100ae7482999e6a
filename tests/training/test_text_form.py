"""Training follows the text form (case, sender lines, punctuation): the preset's for a random
trunk, a checkpoint's own otherwise; evaluation, `combine` and `retrain` read text as the
checkpoint says."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch

from models.checkpoint import CheckpointMeta, load_checkpoint, save_checkpoint
from models.classifier import GPTClassifier
from models.gpt import GPT
from models.tokenizer import AS_IS, TextForm
from tests.conftest import TINY, write_sms_file
from training.base_model import base_text_form
from training.corpora.example import HAM, SPAM, Example
from training.ensemble import EnsembleError, combine
from training.job import evaluate_examples, run_training
from training.presets import BOOK, DEFAULT


def test_the_default_preset_lower_cases_and_splits_punctuation() -> None:
    assert DEFAULT.text_form == TextForm("lower", "keep", "split") and BOOK.text_form == AS_IS


def test_a_lower_case_preset_trains_evaluates_and_records_lower_case(tmp_path: Path) -> None:
    preset = replace(BOOK, name="lower", base="random", size="1x2x32x64", trainable="all",
                     finetune=replace(BOOK.finetune, epochs=1, lr=3e-3, epoch_eval=False),
                     text_case="lower", text_sender="drop", text_punct="split")  # fmt: skip
    result = run_training(preset, [write_sms_file(tmp_path / "sms.tsv")], tmp_path / "run",
                          device="cpu", progress=False)
    meta = load_checkpoint(result.checkpoint).meta
    assert meta.text_form == TextForm("lower", "drop", "split")
    recorded = (meta.training["text_case"], meta.training["text_sender"],
                meta.training["text_punct"])
    assert recorded == ("lower", "drop", "split")
    ex = [Example(f"Claim your FREE prize {i}", SPAM, "s") for i in range(5)] + [
        Example(f"Lunch with Ann at {i}?", HAM, "h") for i in range(5)
    ]
    shouted = [Example(e.text.upper(), e.label, e.source) for e in ex]
    signed = [Example(f"From: Bo <bo@example.org>\n{e.text}", e.label, e.source) for e in ex]
    spaced = [Example(e.text.replace("?", "  ? "), e.label, e.source) for e in ex]
    same = [evaluate_examples(result.checkpoint, x) for x in (ex, shouted, signed, spaced)]
    assert same[0] == same[1] == same[2] == same[3]


def test_the_trunk_decides_the_form(tmp_path: Path, tiny_classifier: GPTClassifier) -> None:
    ours = TextForm("lower", "drop")
    assert base_text_form("random", ours) == ours
    assert base_text_form("random", AS_IS) == AS_IS
    assert base_text_form("gpt2", ours) == AS_IS  # OpenAI's GPT-2 read cased text
    lm = tmp_path / "lm.safetensors"
    lm_meta = CheckpointMeta(config=TINY, kind="lm", max_length=64, text_case="lower",
                             text_sender="drop")
    save_checkpoint(GPT(TINY), lm_meta, lm)
    assert base_text_form(str(lm), AS_IS) == ours
    clf = tmp_path / "clf.safetensors"
    save_checkpoint(tiny_classifier, CheckpointMeta(config=TINY, max_length=64), clf)
    assert base_text_form(str(clf), ours) == AS_IS


def test_members_read_with_different_cases_are_not_combined(
    tmp_path: Path, tiny_classifier: GPTClassifier
) -> None:
    paths = []
    for case in ("keep", "lower"):
        meta = CheckpointMeta(config=TINY, max_length=64, text_case=case)
        paths.append(save_checkpoint(tiny_classifier, meta, tmp_path / f"{case}.safetensors"))
    val = [Example("free prize", SPAM, "s"), Example("lunch", HAM, "h")]
    with pytest.raises(EnsembleError, match="text form"):
        combine(paths, tmp_path / "ens.safetensors", val, max_fpr=0.0)
    torch.manual_seed(1)
    other = GPTClassifier(TINY).eval()
    meta = CheckpointMeta(config=TINY, max_length=64, text_case="lower")
    second = save_checkpoint(other, meta, tmp_path / "lower2.safetensors")
    assert combine([paths[1], second], tmp_path / "ens.safetensors", val, 0.5).text_case == "lower"
    dropped = save_checkpoint(other, replace(meta, text_sender="drop"), tmp_path / "d.safetensors")
    with pytest.raises(EnsembleError, match="text form"):
        combine([paths[1], dropped], tmp_path / "ens.safetensors", val, max_fpr=0.0)
