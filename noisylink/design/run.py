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

from noisylink.design.racing import (
    Outcome,
    Rules,
    mean_value,
    next_trials,
    qualified,
    standing,
)
from noisylink.design.rates import Configuration, Rejection, fit_configurations
from noisylink.design.schema import Design
from noisylink.errors import NoisylinkError, ScenarioError
from noisylink.images import SourceImage, load_images
from noisylink.outdir import prepare_out_dir
from noisylink.results.file import ResultsFile, read_results
from noisylink.results.identity import setting_id
from noisylink.results.manifest import utc_now, versions, write_manifest
from noisylink.results.row import ResultRow, format_value
from noisylink.scenarios.schema import Scenario
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
    runner_up: str  # the best qualified configuration with another codec or ECC
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


class _Race:
    """The rows a design has so far, by configuration and channel point, and the trials each
    (configuration, point) is to get; decisions come from the rows alone."""

    def __init__(self, design: Design, configurations: list[Configuration], labels: list[str],
                 image_names: list[str]):
        self.design = design
        self.configurations = configurations
        self.labels = labels
        self.images = {name: index for index, name in enumerate(image_names)}
        self.cells = [scenario_cells(c.scenario) for c in configurations]
        self.points = len(self.cells[0])
        self.rules = Rules(design.objective.statistic, design.objective.max_corruption,
                           len(image_names), design.trials.max, design.seed)
        self.trials = {(c, p): design.trials.min
                       for c in range(len(configurations)) for p in range(self.points)}
        self.outcomes: dict[tuple[str, int, int], Outcome] = {}

    @property
    def cell_ids(self) -> set[str]:
        return {cell.id for group in self.cells for cell in group}

    def keep(self, row: ResultRow) -> None:
        image = self.images[row.image]
        value = float(getattr(row, self.design.objective.metric))
        self.outcomes[(row.cell_id, image, row.trial)] = Outcome(image, row.trial, value,
                                                                 row.decoded)

    def at(self, c: int, p: int) -> list[Outcome]:
        """The rows of configuration ``c`` at point ``p`` within its trials."""
        cell_id = self.cells[c][p].id
        return [self.outcomes[key] for image in range(len(self.images))
                for trial in range(self.trials[c, p])
                if (key := (cell_id, image, trial)) in self.outcomes]

    def tasks(self, examples_dir: Path) -> list[CellTask]:
        """The streams still to run for the trials decided so far."""
        tasks = []
        for (c, p), count in sorted(self.trials.items()):
            cell_id = self.cells[c][p].id
            missing = tuple((image, trial) for image in range(len(self.images))
                            for trial in range(count)
                            if (cell_id, image, trial) not in self.outcomes)
            if missing:
                tasks.append(CellTask(self.configurations[c].scenario, p, missing, examples_dir))
        return tasks

    def advance(self) -> bool:
        """Decide the next round's trials at every point; False when nothing changes."""
        updated: dict[tuple[int, int], int] = {}
        for p in range(self.points):
            here = {c: self.trials[c, p] for c in range(len(self.configurations))}
            grown = next_trials({c: self.at(c, p) for c in here}, here, self.rules)
            updated |= {(c, p): count for c, count in grown.items()}
        changed = updated != self.trials
        self.trials = updated
        return changed

    def _alternative(self, best: int, other: int) -> bool:
        """Whether ``other`` is another choice than ``best``: another codec or ECC (a twin
        that differs in modulation alone, such as BPSK and QPSK at one Eb/N0, is not)."""
        mine, theirs = self.configurations[best], self.configurations[other]
        return (mine.codec, mine.ecc) != (theirs.codec, theirs.ecc)

    @property
    def link_runs(self) -> int:
        return sum(len(self.at(c, p)) for c, p in self.trials)

    def answer(self, point: int) -> Answer:
        """The winner and runner-up at one point, from all their rows."""
        outcomes = {c: self.at(c, point) for c in range(len(self.configurations))}
        standings = {c: standing(rows, self.rules, c) for c, rows in outcomes.items()}
        ranked = qualified(standings, self.rules)
        cell = self.cells[0][point]
        objective = self.design.objective
        base: dict[str, Any] = {
            "channel_param": cell.channel_param, "channel_value": cell.channel_value,
            "metric": objective.metric, "statistic": objective.statistic,
        }
        if not ranked:
            return Answer(**base, label="", codec_setting="", bpp_channel=math.nan,
                          value=math.nan, ci95=math.nan, mean=math.nan, corruption=math.nan,
                          trials=0, runner_up="", runner_up_value=math.nan, margin_db=math.nan)
        best, win = ranked[0], standings[ranked[0]]
        second = next((c for c in ranked[1:] if self._alternative(best, c)), None)
        runner_value = standings[second].value if second is not None else math.nan
        knob_value = self.configurations[best].knob_value
        return Answer(
            **base,
            label=self.labels[best],
            codec_setting="" if knob_value is None else f"{knob_value:g}",
            bpp_channel=self.configurations[best].bpp_channel,
            value=win.value,
            ci95=win.half_width,
            mean=mean_value(outcomes[best]),
            corruption=win.corruption,
            trials=self.trials[best, point],
            runner_up=self.labels[second] if second is not None else "",
            runner_up_value=runner_value,
            margin_db=win.value - runner_value,
        )


