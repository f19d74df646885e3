"""What every command shares: the consoles, one-line failures, progress, output folders."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TimeRemainingColumn

from noisylink.errors import NoisylinkError

console = Console() if sys.stdout.isatty() else Console(width=160)
errors = Console(stderr=True)

PROGRESS_AFTER_S = 2.0
ScenarioArgument = Annotated[str, typer.Argument(help="Scenario file, or the name of a built-in.")]
Force = Annotated[bool, typer.Option(
    "--force", help="Overwrite the results an --out folder already holds.")]


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print ``error: message`` on stderr; the exit to raise (2: bad input, 1: the run)."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


class LazyProgress:
    """A progress bar that appears only once a run has lasted a couple of seconds."""

    def __init__(self, description: str):
        self.description = description
        self.started = time.perf_counter()
        self.progress: Progress | None = None
        self.task: TaskID | None = None

    def update(self, done: int, total: int) -> None:
        if self.progress is None:
            if time.perf_counter() - self.started < PROGRESS_AFTER_S or done >= total:
                return
            self.progress = Progress(
                "[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                TimeRemainingColumn(), console=errors, transient=True,
            )
            self.progress.start()
            self.task = self.progress.add_task(self.description, total=total)
        if self.task is not None:
            self.progress.update(self.task, completed=done)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()


def check_run_out(out_dir: Path, force: bool) -> None:
    """A writable --out for ``run`` that holds no results, unless ``force``."""
    from noisylink.outdir import prepare_out_dir

    prepare_out_dir(out_dir, "output folder")
    refuse_existing_results(out_dir, force)


def refuse_existing_results(out_dir: Path, force: bool) -> None:
    """Results already in ``out_dir`` are never overwritten silently."""
    results = out_dir / "results.csv"
    if not results.exists():
        return
    if not results.is_file():
        raise NoisylinkError(f"{results}: not a file")
    try:
        with results.open("rb") as handle:
            handle.readline()  # the header
            holds_rows = bool(handle.readline().strip())
    except OSError as exc:
        raise NoisylinkError(f"{results}: cannot read ({exc.strerror})") from None
    if holds_rows and not force:
        raise NoisylinkError(f"{out_dir} already holds results (results.csv); use another --out, "
                             "or --force to overwrite them")
    if not os.access(results, os.W_OK):
        raise NoisylinkError(f"{results}: not writable")
