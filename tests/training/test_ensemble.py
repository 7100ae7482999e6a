"""`combine`: members of one shape become an ensemble checkpoint with a validation threshold."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from mailfilter.cli.app import app
from mailfilter.engine import Engine
from models.checkpoint import CheckpointMeta, load_checkpoint, save_checkpoint
from models.classifier import GPTClassifier
from models.ensemble import GPTEnsemble
from models.gpt import GPTConfig
from training.corpora.example import HAM, SPAM, Example
from training.data import TokenizedSet
from training.ensemble import EnsembleError, combine
from training.finetune import FinetuneConfig, finetune, predict
from training.metrics import choose_threshold

CFG = GPTConfig(n_layer=1, n_head=2, n_embd=16, block_size=64)


def examples() -> list[Example]:
    out = []
    for i in range(30):
        out.append(
            Example(f"Subject: claim your free prize {i}\n\nwinner cheap pills", SPAM, f"s{i}")
        )
        out.append(Example(f"Subject: meeting notes {i}\n\nsee you at lunch", HAM, f"h{i}"))
    return out


def trained(tmp_path: Path, seed: int, config: GPTConfig = CFG) -> Path:
    torch.manual_seed(seed)
    model = GPTClassifier(config)
    data = TokenizedSet(examples(), max_length=64)
    cfg = FinetuneConfig(
        epochs=2,
        batch_size=8,
        lr=3e-3,
        weight_decay=0.0,
        eval_every=100,
        epoch_eval=False,
        seed=seed,
    )
    finetune(model, data, data, cfg, torch.device("cpu"), progress=False)
    meta = CheckpointMeta(config=config, max_length=64, threshold=0.5)
    return save_checkpoint(model, meta, tmp_path / f"m{seed}-{config.n_embd}.safetensors")


def test_combine_writes_an_ensemble_whose_threshold_keeps_validation_fpr(tmp_path: Path) -> None:
    a, b = trained(tmp_path, 1), trained(tmp_path, 2)
    val = examples()
    meta = combine([a, b], tmp_path / "ens.safetensors", val, max_fpr=0.0)
    loaded = load_checkpoint(tmp_path / "ens.safetensors")
    assert isinstance(loaded.model, GPTEnsemble) and loaded.meta.members == 2
    assert loaded.meta.threshold == meta.threshold
    assert [m["sha256"] for m in loaded.meta.training["ensemble_of"]] == [
        load_checkpoint(a).sha256,
        load_checkpoint(b).sha256,
    ]
    scores = predict(loaded.model, TokenizedSet(val, 64), torch.device("cpu"))
    assert not any(s >= meta.threshold for s, e in zip(scores, val, strict=True) if e.label == HAM)
    # The engine scores with it like with any checkpoint.
    engine = Engine.load(tmp_path / "ens.safetensors", device="cpu")
    texts = [val[0].text, val[1].text]
    assert engine.score_texts(texts) == pytest.approx(scores[:2], abs=1e-3)  # float16 on disk


def test_members_of_different_shapes_are_refused(tmp_path: Path) -> None:
    a = trained(tmp_path, 1)
    b = trained(tmp_path, 2, GPTConfig(n_layer=1, n_head=2, n_embd=32, block_size=64))
    with pytest.raises(EnsembleError, match="differs"):
        combine([a, b], tmp_path / "ens.safetensors", examples(), max_fpr=0.0)
    with pytest.raises(EnsembleError, match="at least two"):
        combine([a], tmp_path / "ens.safetensors", examples(), max_fpr=0.0)
    assert not (tmp_path / "ens.safetensors").exists()


def test_the_combine_command(tmp_path: Path) -> None:
    a, b = trained(tmp_path, 1), trained(tmp_path, 2)
    data = tmp_path / "sms.tsv"
    data.write_text("".join(
        f"spam\tclaim your free prize {i} winner cheap pills\nham\tmeeting notes {i} lunch\n"
        for i in range(60)
    ))  # fmt: skip
    out = tmp_path / "ens.safetensors"
    result = CliRunner().invoke(
        app, ["combine", str(a), str(b), "-o", str(out), "--data", str(data)]
    )
    assert result.exit_code == 0, result.output
    assert "2 members" in result.output
    assert load_checkpoint(out).meta.members == 2


def test_combine_sets_the_threshold_on_the_weights_as_stored(tmp_path: Path) -> None:
    paths = []
    for seed in (1, 2):  # untrained float32 members: scores near 0.5, where the last bits count
        torch.manual_seed(seed)
        meta = CheckpointMeta(config=CFG, max_length=64, threshold=0.5)
        paths.append(save_checkpoint(GPTClassifier(CFG), meta, tmp_path / f"r{seed}.safetensors"))
    val = examples()
    out = tmp_path / "ens.safetensors"
    meta = combine(paths, out, val, max_fpr=0.1)  # stored in float16
    data = TokenizedSet(val, 64)
    scores = predict(load_checkpoint(out).model, data, torch.device("cpu"))
    assert meta.threshold > 0.5  # set by a ham's score, not the floor
    assert meta.threshold == choose_threshold(data.labels, scores, 0.1)


def test_an_ensemble_given_to_combine_gives_each_of_its_members(tmp_path: Path) -> None:
    a, b, c = trained(tmp_path, 1), trained(tmp_path, 2), trained(tmp_path, 3)
    val = examples()
    combine([a, b], tmp_path / "ab.safetensors", val, max_fpr=0.0)
    combine([tmp_path / "ab.safetensors", c], tmp_path / "abc.safetensors", val, max_fpr=0.0)
    abc = load_checkpoint(tmp_path / "abc.safetensors")
    assert isinstance(abc.model, GPTEnsemble) and abc.meta.members == 3
    data = TokenizedSet(val, 64)
    odds = [torch.logit(torch.tensor(predict(load_checkpoint(p).model, data, torch.device("cpu")),
                                     dtype=torch.float64)) for p in (a, b, c)]
    want = torch.sigmoid(torch.stack(odds).mean(0))  # each member once, not (mean(a, b) + c) / 2
    got = torch.tensor(predict(abc.model, data, torch.device("cpu")), dtype=torch.float64)
    assert got.tolist() == pytest.approx(want.tolist(), abs=2e-3)  # float16 on disk
    with pytest.raises(EnsembleError, match="at most 8"):  # 9 members would not load
        combine([tmp_path / "abc.safetensors"] * 3, tmp_path / "x.safetensors", val, max_fpr=0.0)
    assert not (tmp_path / "x.safetensors").exists()


def test_an_ensemble_records_what_its_members_learned_from(tmp_path: Path) -> None:
    paths = []
    for seed, data in ((1, ["/d/enron1.tar.gz", "/d/spamassassin"]), (2, ["/d/spamassassin"])):
        torch.manual_seed(seed)
        meta = CheckpointMeta(config=CFG, max_length=64, threshold=0.5, training={"data": data})
        paths.append(save_checkpoint(GPTClassifier(CFG), meta, tmp_path / f"d{seed}.safetensors"))
    combine(paths, tmp_path / "ens.safetensors", examples(), max_fpr=0.1)
    recorded = load_checkpoint(tmp_path / "ens.safetensors").meta.training["data"]
    assert recorded == ["/d/enron1.tar.gz", "/d/spamassassin"]
    torch.manual_seed(3)
    unrecorded = CheckpointMeta(config=CFG, max_length=64, threshold=0.5)
    bare = save_checkpoint(GPTClassifier(CFG), unrecorded, tmp_path / "n.safetensors")
    combine([paths[0], bare], tmp_path / "ens2.safetensors", examples(), max_fpr=0.1)
    assert "data" not in load_checkpoint(tmp_path / "ens2.safetensors").meta.training