def _fit(design: Design, source: str, images: list[SourceImage]
         ) -> tuple[list[Configuration], list[Rejection], int]:
    """The configurations at their fitted rates; a bad design is a ``ScenarioError``."""
    try:
        if not images:
            raise ScenarioError("no images", field="images")
        _check_metric(design, [image.pixels.shape[:2] for image in images])
        configurations, rejections, encodes = fit_configurations(design, images, source)
        if not configurations:
            raise ScenarioError(_no_fit_message(design, rejections), field="budget.bpp_channel")
    except ScenarioError as exc:
        raise ScenarioError(exc.message, source=exc.source or source, field=exc.field) from None
    return configurations, rejections, encodes


def _earlier_rows(store: ResultsFile, out_dir: Path, design: Design, source: str,
                  scenario: Scenario, identities: tuple[tuple[str, str], ...],
                  cell_ids: set[str]) -> list[ResultRow]:
    """The rows already in the folder that this design can use; another design's are
    refused."""
    study = Study(design.name, design.description, source, [scenario])
    check_same_study(study, store.done, out_dir, {design.name: identities})
    earlier = read_results(store.path)
    foreign = {row.cell_id for row in earlier if row.scenario == design.name} - cell_ids
    if foreign or any(row.scenario != design.name for row in earlier):
        raise NoisylinkError(f"{out_dir} holds results of another design (other cells or "
                             "scenarios); use a new --out or --fresh")
    setting, ids = setting_id(scenario), dict(identities)
    # rows of images the design no longer lists are left out
    return [row for row in earlier if row.setting == setting and ids.get(row.image) == row.image_id]


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
    configurations, rejections, encodes = _fit(design, source, images)
    moved = set_aside(out_dir, DESIGN_FILES) if fresh else None
    labels = [configuration.label for configuration in configurations]
    identities = image_identities(images)
    race = _Race(design, configurations, labels, [name for name, _ in identities])
    manifest_path = out_dir / "design.json"
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
    rounds, rows_run = 0, 0
    failures: list[TaskFailure] = []
    runner = _Engine(engine, workers, address)
    with ResultsFile.resume(out_dir / "results.csv") as store:
        for row in _earlier_rows(store, out_dir, design, source, configurations[0].scenario,
                                 identities, race.cell_ids):
            race.keep(row)
        write_manifest(manifest_path, manifest)
        try:
            while True:
                tasks = race.tasks(out_dir / "examples")
                if tasks:
                    state = {"round": rounds, "done": 0, "total": sum(t.rows for t in tasks)}

                    def on_row(row: ResultRow, state: dict[str, int] = state) -> None:
                        store.append(row)
                        race.keep(row)
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
                if not race.advance():
                    break
                rounds += 1
        finally:
            runner.close()
    answers = [] if failures else [race.answer(p) for p in range(race.points)]
    full_grid = len(configurations) * race.points * len(images) * design.trials.max
    wall_s = time.perf_counter() - started
    if not failures:
        _write_answers(out_dir / "design.csv", answers)
    manifest |= {
        "finished": utc_now(),
        "rounds": rounds + 1,
        "trials": [
            {"label": labels[c], "channel_value": race.cells[c][p].channel_value,
             "trials": count}
            for (c, p), count in sorted(race.trials.items())
        ],
        "link_runs": race.link_runs,
        "full_grid_runs": full_grid,
        "rows_run": rows_run,
        "wall_s": round(wall_s, 3),
        "failed_cells": [f"{f.task.scenario.name} cell {f.task.cell}: {f.message}"
                         for f in failures],
        "complete": not failures,
    }
    write_manifest(manifest_path, manifest)
    return DesignOutcome(out_dir, answers, configurations, labels, rejections, race.link_runs,
                         full_grid, rows_run, rounds + 1, encodes, failures, wall_s, moved)


def _write_answers(path: Path, answers: list[Answer]) -> None:
    temporary = path.with_suffix(".csv.tmp")
    with temporary.open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(DESIGN_COLUMNS)
        for answer in answers:
            values = asdict(answer)
            writer.writerow([format_value(values[column]) for column in DESIGN_COLUMNS])
    temporary.replace(path)
