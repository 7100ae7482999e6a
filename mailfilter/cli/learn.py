"""`mailfilter learn`, `retrain` and `rollback`: teach the model with the user's own mail.

Thin wrappers over `mailfilter.learning`, `mailfilter.corrections`, `mailfilter.model_store` and
`training.retrain` (imported inside `retrain`, so the other commands never load torch).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from mailfilter.cli.app import EXIT_OK, CliState, app
from mailfilter.corrections import reconcile
from mailfilter.learning import learn as learn_paths
from mailfilter.learning import retrain_pending
from mailfilter.model_store import ModelStore, active_model_path, installed_model_path
from mailfilter.state import Label, State

if TYPE_CHECKING:
    from training.retrain import RetrainResult

EXIT_NOTHING_TO_DO = 1  # retrain --check: nothing new (systemd ExecCondition skips the unit)
EXIT_REFUSED = 4  # retrain: the new model was worse; the current one stays

RETRAIN_EPILOG = (
    "Exit status: 0 when a model was installed or there was nothing to do (--if-needed, too few "
    "labels); 4 when the retrained model was worse on your held-out labels and was not installed "
    "(the current model stays); with --check, 0 when a retrain has something to learn and 1 when "
    "not; 2 for a usage, state or model error."
)


def _open_state(cli: CliState) -> State:
    return State.open(cli.settings().resolved_state_path())


def _when(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts))


def _correction_row(lb: Label) -> dict[str, object]:
    said = "spam" if lb.label == "ham" else "ham"
    return {
        "labeled_at": _when(lb.labeled_at),
        "label": lb.label,
        "model_said": said,
        "score": lb.score,
        "model_id": lb.model_id,
        "path": lb.origin,
        "content_hash": lb.content_hash,
    }


def _print_corrections(rows: list[dict[str, object]]) -> None:
    if not rows:
        typer.echo("no corrections yet")
        return
    typer.echo(f"{'when':<16}  {'label':<5}  {'model said':<17}  {'model':<16}  path")
    for r in rows:
        score = f"{r['score']:.4f}" if isinstance(r["score"], float) else "?"
        said = f"{r['model_said']} ({score})"
        typer.echo(
            f"{r['labeled_at']:<16}  {r['label']:<5}  {said:<17}  {r['model_id'] or '?':<16}  "
            f"{r['path']}"
        )


@app.command()
def learn(
    ctx: typer.Context,
    spam: Annotated[
        list[Path] | None,
        typer.Option(
            "--spam",
            help="Spam to learn from (repeatable): a Maildir, a Maildir++ folder such as "
            "~/Maildir/.Junk, an mbox, an RFC 822 file or a directory of them.",
            show_default=False,
        ),
    ] = None,
    ham: Annotated[
        list[Path] | None,
        typer.Option(
            "--ham",
            help="Ham to learn from (repeatable); a Maildir++ root means every folder but the "
            "spam folder and Trash.",
            show_default=False,
        ),
    ] = None,
    corrections: Annotated[
        bool,
        typer.Option(
            "--corrections",
            help="Look for messages moved against their verdict in the Maildirs (--maildir, "
            "else the configured mailboxes), then list every correction recorded.",
        ),
    ] = False,
    maildir: Annotated[
        list[Path] | None,
        typer.Option("--maildir", help="Maildir++ root to look for corrections in (repeatable)."),
    ] = None,
    deep: Annotated[
        bool,
        typer.Option("--deep", help="With --corrections: also read files no record names."),
    ] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")] = False,
) -> None:
    """Record your own spam and ham (or your corrections) as labels for `mailfilter retrain`.

    Only the model text of each message is stored, in the state DB; mail is never changed.
    """
    cli: CliState = ctx.obj
    settings = cli.settings()
    state = _open_state(cli)
    try:
        if corrections:
            roots = maildir or [p for p in settings.mailboxes if p.expanduser().is_dir()]
            for root in roots:
                reconcile(state, root.expanduser(), settings.spam_folder, deep=deep)
            rows = [_correction_row(lb) for lb in state.labels(source="correction")]
            if json_out:
                typer.echo(json.dumps(rows, indent=2))
            else:
                _print_corrections(rows)
            return
        if not spam and not ham:
            _print_status(state, json_out)
            return
        report = learn_paths(state, spam or (), ham or (), settings.spam_folder)
        counts = state.label_counts()
    finally:
        state.close()
    if json_out:
        typer.echo(json.dumps(report.to_dict() | {"labels": counts}, indent=2))
        return
    for label in ("spam", "ham"):
        if report.read[label]:
            typer.echo(
                f"{label}: read {report.read[label]}, new {report.added[label]}, relabeled "
                f"{report.relabeled[label]}, already known {report.unchanged[label]}"
            )
    if report.conflicts:
        typer.echo(f"given as both spam and ham (kept as ham): {report.conflicts}")
    if report.skipped:
        typer.echo("skipped: " + ", ".join(f"{k} {n}" for k, n in sorted(report.skipped.items())))
    typer.echo(f"labels in the state DB: {counts['spam']} spam, {counts['ham']} ham")


def _print_status(state: State, json_out: bool) -> None:
    counts = state.label_counts()
    last = state.last_retrain()
    status = {
        "labels": counts,
        "corrections": len(state.labels(source="correction")),
        "last_retrain": None
        if last is None
        else {"at": _when(last.finished_at), "outcome": last.outcome, "model": last.model_sha256},
        "pending": retrain_pending(state, 1) is None,
    }
    if json_out:
        typer.echo(json.dumps(status, indent=2))
        return
    typer.echo(f"labels: {counts['spam']} spam, {counts['ham']} ham")
    if last is not None:
        typer.echo(f"last retrain: {_when(last.finished_at)}, {last.outcome}")
    typer.echo("usage: mailfilter learn --spam PATH --ham PATH  (or --corrections)")


@app.command(epilog=RETRAIN_EPILOG)
def retrain(
    ctx: typer.Context,
    if_needed: Annotated[
        bool,
        typer.Option("--if-needed", help="Do nothing when no label changed since the last one."),
    ] = False,
    check: Annotated[
        bool,
        typer.Option("--check", help="Only say (exit 0/1) whether a retrain has work to do."),
    ] = False,
    min_labels: Annotated[
        int, typer.Option(min=1, help="Do nothing with fewer labels than this.")
    ] = 20,
    replay: Annotated[
        list[Path] | None,
        typer.Option(
            help="Base training corpora to mix in (repeatable; default: the default preset's "
            "corpora under $MAILFILTER_DATA, when present)."
        ),
    ] = None,
    no_replay: Annotated[
        bool, typer.Option("--no-replay", help="Train on your labels only.")
    ] = False,
    replay_max: Annotated[int, typer.Option(min=0, help="Replay examples at most.")] = 2000,
    holdout: Annotated[
        float, typer.Option(min=0.05, max=0.5, help="Share of labels held out to judge by.")
    ] = 0.2,
    epochs: Annotated[int, typer.Option(min=1)] = 3,
    max_steps: Annotated[int | None, typer.Option(min=1, help="Stop after N steps.")] = None,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    json_out: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Fine-tune the active model on your labels; install it only if it is not worse.

    The new model goes to $XDG_DATA_HOME/mailfilter/models/current.safetensors and the one it
    replaces to previous.safetensors (see `mailfilter rollback`). A running daemon picks it up
    on reload (systemctl --user reload mailfilter).
    """
    cli: CliState = ctx.obj
    settings = cli.settings()
    state = _open_state(cli)
    try:
        if check:
            why_not = retrain_pending(state, min_labels)
            typer.echo(why_not or "there are new labels to learn from")
            raise typer.Exit(EXIT_OK if why_not is None else EXIT_NOTHING_TO_DO)
        result = _run_retrain(
            state, settings.checkpoint, if_needed, min_labels, replay, no_replay, replay_max,
            holdout, epochs, max_steps, device, settings.threads,
        )  # fmt: skip
    finally:
        state.close()
    if json_out:
        typer.echo(json.dumps(result.to_dict(), indent=2))
    else:
        typer.echo(f"retrain: {result.outcome}: {result.reason}")
        for note in result.notes:
            typer.echo(f"note: {note}")
        for name, m in (("current", result.current), ("new", result.candidate)):
            if "holdout" in m:
                h = m["holdout"]
                typer.echo(
                    f"  {name:<8} held-out n={h['n']}: FP {h['fp']}, FN {h['fn']}, "
                    f"ROC AUC {h['roc_auc']:.4f}, threshold {h['threshold']:.4f}"
                )
    if result.outcome == "installed" and settings.checkpoint is not None:
        typer.echo(
            f"warning: the checkpoint setting ({settings.checkpoint}) still wins; remove it or "
            f"point it at {result.model} to use the retrained model",
            err=True,
        )
    raise typer.Exit(EXIT_REFUSED if result.outcome == "refused" else EXIT_OK)


