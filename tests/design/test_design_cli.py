"""``noisylink design`` on the command line (``typer.testing.CliRunner`` on ``noisylink.cli.app``).

Claims: a bad design exits 2 with one line on stderr naming the problem and writes no
results; a small design exits 0 and writes design.csv (``DESIGN_COLUMNS``, one row per channel
point), design.json (link runs within the full grid), design.png and results.csv (rows of the
design only); a rerun runs nothing and writes the same design.csv, byte for byte, also after
results.csv lost half its rows; two fresh folders get the same answer; a folder of another
design is refused in one line unless ``--fresh``, which sets the old files aside; ``noisylink
plot`` works on a design's folder.
"""

from __future__ import annotations

import copy
import csv
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import Result
from typer.testing import CliRunner

from noisylink.cli import app
from noisylink.design.run import DESIGN_COLUMNS
from noisylink.results.file import read_results

SMALL: dict[str, Any] = {
    "name": "small-design",
    "images": {"source": "samples", "size": 48, "limit": 2},
    "channel": {"name": "bsc", "ber": [0.0, 0.0005]},
    "budget": {"bpp_channel": 3.0},
    "objective": {"metric": "psnr", "statistic": "mean", "max_corruption": 0.5},
    "candidates": {
        "codec": [{"name": "jpeg"}, {"name": "webp"}],
        "ecc": [{"name": "none"}, {"name": "rs", "k": 223}],
    },
    "frames": {"payload_bytes": 256, "header": "ideal"},
    "trials": {"min": 2, "max": 4},
    "seed": 1,
}
CHANNEL_POINTS = [0.0, 0.0005]


