"""`mailfilter scan`: score mailboxes, tag or move spam; a thin wrapper over `mailfilter.scan`."""

from __future__ import annotations

import contextlib
import json
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated

import typer

from mailfilter.cli.app import EXIT_OK, CliState, app
from mailfilter.headers import check_subject_prefix
from mailfilter.mailboxes import detect
from mailfilter.scan import ScanReport
from mailfilter.scan import scan as run_scan
from mailfilter.settings import Action, Device
from mailfilter.state import State

EXIT_SKIPPED = 3  # like bogofilter's 3 for I/O errors; 1 is left alone ("spam" to spam tools)

EXIT_CODES = (
    "Exit status: 0 when every message was read and every planned change was made (spam "
    "found or not); 3 when the scan finished but some messages could not be read, scored or "
    "changed (unreadable files, a locked mbox, a failed rename: see 'skipped' and 'not changed'; "
    "messages already scored, vanished mid-scan, not mail at all, or too large to tag do not "
    "count); 2 for a usage, config, mailbox path or model error (nothing was scanned); "
    "70 for an internal error."
)


@contextlib.contextmanager
def _progress() -> Iterator[Callable[[int], None] | None]:
    """A tqdm bar on stderr, only when stderr is a terminal."""
    if not sys.stderr.isatty():
        yield None
        return
    from tqdm import tqdm

    with tqdm(unit=" msg", file=sys.stderr, leave=False, dynamic_ncols=True) as bar:
        yield bar.update


def _counts(counter: Counter[str]) -> str:
    return ", ".join(f"{reason} {n}" for reason, n in sorted(counter.items()))


def _print_summary(report: ScanReport) -> None:
    mode = " (dry run: nothing changed)" if report.dry_run else ""
    typer.echo(
        f"mailfilter scan: action {report.action}{mode}, model {report.model_id}, "
        f"threshold {report.threshold:.4f}"
    )
    rows: list[tuple[str, str, str]] = [
        ("scanned", str(report.scanned), ""),
        ("spam", str(report.spam), ""),
        ("ham", str(report.ham), f"welcomed {report.welcomed}" if report.welcomed else ""),
        ("unsure", str(report.unsure), ""),
    ]
    rows += [(result, str(n), "") for result, n in sorted(report.changed.items())]
    rows.append(("skipped", str(sum(report.skipped.values())), _counts(report.skipped)))
    if report.not_applied:
        n = sum(report.not_applied.values())
        rows.append(("not changed", str(n), _counts(report.not_applied)))
    rows.append(("seconds", f"{report.seconds:.1f}", ""))
    rows.append(("messages/s", f"{report.messages_per_second:.1f}", ""))
    for name, value, detail in rows:
        typer.echo(f"  {name:<12} {value:>8}   {detail}".rstrip())


def _print_plan(report: ScanReport) -> None:
    for r in report.results:
        if r.outcome.startswith("would "):
            typer.echo(
                f"{r.outcome} {r.mailbox} {r.folder} {r.key} ({r.verdict} {r.score:.4f}): "
                f"{r.detail}"
            )


@app.command(epilog=EXIT_CODES)
def scan(
    ctx: typer.Context,
    paths: Annotated[
        list[Path],
        typer.Argument(
            help="Maildirs (a Maildir++ root scans all its folders but the spam folder and "
            "Trash), single Maildir++ folders, or mbox files.",
            show_default=False,
        ),
    ],
    action: Annotated[
        Action | None,
        typer.Option(
            help="What to do with mail: none (only report; the default unless the config sets "
            "'action'), tag (add X-Spam-* headers to every scanned message), move (spam to the "
            "spam folder or spam mbox).",
            show_default=False,
        ),
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Print what would change; change nothing on disk."),
    ] = False,
    folder: Annotated[
        list[str] | None,
        typer.Option(
            "--folder", help="Scan only this Maildir++ folder (repeatable): INBOX, Lists, ..."
        ),
    ] = None,
    rescan: Annotated[
        bool, typer.Option("--rescan", help="Score again what this model already scored.")
    ] = False,
    json_out: Annotated[
        bool, typer.Option("--json", help="Print the report as JSON on stdout.")
    ] = False,
    threshold: Annotated[
        float | None,
        typer.Option(
            min=0.0, max=1.0, help="p(spam) at or above which mail is spam (default: the model's)."
        ),
    ] = None,
    checkpoint: Annotated[
        Path | None, typer.Option(help="Model file (default: the bundled model).")
    ] = None,
    device: Annotated[Device | None, typer.Option(help="auto, cpu or cuda.")] = None,
    batch_size: Annotated[
        int | None, typer.Option(min=1, max=4096, help="Messages per model batch.")
    ] = None,
) -> None:
    """Score Maildirs and mboxes in batches; report, tag or move spam; never lose a message."""
    cli: CliState = ctx.obj
    settings = cli.settings(
        action=action,
        threshold=threshold,
        checkpoint=checkpoint,
        device=device,
        batch_size=batch_size,
    )
    check_subject_prefix(settings.subject_prefix)
    mailboxes = [detect(path.expanduser()) for path in paths]
    from mailfilter.engine import Engine  # torch loads here, not at import

    engine = Engine.load(
        settings.checkpoint,
        device=settings.device,
        threads=settings.threads,
        batch_size=settings.batch_size,
        workers=settings.workers,
    )
    db_path = settings.resolved_state_path()
    db = State.open_readonly(db_path) if dry_run else State.open(db_path)
    try:
        with _progress() as progress:
            report = run_scan(
                mailboxes,
                settings,
                engine,
                dry_run=dry_run,
                folders=folder or (),
                rescan=rescan,
                state=db,
                progress=progress,
            )
    finally:
        if db is not None:
            db.close()
    if json_out:
        typer.echo(json.dumps(report.to_dict(), indent=2))
    else:
        if dry_run:
            _print_plan(report)
        _print_summary(report)
    raise typer.Exit(EXIT_SKIPPED if report.errors else EXIT_OK)
