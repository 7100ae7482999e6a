"""The recipe sweep's held-out runs: the corpus is split off whole, and each run is counted once."""

from __future__ import annotations

import json
from pathlib import Path

from bench.recipe_sweep import SWEEPS, holdout_table, repeat_group, split_holdout, table


def _data() -> dict[str, tuple[list[list[int]], list[int], list[str]]]:
    groups = ["enron", "spamassassin", "lingspam", "enron", "spamassassin"]
    return {n: ([[k, i] for i in range(5)], [i % 2 for i in range(5)], list(groups))
            for k, n in enumerate(("train", "val", "test"))}


def test_a_held_out_corpus_leaves_every_split_whole_and_keeps_the_order() -> None:
    rest, held = split_holdout(_data(), "spamassassin")
    for n in ("train", "val", "test"):
        assert held[n][2] == ["spamassassin"] * 2 and "spamassassin" not in rest[n][2]
        assert [ids[1] for ids in held[n][0]] == [1, 4]
        assert [ids[1] for ids in rest[n][0]] == [0, 2, 3]
        assert rest[n][1] == [0, 0, 1] and held[n][1] == [1, 0]


def test_repeating_a_corpus_touches_the_training_split_alone() -> None:
    data = _data()
    more = repeat_group(data, "spamassassin", 3)
    assert more["train"][2] == ["enron"] + ["spamassassin"] * 3 + ["lingspam", "enron"] + (
        ["spamassassin"] * 3)
    assert [ids[1] for ids in more["train"][0]] == [0, 1, 1, 1, 2, 3, 4, 4, 4]
    assert more["train"][1] == [0, 1, 1, 1, 0, 1, 0, 0, 0]
    assert more["val"] == data["val"] and more["test"] == data["test"]


def _run(name: str, fn: int, holdout: bool) -> dict[str, object]:
    groups = {g: {"auc": 0.999, "fp": 0, "fn": fn} for g in ("spamassassin", "enron", "lingspam")}
    row: dict[str, object] = {"name": name, "threshold": 0.99,
                              "val": {"auc": 0.999, "fp": 5, "fn": fn},
                              "test": {"auc": 0.998, "fp": 1, "fn": fn, **groups}}
    if holdout:
        part = {"auc": 0.9, "fp": 3, "fn": 4, "ham": 100, "spam": 50, "fpr": 0.03, "fnr": 0.08}
        row["holdout"] = {"test": part, "all": part}
    return row


def test_tables_count_a_repeated_run_once_and_keep_held_out_runs_apart(tmp_path: Path) -> None:
    first, again = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    first.write_text("\n".join(json.dumps(r) for r in (
        _run("base_a", 10, False), _run("base_b", 20, False), _run("base-no-enron_a", 0, True)
    )) + "\n")  # fmt: skip
    again.write_text(json.dumps(_run("base_a", 99, False)) + "\n")  # a rerun of the same seed
    main = table([first, again])
    assert "| base | 2 |" in main and "| 1.0 / 15.0 | 0/10, 0/20 |" in main  # not the rerun's 99
    assert "no-enron" not in main
    held = holdout_table([first, again])
    assert len(held.splitlines()) == 3  # header, rule, the one held-out run
    assert "| base-no-enron_a | 0.99000 | 3.00% (3/100), 8.00%, 0.9000 |" in held


def test_sweeps_3_to_6_hold_out_each_corpus() -> None:
    for sweep in ("3", "4", "5", "6"):
        held = {c["holdout"] for c in SWEEPS[sweep] if c.get("holdout")}
        assert held == {"spamassassin", "enron", "lingspam"}


def test_sweep_5_compares_sender_lines_on_the_same_draws() -> None:
    names = {c["name"]: c for c in SWEEPS["5"]}
    assert len(names) == len(SWEEPS["5"])  # a name is a run's key in the tables
    for k in "abcde":
        assert names[f"nosender_{k}"]["pt_seeds"] == names[f"mixed_{k}"]["pt_seeds"]
        assert names[f"mixed_{k}"]["hybrid"] and not names[f"nosender_{k}"]["hybrid"]
    assert not any(names[f"lower_{k}"].get("lower") for k in "ab")  # reads the first cache


def test_sweep_6_reads_every_punctuation_run_from_the_second_cache() -> None:
    names = {c["name"]: c for c in SWEEPS["6"]}
    assert len(names) == len(SWEEPS["6"])
    punct = [c for n, c in names.items() if n.startswith("punct")]
    assert len(punct) == 10 and all(c["lower"] and not c.get("hybrid") for c in punct)
    assert not any(names[f"lower_{k}"].get("lower") for k in "ab")  # the baseline: first cache
