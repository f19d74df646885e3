"""Suite-wide settings: no test depends on how fast the machine is (CI shares its cores).

Hypothesis gives no example a deadline, also in tests that set no settings of their own (its
default is 200 ms). Tests that guard against hangs wait minutes, not seconds; speed is
measured in ``benchmarks/``. ``tests/under_load.sh`` runs the suite on a busy machine.

Markers (declared in ``pyproject.toml``): ``slow`` marks end-to-end checks that the quick loop
``pytest -m "not slow"`` leaves out (plain ``pytest`` runs them). ``gpu`` marks tests that need
CUDA: they skip, with a reason, where ``torch.cuda.is_available()`` is false; ``pytest -m gpu``
on a GPU machine runs them. torch is imported only when a collected test has the ``gpu`` marker.
"""

from __future__ import annotations

import pytest
from hypothesis import settings

settings.register_profile("noisylink", deadline=None)
settings.load_profile("noisylink")

NO_CUDA = pytest.mark.skip(reason="needs CUDA: torch.cuda.is_available() is false here")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip the tests marked ``gpu`` where CUDA is not available."""
    gpu_items = [item for item in items if item.get_closest_marker("gpu") is not None]
    if not gpu_items:
        return
    import torch

    if torch.cuda.is_available():
        return
    for item in gpu_items:
        item.add_marker(NO_CUDA)
