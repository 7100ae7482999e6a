"""`mailfilter train` and `mailfilter evaluate`: thin wrappers over `training.job`.

`training` is imported inside the commands, so scanning never pays for it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from mailfilter.cli.app import app

if TYPE_CHECKING:
    from training.presets import Preset


class DataPathError(Exception):
    """No data path was given and the default data root does not exist."""


def default_data_root() -> Path:
    """`$MAILFILTER_DATA`, else `../shared/data` beside a source checkout."""
    env = os.environ.get("MAILFILTER_DATA")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[3] / "shared" / "data"


def _preset_paths(corpora: tuple[str, ...]) -> list[Path]:
    root = default_data_root()
    if not root.is_dir():
        raise DataPathError(
            f"no --data given and the data root {root} does not exist (set MAILFILTER_DATA)"
        )
    return [root / c for c in corpora]


@app.command()
def train(
    preset: Annotated[
        str, typer.Option(help="Recipe: book (chapter 6), default (the bundled model) or default4 "
                          "(the default plus two members reading SpamAssassin twice).")
    ] = "book",
    data: Annotated[
        list[Path] | None,
        typer.Option(help="Corpus path(s); default: the preset's corpora under $MAILFILTER_DATA."),
    ] = None,
    base: Annotated[
        str | None,
        typer.Option(
            help="Trunk: gpt2, gpt2-medium, gpt2-large, gpt2-xl (downloaded), a local safetensors "
            "file (GPT-2 or a mailfilter checkpoint), or random."
        ),
    ] = None,
    size: Annotated[
        str | None,
        typer.Option(help="Size for --base random: gpt2…gpt2-xl or LAYERSxHEADSxEMBD[xCTX]."),
    ] = None,
    trainable: Annotated[
        str | None, typer.Option(help="What trains: last_blocks, all, or head.")
    ] = None,
    last_blocks: Annotated[
        int | None, typer.Option(help="How many final blocks train (with last_blocks).")
    ] = None,
    epochs: Annotated[int | None, typer.Option(min=1)] = None,
    max_steps: Annotated[int | None, typer.Option(min=1, help="Stop after N steps.")] = None,
    max_length: Annotated[int | None, typer.Option(min=1, help="Tokens read per message.")] = None,
    pretrain_minutes: Annotated[
        float | None, typer.Option(help="Time budget for the preset's pretraining stage.")
    ] = None,
    no_pretrain: Annotated[
        bool, typer.Option("--no-pretrain", help="Skip pretraining; fine-tune a random trunk.")
    ] = False,
    output: Annotated[Path, typer.Option("--output", "-o", help="Output directory.")] = Path(
        "runs/train"
    ),
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    seeds: Annotated[
        str | None,
        typer.Option(help="Fine-tuning seeds, comma-separated: one trains a single model, two or "
                     "more an ensemble of one member per seed (default: the preset's; "
                     "default preset: 11,13)."),
    ] = None,
    oversample: Annotated[
        list[str] | None,
        typer.Option(help="CORPUS=K: fine-tuning reads that corpus's training messages K times "
                     "an epoch (e.g. spamassassin=2); repeatable; replaces the preset's."),
    ] = None,
) -> None:
    """Fine-tune a GPT-2 classifier; writes model.safetensors, metrics.json, training-curves.png."""
    from training.job import run_training
    from training.presets import get_preset

    if trainable not in (None, "last_blocks", "all", "head"):
        raise typer.BadParameter("must be last_blocks, all or head", param_hint="--trainable")
    p = get_preset(preset)
    if seeds is not None:
        p = _with_seeds(p, seeds)
    if oversample:
        p = _with_oversample(p, oversample)
    paths = data or _preset_paths(p.corpora)
    result = run_training(
        p, paths, output, base=base, size=size, trainable=trainable,  # type: ignore[arg-type]
        last_blocks=last_blocks, epochs=epochs, max_steps=max_steps, max_length=max_length,
        pretrain_minutes=pretrain_minutes, no_pretrain=no_pretrain, device=device,
    )
    test = result.metrics.get("test", {})
    typer.echo(f"checkpoint: {result.checkpoint}")
    typer.echo(f"metrics:    {result.metrics_path}")
    typer.echo(f"curves:     {result.plot_path}")
    if test:
        typer.echo(
            "test: accuracy {accuracy:.4f}  precision {precision:.4f}  recall {recall:.4f}  "
            "FPR {false_positive_rate:.4f}  ROC AUC {roc_auc:.4f}".format(**test)
        )


@app.command()
def evaluate(
    checkpoint: Annotated[Path, typer.Argument(help="A mailfilter classifier checkpoint.")],
    data: Annotated[list[Path], typer.Argument(help="Corpus path(s).")],
    split: Annotated[
        str | None, typer.Option(help="Only this stable split: train, val or test.")
    ] = None,
    device: Annotated[str, typer.Option(help="cpu or cuda.")] = "cpu",
) -> None:
    """Score labeled corpora with a checkpoint at its threshold and print the metrics as JSON."""
    from training.job import evaluate_checkpoint

    if split not in (None, "train", "val", "test"):
        raise typer.BadParameter("must be train, val or test", param_hint="--split")
    typer.echo(json.dumps(evaluate_checkpoint(checkpoint, data, split, device), indent=2))


@app.command()
def combine(
    checkpoints: Annotated[
        list[Path], typer.Argument(help="Two or more classifier checkpoints of one size; an "
                                   "ensemble (the bundled model is one) gives each member.")
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="The ensemble checkpoint to write.")],
    data: Annotated[
        list[Path] | None,
        typer.Option(help="Labeled corpora whose stable validation split sets the threshold; "
                     "default: the preset's corpora under $MAILFILTER_DATA."),
    ] = None,
    preset: Annotated[str, typer.Option(help="Whose corpora and split rules.")] = "default",
    max_fpr: Annotated[
        float, typer.Option(help="Largest share of validation ham flagged as spam.")
    ] = 0.0025,
) -> None:
    """Average the log-odds of several models (an ensemble) in one checkpoint, its threshold
    chosen on the validation split. Scoring costs one forward pass per member."""
    from training.ensemble import combine as combine_checkpoints
    from training.job import load_examples, make_splits
    from training.presets import get_preset

    chosen = get_preset(preset)
    paths = data or _preset_paths(chosen.corpora)
    splits, _ = make_splits(load_examples(paths), chosen)
    meta = combine_checkpoints(list(checkpoints), out, splits["val"], max_fpr)
    val = meta.metrics["val"]
    typer.echo(
        f"wrote {out}: {meta.members} members, threshold {meta.threshold:.5f}; validation "
        f"FPR {val['false_positive_rate']:.4f}, FNR {val['false_negative_rate']:.4f}, "
        f"ROC AUC {val['roc_auc']:.5f}"
    )


def _with_seeds(p: Preset, text: str) -> Preset:
    """The preset with these fine-tuning seeds: one is a single model, more an ensemble."""
    from dataclasses import replace

    from models.checkpoint import MAX_MEMBERS

    try:
        seeds = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise typer.BadParameter(f"not a comma-separated list of integers: {text!r}",
                                 param_hint="--seeds") from None
    if p.member_oversample:  # members with their own recipes: one seed for each, in order
        if len(seeds) != len(p.member_oversample):
            raise typer.BadParameter(f"preset {p.name} has {len(p.member_oversample)} members "
                                     f"with their own oversampling: give that many seeds",
                                     param_hint="--seeds")
        if len(set(zip(seeds, p.member_oversample, strict=True))) != len(seeds):
            raise typer.BadParameter("two members would train alike: same seed, same recipe",
                                     param_hint="--seeds")
    elif len(set(seeds)) != len(seeds) or len(seeds) > MAX_MEMBERS:
        raise typer.BadParameter(f"give 1 to {MAX_MEMBERS} distinct seeds", param_hint="--seeds")
    finetune = replace(p.finetune, seed=seeds[0])
    return replace(p, finetune=finetune, member_seeds=seeds if len(seeds) > 1 else ())


def _with_oversample(p: Preset, items: list[str]) -> Preset:
    """The preset with these `CORPUS=K` oversampling factors instead of its own."""
    from dataclasses import replace

    if p.member_oversample:
        raise typer.BadParameter(f"preset {p.name} gives its members their own oversampling; "
                                 "--oversample would make some of them alike",
                                 param_hint="--oversample")
    factors: dict[str, int] = {}
    for item in items:
        corpus, _, k = item.partition("=")
        if not corpus or not k.isdigit() or int(k) < 1:
            raise typer.BadParameter(f"expected CORPUS=K with K a whole number >= 1, not {item!r}",
                                     param_hint="--oversample")
        factors[corpus] = int(k)
    return replace(p, oversample=tuple(factors.items()))
