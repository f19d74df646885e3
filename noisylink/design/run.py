"""Running a design: fit each candidate's rate to the budget, race the configurations at each
channel point, and write the answer.

What goes into ``OUT``:

- ``results.csv``: every evaluated row, the usual columns. Each configuration is a scenario
  named after the design (its fitted codec setting, its ECC and modulation, the design's
  channel points, ``trials.max`` trials), and the rows are rows of those scenarios, from the
  same keyed random streams, so they equal a brute-force sweep's rows of the same cells;
  ``noisylink plot OUT`` works on them.
- ``design.csv``: the answer, one row per channel point (``DESIGN_COLUMNS``).
- ``design.json``: the design, each configuration's fitted rate, the combinations that do not
  fit, the trials each configuration got at each point, and the link runs it took against the
  full grid at ``trials.max``.
- ``examples/``: decoded pictures, as a sweep saves them.

A rerun resumes: rows already in ``results.csv`` are not run again, and the decisions, pure
functions of the rows, come out the same. A folder holding rows of another design (other
cells, seed, images or frames) is refused; ``fresh`` sets its files aside first.
"""

from __future__ import annotations

import csv
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from noisylink.design.racing import Outcome, Rules, next_trials, qualified, standing
from noisylink.design.rates import Configuration, Rejection, fit_configurations
from noisylink.design.schema import Design
from noisylink.errors import NoisylinkError, ScenarioError
from noisylink.images import load_images
from noisylink.outdir import prepare_out_dir
from noisylink.results.file import ResultsFile, read_results
from noisylink.results.identity import setting_id
from noisylink.results.manifest import utc_now, versions, write_manifest
from noisylink.results.row import ResultRow, format_value
from noisylink.sweeps.engines import LocalPool, TaskFailure
from noisylink.sweeps.study import Study
from noisylink.sweeps.sweep import check_same_study, set_aside
from noisylink.sweeps.tasks import CellTask, image_identities, scenario_cells

Engine = Literal["local", "ray"]
DESIGN_FILES = ("results.csv", "design.csv", "design.json", "design.png", "examples", "plots")
DESIGN_COLUMNS = (
    "channel_param", "channel_value", "label", "codec_setting", "bpp_channel", "metric",
    "statistic", "value", "ci95", "mean", "corruption", "trials", "runner_up",
    "runner_up_value", "margin_db",
)
MS_SSIM_MIN_SIDE = 161


@dataclass(frozen=True)
class Answer:
    """The best configuration at one channel point (a ``design.csv`` row)."""

    channel_param: str
    channel_value: float
    label: str  # "" when no configuration qualifies
    codec_setting: str  # the rate knob's value ("" for a fixed rate)
    bpp_channel: float
    metric: str
    statistic: str
    value: float  # the statistic of the metric
    ci95: float  # half-width of its 95 % interval
    mean: float  # the metric's mean
    corruption: float
    trials: int  # per image
    runner_up: str
    runner_up_value: float
    margin_db: float  # value - runner_up_value, in the metric's unit (dB for PSNR)


@dataclass(frozen=True)
class DesignProgress:
    round: int
    rows_done: int
    rows_total: int


@dataclass
class DesignOutcome:
    out_dir: Path
    answers: list[Answer]
    configurations: list[Configuration]
    labels: list[str]
    rejections: list[Rejection]
    link_runs: int  # rows the answer rests on
    full_grid: int  # rows of every configuration at every point at trials.max
    rows_run: int  # rows run by this invocation
    rounds: int
    fitting_encodes: int
    failures: list[TaskFailure] = field(default_factory=list)
    wall_s: float = 0.0
    set_aside: Path | None = None


def _check_metric(design: Design, sides: list[tuple[int, int]]) -> None:
    if design.objective.metric == "ms_ssim" and min(min(s) for s in sides) < MS_SSIM_MIN_SIDE:
        raise ScenarioError(f"ms_ssim needs images of at least {MS_SSIM_MIN_SIDE} px a side; "
                            "use psnr or ssim, or larger images", field="objective.metric")


def _no_fit_message(design: Design, rejections: list[Rejection]) -> str:
    shown = "; ".join(f"{r.label}: {r.reason}" for r in rejections[:3])
    more = f"; and {len(rejections) - 3} more" if len(rejections) > 3 else ""
    return f"no candidate fits {design.budget.bpp_channel:g} bpp_channel ({shown}{more})"


