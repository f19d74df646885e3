"""One unit of sweep work: the remaining streams of one cell of one scenario.

A task runs the same link as ``noisylink run`` (same cell index, same keyed random streams), so
its rows equal the in-process run's, whatever the engine or the order. Each row carries its
identity columns (``setting``, ``image_id``) computed here from the images this process loaded.
It also saves the decoded picture of the scenario's first image, trial 0, for the example grid
of the plots.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from noisylink.images import SourceImage, load_images
from noisylink.link.messages import StreamId
from noisylink.link.plan import LinkPlan
from noisylink.link.roles import run_in_process
from noisylink.results.identity import cell_columns, image_id, setting_id
from noisylink.results.row import ResultRow
from noisylink.scenarios.grid import Cell, expand
from noisylink.scenarios.schema import ImagesSpec, Scenario

RowSink = Callable[[ResultRow], None]


@dataclass(frozen=True)
class CellTask:
    scenario: Scenario
    cell: int
    streams: tuple[tuple[int, int], ...]  # (image index, trial) still to run
    examples_dir: Path | None = None

    @property
    def rows(self) -> int:
        return len(self.streams)


@lru_cache(maxsize=8)
def _images(spec: ImagesSpec) -> tuple[SourceImage, ...]:
    return tuple(load_images(spec))


def image_identities(images: Sequence[SourceImage]) -> tuple[tuple[str, str], ...]:
    """(name, ``image_id``) of each of a scenario's images, in order."""
    return tuple((image.name, image_id(index, image.pixels)) for index, image in enumerate(images))


_CELLS: dict[str, tuple[Cell, ...]] = {}
_ENCODINGS: dict[str, dict[tuple[str, int], Any]] = {}  # per images spec, one codec setting


def scenario_cells(scenario: Scenario) -> tuple[Cell, ...]:
    """The cells of a scenario, expanded once per process."""
    key = scenario.model_dump_json()
    if key not in _CELLS:
        _CELLS[key] = tuple(expand(scenario))
    return _CELLS[key]


def _save_picture(path: Path, pixels: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    picture = pixels[:, :, 0] if pixels.shape[2] == 1 else pixels
    temporary = path.with_suffix(f".{os.getpid()}.tmp.png")  # workers may race on source.png
    Image.fromarray(picture).save(temporary)
    temporary.replace(path)


def run_cell_task(task: CellTask, emit: RowSink) -> int:
    """Run the task's streams, handing each finished row to ``emit``; returns the row count."""
    scenario = task.scenario
    cells = list(scenario_cells(scenario))
    images = list(_images(scenario.images))
    only = frozenset(StreamId(task.cell, image, trial) for image, trial in task.streams)
    encodings = _ENCODINGS.setdefault(scenario.images.model_dump_json(), {})
    plan = LinkPlan(scenario, cells, images, only=only, encode_cache=encodings)
    chain = plan.chain(task.cell)
    fixed = cell_columns(scenario.name, task.cell, cells[task.cell], chain.protection.rate)
    setting = setting_id(scenario)
    identities = image_identities(images)
    count = 0

    def on_row(stream: StreamId, row: dict[str, Any], picture: np.ndarray) -> None:
        nonlocal count
        if task.examples_dir is not None and stream.image == 0 and stream.trial == 0:
            folder = task.examples_dir / scenario.name
            _save_picture(folder / f"{cells[task.cell].id}.png", picture)
            if not (folder / "source.png").exists():
                _save_picture(folder / "source.png", images[0].pixels)
        emit(ResultRow(**fixed, setting=setting, image_id=identities[stream.image][1], **row))
        count += 1

    asyncio.run(run_in_process(plan, on_row))
    return count
