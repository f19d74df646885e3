"""Running a study: plan the cell tasks that are not finished, run them, append their rows.

Results go to ``OUT/results.csv`` (see ``store``), decoded examples to ``OUT/examples/``, and
``OUT/sweep.json`` records the study, the engine and whether the sweep completed. Running the
same command again finishes what is missing.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from noisylink.images import image_names
from noisylink.link.results import versions
from noisylink.sweeps.engines import TaskFailure, run_local
from noisylink.sweeps.store import ResultsStore
from noisylink.sweeps.study import Study
from noisylink.sweeps.tasks import CellTask, scenario_cells

Engine = Literal["local", "ray"]


@dataclass(frozen=True)
class SweepProgress:
    cells_done: int
    cells_total: int
    rows_done: int
    rows_total: int


@dataclass(frozen=True)
class SweepOutcome:
    results_path: Path
    rows_total: int
    rows_run: int
    rows_skipped: int
    failures: list[TaskFailure]
    wall_s: float


def plan_tasks(study: Study, done: set[tuple[str, str, str, int]],
               examples_dir: Path | None) -> tuple[list[CellTask], int, int]:
    """The tasks still to run, the number of rows in all, and the cells already complete."""
    tasks: list[CellTask] = []
    total = 0
    complete_cells = 0
    for scenario in study.scenarios:
        names = image_names(scenario.images)
        for index, cell in enumerate(scenario_cells(scenario)):
            missing = tuple(
                (image, trial)
                for image, name in enumerate(names)
                for trial in range(scenario.trials)
                if (scenario.name, cell.id, name, trial) not in done
            )
            total += len(names) * scenario.trials
            if missing:
                tasks.append(CellTask(scenario, index, missing, examples_dir))
            else:
                complete_cells += 1
    return tasks, total, complete_cells


def run_sweep(
    study: Study,
    out_dir: Path,
    *,
    engine: Engine = "local",
    workers: int | None = None,
    address: str | None = None,
    on_progress: Callable[[SweepProgress], None] | None = None,
) -> SweepOutcome:
    """Run (or finish) a study into ``out_dir``."""
    started = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    store = ResultsStore(out_dir / "results.csv")
    examples = out_dir / "examples"
    tasks, rows_total, cells_complete = plan_tasks(study, store.done, examples)
    cells_total = cells_complete + len(tasks)
    skipped = rows_total - sum(task.rows for task in tasks)
    manifest_path = out_dir / "sweep.json"
    manifest: dict[str, Any] = {
        "study": study.name,
        "source": study.source,
        "scenarios": [s.model_dump(mode="json") for s in study.scenarios],
        "engine": engine,
        "versions": versions(),
        "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "rows_total": rows_total,
        "rows_already_done": skipped,
        "complete": False,
    }
    manifest_path.write_text(json.dumps(manifest, indent=2, default=str) + "\n")
    state = {"rows": skipped, "cells": cells_complete, "run": 0}

    def report() -> None:
        if on_progress is not None:
            on_progress(SweepProgress(state["cells"], cells_total, state["rows"], rows_total))

    def on_row(row: dict[str, Any]) -> None:
        store.append(row)
        state["rows"] += 1
        state["run"] += 1
        report()

    def on_task_done(_task: CellTask) -> None:
        state["cells"] += 1
        report()

    report()
    try:
        if engine == "ray":
            from noisylink.sweeps.ray_engine import run_ray

            failures = run_ray(tasks, on_row, on_task_done, address=address)
        else:
            failures = run_local(tasks, on_row, on_task_done, workers or os.cpu_count() or 1)
    finally:
        store.close()
    wall_s = time.perf_counter() - started
    manifest |= {
        "finished": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "rows_run": state["run"],
        "wall_s": round(wall_s, 3),
        "failed_cells": [f"{f.task.scenario.name} cell {f.task.cell}: {f.message}"
                         for f in failures],
        "complete": not failures,
    }
    manifest_path.write_text(json.dumps(manifest, indent=2, default=str) + "\n")
    return SweepOutcome(store.path, rows_total, state["run"], skipped, failures, wall_s)
