"""Running a scenario end to end: expand the grid, run the link, write results and manifest."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from noisylink.errors import NoisylinkError
from noisylink.images import load_images
from noisylink.link.messages import StreamId
from noisylink.link.plan import LinkPlan
from noisylink.link.roles import RowSink, run_in_process
from noisylink.results.file import ResultsFile
from noisylink.results.identity import cell_columns, identity_columns
from noisylink.results.manifest import utc_now, versions, write_manifest
from noisylink.results.row import ResultRow
from noisylink.scenarios.grid import expand
from noisylink.scenarios.schema import Scenario

ProgressCallback = Callable[[int, int], None]
LinkRunner = Callable[[LinkPlan, RowSink], Coroutine[Any, Any, Mapping[str, Any] | None]]
"""Runs the roles for a plan, handing rows to the sink; may return facts for the manifest."""
MISSING_SHOWN = 5  # streams named in the one-line error; the manifest lists them all


class IncompleteRunError(NoisylinkError):
    """The link ended without a row for every (cell, image, trial) of the plan."""


def resolve_device(device: str) -> str:
    """``auto`` becomes ``cuda`` where torch sees a GPU, else ``cpu``."""
    if device != "auto":
        return device
    try:
        import torch
    except ImportError:
        return "cpu"
    return "cuda" if torch.cuda.is_available() else "cpu"


@dataclass(frozen=True)
class RunOutcome:
    plan: LinkPlan
    rows: list[ResultRow]
    results_path: Path
    manifest_path: Path
    wall_s: float


def build_plan(scenario: Scenario) -> LinkPlan:
    """Cells and images of a scenario, ready for the roles."""
    return LinkPlan(scenario, expand(scenario), load_images(scenario.images))


def run_scenario(
    scenario: Scenario,
    out_dir: Path,
    *,
    source: str = "",
    on_progress: ProgressCallback | None = None,
    link: LinkRunner = run_in_process,
) -> RunOutcome:
    """Run every (cell, image, trial) of a scenario; rows are written as they finish, the
    manifest at the start and again at the end. ``link`` runs the roles: all three in this
    process by default, or the receiver's end of a transport (``noisylink rx``).

    The run is complete only with exactly one row for every stream of the plan; otherwise the
    manifest says ``complete: false`` and lists the missing streams, and
    ``IncompleteRunError`` names them in one line (the rows that did finish stay written)."""
    started = time.perf_counter()
    plan = build_plan(scenario)
    out_dir.mkdir(parents=True, exist_ok=True)
    results_path, manifest_path = out_dir / "results.csv", out_dir / "manifest.json"
    manifest: dict[str, Any] = {
        "scenario": scenario.model_dump(mode="json"),
        "source": source,
        "seed": scenario.seed,
        "device": resolve_device(scenario.device),
        "versions": versions(),
        "cells": [cell.label for cell in plan.cells],
        "images": [image.name for image in plan.images],
        "started": utc_now(),
        "complete": False,
    }
    write_manifest(manifest_path, manifest)
    fixed = [
        cell_columns(scenario.name, index, cell, plan.chain(index).protection.rate)
        for index, cell in enumerate(plan.cells)
    ]
    identity = [identity_columns(scenario, index, image.pixels)
                for index, image in enumerate(plan.images)]
    rows: list[ResultRow] = []
    finished: set[StreamId] = set()
    writer = ResultsFile.create(results_path)

    def on_row(stream: StreamId, row: dict[str, Any], _image: np.ndarray) -> None:
        if stream in finished:  # the roles emit one row per stream; never count one twice
            raise NoisylinkError(f"a second row for cell {stream.cell} image "
                                 f"{plan.images[stream.image].name} trial {stream.trial}")
        finished.add(stream)
        full = ResultRow(**{**fixed[stream.cell], **identity[stream.image], **row})
        writer.append(full)
        rows.append(full)
        if on_progress is not None:
            on_progress(len(rows), plan.n_streams)

    try:
        extra = asyncio.run(link(plan, on_row))
    finally:
        writer.close()
    wall_s = time.perf_counter() - started
    missing = [stream for stream in plan.streams() if stream not in finished]
    manifest |= {
        **(extra or {}),
        "finished": utc_now(),
        "rows": len(rows),
        "wall_s": round(wall_s, 3),
        "complete": not missing,
    }
    if missing:
        manifest["missing"] = [describe(plan, stream) for stream in missing]
    write_manifest(manifest_path, manifest)
    if missing:
        named = "; ".join(manifest["missing"][:MISSING_SHOWN])
        more = f" and {len(missing) - MISSING_SHOWN} more" if len(missing) > MISSING_SHOWN else ""
        raise IncompleteRunError(
            f"{len(missing)} of {plan.n_streams} rows missing ({named}{more}); "
            f"the {len(rows)} finished rows are in {results_path}, manifest says complete: false"
        )
    return RunOutcome(plan, rows, results_path, manifest_path, wall_s)


def describe(plan: LinkPlan, stream: StreamId) -> str:
    """A stream as a person reads it: cell, image name, trial."""
    return (f"cell {stream.cell} ({plan.cells[stream.cell].label}) image "
            f"{plan.images[stream.image].name} trial {stream.trial}")
