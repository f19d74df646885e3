"""The sweep's results file: append-only CSV that survives ``kill -9`` at any moment.

Each row is written with one ``write`` on an ``O_APPEND`` descriptor, after its values are
made single-line, so a killed process leaves at worst one partial last line. Opening the file
again drops that line and reports which rows are finished, so nothing is recomputed or written
twice.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from noisylink.errors import NoisylinkError
from noisylink.link.results import COLUMNS, format_value

RowKey = tuple[str, str, str, int]  # scenario, cell_id, image, trial


def row_key(row: Mapping[str, Any]) -> RowKey:
    return (str(row["scenario"]), str(row["cell_id"]), str(row["image"]), int(row["trial"]))


def _single_line(value: Any) -> Any:
    return value.replace("\r", " ").replace("\n", " ") if isinstance(value, str) else value


class ResultsStore:
    """Finished rows of a sweep, on disk and by key."""

    def __init__(self, path: Path):
        self.path = path
        self.done: set[RowKey] = set()
        self.repaired_bytes = 0
        header = ",".join(COLUMNS) + "\n"
        if path.exists() and path.stat().st_size > 0:
            self._recover(header)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(header)
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND)

    def _recover(self, header: str) -> None:
        data = self.path.read_bytes()
        complete = data[: data.rfind(b"\n") + 1]  # drop a partial last line
        self.repaired_bytes = len(data) - len(complete)
        if self.repaired_bytes:
            with self.path.open("r+b") as handle:
                handle.truncate(len(complete))
        text = complete.decode()
        if not text.startswith(header):
            raise NoisylinkError(
                f"{self.path}: not a results file of this noisylink version (other columns); "
                "use another --out folder"
            )
        for row in csv.DictReader(io.StringIO(text)):
            self.done.add(row_key(row))

    def append(self, row: Mapping[str, Any]) -> None:
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerow(
            [_single_line(format_value(row.get(column, ""))) for column in COLUMNS]
        )
        os.write(self._fd, buffer.getvalue().encode())
        self.done.add(row_key(row))

    def close(self) -> None:
        os.close(self._fd)

    def __enter__(self) -> ResultsStore:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
