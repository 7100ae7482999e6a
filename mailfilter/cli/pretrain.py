"""`mailfilter pretrain`: a small GPT-2 language model trained on your own mail's text."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mailfilter.cli.app import app


@app.command()
def pretrain(
    data: Annotated[list[Path], typer.Argument(help="Corpora or mail folders to read text from.")],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="LM checkpoint; resumed if it exists.")
    ] = Path("runs/pretrain/lm.safetensors"),
    size: Annotated[str, typer.Option(help="LAYERSxHEADSxEMBDxCONTEXT.")] = "2x4x128x512",
    vocab_size: Annotated[
        int, typer.Option(min=3, help="Compact vocabulary built from the text.")
    ] = 16384,
    steps: Annotated[int, typer.Option(min=1, help="Total optimiser steps.")] = 1500,
    minutes: Annotated[float | None, typer.Option(help="Stop after this much time.")] = None,
    batch_size: Annotated[int, typer.Option(min=1)] = 16,
    text_case: Annotated[
        str, typer.Option(help="keep, or lower (lower-case the text first, as the default preset "
                          "does; models fine-tuned from this one follow it).")
    ] = "lower",
    text_sender: Annotated[
        str, typer.Option(help="keep, or drop (leave the From/Reply-To lines out of the text; "
                          "models fine-tuned from this one follow it).")
    ] = "keep",
    text_punct: Annotated[
        str, typer.Option(help="split (a space on each side of every punctuation mark, the form "
                          "Enron-Spam and Ling-Spam text comes in, as the default preset does), "
                          "or keep; models fine-tuned from this one follow it.")
    ] = "split",
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
) -> None:
    """Pretrain a language model (the book's chapter 5) on unlabeled mail text, resumably."""
    from models.tokenizer import TEXT_CASES, TEXT_PUNCTS, TEXT_SENDERS, TextForm
    from training.job import pretrain_on_paths
    from training.pretrain import PretrainConfig

    for hint, value, known in (("--text-case", text_case, TEXT_CASES),
                               ("--text-sender", text_sender, TEXT_SENDERS),
                               ("--text-punct", text_punct, TEXT_PUNCTS)):
        if value not in known:  # each error names its option
            raise typer.BadParameter(f"must be one of {', '.join(known)}", param_hint=hint)
    cfg = PretrainConfig(batch_size=batch_size, max_steps=steps, max_minutes=minutes)
    history = pretrain_on_paths(data, output, size, vocab_size, cfg, device,
                                TextForm(text_case, text_sender, text_punct))
    last = history.val_loss[-1] if history.val_loss else float("nan")
    typer.echo(f"checkpoint: {output}  steps: {history.steps[-1] if history.steps else 0}  "
               f"validation loss: {last:.4f}")
    typer.echo(f"use it with: mailfilter train --base {output}")
