"""`mailfilter train` and `mailfilter evaluate` end to end on a small synthetic SMS file."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from models.checkpoint import load_checkpoint
from tests.conftest import write_sms_file


def _mailfilter(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", "from mailfilter.cli import main; main()", *args],
                          capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_train_writes_checkpoint_metrics_and_curves(tmp_path: Path) -> None:
    data = write_sms_file(tmp_path / "sms.tsv", more_ham=True)
    out = tmp_path / "run"
    r = _mailfilter("train", "--preset", "book", "--data", str(data), "--base", "random",
                    "--size", "1x2x32x128", "--epochs", "2", "--output", str(out),
                    "--device", "cpu")
    assert r.returncode == 0, r.stderr
    report = json.loads((out / "metrics.json").read_text())
    for split in ("train", "val", "test"):
        m = report["metrics"][split]
        assert {"accuracy", "precision", "recall", "f1", "false_positive_rate", "roc_auc",
                "confusion_matrix"} <= set(m)
    # the book keeps duplicates, balances by undersampling (60 spam + 60 ham), splits 70/10/20
    splits = report["training"]["splits"]
    assert splits["train"]["ham"] + splits["train"]["spam"] == 84
    assert splits["test"]["ham"] + splits["test"]["spam"] == 24
    assert (out / "training-curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    ckpt = load_checkpoint(out / "model.safetensors")
    assert ckpt.meta.training["preset"] == "book"

    r = _mailfilter("evaluate", str(out / "model.safetensors"), str(data))
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["metrics"]["n"] == 180


def test_bad_paths_are_one_line_and_exit_2(tmp_path: Path) -> None:
    r = _mailfilter("train", "--data", str(tmp_path / "missing.tsv"), "--base", "random")
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and "not found" in r.stderr
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"garbage")
    r = _mailfilter("evaluate", str(bad), str(tmp_path))
    assert r.returncode == 2 and r.stderr.startswith("mailfilter: error:")
    assert r.stderr.strip().count("\n") == 0
    r = _mailfilter("train", "--preset", "nope", "--data", str(bad))
    assert r.returncode == 2 and "unknown preset" in r.stderr


@pytest.mark.parametrize("seeds", ["a,b", "3,3", "1,2,3,4,5,6,7,8,9"])
def test_bad_seeds_are_one_line_and_exit_2(tmp_path: Path, seeds: str) -> None:
    data = write_sms_file(tmp_path / "sms.tsv", more_ham=True)
    r = _mailfilter("train", "--preset", "book", "--data", str(data), "--seeds", seeds)
    assert r.returncode == 2 and "--seeds" in r.stderr
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize(("seeds", "members"), [("5", 1), ("5,6", 2)])
def test_seeds_choose_a_single_model_or_an_ensemble(
    tmp_path: Path, seeds: str, members: int
) -> None:
    data = write_sms_file(tmp_path / "sms.tsv", more_ham=True)
    out = tmp_path / "run"
    r = _mailfilter("train", "--preset", "book", "--data", str(data), "--base", "random",
                    "--size", "1x2x32x128", "--max-steps", "3", "--output", str(out),
                    "--device", "cpu", "--seeds", seeds)
    assert r.returncode == 0, r.stderr
    meta = load_checkpoint(out / "model.safetensors").meta
    assert meta.members == members
    assert meta.training["finetune"]["seed"] == 5
    assert meta.training.get("member_seeds", [5]) == [int(s) for s in seeds.split(",")]


def test_oversample_reads_a_corpus_more_often(tmp_path: Path) -> None:
    data = write_sms_file(tmp_path / "sms.tsv", more_ham=True)
    out = tmp_path / "run"
    base = ["train", "--preset", "book", "--data", str(data), "--base", "random", "--size",
            "1x2x32x128", "--max-steps", "2", "--output", str(out), "--device", "cpu"]
    r = _mailfilter(*base, "--oversample", "sms=2")
    assert r.returncode == 0, r.stderr
    assert load_checkpoint(out / "model.safetensors").meta.training["oversample"] == {"sms": 2}
    r = _mailfilter(*base, "--oversample", "smss=2")  # no such corpus: said, not ignored
    assert r.returncode != 0 and "no training messages from smss" in r.stderr
    assert r.stderr.strip().count("\n") == 0 and "Traceback" not in r.stderr
    for bad in ("sms", "sms=0", "=2", "sms=two"):
        r = _mailfilter(*base, "--oversample", bad)
        assert r.returncode == 2 and "--oversample" in r.stderr, bad


def test_default4_members_keep_their_recipes(tmp_path: Path) -> None:
    """`--preset default4` gives each of its four members its own oversampling: `--seeds` must
    name one seed per member and may not make two alike; `--oversample` would, so is refused."""
    base = ["train", "--preset", "default4", "--output", str(tmp_path / "run")]
    for seeds in ("11,13", "11,13,11,13,17", "11,11,13,13"):
        r = _mailfilter(*base, "--seeds", seeds)
        assert r.returncode == 2 and "--seeds" in r.stderr, seeds
    r = _mailfilter(*base, "--oversample", "spamassassin=2")
    assert r.returncode == 2 and "own oversampling" in r.stderr
    assert not (tmp_path / "run").exists()
