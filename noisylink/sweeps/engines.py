"""Engines run cell tasks and hand each finished row back to the sweep as it arrives.

``local`` is a process pool on this machine (spawned workers that live for the whole sweep, so
a model loads once per worker); ``ray`` (``noisylink.sweeps.ray_engine``) runs the same tasks on
a Ray cluster. A failed task is reported, not fatal: the other tasks go on.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import signal
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

from noisylink.processes import die_with_parent
from noisylink.results.row import ResultRow
from noisylink.sweeps.tasks import CellTask, run_cell_task

RowCallback = Callable[[ResultRow], None]
TaskCallback = Callable[[CellTask], None]


@dataclass(frozen=True)
class TaskFailure:
    task: CellTask
    message: str


_rows: Any = None  # the worker's end of the row queue


def _init_worker(rows: Any, threads: int) -> None:
    global _rows
    die_with_parent(signal.SIGKILL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C
    _rows = rows
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    try:
        import torch

        torch.set_num_threads(threads)
    except ImportError:
        pass


def _run_in_worker(index: int, task: CellTask) -> int:
    return run_cell_task(task, lambda row: _rows.put((index, row)))


def error_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


class LocalPool:
    """Spawned worker processes that live across several batches of tasks (a sweep's one
    batch, a design's rounds), so a worker loads its models once."""

    def __init__(self, workers: int):
        context = multiprocessing.get_context("spawn")
        self.rows = context.Queue()
        self.workers = max(1, workers)
        threads = max(1, (os.cpu_count() or 1) // self.workers)
        self.pool = ProcessPoolExecutor(self.workers, mp_context=context,
                                        initializer=_init_worker, initargs=(self.rows, threads))
        self.killed = False

    def run(self, tasks: list[CellTask], on_row: RowCallback,
            on_task_done: TaskCallback) -> list[TaskFailure]:
        """Run ``tasks``; rows reach ``on_row`` in this process as they finish."""
        failures: list[TaskFailure] = []
        received = [0] * len(tasks)
        expected: dict[int, int] = {}
        try:
            futures: dict[Future[int], int] = {
                self.pool.submit(_run_in_worker, index, task): index
                for index, task in enumerate(tasks)
            }
            pending = set(futures)
            while pending or expected:
                try:
                    index, row = self.rows.get(timeout=0.1)
                    received[index] += 1
                    on_row(row)
                except queue.Empty:
                    pass
                for future in [f for f in pending if f.done()]:
                    pending.discard(future)
                    index = futures[future]
                    exc = future.exception()
                    if exc is not None:
                        failures.append(TaskFailure(tasks[index], error_line(exc)))
                        expected[index] = 0
                    else:
                        expected[index] = future.result()
                for index, count in list(expected.items()):
                    if received[index] >= count:
                        del expected[index]
                        on_task_done(tasks[index])
            while failures:  # rows a failed task sent before it failed
                try:
                    _, row = self.rows.get(timeout=0.2)
                except queue.Empty:
                    break
                on_row(row)
        except BaseException:
            self.kill()
            raise
        return failures

    def kill(self) -> None:
        """Stop now (interrupted); finished rows are already on disk."""
        self.killed = True
        for process in list(getattr(self.pool, "_processes", {}).values()):
            process.kill()
        self.pool.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        if not self.killed:
            self.pool.shutdown()

    def __enter__(self) -> LocalPool:
        return self

    def __exit__(self, kind: object, *_: object) -> None:
        if kind is None:
            self.close()


def run_local(
    tasks: list[CellTask], on_row: RowCallback, on_task_done: TaskCallback, workers: int
) -> list[TaskFailure]:
    """Run ``tasks`` on ``workers`` processes; rows reach ``on_row`` in this process."""
    if not tasks:
        return []
    with LocalPool(min(workers, len(tasks))) as pool:
        return pool.run(tasks, on_row, on_task_done)
