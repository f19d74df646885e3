"""The sweep's results file: append-only CSV that survives ``kill -9`` at any moment.

Each row is written with one ``write`` on an ``O_APPEND`` descriptor, after its values are
made single-line, so a killed process leaves at worst one partial last line. Opening the file
again checks every complete row (UTF-8, as many fields as the header, integers, numbers and
true/false where the schema says so), then drops the partial last line and reports which rows
are finished, so nothing is recomputed or written twice. A row that fails the check is one
``NoisylinkError`` line naming the file and the line; the file is left as it was.

A row is finished under its full key (``RowKey``): scenario, ``setting`` (what else shapes its
numbers: seed, image shaping, frames, noisylink version), ``cell_id`` (the cell's settings),
image name, ``image_id`` (its place in the list and its pixels) and trial.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from noisylink.errors import NoisylinkError
from noisylink.link.results import COLUMNS, INTEGER_COLUMNS, NUMBER_COLUMNS, format_value

RowKey = tuple[str, str, str, str, str, int]  # scenario, setting, cell_id, image, image_id, trial


def row_key(row: Mapping[str, Any]) -> RowKey:
    return (str(row["scenario"]), str(row["setting"]), str(row["cell_id"]), str(row["image"]),
            str(row["image_id"]), int(row["trial"]))


def _single_line(value: Any) -> Any:
    return value.replace("\r", " ").replace("\n", " ") if isinstance(value, str) else value


def _problem(values: Mapping[str, str]) -> str | None:
    """What is wrong with one row's values (``None`` when nothing is)."""
    for column in INTEGER_COLUMNS:
        try:
            int(values[column])
        except ValueError:
            return f"column {column} is not an integer: {values[column]!r}"
    for column in NUMBER_COLUMNS:
        text = values[column]
        try:
            if text.strip():
                float(text)
        except ValueError:
            return f"column {column} is not a number: {text!r}"
    if values["decoded"] not in ("true", "false"):
        return f"column decoded is not true/false: {values['decoded']!r}"
    return None


def read_results(path: Path, data: bytes) -> list[dict[str, str]]:
    """The rows of the complete lines ``data`` of results file ``path``, each checked."""
    try:
        text = data.decode()
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise NoisylinkError(f"{path}: line {line}: not UTF-8 text") from None
    header = ",".join(COLUMNS) + "\n"
    if not text.startswith(header):
        raise NoisylinkError(
            f"{path}: not a results file of this noisylink version (other columns); "
            "use another --out folder"
        )
    rows: list[dict[str, str]] = []
    reader = csv.reader(io.StringIO(text[len(header):]))
    try:
        for fields in reader:
            line = reader.line_num + 1
            if not fields:
                continue  # a blank line holds no row
            if len(fields) != len(COLUMNS):
                raise NoisylinkError(f"{path}: line {line}: {len(fields)} fields, the header "
                                     f"has {len(COLUMNS)}")
            values = dict(zip(COLUMNS, fields, strict=True))
            problem = _problem(values)
            if problem is not None:
                raise NoisylinkError(f"{path}: line {line}: {problem}")
            rows.append(values)
    except csv.Error as exc:
        raise NoisylinkError(f"{path}: line {reader.line_num + 1}: {exc}") from None
    return rows


class ResultsStore:
    """Finished rows of a sweep, on disk and by key."""

    def __init__(self, path: Path):
        self.path = path
        self.done: set[RowKey] = set()
        self.repaired_bytes = 0
        if path.exists() and not path.is_file():
            raise NoisylinkError(f"{path}: not a file")
        if path.exists() and path.stat().st_size > 0:
            self._recover()
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(",".join(COLUMNS) + "\n")
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND)

    def _recover(self) -> None:
        data = self.path.read_bytes()
        complete = data[: data.rfind(b"\n") + 1]  # drop a partial last line
        rows = read_results(self.path, complete)  # before anything is changed
        self.repaired_bytes = len(data) - len(complete)
        if self.repaired_bytes:
            with self.path.open("r+b") as handle:
                handle.truncate(len(complete))
        self.done.update(row_key(row) for row in rows)

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
