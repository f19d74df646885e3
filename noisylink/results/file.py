"""``results.csv``: the one writer and the one reader, for ``run``, ``rx`` and ``sweep``.

The file is append-only and survives ``kill -9`` at any moment: each row is one ``write`` on
an ``O_APPEND`` descriptor, so a killed process leaves at worst one partial last line. A
fresh file (``ResultsFile.create``) starts with the header; resuming one
(``ResultsFile.resume``, a sweep) first checks every complete row against the schema, drops a
partial last line and reports which rows are finished, so nothing is recomputed or written
twice. Reading (``read_rows``) checks the same way and leaves a partial last line out (it is
still being written). A file that fails the check is one ``NoisylinkError`` line naming the
file and the line, and is left as it was.

A row is finished under its full key (``RowKey``): scenario, ``setting``, ``cell_id``, image
name, ``image_id`` and trial.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

from noisylink.errors import NoisylinkError
from noisylink.results.row import COLUMNS, ResultRow

RowKey = tuple[str, str, str, str, str, int]  # scenario, setting, cell_id, image, image_id, trial
HEADER = ",".join(COLUMNS) + "\n"


def row_key(row: ResultRow) -> RowKey:
    return (row.scenario, row.setting, row.cell_id, row.image, row.image_id, row.trial)


def _some(names: list[str], shown: int = 4) -> str:
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


def _line(fields: list[str]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(fields)
    return buffer.getvalue().encode()


def _complete_lines(path: Path, data: bytes) -> str:
    """The complete lines of ``data`` as text (a partial last line left out)."""
    data = data[: data.rfind(b"\n") + 1]
    try:
        return data.decode()
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise NoisylinkError(f"{path}: line {line}: not UTF-8 text") from None


def parse_rows(path: Path, text: str) -> list[tuple[dict[str, str], ResultRow]]:
    """Every row of the complete lines ``text`` of file ``path``: as written, and typed."""
    reader = csv.reader(io.StringIO(text, newline=""))
    rows: list[tuple[dict[str, str], ResultRow]] = []
    try:
        header = next(reader, None)
        if header is None:
            raise NoisylinkError(f"{path}: no header (not a results file)")
        if tuple(header) != COLUMNS:
            missing = [c for c in COLUMNS if c not in header]
            unexpected = [c for c in header if c not in COLUMNS]
            detail = "; ".join(part for part in (
                f"missing: {_some(missing)}" if missing else "",
                f"unexpected: {_some(unexpected)}" if unexpected else "",
            ) if part) or "in another order"
            raise NoisylinkError(f"{path}: not a results file of this noisylink version "
                                 f"(other columns, {detail})")
        for fields in reader:
            line = reader.line_num
            if not fields:
                continue  # a blank line holds no row
            if len(fields) != len(COLUMNS):
                raise NoisylinkError(f"{path}: line {line}: {len(fields)} fields, the header "
                                     f"has {len(COLUMNS)}")
            values = dict(zip(COLUMNS, fields, strict=True))
            try:
                rows.append((values, ResultRow.from_csv(values)))
            except ValueError as exc:
                raise NoisylinkError(f"{path}: line {line}: {exc}") from None
    except csv.Error as exc:
        raise NoisylinkError(f"{path}: line {reader.line_num + 1}: {exc}") from None
    return rows


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise NoisylinkError(f"{path}: not found") from None
    except OSError as exc:
        raise NoisylinkError(f"{path}: cannot read ({exc.strerror})") from None


def read_rows(path: Path) -> list[dict[str, str]]:
    """The rows of a results file as written (column -> text), each checked."""
    return [values for values, _ in parse_rows(path, _complete_lines(path, _read_bytes(path)))]


def read_results(path: Path) -> list[ResultRow]:
    """The rows of a results file, typed, each checked."""
    return [row for _, row in parse_rows(path, _complete_lines(path, _read_bytes(path)))]


class ResultsFile:
    """An open ``results.csv`` that rows are appended to; ``done`` holds the finished keys."""

    def __init__(self, path: Path, done: set[RowKey], repaired_bytes: int = 0):
        self.path = path
        self.done = done
        self.repaired_bytes = repaired_bytes
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND)

    @classmethod
    def create(cls, path: Path) -> ResultsFile:
        """A new file holding only the header (an existing one is replaced)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(HEADER)
        return cls(path, set())

    @classmethod
    def resume(cls, path: Path) -> ResultsFile:
        """The file at ``path`` checked and with a partial last line dropped, or a new one."""
        if path.exists() and not path.is_file():
            raise NoisylinkError(f"{path}: not a file")
        if not path.exists() or path.stat().st_size == 0:
            return cls.create(path)
        data = _read_bytes(path)
        text = _complete_lines(path, data)
        rows = parse_rows(path, text)  # before anything is changed
        complete = len(text.encode())
        if complete < len(data):
            with path.open("r+b") as handle:
                handle.truncate(complete)
        return cls(path, {row_key(row) for _, row in rows}, len(data) - complete)

    def append(self, row: ResultRow) -> None:
        os.write(self._fd, _line(row.csv_fields()))
        self.done.add(row_key(row))

    def close(self) -> None:
        os.close(self._fd)

    def __enter__(self) -> ResultsFile:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
