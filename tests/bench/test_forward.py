"""bench/forward.py: one row per checkpoint and dtype, each timed on the same messages, the
first float32 row the baseline of the ratios; it skips cleanly without the corpus."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

import bench.forward as fw
from mailfilter.engine import bundled_checkpoint_path


def _corpus(root: Path) -> Path:
    for folder in ("easy_ham", "spam"):
        (root / folder).mkdir(parents=True)
        for i in range(3):
            (root / folder / f"{i:05d}.msg").write_bytes(
                f"From: a{i}@example.org\nSubject: note {i} {folder}\n\nhello number {i}\n".encode()
            )
    (root / "easy_ham" / "cmds").write_text("not a message\n")
    return root


def test_rows_per_checkpoint_and_dtype(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(fw, "CORPUS", _corpus(tmp_path / "corpus"))
    model = bundled_checkpoint_path()
    argv = ["forward.py", "--checkpoint", str(model), "--checkpoint", str(model), "--repeat", "2"]
    monkeypatch.setattr(sys, "argv", argv)
    assert fw.main() == 0
    report = json.loads(capsys.readouterr().out)
    assert report["messages"] == 6  # `cmds` is not a message
    rows = report["rows"]
    assert [r["dtype"] for r in rows] == ["float32", "bfloat16"] * 2
    assert all(len(r["seconds"]) == 2 and r["messages_per_second"] > 0 for r in rows)
    assert rows[0]["ratio_to_first_float32"] == 1.0


def test_skips_without_the_corpus(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(fw, "CORPUS", tmp_path / "absent")
    monkeypatch.setattr(sys, "argv", ["forward.py"])
    assert fw.main() == 0
    assert "skip:" in capsys.readouterr().err
