"""Sweeps: studies, resumable results, kill -9 and resume, engines agree, one-line errors."""

from __future__ import annotations

import csv
import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import Result
from PIL import Image
from typer.testing import CliRunner

import noisylink.results.identity as identity_module
from noisylink.cli import app
from noisylink.errors import NoisylinkError, ScenarioError
from noisylink.link.runner import run_scenario
from noisylink.results.file import ResultsFile, read_rows
from noisylink.results.identity import setting_id
from noisylink.results.row import (
    COLUMNS,
    INTEGER_COLUMNS,
    NUMBER_COLUMNS,
    TIMING_COLUMNS,
    ResultRow,
)
from noisylink.scenarios.loading import parse_scenario
from noisylink.sweeps.study import Scale, builtin_study_names, load_study
from noisylink.sweeps.sweep import run_sweep

SMALL = {
    "name": "small",
    "seed": 4,
    "images": {"source": "samples", "resize": 48, "size": 48, "limit": 2},
    "codec": {"name": "jpeg", "quality": [40, 70]},
    "ecc": [{"name": "none"}, {"name": "rs", "k": 223}],
    "channel": {"name": "bsc", "ber": [0.0, 1.0e-3]},
    "trials": 2,
}


def write_study(folder: Path, scenarios: list, **extra: object) -> Path:
    path = folder / "study.yaml"
    path.write_text(yaml.safe_dump({"name": "study", "scenarios": scenarios, **extra}))
    return path


def comparable(rows: list[dict[str, str]]) -> dict[tuple[str, ...], dict[str, str]]:
    """Rows by (scenario, cell, image, trial), timing columns left out."""
    return {
        (r["scenario"], r["cell_id"], r["image"], r["trial"]):
        {k: v for k, v in r.items() if k not in TIMING_COLUMNS}
        for r in rows
    }


@pytest.mark.slow
def test_sweep_rows_equal_the_in_process_run_and_a_rerun_adds_nothing(tmp_path: Path) -> None:
    study = load_study(str(write_study(tmp_path, [SMALL])))
    outcome = run_sweep(study, tmp_path / "sweep", workers=2)
    assert not outcome.failures and outcome.rows_run == outcome.rows_total == 2 * 2 * 2 * 2 * 2
    run = run_scenario(study.scenarios[0], tmp_path / "run")
    swept = read_rows(outcome.results_path)
    assert {r["setting"] for r in swept} == {setting_id(study.scenarios[0])}
    assert all(len(r["image_id"]) == 16 for r in swept)
    assert comparable(swept) == comparable(read_rows(run.results_path))  # identity included
    again = run_sweep(study, tmp_path / "sweep", workers=2)
    assert again.rows_run == 0 and again.rows_skipped == outcome.rows_total
    assert read_rows(outcome.results_path) == swept
    # example reconstructions for the plots: one per cell, and the source
    examples = tmp_path / "sweep" / "examples" / "small"
    assert (examples / "source.png").exists()
    assert len(list(examples.glob("*.png"))) == 1 + 8


@pytest.mark.slow
def test_scale_grows_a_finished_sweep_without_recomputing(tmp_path: Path) -> None:
    path = write_study(tmp_path, [SMALL], scale={"images": 1, "trials": 1})
    first = run_sweep(load_study(str(path)), tmp_path / "out", workers=1)
    assert first.rows_total == 8
    bigger = run_sweep(load_study(str(path), Scale(images=2, trials=2)), tmp_path / "out",
                       workers=1)
    assert bigger.rows_total == 32 and bigger.rows_skipped == 8 and bigger.rows_run == 24
    rows = read_rows(tmp_path / "out" / "results.csv")
    assert len(comparable(rows)) == len(rows) == 32


def full_row(**values: object) -> dict[str, object]:
    """A row with every column filled as the link fills it."""
    row: dict[str, object] = {column: "x" for column in COLUMNS}
    row |= {column: 1 for column in INTEGER_COLUMNS}
    row |= {column: 0.5 for column in NUMBER_COLUMNS}
    return row | {"decoded": True, "ms_ssim": float("nan")} | values


