"""Running a scenario end to end: expand the grid, run the link, write results and manifest."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from noisylink.images import load_images
from noisylink.link.messages import StreamId
from noisylink.link.plan import LinkPlan
from noisylink.link.results import (
    ResultsWriter,
    cell_columns,
    versions,
    write_manifest,
)
from noisylink.link.roles import RowSink, run_in_process
from noisylink.scenarios.grid import expand
from noisylink.scenarios.schema import Scenario

ProgressCallback = Callable[[int, int], None]
LinkRunner = Callable[[LinkPlan, RowSink], Awaitable[None]]


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
    rows: list[dict[str, Any]]
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
    process by default, or the receiver's end of a transport (``noisylink rx``)."""
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
        "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "complete": False,
    }
    write_manifest(manifest_path, manifest)
    fixed = [
        cell_columns(scenario.name, index, cell, plan.chain(index).ecc.rate)
        for index, cell in enumerate(plan.cells)
    ]
    rows: list[dict[str, Any]] = []
    writer = ResultsWriter(results_path)

    def on_row(stream: StreamId, row: dict[str, Any], _image: np.ndarray) -> None:
        full = {**fixed[stream.cell], **row}
        writer.write(full)
        rows.append(full)
        if on_progress is not None:
            on_progress(len(rows), plan.n_streams)

    try:
        asyncio.run(link(plan, on_row))
    finally:
        writer.close()
    wall_s = time.perf_counter() - started
    manifest |= {
        "finished": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "rows": len(rows),
        "wall_s": round(wall_s, 3),
        "complete": True,
    }
    write_manifest(manifest_path, manifest)
    return RunOutcome(plan, rows, results_path, manifest_path, wall_s)
