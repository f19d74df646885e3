"""``noisylink design``: the best codec + ECC + modulation for a link, at each channel point."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, cast

import typer

from noisylink.cli.common import console, errors, fail
from noisylink.errors import NoisylinkError

app = typer.Typer()


@app.command()
def design(
    design_file: Annotated[str, typer.Argument(
        metavar="DESIGN", help="Design file, or the name of a built-in design.")],
    out: Annotated[Path, typer.Option(help="Output folder; run again to resume.")],
    engine: Annotated[str, typer.Option(help="local (process pool) or ray.")] = "local",
    workers: Annotated[
        int | None, typer.Option(help="Local worker processes (default: CPU count).")
    ] = None,
    address: Annotated[
        str | None, typer.Option(help="Ray: address of an existing cluster (default: local).")
    ] = None,
    fresh: Annotated[bool, typer.Option(
        "--fresh", help="Start over: move the folder's results to OUT/replaced-<time>/.")] = False,
) -> None:
    """Find, for each channel point, the codec + ECC + modulation with the best picture within
    the bandwidth budget: each codec's rate is fitted to the budget by bisection, then the
    configurations are raced (trials only where the answer is still open).

    Writes OUT/design.csv (the answer), OUT/design.png, OUT/results.csv (every evaluated row)
    and OUT/design.json."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn

    from noisylink.design.loading import load_design
    from noisylink.design.report import answer_table, write_figure
    from noisylink.design.run import DesignProgress, Engine, run_design

    if engine not in ("local", "ray"):
        raise fail(f"--engine must be local or ray, got {engine!r}")
    progress = Progress("[progress.description]{task.description}", BarColumn(),
                        MofNCompleteColumn(), TextColumn("rows"), console=errors,
                        transient=False)
    tasks: dict[int, TaskID] = {}

    def on_progress(state: DesignProgress) -> None:
        if not tasks:
            progress.start()
        if state.round not in tasks:
            tasks[state.round] = progress.add_task(f"round {state.round + 1}",
                                                   total=state.rows_total)
        progress.update(tasks[state.round], completed=state.rows_done)

    try:
        loaded, source = load_design(design_file)
        try:
            outcome = run_design(loaded, source, out, engine=cast(Engine, engine),
                                 workers=workers, address=address, on_progress=on_progress,
                                 fresh=fresh)
        finally:
            if tasks:
                progress.stop()
    except NoisylinkError as exc:
        raise fail(str(exc)) from None
    except KeyboardInterrupt:
        raise fail("interrupted; finished rows are in results.csv, run again to resume",
                   code=130) from None
    if outcome.set_aside is not None:
        console.print(f"earlier results moved to {outcome.set_aside}", highlight=False)
    for rejection in outcome.rejections:
        console.print(f"does not fit: {rejection.label}: {rejection.reason}", highlight=False,
                      markup=False)
    for failure in outcome.failures:
        errors.print(f"error: {failure.task.scenario.name} cell {failure.task.cell}: "
                     f"{failure.message}", highlight=False, markup=False)
    if outcome.failures:
        errors.print("error: the design is incomplete; the rows that finished are in "
                     f"{out / 'results.csv'}; run again to resume", highlight=False)
        raise typer.Exit(1)
    short = {label: configuration.short_label
             for label, configuration in zip(outcome.labels, outcome.configurations, strict=True)}
    console.print(answer_table(loaded, outcome.answers, short))
    figure = write_figure(out / "design.png", loaded, outcome.answers, short)
    share = outcome.link_runs / outcome.full_grid if outcome.full_grid else math.nan
    console.print(
        f"{len(outcome.configurations)} configurations x {len(outcome.answers)} channel points; "
        f"{outcome.link_runs} link runs in {outcome.rounds} rounds, {share:.0%} of the "
        f"{outcome.full_grid} of the full grid at {loaded.trials.max} trials "
        f"({outcome.rows_run} run now, {outcome.wall_s:.1f} s) -> {out / 'design.csv'}, "
        f"{figure}", highlight=False, markup=False)
    unanswered = [a for a in outcome.answers if not a.label]
    for answer in unanswered:
        console.print(f"no configuration keeps the corruption rate within "
                      f"{loaded.objective.max_corruption:g} at {answer.channel_param}="
                      f"{answer.channel_value:g}", highlight=False, markup=False)
