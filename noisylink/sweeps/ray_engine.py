"""The Ray engine: the sweep's cell tasks as Ray tasks on a local or existing cluster.

Each cell is split into one Ray task per image (all its trials), so rows come back as images
finish. Workers are reused for the whole sweep (``max_calls=0``), so the per-process model
caches load a model once per worker. Cells whose codec runs a neural network (its class's
``uses_model``) ask for a GPU when the scenario's device is ``cuda`` (or ``auto`` on a cluster
that has GPUs).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from noisylink.codecs import codec_class
from noisylink.errors import NoisylinkError
from noisylink.results.row import ResultRow
from noisylink.sweeps.engines import RowCallback, TaskCallback, TaskFailure, error_line
from noisylink.sweeps.tasks import CellTask, run_cell_task, scenario_cells


def _run_rows(task: CellTask) -> list[ResultRow]:
    rows: list[ResultRow] = []
    run_cell_task(task, rows.append)
    return rows


def split_by_image(task: CellTask) -> list[CellTask]:
    """One task per image of ``task`` (each with that image's remaining trials)."""
    images = sorted({image for image, _ in task.streams})
    return [replace(task, streams=tuple(s for s in task.streams if s[0] == image))
            for image in images]


def wants_gpu(task: CellTask, cluster_has_gpu: bool) -> bool:
    device = task.scenario.device
    codec = codec_class(scenario_cells(task.scenario)[task.cell].codec.name)
    return codec.uses_model and (device == "cuda" or (device == "auto" and cluster_has_gpu))


def run_ray(
    tasks: list[CellTask], on_row: RowCallback, on_task_done: TaskCallback,
    address: str | None = None, num_cpus: int | None = None,
) -> list[TaskFailure]:
    """Run ``tasks`` on Ray; rows reach ``on_row`` here as each image's task finishes."""
    try:
        import ray
    except ImportError:
        raise NoisylinkError(
            "--engine ray needs Ray: pip install 'noisylink[ray]'"
        ) from None
    if not tasks:
        return []
    started_here = not ray.is_initialized()
    if started_here:
        try:
            ray.init(address=address, num_cpus=None if address else num_cpus,
                     include_dashboard=False, log_to_driver=False, configure_logging=False)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise NoisylinkError(f"cannot start or reach Ray ({address or 'local'}): "
                                 f"{error_line(exc)}") from None
    try:
        has_gpu = ray.cluster_resources().get("GPU", 0) > 0
        remote = ray.remote(max_calls=0, max_retries=0)(_run_rows)
        parts: dict[Any, tuple[int, CellTask]] = {}
        left = [0] * len(tasks)
        for index, task in enumerate(tasks):
            options: dict[str, Any] = {"num_cpus": 1}
            if wants_gpu(task, has_gpu):
                options["num_gpus"] = 1
            for part in split_by_image(task):
                parts[remote.options(**options).remote(part)] = (index, part)
                left[index] += 1
        failures: list[TaskFailure] = []
        failed: set[int] = set()
        pending = list(parts)
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            for ref in done:
                index, part = parts[ref]
                try:
                    rows = ray.get(ref)
                except Exception as exc:  # a task's own error, wrapped by Ray
                    cause = getattr(exc, "cause", None) or exc
                    if index not in failed:
                        failures.append(TaskFailure(tasks[index], error_line(cause)))
                        failed.add(index)
                    rows = []
                for row in rows:
                    on_row(row)
                left[index] -= 1
                if left[index] == 0:
                    on_task_done(tasks[index])
        return failures
    finally:
        if started_here:
            ray.shutdown()