class _Engine:
    """The sweep engine a design's rounds run on; a local pool lives across the rounds."""

    def __init__(self, engine: Engine, workers: int | None, address: str | None):
        self.engine = engine
        self.workers = workers or os.cpu_count() or 1
        self.address = address
        self.pool: LocalPool | None = None

    def run(self, tasks: list[CellTask], on_row: Callable[[ResultRow], None]
            ) -> list[TaskFailure]:
        if self.engine == "ray":
            from noisylink.sweeps.ray_engine import run_ray

            return run_ray(tasks, on_row, lambda _task: None, address=self.address)
        if self.pool is None:
            self.pool = LocalPool(min(self.workers, len(tasks)))
        return self.pool.run(tasks, on_row, lambda _task: None)

    def close(self) -> None:
        if self.pool is not None:
            self.pool.close()


def run_design(
    design: Design,
    source: str,
    out_dir: Path,
    *,
    engine: Engine = "local",
    workers: int | None = None,
    address: str | None = None,
    on_progress: Callable[[DesignProgress], None] | None = None,
    fresh: bool = False,
) -> DesignOutcome:
    """Run (or finish) a design into ``out_dir``; bad designs raise ``ScenarioError``."""
    started = time.perf_counter()
    prepare_out_dir(out_dir, "design folder")
    images = load_images(design.images)
    if not images:
        raise ScenarioError("no images", source=source, field="images")
    try:
        _check_metric(design, [image.pixels.shape[:2] for image in images])
        configurations, rejections, encodes = fit_configurations(design, images, source)
        if not configurations:
            raise ScenarioError(_no_fit_message(design, rejections), field="budget.bpp_channel")
    except ScenarioError as exc:
        raise ScenarioError(exc.message, source=exc.source or source, field=exc.field) from None
    moved = set_aside(out_dir, DESIGN_FILES) if fresh else None
    labels = [configuration.label for configuration in configurations]
    cells = [scenario_cells(c.scenario) for c in configurations]
    points = len(cells[0])
    rules = Rules(design.objective.statistic, design.objective.max_corruption, len(images),
                  design.trials.max, design.seed)
    identities = image_identities(images)
    position = {name: index for index, (name, _) in enumerate(identities)}
    setting = setting_id(configurations[0].scenario)
    ours = {cell.id for group in cells for cell in group}
    results_path = out_dir / "results.csv"
    runner = _Engine(engine, workers, address)
    manifest_path = out_dir / "design.json"
    trials = {(c, p): design.trials.min for c in range(len(configurations)) for p in range(points)}
    rounds, rows_run = 0, 0
    failures: list[TaskFailure] = []

    with ResultsFile.resume(results_path) as store:
        study = Study(design.name, design.description, source, [configurations[0].scenario])
        check_same_study(study, store.done, out_dir, {design.name: identities})
        earlier = read_results(results_path)
        foreign = {row.cell_id for row in earlier if row.scenario == design.name} - ours
        if foreign or any(row.scenario != design.name for row in earlier):
            raise NoisylinkError(f"{out_dir} holds results of another design (other cells or "
                                 "scenarios); use a new --out or --fresh")
        outcomes: dict[tuple[str, int, int], Outcome] = {}

        def keep(row: ResultRow) -> None:
            value = getattr(row, design.objective.metric)
            outcomes[(row.cell_id, position[row.image], row.trial)] = Outcome(
                position[row.image], row.trial, float(value), row.decoded)

        ids = dict(identities)
        for row in earlier:  # rows of images the design no longer lists are left out
            if row.setting == setting and ids.get(row.image) == row.image_id:
                keep(row)
        manifest: dict[str, Any] = {
            "design": design.model_dump(mode="json"),
            "source": source,
            "engine": engine,
            "versions": versions(),
            "started": utc_now(),
            "configurations": [
                {"label": label, "codec": c.codec, "ecc": c.ecc, "modulation": c.modulation,
                 "knob": c.knob, "knob_value": c.knob_value, "bpp_channel": c.bpp_channel}
                for label, c in zip(labels, configurations, strict=True)
            ],
            "rejected": [asdict(r) for r in rejections],
            "fitting_encodes": encodes,
            "complete": False,
        }
        write_manifest(manifest_path, manifest)

        def at(c: int, p: int) -> list[Outcome]:
            cell_id = cells[c][p].id
            return [outcomes[key] for image in range(len(images)) for trial in range(trials[c, p])
                    if (key := (cell_id, image, trial)) in outcomes]

        try:
            while True:
                tasks = []
                for (c, p), count in sorted(trials.items()):
                    cell_id = cells[c][p].id
                    missing = tuple((image, trial) for image in range(len(images))
                                    for trial in range(count)
                                    if (cell_id, image, trial) not in outcomes)
                    if missing:
                        tasks.append(CellTask(configurations[c].scenario, p, missing,
                                              out_dir / "examples"))
                if tasks:
                    state = {"round": rounds, "done": 0, "total": sum(t.rows for t in tasks)}

                    def on_row(row: ResultRow, state: dict[str, int] = state) -> None:
                        store.append(row)
                        keep(row)
                        state["done"] += 1
                        if on_progress is not None:
                            on_progress(DesignProgress(state["round"], state["done"],
                                                       state["total"]))

                    if on_progress is not None:
                        on_progress(DesignProgress(rounds, 0, state["total"]))
                    failures = runner.run(tasks, on_row)
                    rows_run += state["done"]
                    if failures:
                        break
                updated: dict[tuple[int, int], int] = {}
                for p in range(points):
                    here = {c: trials[c, p] for c in range(len(configurations))}
                    grown = next_trials({c: at(c, p) for c in here}, here, rules)
                    updated |= {(c, p): count for c, count in grown.items()}
                if updated == trials:
                    break
                trials = updated
                rounds += 1
        finally:
            runner.close()
        answers = [] if failures else [
            _answer(design, configurations, labels, cells, p, {c: at(c, p) for c in
                    range(len(configurations))}, trials, rules)
            for p in range(points)
        ]
    link_runs = sum(len(at(c, p)) for c in range(len(configurations)) for p in range(points))
    full_grid = len(configurations) * points * len(images) * design.trials.max
    wall_s = time.perf_counter() - started
    if not failures:
        _write_answers(out_dir / "design.csv", answers)
    manifest |= {
        "finished": utc_now(),
        "rounds": rounds + 1,
        "trials": [
            {"label": labels[c], "channel_value": cells[c][p].channel_value, "trials": count}
            for (c, p), count in sorted(trials.items())
        ],
        "link_runs": link_runs,
        "full_grid_runs": full_grid,
        "rows_run": rows_run,
        "wall_s": round(wall_s, 3),
        "failed_cells": [f"{f.task.scenario.name} cell {f.task.cell}: {f.message}"
                         for f in failures],
        "complete": not failures,
    }
    write_manifest(manifest_path, manifest)
    return DesignOutcome(out_dir, answers, configurations, labels, rejections, link_runs,
                         full_grid, rows_run, rounds + 1, encodes, failures, wall_s, moved)


