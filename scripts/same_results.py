"""Check that a change leaves every built-in scenario's results as they were.

    python scripts/same_results.py record DIR      # run every built-in scenario into DIR/<name>/
    python scripts/same_results.py compare OLD NEW # same rows, same values, timing columns aside

Record once on the commit before a change and once after it, then compare. Rows are matched
by (cell_id, image, trial); every column but the timing ones must agree exactly as written.
Exit status 0 when all scenarios agree, 1 otherwise (each difference is listed).
"""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

TIMING_COLUMNS = {"encode_s", "ecc_decode_s", "decode_s"}
KEY = ("cell_id", "image", "trial")


def builtin_scenarios() -> list[str]:
    from importlib import resources

    folder = resources.files("noisylink.scenarios.builtin")
    names = (p.name for p in folder.iterdir())
    return sorted(name.removesuffix(".yaml") for name in names if name.endswith(".yaml"))


def record(out: Path) -> int:
    failed = 0
    for name in builtin_scenarios():
        run_dir = out / name
        command = [sys.executable, "-m", "noisylink", "run", name, "--out", str(run_dir), "--force"]
        print(f"{name}: running", flush=True)
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            failed += 1
            print(f"{name}: exit {done.returncode}\n{done.stderr[-2000:]}", flush=True)
    return 1 if failed else 0


def read(path: Path) -> tuple[list[str], dict[tuple[str, ...], dict[str, str]]]:
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        rows = {tuple(row[k] for k in KEY): row for row in reader}
        return list(reader.fieldnames or []), rows


def compare(old: Path, new: Path) -> int:
    problems = 0
    names = sorted(p.name for p in old.iterdir() if (p / "results.csv").exists())
    for name in names:
        if not (new / name / "results.csv").exists():
            print(f"{name}: no results in {new}")
            problems += 1
            continue
        old_columns, old_rows = read(old / name / "results.csv")
        new_columns, new_rows = read(new / name / "results.csv")
        diffs: list[str] = []
        if old_columns != new_columns:
            diffs.append(f"columns differ: {old_columns} != {new_columns}")
        if old_rows.keys() != new_rows.keys():
            diffs.append(f"row keys differ: {sorted(old_rows.keys() ^ new_rows.keys())[:5]}")
        for key in sorted(old_rows.keys() & new_rows.keys()):
            for column, value in old_rows[key].items():
                if column in TIMING_COLUMNS:
                    continue
                if new_rows[key].get(column) != value:
                    diffs.append(f"{key} {column}: {value!r} != {new_rows[key].get(column)!r}")
        verdict = "identical" if not diffs else f"{len(diffs)} differences"
        print(f"{name}: {len(old_rows)} rows, {verdict}")
        for line in diffs[:20]:
            print(f"  {line}")
        problems += bool(diffs)
    return 1 if problems else 0


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "record":
        return record(Path(argv[1]))
    if len(argv) == 3 and argv[0] == "compare":
        return compare(Path(argv[1]), Path(argv[2]))
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
