"""Running a study: plan the cell tasks that are not finished, run them, append their rows.

Results go to ``OUT/results.csv`` (see ``noisylink.results.file``), decoded examples to
``OUT/examples/``, and ``OUT/sweep.json`` records the study, the engine and whether the sweep
completed. Running the same command again finishes what is missing; so does a study that only
adds rows (more images, trials or grid points).

A row counts as done only when its full key matches a row the study would produce, ``setting``
and ``image_id`` included. When ``OUT`` holds rows of one of the study's scenarios made under
another setting (seed, image shaping, frames, noisylink version) or from another picture of the
same name, the sweep refuses with one line before running anything: one folder holds one
study's numbers. ``fresh=True`` first moves the old results into ``OUT/replaced-<time>/``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from noisylink.errors import NoisylinkError
from noisylink.images import load_images
from noisylink.outdir import prepare_out_dir
from noisylink.results.file import ResultsFile, RowKey
from noisylink.results.identity import NOT_IN_SETTING, setting_id
from noisylink.results.manifest import utc_now, versions, write_manifest
from noisylink.results.row import ResultRow
from noisylink.scenarios.schema import Scenario
from noisylink.sweeps.engines import TaskFailure, run_local
from noisylink.sweeps.study import Study
from noisylink.sweeps.tasks import CellTask, image_identities, scenario_cells

Engine = Literal["local", "ray"]
# Per scenario name, (image name, ``image_id``) of each of its images, in order.
Identities = dict[str, tuple[tuple[str, str], ...]]
# What a sweep writes into its folder; ``fresh`` moves these aside.
RESULT_FILES = ("results.csv", "sweep.json", "examples", "plots")


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
    set_aside: Path | None = None  # where ``fresh`` moved the previous results


def study_images(study: Study) -> Identities:
    """Per scenario, (name, ``image_id``) of its images, read from their source now."""
    return {s.name: image_identities(load_images(s.images)) for s in study.scenarios}


def plan_tasks(study: Study, done: set[RowKey], examples_dir: Path | None,
               identities: Identities) -> tuple[list[CellTask], int, int]:
    """The tasks still to run, the number of rows in all, and the cells already complete;
    ``identities`` are the study's images (``study_images``)."""
    tasks: list[CellTask] = []
    total = 0
    complete_cells = 0
    for scenario in study.scenarios:
        setting = setting_id(scenario)
        images = identities[scenario.name]
        for index, cell in enumerate(scenario_cells(scenario)):
            missing = tuple(
                (image, trial)
                for image, (name, image_id) in enumerate(images)
                for trial in range(scenario.trials)
                if (scenario.name, setting, cell.id, name, image_id, trial) not in done
            )
            total += len(images) * scenario.trials
            if missing:
                tasks.append(CellTask(scenario, index, missing, examples_dir))
            else:
                complete_cells += 1
    return tasks, total, complete_cells


