"""`mailfilter retrain` installs a model only when it is not worse, and never damages the old one;
`mailfilter rollback` brings the previous one back."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

import training.data
import training.finetune
from mailfilter.cli import app
from mailfilter.learning import model_text
from mailfilter.model_store import ModelStore, ModelStoreError, active_model_path
from mailfilter.state import Label, State, content_hash
from models.checkpoint import CheckpointMeta, load_checkpoint, read_meta, save_checkpoint
from models.tokenizer import encode_batch
from training.base_model import RandomSize, random_classifier
from training.corpora.example import HAM, SPAM, Example
from training.metrics import compute_metrics
from training.retrain import Replay, RetrainConfig, assign_holdout, retrain, worse_reasons
from training.vocab import build_token_map

FAST = RetrainConfig(min_labels=10, epochs=8, batch_size=8, lr=3e-3, device="cpu")
ROOT = Path(__file__).resolve().parents[2]


def raw(i: int, spam: bool) -> bytes:
    if spam:
        subject, body = f"cheap pills offer {i}", "buy viagra now, click here, free money winner"
    else:
        subject, body = f"project meeting {i}", "notes from the review, agenda for thursday"
    return f"From: s{i}@example.com\nSubject: {subject}\n\n{body} {i}\n".encode()


def labels_for(n: int, flip: bool = False, start: int = 0) -> list[Label]:
    """n labels, half spam; `flip` labels each the wrong way."""
    out = []
    for i in range(start, start + n):
        spam = i % 2 == 0
        data = raw(i, spam)
        label = "spam" if spam != flip else "ham"
        out.append(Label(content_hash(data), label, "learn", f"m{i}", model_text(data)))
    return out


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """Tiny models train fastest on one thread (and do not fight a busy machine for cores)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def tiny_checkpoint(tmp_path: Path) -> Path:
    """A random 2-layer, 32-wide classifier with a 256-entry vocabulary (fast to train on CPU)."""
    torch.manual_seed(0)
    texts = [lb.text for lb in labels_for(300)]
    model = random_classifier(RandomSize(2, 2, 32, 64), build_token_map(encode_batch(texts), 256))
    meta = CheckpointMeta(config=model.config, max_length=64, threshold=0.5)
    return save_checkpoint(model.eval(), meta, tmp_path / "tiny.safetensors")


@pytest.fixture
def state(tmp_path: Path) -> State:
    return State.open(tmp_path / "state.sqlite3")


@pytest.fixture
def store(tmp_path: Path) -> ModelStore:
    return ModelStore(tmp_path / "models")


def test_holdout_is_stratified_and_fixed_once_assigned() -> None:
    labels = labels_for(40)
    first = assign_holdout(labels, 0.2)
    held = [lb for lb in labels if first[lb.content_hash] == "holdout"]
    assert sorted(lb.label for lb in held) == ["ham"] * 4 + ["spam"] * 4
    fixed = [Label(**{**vars(lb), "split": first[lb.content_hash]}) for lb in labels]
    more = fixed + labels_for(10, start=40)
    second = assign_holdout(more, 0.2)
    assert set(second) == {lb.content_hash for lb in labels_for(10, start=40)}  # only new ones
    assert sum(side == "holdout" for side in second.values()) == 2


def test_worse_means_more_false_positives_more_errors_or_lower_auc() -> None:
    labels = [0, 0, 0, 1, 1, 1]
    good = compute_metrics(labels, [0.1, 0.2, 0.3, 0.7, 0.8, 0.9], 0.5)
    fp = compute_metrics(labels, [0.1, 0.2, 0.6, 0.7, 0.8, 0.9], 0.5)
    fn = compute_metrics(labels, [0.1, 0.2, 0.3, 0.4, 0.8, 0.9], 0.5)
    assert worse_reasons(good, good, 0.01) == []
    assert any("false positives" in r for r in worse_reasons(good, fp, 0.01))
    assert worse_reasons(good, fn, 0.01) == ["more errors on held-out labels (1 > 0)"]
    assert worse_reasons(fn, good, 0.01) == []
    forgot = worse_reasons(good, good, 0.01, replay_current=good, replay_candidate=fn)
    assert forgot == ["more errors on the base validation sample (1 > 0)"]


def test_a_retrain_that_learns_is_installed_and_the_old_model_kept(
    state: State, store: ModelStore, tiny_checkpoint: Path
) -> None:
    state.add_labels(labels_for(40))
    spam = [i % 2 == 0 for i in range(20)]
    replay = Replay(
        [
            Example(model_text(raw(100 + i, s)), SPAM if s else HAM, "replay")
            for i, s in enumerate(spam)
        ],
        [],
    )
    result = retrain(state, store, tiny_checkpoint, FAST, replay=replay)
    assert result.outcome == "installed", result.reason
    assert result.candidate["holdout"]["roc_auc"] == 1.0
    assert sha(store.previous) == sha(tiny_checkpoint)  # the model it replaced
    meta = read_meta(store.current)
    assert meta.threshold == result.threshold and meta.training["retrain"]["label_seq"] == 1
    assert meta.max_length == 64
    assert active_model_path(None, store.root) == store.current
    nothing = retrain(state, store, store.current, FAST, if_needed=True)
    assert nothing.outcome == "skipped" and "no new labels" in nothing.reason


