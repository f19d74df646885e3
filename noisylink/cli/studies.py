"""``noisylink sweep`` and ``plot``: studies run cell by cell (resumable), and their
figures."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, cast

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TimeRemainingColumn

from noisylink.cli.common import console, errors, fail
from noisylink.errors import NoisylinkError

app = typer.Typer()


@app.command()
def sweep(
    study: Annotated[str, typer.Argument(help="Study file, scenario file, or a built-in name.")],
    out: Annotated[Path, typer.Option(help="Output folder; run again to resume.")],
    engine: Annotated[str, typer.Option(help="local (process pool) or ray.")] = "local",
    workers: Annotated[
        int | None, typer.Option(help="Local worker processes (default: CPU count).")
    ] = None,
    address: Annotated[
        str | None, typer.Option(help="Ray: address of an existing cluster (default: local).")
    ] = None,
    images: Annotated[int | None, typer.Option(help="Images per scenario (scale).")] = None,
    size: Annotated[int | None, typer.Option(help="Image side in pixels (scale).")] = None,
    trials: Annotated[int | None, typer.Option(help="Trials per image (scale).")] = None,
    folder: Annotated[Path | None, typer.Option(
        help="Run on the pictures of this folder instead of each scenario's (scale).")] = None,
    fresh: Annotated[bool, typer.Option(
        "--fresh", help="Start over: move the folder's results to OUT/replaced-<time>/.")] = False,
) -> None:
    """Run a study cell by cell; rows are appended as they finish, and a rerun resumes.

    A folder holding results of a different study (other seed, image shaping, frames or
    noisylink version) is refused; --fresh moves them aside and starts over."""
    import pydantic
    from rich.progress import TextColumn

    from noisylink.registry import scenario_error_from
    from noisylink.sweeps.study import Scale, load_study
    from noisylink.sweeps.sweep import Engine, SweepProgress, run_sweep

    if engine not in ("local", "ray"):
        raise fail(f"--engine must be local or ray, got {engine!r}")
    try:
        scale = Scale(images=images, size=size, trials=trials, folder=folder)
    except pydantic.ValidationError as exc:
        error = scenario_error_from(exc)
        raise fail(f"--{error.field}: {error.message}") from None
    progress = Progress(
        "[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
        TextColumn("rows"), TextColumn("{task.fields[cells]}"), TimeRemainingColumn(),
        console=errors, transient=False,
    )
    task_id: TaskID | None = None

    def on_progress(state: SweepProgress) -> None:
        nonlocal task_id
        cells = f"cells {state.cells_done}/{state.cells_total}"
        if task_id is None:  # started here, so that a refusal before any work prints one line
            progress.start()
            task_id = progress.add_task(loaded.name, total=state.rows_total, cells=cells,
                                        completed=state.rows_done)
        progress.update(task_id, completed=state.rows_done, cells=cells)

    try:
        loaded = load_study(study, scale)
        try:
            outcome = run_sweep(loaded, out, engine=cast(Engine, engine), workers=workers,
                                address=address, on_progress=on_progress, fresh=fresh)
        finally:
            if task_id is not None:
                progress.stop()
    except NoisylinkError as exc:
        raise fail(str(exc)) from None
    except KeyboardInterrupt:
        raise fail("interrupted; finished rows are in results.csv, run again to resume",
                   code=130) from None
    if outcome.set_aside is not None:
        console.print(f"earlier results moved to {outcome.set_aside}", highlight=False)
    console.print(
        f"{outcome.rows_run} rows run, {outcome.rows_skipped} already done, "
        f"{outcome.rows_total} in all, in {outcome.wall_s:.1f} s -> {outcome.results_path}",
        highlight=False,
    )
    for failure in outcome.failures:
        errors.print(f"error: {failure.task.scenario.name} cell {failure.task.cell}: "
                     f"{failure.message}", highlight=False, markup=False)
    if outcome.failures:
        raise typer.Exit(1)


@app.command()
def plot(
    run_dir: Annotated[Path, typer.Argument(help="A run or sweep folder with results.csv.")],
) -> None:
    """Write PNG plots of a results folder to RUN_DIR/plots/."""
    from noisylink.plots import write_plots

    try:
        written = write_plots(run_dir)
    except NoisylinkError as exc:
        raise fail(str(exc)) from None
    for path in written:
        console.print(str(path), highlight=False, markup=False)
