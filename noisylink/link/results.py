"""Results: one tidy row per (cell, image, trial), the manifest, and the per-cell summary.

Rows are appended to ``results.csv`` as each stream finishes (and flushed), so an interrupted
run keeps every row it computed. Column meanings are in docs/results.md.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import platform
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, TextIO

import numpy as np
from scipy import stats

from noisylink import __version__
from noisylink.scenarios.grid import Cell
from noisylink.scenarios.schema import Scenario

COLUMNS = (
    "scenario", "setting", "cell", "cell_id", "codec", "codec_label", "codec_params", "ecc",
    "ecc_params", "ecc_rate",
    "interleaver", "modulation", "channel", "channel_params", "channel_param", "channel_value",
    "trial", "image", "image_id", "width", "height",
    "source_bits", "overhead_bits", "parity_bits", "channel_bits", "channel_uses",
    "bpp_source", "bpp_channel", "ecc_overhead", "raw_ber", "post_ber",
    "frames", "frames_crc_failed", "frames_lost", "ecc_blocks_failed",
    "decoded", "decode_error", "psnr", "ssim", "ms_ssim", "mse",
    "encode_s", "ecc_decode_s", "decode_s",
)
TIMING_COLUMNS = ("encode_s", "ecc_decode_s", "decode_s")
# The types of the columns that are not text; ``decoded`` is true/false, number columns may be
# blank or nan (MS-SSIM of small images).
INTEGER_COLUMNS = (
    "cell", "trial", "width", "height", "source_bits", "overhead_bits", "parity_bits",
    "channel_bits", "channel_uses", "frames", "frames_crc_failed", "frames_lost",
    "ecc_blocks_failed",
)
NUMBER_COLUMNS = (
    "ecc_rate", "channel_value", "bpp_source", "bpp_channel", "ecc_overhead", "raw_ber",
    "post_ber", "psnr", "ssim", "ms_ssim", "mse", *TIMING_COLUMNS,
)
# Scenario fields that are not part of a row's ``setting``: labels, how many trials (more
# trials only add rows), the device (results are meant not to depend on it), and the grid
# (each row's ``cell_id`` stands for its own cell's settings). Everything else counts, so a
# field added to the scenario later counts too.
NOT_IN_SETTING = frozenset(
    {"name", "description", "trials", "device", "codec", "ecc", "interleaver", "modulation",
     "channel"}
)


def _short_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def setting_id(scenario: Scenario) -> str:
    """16 hex digits identifying what, besides the cell and the image, shapes a row's numbers:
    the scenario's seed, image shaping and frames (everything but ``NOT_IN_SETTING`` and
    ``images.limit``, which only selects how many images) and the noisylink version."""
    settings = scenario.model_dump(mode="json", exclude=set(NOT_IN_SETTING))
    settings["images"].pop("limit", None)
    settings["noisylink"] = __version__
    return _short_hash(json.dumps(settings, sort_keys=True, separators=(",", ":")).encode())


def image_id(index: int, pixels: np.ndarray) -> str:
    """16 hex digits identifying an image as a run used it: its place in the scenario's image
    list (which keys its random streams) and its shaped pixels (shape and bytes)."""
    header = json.dumps([index, list(pixels.shape), str(pixels.dtype)]).encode()
    return _short_hash(header + np.ascontiguousarray(pixels).tobytes())


def identity_columns(scenario: Scenario, index: int, pixels: np.ndarray) -> dict[str, str]:
    """The ``setting`` and ``image_id`` columns of the rows of one image of a scenario."""
    return {"setting": setting_id(scenario), "image_id": image_id(index, pixels)}


def cell_columns(scenario_name: str, index: int, cell: Cell, ecc_rate: float) -> dict[str, Any]:
    """The columns every row of a cell shares."""
    return {
        "scenario": scenario_name,
        "cell": index,
        "cell_id": cell.id,
        "codec": cell.codec.name,
        "codec_label": cell.codec.label(),
        "codec_params": json.dumps(cell.codec.params(), sort_keys=True),
        "ecc": cell.ecc.label(),
        "ecc_params": json.dumps(cell.ecc.params(), sort_keys=True),
        "ecc_rate": ecc_rate,
        "interleaver": cell.interleaver.label(),
        "modulation": cell.modulation.label() if cell.modulation else "",
        "channel": cell.channel.name,
        "channel_params": json.dumps(cell.channel.params(), sort_keys=True),
        "channel_param": cell.channel_param,
        "channel_value": cell.channel_value,
    }


def format_value(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return value


class ResultsWriter:
    """Appends rows to a CSV file, header first, flushing each row."""

    def __init__(self, path: Path):
        self.path = path
        self._file: TextIO = path.open("w", newline="")
        self._writer = csv.DictWriter(self._file, fieldnames=COLUMNS, extrasaction="raise")
        self._writer.writeheader()
        self._file.flush()

    def write(self, row: Mapping[str, Any]) -> None:
        self._writer.writerow({key: format_value(row.get(key, "")) for key in COLUMNS})
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def versions() -> dict[str, str]:
    """Versions of the things that shape results."""
    found = {"python": platform.python_version()}
    for package in ("noisylink", "numpy", "scipy", "commpy", "pillow", "pillow-heif",
                    "scikit-image", "torch"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return found


def write_manifest(path: Path, manifest: Mapping[str, Any]) -> None:
    path.write_text(json.dumps(manifest, indent=2, sort_keys=True, default=str) + "\n")


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


def summarize(cells: list[Cell], rows: Iterable[Mapping[str, Any]]) -> list[CellSummary]:
    """Per cell: mean and 95 % interval of the main figures, and the corruption rate."""
    by_cell: dict[int, list[Mapping[str, Any]]] = {}
    for row in rows:
        by_cell.setdefault(int(row["cell"]), []).append(row)
    summaries = []
    for index, cell in enumerate(cells):
        group = by_cell.get(index, [])
        if not group:
            continue

        def column(name: str, group: list[Mapping[str, Any]] = group) -> list[float]:
            return [float(row[name]) for row in group]

        decoded = [str(row["decoded"]).lower() == "true" for row in group]
        summaries.append(
            CellSummary(
                label=cell.label,
                rows=len(group),
                bpp_channel=estimate(column("bpp_channel")),
                raw_ber=estimate(column("raw_ber")),
                post_ber=estimate(column("post_ber")),
                psnr=estimate(column("psnr")),
                ssim=estimate(column("ssim")),
                corruption_rate=1.0 - sum(decoded) / len(decoded),
            )
        )
    return summaries
