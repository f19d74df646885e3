"""The command line: runs, lists, validates, and fails in one line with exit code 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

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


def test_missing_scenario_is_one_line_exit_2(tmp_path: Path) -> None:
    result = noisylink("run", "nonexistent", cwd=tmp_path)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
