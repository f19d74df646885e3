"""The command line: runs, lists, validates, and fails in one line with exit code 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import Result
from typer.testing import CliRunner

from noisylink.cli import app

TINY = {
    "name": "tiny",
    "images": {"source": "samples", "resize": 48, "size": 48, "limit": 1},
    "codec": {"name": "jpeg", "quality": 60},
    "channel": {"name": "bsc", "ber": [0.0, 1e-3]},
}


def noisylink(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "noisylink", *args], cwd=cwd, capture_output=True, text=True,
        timeout=300,
    )


@pytest.mark.slow
def test_run_writes_results_and_prints_summary(tmp_path: Path) -> None:
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(TINY))
    result = noisylink("run", str(path), "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "tiny" in result.stdout and "corrupted" in result.stdout
    lines = (tmp_path / "out" / "results.csv").read_text().splitlines()
    assert len(lines) == 1 + 2
    assert (tmp_path / "out" / "manifest.json").exists()


def test_scenarios_lists_builtins(tmp_path: Path) -> None:
    result = noisylink("scenarios", cwd=tmp_path)
    assert result.returncode == 0
    assert "quickstart" in result.stdout


@pytest.mark.slow
@pytest.mark.parametrize(("content", "needle"), [
    ("name: x\ncodec: {name: jpeg\n", "invalid YAML"),
    ("name: x\ncodec: {name: jpeg}\nchannel: {name: bsc, ber: 2.0}\n", "channel"),
    ("name: x\ncodec: {name: jpeg, quality: 500}\nchannel: {name: bsc}\n", "codec.quality"),
    ("name: x\ncodec: {name: jpeg}\nchannel: {name: bsc}\ntrials: many\n", "trials"),
    ("- just\n- a list\n", "mapping"),
])
def test_malformed_scenario_is_one_line_exit_2(tmp_path: Path, content: str, needle: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(content)
    for command in ("run", "check"):
        result = noisylink(command, str(path), cwd=tmp_path)
        assert result.returncode == 2
        assert result.stdout == ""
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert "bad.yaml" in lines[0] and needle in lines[0]
        assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_missing_scenario_is_one_line_exit_2(tmp_path: Path) -> None:
    result = noisylink("run", "nonexistent", cwd=tmp_path)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1


# --- output folders (issue 12) ---------------------------------------------------------------


def invoke(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def assert_one_line_exit_2(result: Result, *needles: str) -> None:
    assert result.exit_code == 2, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert all(needle in lines[0] for needle in needles), (needles, lines[0])
    assert "Traceback" not in result.output


def test_run_refuses_an_out_folder_that_holds_results_unless_force(tmp_path: Path) -> None:
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(TINY))
    out = tmp_path / "out"
    assert invoke("run", str(path), "--out", str(out)).exit_code == 0
    first = (out / "results.csv").read_text()
    (out / "results.csv").write_text(first.replace("tiny,", "kept,"))
    for transport in ("inprocess", "mqtt"):  # mqtt: refused before any process starts
        refused = invoke("run", str(path), "--out", str(out), "--transport", transport)
        assert_one_line_exit_2(refused, f"{out} already holds results", "--force")
    assert "kept," in (out / "results.csv").read_text()
    forced = invoke("run", str(path), "--out", str(out), "--force")
    assert forced.exit_code == 0, forced.output
    assert len((out / "results.csv").read_text().splitlines()) == 1 + 2
    assert "kept," not in (out / "results.csv").read_text()


def small_npz(path: Path, train: int = 0) -> Path:
    digits = np.zeros((train, 28, 28), np.uint8)
    np.savez_compressed(path, x_train=digits, y_train=np.zeros(train, np.uint8),
                        x_test=np.zeros((3, 28, 28), np.uint8), y_test=np.zeros(3, np.uint8))
    return path


def out_commands(tmp_path: Path, out: Path, command: str) -> list[str]:
    """``command`` (a command that writes) with ``out`` where it writes."""
    scenario = tmp_path / "tiny.yaml"
    scenario.write_text(yaml.safe_dump(TINY))
    if command == "export-digits":
        return ["export-digits", "--data", str(small_npz(tmp_path / "digits.npz")),
                "--out", str(out / "d.npz")]
    if command == "train-jscc":
        mnist = tmp_path / "mnist.npz"
        if not mnist.exists():
            small_npz(mnist, train=60_000)
        return ["train-jscc", "--method", "necst", "--eps", "0.1", "--data", str(mnist),
                "--out", str(out)]
    return {
        "run": ["run", str(scenario), "--out", str(out)],
        "sweep": ["sweep", str(scenario), "--out", str(out)],
        "train-prior --out": ["train-prior", "--data", str(tmp_path), "--out", str(out),
                              "--work-dir", str(tmp_path / "work")],
        "train-prior --work-dir": ["train-prior", "--data", str(tmp_path), "--out",
                                   str(tmp_path / "prior"), "--work-dir", str(out)],
        "rx": ["rx", str(scenario), "--broker", "mqtt://127.0.0.1:9", "--out", str(out)],
    }[command]


WRITERS = ["run", "sweep", "train-prior --out", "train-prior --work-dir",
           pytest.param("train-jscc", marks=pytest.mark.slow),  # writes 60 000 digits first
           "export-digits", "rx"]


@pytest.mark.parametrize("command", WRITERS)
def test_an_out_that_is_a_file_or_lies_under_one_is_one_line_exit_2(
    tmp_path: Path, command: str
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    for out, needle in ((blocker, "is a file"), (blocker / "sub", "lies under")):
        result = invoke(*out_commands(tmp_path, out, command))
        assert_one_line_exit_2(result, f"{out}: ", needle)
    assert blocker.read_text() == "not a folder"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
@pytest.mark.parametrize("command", WRITERS)
def test_an_unwritable_out_is_one_line_exit_2(tmp_path: Path, command: str) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        for out, needle in ((locked, "not writable"), (locked / "sub", "cannot create")):
            result = invoke(*out_commands(tmp_path, out, command))
            assert_one_line_exit_2(result, f"{out}: ", needle)
    finally:
        locked.chmod(0o755)


def test_a_train_prior_or_rx_that_fails_on_its_inputs_creates_no_out_folder(
    tmp_path: Path,
) -> None:
    prior = invoke("train-prior", "--data", str(tmp_path / "none"), "--out",
                   str(tmp_path / "prior"), "--work-dir", str(tmp_path / "work"))
    assert prior.exit_code == 2, prior.output
    receiver = invoke("rx", str(tmp_path / "none.yaml"), "--broker", "mqtt://127.0.0.1:9",
                      "--out", str(tmp_path / "rx"))
    assert receiver.exit_code == 2, receiver.output
    assert not (tmp_path / "prior").exists() and not (tmp_path / "rx").exists()