def test_store_drops_a_partial_last_line_and_knows_finished_rows(tmp_path: Path) -> None:
    path = tmp_path / "results.csv"
    with ResultsFile.resume(path) as store:
        for trial in range(3):
            store.append(ResultRow(**full_row(scenario="s", setting="f", cell_id="abc", image="x",
                                              image_id="i", trial=trial,
                                              decode_error="two\nlines")))
    with path.open("a") as handle:
        handle.write("s,0,abc,jpeg,")  # what a kill in the middle of a write leaves
    store = ResultsFile.resume(path)
    store.close()
    assert store.repaired_bytes == len("s,0,abc,jpeg,")
    assert store.done == {("s", "f", "abc", "x", "i", trial) for trial in range(3)}
    rows = read_rows(path)
    assert len(rows) == 3 and rows[0]["decode_error"] == "two lines"
    assert list(rows[0]) == list(COLUMNS)


def test_store_refuses_a_file_with_other_columns(tmp_path: Path) -> None:
    path = tmp_path / "results.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(NoisylinkError, match="other columns"):
        ResultsFile.resume(path)


# A study slow enough to be killed in the middle: commpy's RS decoder on every frame.
SLOW = SMALL | {
    "name": "slow",
    "images": {"source": "samples", "resize": 96, "size": 96, "limit": 3},
    "codec": {"name": "jpeg", "quality": [60, 90]},
    "ecc": {"name": "rs", "k": 223, "backend": "reference"},
    "channel": {"name": "bsc", "ber": [1.0e-4, 1.0e-3]},
    "trials": 3,
}


@pytest.mark.slow
def test_kill_9_mid_sweep_then_resume_gives_exactly_the_expected_rows(tmp_path: Path) -> None:
    study = write_study(tmp_path, [SLOW])
    out = tmp_path / "out"
    command = [sys.executable, "-m", "noisylink", "sweep", str(study), "--out", str(out),
               "--workers", "2"]
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    results = out / "results.csv"
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if results.exists() and len(results.read_text().splitlines()) > 1 + 5:
            break
        time.sleep(0.02)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    killed_rows = len(read_rows(results))
    assert 5 <= killed_rows < 36, "the kill should land mid-sweep"
    time.sleep(0.5)  # workers die with the sweep process (they must not write after it)
    assert len(read_rows(results)) == killed_rows

    resumed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert f"{killed_rows} already done" in resumed.stdout
    rows = read_rows(results)
    keys = [(r["scenario"], r["cell_id"], r["image"], r["trial"]) for r in rows]
    assert len(keys) == len(set(keys)) == 2 * 2 * 3 * 3
    reference = run_scenario(load_study(str(study)).scenarios[0], tmp_path / "reference")
    assert comparable(rows) == comparable(read_rows(reference.results_path))


@pytest.mark.slow
def test_a_failing_cell_is_reported_and_the_others_finish(tmp_path: Path) -> None:
    broken = SMALL | {"codec": [{"name": "jpeg", "quality": 50}, {"name": "jpeg", "bpp": 0.01}]}
    outcome = run_sweep(load_study(str(write_study(tmp_path, [broken]))), tmp_path / "out",
                        workers=2)
    assert len(outcome.failures) == 4  # the bpp=0.01 cells: no JPEG fits
    assert all("bpp=0.01" in f.message for f in outcome.failures)
    rows = read_rows(outcome.results_path)
    assert len(rows) == 16 and {r["codec_params"] for r in rows} == {'{"quality": 50}'}