def test_a_lower_case_senderless_model_is_retrained_on_such_text_and_stays_so(
    state: State, store: ModelStore, tiny_checkpoint: Path, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ckpt = load_checkpoint(tiny_checkpoint)
    meta = CheckpointMeta(config=ckpt.meta.config, max_length=64, threshold=0.5,
                          text_case="lower", text_sender="drop")
    path = save_checkpoint(ckpt.model, meta, tmp_path / "lower.safetensors")
    seen: list[list[str]] = []

    def spy(texts: list[str]) -> list[list[int]]:
        seen.append(texts)
        return encode_batch(texts)

    monkeypatch.setattr(training.data, "encode_batch", spy)
    state.add_labels(labels_for(40))  # "From: …", "Subject: …": cased text
    result = retrain(state, store, path, FAST)
    assert result.outcome == "installed", result.reason
    assert read_meta(store.current).text_form == meta.text_form
    assert seen and all(t == t.lower() for texts in seen for t in texts)
    assert not any(t.startswith("from: ") for texts in seen for t in texts)


def test_too_few_labels_is_a_no_op(state: State, store: ModelStore, tiny_checkpoint: Path) -> None:
    state.add_labels(labels_for(4))
    result = retrain(state, store, tiny_checkpoint, FAST)
    assert result.outcome == "skipped" and "fewer than" in result.reason
    assert not store.current.exists()


def test_a_retrain_that_would_make_the_model_worse_is_refused(
    state: State, store: ModelStore, tiny_checkpoint: Path
) -> None:
    state.add_labels(labels_for(40))
    assert retrain(state, store, tiny_checkpoint, FAST).outcome == "installed"
    good = sha(store.current)
    # The user mislabels a batch of mail; held-out labels (true ones) show the damage.
    state.add_labels(labels_for(60, flip=True, start=200))
    state.set_splits({lb.content_hash: "train" for lb in labels_for(60, flip=True, start=200)})
    result = retrain(state, store, store.current, FAST)
    assert result.outcome == "refused", result
    assert sha(store.current) == good
    last = state.last_retrain()
    assert last is not None and last.outcome == "refused"
    assert retrain(state, store, store.current, FAST, if_needed=True).outcome == "skipped"


def test_an_interrupted_retrain_leaves_the_model_byte_identical(
    state: State, store: ModelStore, tiny_checkpoint: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state.add_labels(labels_for(40))
    assert retrain(state, store, tiny_checkpoint, FAST).outcome == "installed"
    before = sha(store.current), sha(store.previous), sorted(os.listdir(store.root))
    state.add_labels(labels_for(20, start=100))
    real, calls = training.finetune.batch_loss, []

    def interrupted(*args: object) -> torch.Tensor:
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(training.finetune, "batch_loss", interrupted)
    with pytest.raises(KeyboardInterrupt):
        retrain(state, store, store.current, FAST)
    assert (sha(store.current), sha(store.previous), sorted(os.listdir(store.root))) == before
    assert state.last_retrain().outcome == "installed"  # type: ignore[union-attr]
    monkeypatch.undo()
    assert retrain(state, store, store.current, FAST, if_needed=True).outcome == "installed"


def test_a_retrain_killed_mid_training_leaves_the_model_in_place(
    tmp_path: Path, state: State, store: ModelStore, tiny_checkpoint: Path
) -> None:
    state.add_labels(labels_for(40))
    assert retrain(state, store, tiny_checkpoint, FAST).outcome == "installed"
    state.add_labels(labels_for(20, start=100))
    state.close()
    before = sha(store.current), sha(store.previous)
    marker = tmp_path / "training"
    script = textwrap.dedent(f"""
        import time
        from pathlib import Path
        import training.finetune as ft
        from mailfilter.model_store import ModelStore
        from mailfilter.state import State
        from training.retrain import RetrainConfig, retrain
        real = ft.batch_loss
        def slow(*args):
            Path({str(marker)!r}).touch()
            time.sleep(0.2)
            return real(*args)
        ft.batch_loss = slow
        store = ModelStore(Path({str(store.root)!r}))
        retrain(State.open(Path({str(tmp_path / "state.sqlite3")!r})), store, store.current,
                RetrainConfig(min_labels=10, epochs=50, batch_size=8, device="cpu"))
    """)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, env=env)
    deadline = time.monotonic() + 120
    while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert marker.exists(), "the retrain never started training"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert (sha(store.current), sha(store.previous)) == before
    load_checkpoint(store.current)


def test_rollback_swaps_current_and_previous(
    state: State, store: ModelStore, tiny_checkpoint: Path
) -> None:
    with pytest.raises(ModelStoreError, match="no previous"):
        store.rollback()
    state.add_labels(labels_for(40))
    retrain(state, store, tiny_checkpoint, FAST)
    new, old = sha(store.current), sha(store.previous)
    store.rollback()
    assert (sha(store.current), sha(store.previous)) == (old, new)
    store.rollback()
    assert (sha(store.current), sha(store.previous)) == (new, old)


def test_a_rollback_cut_short_is_finished_and_leftovers_dropped(store: ModelStore) -> None:
    store.root.mkdir()
    store.current.write_bytes(b"old previous, now current")
    (store.root / ".swap.safetensors").write_bytes(b"old current")  # killed between the renames
    (store.root / ".incoming.safetensors").write_bytes(b"half")
    with store.lock():
        pass
    assert store.previous.read_bytes() == b"old current"
    left = sorted(os.listdir(store.root))
    assert left == [".lock", "current.safetensors", "previous.safetensors"]


def test_a_second_retrain_or_rollback_waits_for_none(store: ModelStore) -> None:
    with store.lock(), pytest.raises(ModelStoreError, match="another"), store.lock():
        pass


def test_retrain_and_rollback_commands(tmp_path: Path, tiny_checkpoint: Path) -> None:
    data = tmp_path / "data"
    env = {
        "XDG_DATA_HOME": str(data),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "MAILFILTER_STATE_PATH": str(tmp_path / "cli.sqlite3"),
    }
    store = ModelStore(data / "mailfilter" / "models")
    store.root.mkdir(parents=True)
    store.current.write_bytes(tiny_checkpoint.read_bytes())  # as if installed before
    runner = CliRunner()
    check = runner.invoke(app, ["retrain", "--check", "--min-labels", "10"], env=env)
    assert check.exit_code == 1 and "fewer than" in check.output
    state = State.open(tmp_path / "cli.sqlite3")
    state.add_labels(labels_for(40))
    state.close()
    assert runner.invoke(app, ["retrain", "--check", "--min-labels", "10"], env=env).exit_code == 0
    args = ["retrain", "--min-labels", "10", "--no-replay", "--epochs", "8", "--device", "cpu"]
    result = runner.invoke(app, args, env=env)
    assert result.exit_code == 0, result.output
    assert "installed" in result.output and "your own labels only" in result.output
    assert sha(store.previous) == sha(tiny_checkpoint)
    again = runner.invoke(app, [*args, "--if-needed"], env=env)
    assert again.exit_code == 0 and "no new labels" in again.output
    back = runner.invoke(app, ["rollback"], env=env)
    assert back.exit_code == 0, back.output
    assert sha(store.current) == sha(tiny_checkpoint)


def test_the_active_model_is_the_configured_then_the_installed_then_the_bundled(
    tmp_path: Path, store: ModelStore
) -> None:
    from mailfilter.engine import bundled_checkpoint_path

    assert active_model_path(None, store.root) == bundled_checkpoint_path()
    store.root.mkdir()
    store.current.write_bytes(b"x")
    assert active_model_path(None, store.root) == store.current
    assert (
        active_model_path(tmp_path / "mine.safetensors", store.root)
        == tmp_path / "mine.safetensors"
    )


def test_an_ensemble_is_retrained_member_by_member_and_stays_an_ensemble(
    state: State, store: ModelStore, tiny_checkpoint: Path, tmp_path: Path
) -> None:
    from models.classifier import GPTClassifier
    from models.ensemble import GPTEnsemble

    single = load_checkpoint(tiny_checkpoint)
    assert isinstance(single.model, GPTClassifier)
    torch.manual_seed(1)
    other = random_classifier(RandomSize(2, 2, 32, 64), single.model.transformer.token_map)
    ens = GPTEnsemble([single.model, other])
    meta = CheckpointMeta(config=single.meta.config, max_length=64, threshold=0.5, members=2)
    path = save_checkpoint(ens.eval(), meta, tmp_path / "ens.safetensors")
    before = load_checkpoint(path).model
    assert isinstance(before, GPTEnsemble)
    state.add_labels(labels_for(40))
    result = retrain(state, store, path, FAST)
    assert result.outcome == "installed", result.reason
    assert result.candidate["holdout"]["roc_auc"] == 1.0
    assert sha(store.previous) == sha(path)
    new = load_checkpoint(store.current)
    assert new.meta.members == 2 and isinstance(new.model, GPTEnsemble)
    assert new.meta.threshold == result.threshold
    for old_member, new_member in zip(before.classifiers(), new.model.classifiers(), strict=True):
        assert not torch.equal(old_member.head.weight, new_member.head.weight)  # each one trained