def _answer(design: Design, configurations: list[Configuration], labels: list[str],
            cells: list[Any], point: int, outcomes: dict[int, list[Outcome]],
            trials: dict[tuple[int, int], int], rules: Rules) -> Answer:
    """The winner and runner-up at one point, from all their rows."""
    standings = {c: standing(rows, rules, c) for c, rows in outcomes.items()}
    ranked = qualified(standings, rules)
    cell = cells[0][point]
    base = {"channel_param": cell.channel_param, "channel_value": cell.channel_value,
            "metric": design.objective.metric, "statistic": design.objective.statistic}
    if not ranked:
        return Answer(**base, label="", codec_setting="", bpp_channel=math.nan,
                      value=math.nan, ci95=math.nan, mean=math.nan, corruption=math.nan,
                      trials=0, runner_up="", runner_up_value=math.nan, margin_db=math.nan)
    best = ranked[0]
    win = standings[best]
    second = ranked[1] if len(ranked) > 1 else None
    runner_value = standings[second].value if second is not None else math.nan
    configuration = configurations[best]
    rows = outcomes[best]
    return Answer(
        **base,
        label=labels[best],
        codec_setting="" if configuration.knob_value is None else f"{configuration.knob_value:g}",
        bpp_channel=configuration.bpp_channel,
        value=win.value,
        ci95=win.half_width,
        mean=sum(o.value for o in rows) / len(rows),
        corruption=win.corruption,
        trials=trials[best, point],
        runner_up=labels[second] if second is not None else "",
        runner_up_value=runner_value,
        margin_db=win.value - runner_value,
    )


def _write_answers(path: Path, answers: list[Answer]) -> None:
    temporary = path.with_suffix(".csv.tmp")
    with temporary.open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(DESIGN_COLUMNS)
        for answer in answers:
            values = asdict(answer)
            writer.writerow([format_value(values[column]) for column in DESIGN_COLUMNS])
    temporary.replace(path)