@pytest.mark.slow
def test_study_errors_are_one_line_naming_the_file(tmp_path: Path) -> None:
    bad = write_study(tmp_path, [SMALL | {"channel": {"name": "bsc", "ber": "high"}}])
    with pytest.raises(ScenarioError) as info:
        load_study(str(bad))
    assert str(bad) in str(info.value) and "\n" not in str(info.value)
    twice = write_study(tmp_path, [SMALL, SMALL])
    with pytest.raises(ScenarioError, match="must differ"):
        load_study(str(twice))
    (tmp_path / "typo.yaml").write_text("name: s\nscenarios: []\n")
    with pytest.raises(ScenarioError, match="scenarios"):
        load_study(str(tmp_path / "typo.yaml"))
    result = subprocess.run(
        [sys.executable, "-m", "noisylink", "sweep", str(bad), "--out", str(tmp_path / "o")],
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and str(bad) in lines[0]


def test_study_paths_are_relative_to_the_study_and_builtins_resolve(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "one.yaml").write_text(yaml.safe_dump(SMALL))
    study = load_study(str(write_study(tmp_path, ["sub/one.yaml", "quickstart"],
                                       scale={"images": 1})))
    assert [s.name for s in study.scenarios] == ["small", "quickstart"]
    assert all(s.images.limit == 1 for s in study.scenarios)
    names = ("ecc-tradeoff", "bitflip-robustness", "resilience", "seed-figure", "seed-figure-ecc")
    assert set(names) <= set(builtin_study_names())
    for name in names:
        assert load_study(name).scenarios
    one = load_study("quickstart", Scale(trials=3, size=32))
    assert one.scenarios[0].trials == 3 and one.scenarios[0].images.size == 32


def test_a_scale_folder_runs_every_scenario_on_that_folder_s_pictures(tmp_path: Path) -> None:
    study = load_study("bitflip-robustness", Scale(folder=tmp_path, images=3))
    images = study.scenarios[0].images
    assert (images.source, images.path, images.limit) == ("folder", tmp_path, 3)
    assert (images.resize, images.size, images.color) == (128, 128, "rgb")  # shaping kept


@pytest.mark.slow
def test_ray_and_local_engines_give_the_same_rows(tmp_path: Path) -> None:
    ray = pytest.importorskip("ray")
    study = load_study(str(write_study(tmp_path, [SMALL | {"trials": 1}])))
    local = run_sweep(study, tmp_path / "local", workers=2)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        on_ray = run_sweep(study, tmp_path / "ray", engine="ray")
    finally:
        ray.shutdown()
    assert not on_ray.failures and on_ray.rows_run == local.rows_run == 16
    assert comparable(read_rows(on_ray.results_path)) == comparable(
        read_rows(local.results_path))


@pytest.mark.slow
def test_sweep_and_plot_commands(tmp_path: Path) -> None:
    study = write_study(tmp_path, [SMALL | {"trials": 1}])
    out = tmp_path / "out"
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    swept = subprocess.run(
        [sys.executable, "-m", "noisylink", "sweep", str(study), "--out", str(out),
         "--workers", "1"], capture_output=True, text=True, timeout=300, env=env,
    )
    assert swept.returncode == 0, swept.stderr
    assert "16 rows run, 0 already done, 16 in all" in swept.stdout
    assert "cells 8/8" in swept.stderr  # the one progress bar: rows, cells, time left
    plotted = subprocess.run([sys.executable, "-m", "noisylink", "plot", str(out)],
                             capture_output=True, text=True, timeout=300, env=env)
    assert plotted.returncode == 0, plotted.stderr
    names = sorted(Path(line).name for line in plotted.stdout.split())
    assert names == ["small-corruption-vs-ber.png", "small-examples.png",
                     "small-quality-vs-bandwidth.png", "small-quality-vs-ber.png"]
    assert all((out / "plots" / name).stat().st_size > 10_000 for name in names)
    missing = subprocess.run([sys.executable, "-m", "noisylink", "plot", str(tmp_path / "x")],
                             capture_output=True, text=True, timeout=300, env=env)
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1


# --- a changed study never reuses old rows (issue 12) -----------------------------------------

TINY = {
    "name": "tiny",
    "seed": 1,
    "images": {"source": "samples", "resize": 48, "size": 48, "limit": 1},
    "codec": {"name": "jpeg", "quality": 60},
    "channel": {"name": "bsc", "ber": [0.0, 1.0e-3]},
}


def sweep_cli(*args: str) -> Result:
    return CliRunner().invoke(app, ["sweep", *args, "--workers", "1"])


@pytest.mark.slow
def test_a_changed_study_is_refused_in_one_line_and_its_old_rows_stay(tmp_path: Path) -> None:
    out = tmp_path / "s"
    first = run_sweep(load_study(str(write_study(tmp_path, [TINY]))), out, workers=1)
    assert first.rows_run == 2
    before = (out / "results.csv").read_bytes()
    changes = {
        "seed": TINY | {"seed": 99},
        "images.size": TINY | {"images": TINY["images"] | {"size": 40}},
        "frames.payload_bytes": TINY | {"frames": {"payload_bytes": 100}},
        "frames.header": TINY | {"frames": {"header": "inband"}},
    }
    for field, changed in changes.items():
        result = sweep_cli(str(write_study(tmp_path, [changed])), "--out", str(out))
        assert result.exit_code == 2, (field, result.output)
        assert result.stdout == ""
        lines = result.stderr.splitlines()
        assert len(lines) == 1, result.stderr
        assert lines[0].startswith(f"error: {out} holds results of a different study")
        assert f"scenario tiny: changed {field}" in lines[0] and "--fresh" in lines[0]
    scaled = sweep_cli(str(write_study(tmp_path, [TINY])), "--out", str(out), "--size", "200")
    assert scaled.exit_code == 2 and "different study" in scaled.stderr
    assert (out / "results.csv").read_bytes() == before


@pytest.mark.slow
def test_rows_of_another_noisylink_version_are_not_reused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    study = load_study(str(write_study(tmp_path, [TINY])))
    run_sweep(study, tmp_path / "s", workers=1)
    monkeypatch.setattr(identity_module, "__version__", "99.0")
    with pytest.raises(NoisylinkError, match="different study"):
        run_sweep(study, tmp_path / "s", workers=1)


def test_the_setting_covers_what_changes_numbers_and_not_what_only_adds_rows() -> None:
    base = parse_scenario(TINY, "t")
    same = [
        TINY | {"name": "other", "description": "words", "trials": 5, "device": "cpu"},
        TINY | {"images": TINY["images"] | {"limit": 3}},
        TINY | {"codec": {"name": "jpeg", "quality": [60, 70]}},  # grid: cell_id tells
    ]
    for data in same:
        assert setting_id(parse_scenario(data, "t")) == setting_id(base), data
    other = [
        TINY | {"seed": 2},
        TINY | {"images": TINY["images"] | {"color": "gray"}},
        TINY | {"images": TINY["images"] | {"resize": 64}},
        TINY | {"frames": {"on_crc_fail": "drop"}},
    ]
    for data in other:
        assert setting_id(parse_scenario(data, "t")) != setting_id(base), data


@pytest.mark.slow
def test_a_changed_picture_of_the_same_name_is_refused(tmp_path: Path) -> None:
    pictures = tmp_path / "pictures"
    pictures.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (48, 48, 3), dtype=np.uint8)).save(pictures / "a.png")
    scenario = TINY | {"images": {"source": "folder", "path": str(pictures)}}
    study = load_study(str(write_study(tmp_path, [scenario])))
    run_sweep(study, tmp_path / "s", workers=1)
    Image.fromarray(rng.integers(0, 256, (48, 48, 3), dtype=np.uint8)).save(pictures / "a.png")
    with pytest.raises(NoisylinkError, match=r"image a\.png is another picture"):
        run_sweep(study, tmp_path / "s", workers=1)


