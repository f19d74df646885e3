"""The results schema: one row definition, one file format, and the docs' column table."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pytest

from noisylink.errors import NoisylinkError
from noisylink.results.file import ResultsFile, read_results, read_rows
from noisylink.results.row import COLUMNS, INTEGER_COLUMNS, NUMBER_COLUMNS, ResultRow, columns_table

DOCS = Path(__file__).resolve().parents[1] / "docs" / "results.md"


def a_row(**values: object) -> ResultRow:
    fields: dict[str, object] = {}
    for item in dataclasses.fields(ResultRow):
        kind = {"str": "text", "int": 3, "float": 0.25, "bool": True}[str(item.type)]
        fields[item.name] = kind
    return ResultRow(**(fields | values))


def test_the_docs_column_table_is_the_one_the_schema_makes() -> None:
    assert columns_table() in DOCS.read_text()


def test_every_column_has_a_meaning_and_a_file_type() -> None:
    for item in dataclasses.fields(ResultRow):
        assert item.metadata["doc"].strip(), item.name
        assert str(item.type) in ("str", "int", "float", "bool"), item.name
    assert set(INTEGER_COLUMNS) | set(NUMBER_COLUMNS) < set(COLUMNS)


def test_a_row_reads_back_exactly_as_it_was_written(tmp_path: Path) -> None:
    path = tmp_path / "results.csv"
    rows = [a_row(trial=0, psnr=31.123456789012345, ms_ssim=math.nan, decoded=False,
                  decode_error='bad "header",\ntruncated'),
            a_row(trial=1, raw_ber=1e-300, codec_params='{"quality": 50}')]
    with ResultsFile.create(path) as results:
        for row in rows:
            results.append(row)
    back = read_results(path)
    assert back[0].psnr == rows[0].psnr and math.isnan(back[0].ms_ssim)
    assert back[0].decoded is False and back[0].decode_error == 'bad "header", truncated'
    assert back[1] == rows[1]
    assert list(read_rows(path)[0]) == list(COLUMNS)


def test_a_resumed_file_drops_a_partial_last_line_and_knows_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "results.csv"
    with ResultsFile.create(path) as results:
        results.append(a_row(trial=0))
    with path.open("a") as handle:
        handle.write("text,text,3,")  # a kill in the middle of a write
    assert len(read_rows(path)) == 1  # a reader leaves the partial line out
    with ResultsFile.resume(path) as results:
        assert results.repaired_bytes == len("text,text,3,")
        assert results.done == {("text", "text", "text", "text", "text", 0)}
        results.append(a_row(trial=1))
    assert [row.trial for row in read_results(path)] == [0, 1]


def test_create_replaces_an_earlier_file(tmp_path: Path) -> None:
    path = tmp_path / "results.csv"
    with ResultsFile.create(path) as results:
        results.append(a_row())
    ResultsFile.create(path).close()
    assert read_rows(path) == []


@pytest.mark.parametrize(("column", "text", "message"), [
    ("trial", "two", "column trial is not an integer: 'two'"),
    ("psnr", "lots", "column psnr is not a number: 'lots'"),
    ("decoded", "yes", "column decoded is not true/false: 'yes'"),
])
def test_a_bad_value_is_one_line_naming_the_line_and_column(
    tmp_path: Path, column: str, text: str, message: str
) -> None:
    path = tmp_path / "results.csv"
    with ResultsFile.create(path) as results:
        results.append(a_row())
    fields = a_row().csv_fields()
    fields[COLUMNS.index(column)] = text
    with path.open("a") as handle:
        handle.write(",".join(fields) + "\n")
    with pytest.raises(NoisylinkError) as info:
        read_rows(path)
    assert str(info.value) == f"{path}: line 3: {message}"


def test_a_file_with_other_columns_names_what_differs(tmp_path: Path) -> None:
    path = tmp_path / "results.csv"
    path.write_text(",".join(c for c in COLUMNS if c != "psnr") + ",extra\n")
    with pytest.raises(NoisylinkError, match="other columns, missing: psnr; unexpected: extra"):
        read_rows(path)
    with pytest.raises(NoisylinkError, match="other columns"):
        ResultsFile.resume(path)
    assert path.read_text().endswith(",extra\n")  # left as it was
