"""The suite's markers do what ``tests/conftest.py`` and the README say.

A test marked ``gpu`` runs only where CUDA is available: on a CPU machine ``conftest.py`` skips
it with a reason (so this test passing anywhere means the skip works), and on a GPU machine
``pytest -m gpu`` runs it. Markers are declared in ``pyproject.toml``; ``--strict-markers``
makes a misspelt one an error.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


@pytest.mark.gpu
def test_a_gpu_test_runs_only_where_cuda_is_available() -> None:
    import torch

    assert torch.cuda.is_available()


def test_slow_and_gpu_are_declared_and_undeclared_markers_are_errors() -> None:
    options = tomllib.loads(PYPROJECT.read_text())["tool"]["pytest"]["ini_options"]
    declared = {line.split(":", 1)[0] for line in options["markers"]}
    assert {"slow", "gpu"} <= declared
    assert "--strict-markers" in options["addopts"].split()