@pytest.mark.slow
def test_fresh_moves_old_results_aside_and_starts_over(tmp_path: Path) -> None:
    out = tmp_path / "s"
    run_sweep(load_study(str(write_study(tmp_path, [TINY]))), out, workers=1)
    old = (out / "results.csv").read_text()
    changed = write_study(tmp_path, [TINY | {"seed": 99}])
    result = sweep_cli(str(changed), "--out", str(out), "--fresh")
    assert result.exit_code == 0, result.output
    assert "2 rows run, 0 already done" in result.stdout
    (aside,) = out.glob("replaced-*")
    assert (aside / "results.csv").read_text() == old and (aside / "sweep.json").exists()
    rows = read_rows(out / "results.csv")
    assert len(rows) == 2
    assert {r["setting"] for r in rows} == {setting_id(load_study(str(changed)).scenarios[0])}


def damaged(line: str, kind: str) -> bytes:
    """A results line as a disk fault or a careless edit leaves it."""
    fields = next(csv.reader([line]))
    if kind == "not UTF-8":
        return line.encode()[:40] + b"\xff" + line.encode()[40:]
    if kind == "short row":
        fields = fields[:10]
    elif kind == "bad integer":
        fields[COLUMNS.index("trial")] = "abc"
    else:
        fields[COLUMNS.index("psnr")] = "lots"
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="").writerow(fields)
    return buffer.getvalue().encode()


