"""`mailfilter corpus stats`: ham/spam counts and duplicates of labeled corpora.

`training` is imported inside the command, so scanning never pays for it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mailfilter.cli.app import app

corpus_app = typer.Typer(help="Inspect labeled training corpora.", no_args_is_help=True)
app.add_typer(corpus_app, name="corpus")


@corpus_app.command()
def stats(
    paths: Annotated[
        list[Path],
        typer.Argument(
            help="SpamAssassin dir, ham/+spam/ dir, Enron .tar.gz, Ling-Spam dir or SMS TSV.",
            show_default=False,
        ),
    ],
    workers: Annotated[
        int | None,
        typer.Option("--workers", "-j", help="Processes converting mail to text [default: CPUs]."),
    ] = None,
) -> None:
    """Count ham and spam per corpus and sub-directory, with duplicates within and across them."""
    from training.corpora.stats import corpus_stats, format_stats

    typer.echo(format_stats(corpus_stats(paths, workers=workers)))