def invoke(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def design(path: Path, out: Path, *extra: str) -> Result:
    return invoke("design", str(path), "--out", str(out), "--workers", "1", *extra)


def write(path: Path, data: object) -> Path:
    path.write_text(yaml.safe_dump(data))
    return path


def assert_one_line_exit_2(result: Result, *needles: str) -> None:
    assert result.exit_code == 2, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert all(needle in lines[0] for needle in needles), (needles, lines[0])
    assert "Traceback" not in result.output


def changed(edit: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    data = copy.deepcopy(SMALL)
    edit(data)
    return data


def _no_fit(data: dict[str, Any]) -> None:
    data["budget"]["bpp_channel"] = 0.1


def _bogus_knob(data: dict[str, Any]) -> None:
    data["candidates"]["codec"][0] = {"name": "jpeg", "knob": "bogus"}


def _no_channel_points(data: dict[str, Any]) -> None:
    data["channel"] = {"name": "awgn", "esn0_db": []}
    data["candidates"]["modulation"] = [{"name": "qpsk"}]


def _unknown_codec(data: dict[str, Any]) -> None:
    data["candidates"]["codec"].append({"name": "nosuch"})


def _trials_reversed(data: dict[str, Any]) -> None:
    data["trials"] = {"min": 8, "max": 4}


def _two_channel_lists(data: dict[str, Any]) -> None:
    data["channel"] = {"name": "gilbert_elliott", "mean_ber": [1e-4, 1e-3],
                       "burst_length": [10, 50]}


def _ms_ssim_small(data: dict[str, Any]) -> None:
    data["objective"]["metric"] = "ms_ssim"
    data["images"]["size"] = 64


BAD = [
    pytest.param(_no_fit, ("budget.bpp_channel", "no candidate fits 0.1"), id="nothing-fits"),
    pytest.param(_bogus_knob, ("candidates.codec[0].knob", "bogus", "quality"), id="knob"),
    pytest.param(_no_channel_points, ("channel.esn0_db", "empty"), id="no-channel-points"),
    pytest.param(_unknown_codec, ("candidates.codec[2]", "nosuch"), id="unknown-codec"),
    pytest.param(_trials_reversed, ("trials", "min (8) is more than max (4)"), id="trials"),
    pytest.param(_ms_ssim_small, ("objective.metric", "ms_ssim", "161"), id="ms-ssim-64px"),
    pytest.param(_two_channel_lists, ("channel", "mean_ber", "burst_length", "are lists"),
                 id="two-channel-lists"),
]


@pytest.mark.parametrize(("edit", "needles"), BAD)
def test_a_bad_design_is_one_line_exit_2_and_writes_no_results(
    tmp_path: Path, edit: Callable[[dict[str, Any]], None], needles: tuple[str, ...]
) -> None:
    path = write(tmp_path / "bad.yaml", changed(edit))
    out = tmp_path / "out"
    assert_one_line_exit_2(design(path, out), "bad.yaml", *needles)
    assert not (out / "results.csv").exists()


def test_a_missing_design_file_is_one_line_exit_2(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert_one_line_exit_2(design(tmp_path / "none.yaml", out), "none.yaml")
    assert not (out / "results.csv").exists()


def test_a_design_that_is_not_a_mapping_is_one_line_exit_2(tmp_path: Path) -> None:
    path = write(tmp_path / "list.yaml", ["just", "a", "list"])
    out = tmp_path / "out"
    assert_one_line_exit_2(design(path, out), "list.yaml", "mapping")
    assert not (out / "results.csv").exists()


# --- a small design, end to end ---------------------------------------------------------------


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Result]:
    """The small design's file, and a folder it ran into (never changed by the tests)."""
    folder = tmp_path_factory.mktemp("design")
    path = write(folder / "small.yaml", SMALL)
    out = folder / "out"
    return path, out, design(path, out)


def copied(finished: tuple[Path, Path, Result], tmp_path: Path) -> Path:
    _, out, result = finished
    assert result.exit_code == 0, result.output
    shutil.copytree(out, tmp_path / "out")
    return tmp_path / "out"


def answers(out: Path) -> list[dict[str, str]]:
    with (out / "design.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_a_small_design_writes_its_answer_the_figure_and_every_row(
    finished: tuple[Path, Path, Result]
) -> None:
    _, out, result = finished
    assert result.exit_code == 0, result.output
    header = (out / "design.csv").read_text().splitlines()[0]
    assert tuple(header.split(",")) == DESIGN_COLUMNS
    rows = answers(out)
    assert [float(row["channel_value"]) for row in rows] == CHANNEL_POINTS
    assert all(row["channel_param"] == "ber" and row["metric"] == "psnr" for row in rows)
    winner = rows[0]  # ber 0: every configuration decodes
    assert winner["label"] and float(winner["bpp_channel"]) <= 3.0
    # a winner always rests on all its trials; the runner-up is another codec or ECC
    assert all(int(row["trials"]) == 4 for row in rows if row["label"])
    for row in rows:
        if row["runner_up"]:
            assert row["runner_up"].split(" | ")[:2] != row["label"].split(" | ")[:2]
    assert (out / "design.png").stat().st_size > 0
    manifest = json.loads((out / "design.json").read_text())
    assert manifest["complete"] is True
    assert manifest["full_grid_runs"] == 4 * 2 * 2 * 4  # configurations x points x images x max
    # racing added trials somewhere (so the resume tests cover a second round), not everywhere
    assert 4 * 2 * 2 * 2 < manifest["link_runs"] < manifest["full_grid_runs"]
    assert manifest["rounds"] >= 2
    results = read_results(out / "results.csv")
    assert len(results) == manifest["link_runs"] == manifest["rows_run"]
    assert {row.scenario for row in results} == {"small-design"}
    assert {row.channel_value for row in results} == set(CHANNEL_POINTS)
    labels = {c["label"] for c in manifest["configurations"]}
    assert {row["label"] for row in rows if row["label"]} <= labels


def test_a_rerun_runs_nothing_and_writes_the_same_answer(
    finished: tuple[Path, Path, Result], tmp_path: Path
) -> None:
    path, _, _ = finished
    out = copied(finished, tmp_path)
    before = {name: (out / name).read_bytes() for name in ("design.csv", "results.csv")}
    result = design(path, out)
    assert result.exit_code == 0, result.output
    assert json.loads((out / "design.json").read_text())["rows_run"] == 0
    assert (out / "design.csv").read_bytes() == before["design.csv"]
    assert (out / "results.csv").read_bytes() == before["results.csv"]


def test_plot_works_on_a_design_folder(
    finished: tuple[Path, Path, Result], tmp_path: Path
) -> None:
    out = copied(finished, tmp_path)
    result = invoke("plot", str(out))
    assert result.exit_code == 0, result.output
    assert list((out / "plots").glob("*.png"))


def test_a_folder_of_another_design_is_refused_in_one_line(
    finished: tuple[Path, Path, Result], tmp_path: Path
) -> None:
    out = copied(finished, tmp_path)
    before = (out / "results.csv").read_bytes()
    other = write(tmp_path / "other.yaml",
                  changed(lambda data: data["budget"].update(bpp_channel=2.5)))
    assert_one_line_exit_2(design(other, out), str(out), "another design", "--fresh")
    assert (out / "results.csv").read_bytes() == before


@pytest.mark.slow
def test_fresh_sets_the_other_designs_files_aside_and_runs(
    finished: tuple[Path, Path, Result], tmp_path: Path
) -> None:
    out = copied(finished, tmp_path)
    before = {name: (out / name).read_bytes() for name in ("design.csv", "results.csv")}
    other = write(tmp_path / "other.yaml",
                  changed(lambda data: data["budget"].update(bpp_channel=2.5)))
    result = design(other, out, "--fresh")
    assert result.exit_code == 0, result.output
    [aside] = list(out.glob("replaced-*"))
    assert "earlier results moved to" in result.stdout
    assert {name: (aside / name).read_bytes() for name in before} == before
    manifest = json.loads((out / "design.json").read_text())
    assert manifest["design"]["budget"]["bpp_channel"] == 2.5
    assert len(read_results(out / "results.csv")) == manifest["rows_run"] > 0
    assert all(float(row["bpp_channel"]) <= 2.5 for row in answers(out) if row["label"])


@pytest.mark.slow
def test_a_rerun_after_losing_half_the_rows_writes_the_same_answer(
    finished: tuple[Path, Path, Result], tmp_path: Path
) -> None:
    path, _, _ = finished
    out = copied(finished, tmp_path)
    expected = (out / "design.csv").read_bytes()
    lines = (out / "results.csv").read_text().splitlines(keepends=True)
    kept = 1 + (len(lines) - 1) // 2
    (out / "results.csv").write_text("".join(lines[:kept]))
    (out / "design.csv").unlink()
    result = design(path, out)
    assert result.exit_code == 0, result.output
    assert json.loads((out / "design.json").read_text())["rows_run"] == len(lines) - kept
    assert (out / "design.csv").read_bytes() == expected


@pytest.mark.slow
def test_two_fresh_folders_get_the_same_answer(
    finished: tuple[Path, Path, Result], tmp_path: Path
) -> None:
    path, first, result = finished
    assert result.exit_code == 0, result.output
    again = design(path, tmp_path / "again")
    assert again.exit_code == 0, again.output
    assert (tmp_path / "again" / "design.csv").read_bytes() == (first / "design.csv").read_bytes()
    rows = {(r.cell_id, r.image, r.trial, r.psnr) for r in read_results(first / "results.csv")}
    assert {(r.cell_id, r.image, r.trial, r.psnr)
            for r in read_results(tmp_path / "again" / "results.csv")} == rows


@pytest.mark.slow
def test_the_ray_engine_gives_the_local_answer(
    finished: tuple[Path, Path, Result], tmp_path: Path
) -> None:
    ray = pytest.importorskip("ray")
    path, out, result = finished
    assert result.exit_code == 0, result.output
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        on_ray = invoke("design", str(path), "--out", str(tmp_path / "ray"), "--engine", "ray")
    finally:
        ray.shutdown()
    assert on_ray.exit_code == 0, on_ray.output
    assert (tmp_path / "ray" / "design.csv").read_bytes() == (out / "design.csv").read_bytes()
