"""Training follows the text case: the preset's for a random trunk, a checkpoint's own otherwise;
evaluation, `combine` and `retrain` read text as the checkpoint says."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch

from models.checkpoint import CheckpointMeta, load_checkpoint, save_checkpoint
from models.classifier import GPTClassifier
from models.gpt import GPT
from tests.conftest import TINY, write_sms_file
from training.base_model import base_text_case
from training.corpora.example import HAM, SPAM, Example
from training.ensemble import EnsembleError, combine
from training.job import evaluate_examples, run_training
from training.presets import BOOK, DEFAULT


def test_the_default_preset_lower_cases() -> None:
    assert DEFAULT.text_case == "lower" and BOOK.text_case == "keep"


def test_a_lower_case_preset_trains_evaluates_and_records_lower_case(tmp_path: Path) -> None:
    preset = replace(BOOK, name="lower", base="random", size="1x2x32x64", trainable="all",
                     finetune=replace(BOOK.finetune, epochs=1, lr=3e-3, epoch_eval=False),
                     text_case="lower")  # fmt: skip
    result = run_training(preset, [write_sms_file(tmp_path / "sms.tsv")], tmp_path / "run",
                          device="cpu", progress=False)
    meta = load_checkpoint(result.checkpoint).meta
    assert meta.text_case == "lower" and meta.training["text_case"] == "lower"
    ex = [Example(f"Claim your FREE prize {i}", SPAM, "s") for i in range(5)] + [
        Example(f"Lunch with Ann at {i}?", HAM, "h") for i in range(5)
    ]
    shouted = [Example(e.text.upper(), e.label, e.source) for e in ex]
    same = evaluate_examples(result.checkpoint, ex), evaluate_examples(result.checkpoint, shouted)
    assert same[0] == same[1]


def test_the_trunk_decides_the_case(tmp_path: Path, tiny_classifier: GPTClassifier) -> None:
    assert base_text_case("random", "lower") == "lower"
    assert base_text_case("random", "keep") == "keep"
    assert base_text_case("gpt2", "lower") == "keep"  # OpenAI's GPT-2 read cased text
    lm = tmp_path / "lm.safetensors"
    lm_meta = CheckpointMeta(config=TINY, kind="lm", max_length=64, text_case="lower")
    save_checkpoint(GPT(TINY), lm_meta, lm)
    assert base_text_case(str(lm), "keep") == "lower"
    clf = tmp_path / "clf.safetensors"
    save_checkpoint(tiny_classifier, CheckpointMeta(config=TINY, max_length=64), clf)
    assert base_text_case(str(clf), "lower") == "keep"


def test_members_read_with_different_cases_are_not_combined(
    tmp_path: Path, tiny_classifier: GPTClassifier
) -> None:
    paths = []
    for case in ("keep", "lower"):
        meta = CheckpointMeta(config=TINY, max_length=64, text_case=case)
        paths.append(save_checkpoint(tiny_classifier, meta, tmp_path / f"{case}.safetensors"))
    val = [Example("free prize", SPAM, "s"), Example("lunch", HAM, "h")]
    with pytest.raises(EnsembleError, match="text case"):
        combine(paths, tmp_path / "ens.safetensors", val, max_fpr=0.0)
    torch.manual_seed(1)
    other = GPTClassifier(TINY).eval()
    meta = CheckpointMeta(config=TINY, max_length=64, text_case="lower")
    second = save_checkpoint(other, meta, tmp_path / "lower2.safetensors")
    assert combine([paths[1], second], tmp_path / "ens.safetensors", val, 0.5).text_case == "lower"