def _flat(settings: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in settings.items():
        if isinstance(value, dict):
            flat |= _flat(value, f"{prefix}{key}.")
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _setting_fields(scenario: dict[str, Any]) -> dict[str, Any]:
    fields = _flat({k: v for k, v in scenario.items() if k not in NOT_IN_SETTING})
    fields.pop("images.limit", None)
    return fields


def _what_changed(out_dir: Path, scenario: Scenario) -> str:
    """The settings of ``scenario`` that differ from those the folder's manifest (a sweep's
    ``sweep.json`` or a run's ``manifest.json``) records; a general phrase when it cannot tell."""
    general = "another seed, image shaping, frames or noisylink version"
    try:
        if (out_dir / "sweep.json").exists():
            manifest = json.loads((out_dir / "sweep.json").read_text())
            earlier = manifest["scenarios"]
        else:
            manifest = json.loads((out_dir / "manifest.json").read_text())
            earlier = [manifest["scenario"]]
        before = next(s for s in earlier if s.get("name") == scenario.name)
        old = _setting_fields(before)
    except (OSError, ValueError, KeyError, TypeError, AttributeError, StopIteration):
        return general
    new = _setting_fields(scenario.model_dump(mode="json"))
    changed = sorted(key for key in old.keys() | new.keys() if old.get(key) != new.get(key))
    versions_before = manifest.get("versions")
    old_version = versions_before.get("noisylink") if isinstance(versions_before, dict) else None
    version = versions().get("noisylink")
    if old_version is not None and old_version != version:
        changed.append(f"noisylink {old_version} -> {version}")
    return f"changed {', '.join(changed)}" if changed else general


def check_same_study(study: Study, done: set[RowKey], out_dir: Path,
                     identities: Identities) -> None:
    """Refuse rows of the study's scenarios that another setting or other pictures made."""
    for scenario in study.scenarios:
        setting = setting_id(scenario)
        mine = [key for key in done if key[0] == scenario.name]
        if any(key[1] != setting for key in mine):
            reason = _what_changed(out_dir, scenario)
        else:
            ids = dict(identities[scenario.name])
            changed = sorted({key[3] for key in mine if key[3] in ids and key[4] != ids[key[3]]})
            if not changed:
                continue
            reason = f"image {changed[0]} is another picture or in another place in the list"
        raise NoisylinkError(f"{out_dir} holds results of a different study (scenario "
                             f"{scenario.name}: {reason}); use a new --out or --fresh")


def set_aside(out_dir: Path, names: Sequence[str] = RESULT_FILES) -> Path | None:
    """Move the results of an earlier sweep (the files ``names``) into
    ``out_dir/replaced-<UTC time>/``."""
    present = [out_dir / name for name in names if (out_dir / name).exists()]
    if not present:
        return None
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    target, count = out_dir / f"replaced-{stamp}", 1
    while target.exists():
        target, count = out_dir / f"replaced-{stamp}-{count}", count + 1
    target.mkdir()
    for path in present:
        path.rename(target / path.name)
    return target


def run_sweep(
    study: Study,
    out_dir: Path,
    *,
    engine: Engine = "local",
    workers: int | None = None,
    address: str | None = None,
    on_progress: Callable[[SweepProgress], None] | None = None,
    fresh: bool = False,
) -> SweepOutcome:
    """Run (or finish) a study into ``out_dir``; ``fresh`` sets earlier results aside first."""
    started = time.perf_counter()
    prepare_out_dir(out_dir, "sweep folder")
    moved = set_aside(out_dir) if fresh else None
    with ResultsFile.resume(out_dir / "results.csv") as store:
        identities = study_images(study)
        check_same_study(study, store.done, out_dir, identities)
        tasks, rows_total, cells_complete = plan_tasks(study, store.done, out_dir / "examples",
                                                       identities)
        cells_total = cells_complete + len(tasks)
        skipped = rows_total - sum(task.rows for task in tasks)
        manifest_path = out_dir / "sweep.json"
        manifest: dict[str, Any] = {
            "study": study.name,
            "source": study.source,
            "scenarios": [s.model_dump(mode="json") for s in study.scenarios],
            "settings": {s.name: setting_id(s) for s in study.scenarios},
            "engine": engine,
            "versions": versions(),
            "started": utc_now(),
            "rows_total": rows_total,
            "rows_already_done": skipped,
            "complete": False,
        }
        write_manifest(manifest_path, manifest)
        state = {"rows": skipped, "cells": cells_complete, "run": 0}

        def report() -> None:
            if on_progress is not None:
                on_progress(SweepProgress(state["cells"], cells_total, state["rows"], rows_total))

        def on_row(row: ResultRow) -> None:
            store.append(row)
            state["rows"] += 1
            state["run"] += 1
            report()

        def on_task_done(_task: CellTask) -> None:
            state["cells"] += 1
            report()

        report()
        if engine == "ray":
            from noisylink.sweeps.ray_engine import run_ray

            failures = run_ray(tasks, on_row, on_task_done, address=address)
        else:
            failures = run_local(tasks, on_row, on_task_done, workers or os.cpu_count() or 1)
    wall_s = time.perf_counter() - started
    manifest |= {
        "finished": utc_now(),
        "rows_run": state["run"],
        "wall_s": round(wall_s, 3),
        "failed_cells": [f"{f.task.scenario.name} cell {f.task.cell}: {f.message}"
                         for f in failures],
        "complete": not failures,
    }
    write_manifest(manifest_path, manifest)
    return SweepOutcome(store.path, rows_total, state["run"], skipped, failures, wall_s, moved)