CORRUPTIONS = {
    "not UTF-8": "line 3: not UTF-8 text",
    "short row": f"line 3: 10 fields, the header has {len(COLUMNS)}",
    "bad integer": "line 3: column trial is not an integer: 'abc'",
    "bad number": "line 3: column psnr is not a number: 'lots'",
}


@pytest.mark.slow
@pytest.mark.parametrize("kind", list(CORRUPTIONS))
def test_a_corrupted_results_file_is_one_line_naming_file_and_line(
    tmp_path: Path, kind: str
) -> None:
    study = write_study(tmp_path, [TINY])
    out = tmp_path / "s"
    run_sweep(load_study(str(study)), out, workers=1)
    path = out / "results.csv"
    header, first, second = path.read_text().splitlines()
    data = f"{header}\n{first}\n".encode() + damaged(second, kind) + b"\n"
    path.write_bytes(data)
    with pytest.raises(NoisylinkError) as info:
        ResultsFile.resume(path)
    assert str(info.value) == f"{path}: {CORRUPTIONS[kind]}"
    assert path.read_bytes() == data  # left as it was
    result = sweep_cli(str(study), "--out", str(out))
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr == f"error: {path}: {CORRUPTIONS[kind]}\n"


def test_the_resilience_study_compares_robust_turbo_ddcm_at_equal_channel_bits() -> None:
    """Within each channel, every Robust Turbo-DDCM configuration spends the bits of the
    reference (M = 20 unprotected on the BSC, M = 20 under LDPC 1/2 on AWGN) within 2 %: the
    sizes follow from M, T and K, so this needs no encode."""
    from noisylink.codecs import CODECS
    from noisylink.link.chain import LinkChain
    from noisylink.scenarios import expand

    spent: dict[str, dict[str, int]] = {"rcc-bsc": {}, "rcc-awgn": {}}
    for scenario in load_study("resilience").scenarios:
        group = scenario.name.rsplit("-", 1)[0]
        if group not in spent:
            continue
        side = scenario.images.size
        assert side == 128
        cells = expand(scenario)
        for cell in cells:
            if cell.channel != cells[0].channel:
                continue
            payload = CODECS.build(cell.codec).payload_bytes(side, side, 3)
            assert payload is not None
            bits = LinkChain(cell, scenario.frames).stream_channel_bits(payload)
            spent[group][f"{cell.codec.label()} | {cell.ecc.label()}"] = bits
    assert len(spent["rcc-bsc"]) == 9 and len(spent["rcc-awgn"]) == 10
    for group, reference in (("rcc-bsc", "robust-turbo-ddcm(M=20) | none"),
                             ("rcc-awgn", "robust-turbo-ddcm(M=20) | ldpc(n=1944,rate=1/2,"
                                          "iterations=20,method=sum-product,shortened=True)")):
        budget = spent[group][reference]
        for label, bits in spent[group].items():
            assert abs(bits / budget - 1) <= 0.02, (label, bits, budget)
