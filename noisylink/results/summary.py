"""The per-cell summary a run prints: mean and 95 % interval of the main figures, and the
corruption rate."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from scipy import stats

from noisylink.results.row import ResultRow
from noisylink.scenarios.grid import Cell


@dataclass(frozen=True)
class Estimate:
    mean: float
    half_width: float

    def __str__(self) -> str:
        if math.isnan(self.mean):
            return "-"
        if self.half_width == 0 or math.isnan(self.half_width):
            return f"{self.mean:.3g}"
        return f"{self.mean:.3g} ± {self.half_width:.2g}"


def estimate(values: Iterable[float]) -> Estimate:
    """Mean and half width of its 95 % confidence interval (Student t)."""
    array = np.array([v for v in values if not math.isnan(v)], dtype=float)
    if array.size == 0:
        return Estimate(float("nan"), float("nan"))
    if array.size == 1:
        return Estimate(float(array[0]), float("nan"))
    sem = array.std(ddof=1) / math.sqrt(array.size)
    return Estimate(float(array.mean()), float(stats.t.ppf(0.975, array.size - 1) * sem))


@dataclass(frozen=True)
class CellSummary:
    label: str
    rows: int
    bpp_channel: Estimate
    raw_ber: Estimate
    post_ber: Estimate
    psnr: Estimate
    ssim: Estimate
    corruption_rate: float


def summarize(cells: list[Cell], rows: Iterable[ResultRow]) -> list[CellSummary]:
    """Per cell: mean and 95 % interval of the main figures, and the corruption rate."""
    by_cell: dict[int, list[ResultRow]] = {}
    for row in rows:
        by_cell.setdefault(row.cell, []).append(row)
    summaries = []
    for index, cell in enumerate(cells):
        group = by_cell.get(index, [])
        if not group:
            continue
        summaries.append(
            CellSummary(
                label=cell.label,
                rows=len(group),
                bpp_channel=estimate(row.bpp_channel for row in group),
                raw_ber=estimate(row.raw_ber for row in group),
                post_ber=estimate(row.post_ber for row in group),
                psnr=estimate(row.psnr for row in group),
                ssim=estimate(row.ssim for row in group),
                corruption_rate=1.0 - sum(row.decoded for row in group) / len(group),
            )
        )
    return summaries