def _run_retrain(
    state: State,
    checkpoint: Path | None,
    if_needed: bool,
    min_labels: int,
    replay_paths: list[Path] | None,
    no_replay: bool,
    replay_max: int,
    holdout: float,
    epochs: int,
    max_steps: int | None,
    device: str,
    threads: int | None,
) -> RetrainResult:
    import torch

    from mailfilter.cli.train import default_data_root
    from training.presets import DEFAULT
    from training.retrain import RetrainConfig, load_replay, retrain

    if threads:
        torch.set_num_threads(threads)
    cfg = RetrainConfig(
        min_labels=min_labels, holdout=holdout, replay_max=replay_max, epochs=epochs,
        max_steps=max_steps, device=device,
    )  # fmt: skip
    store = ModelStore()
    with store.lock():
        why_not = retrain_pending(state, min_labels, if_needed)
        replay = None
        if why_not is None and not no_replay:
            if not replay_paths:
                root = default_data_root()
                replay_paths = [root / c for c in DEFAULT.corpora if (root / c).exists()]
            if replay_paths:
                replay = load_replay(replay_paths, replay_max, cfg.replay_val_max)
        base = active_model_path(checkpoint, store.root)
        return retrain(state, store, base, cfg, replay=replay, if_needed=if_needed,
                       progress=sys.stderr.isatty())  # fmt: skip


@app.command()
def rollback(ctx: typer.Context) -> None:
    """Swap the retrained model and the one it replaced (run it again to swap back)."""
    from models.checkpoint import file_sha256, read_meta

    cli: CliState = ctx.obj
    settings = cli.settings()
    store = ModelStore()
    with store.lock():
        path = store.rollback()
    meta = read_meta(path)
    when = meta.training.get("retrain", {}).get("at", "the base training")
    typer.echo(
        f"rolled back: {path} is now model {file_sha256(path)[:16]} (from {when}, "
        f"threshold {meta.threshold:.4f})"
    )
    if settings.checkpoint is not None:
        typer.echo(f"warning: the checkpoint setting ({settings.checkpoint}) still wins", err=True)
    elif installed_model_path(store.root) is None:
        typer.echo("warning: no model installed", err=True)
    typer.echo("a running daemon uses it after: systemctl --user reload mailfilter")
