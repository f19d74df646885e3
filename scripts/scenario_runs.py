"""Running one measurement scenario from a script: the scenario written next to its results.

Shared by the resilience scripts (``jpeg_resilience.py``, ``jpeg2000_resilience.py``), which
run a scenario through ``noisylink run`` and then read its results file.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

SAMPLES = {"source": "samples", "resize": 128, "size": 128, "color": "rgb"}


def run_scenario(scenario: dict[str, Any], out: Path, trials: int | None,
                 samples: bool) -> Path:
    """Write ``scenario`` (with ``trials``, and the bundled samples if ``samples``) into
    ``out`` and run it there; the results file."""
    scenario = dict(scenario)
    if trials is not None:
        scenario["trials"] = trials
    if samples:
        scenario["images"] = SAMPLES
    out.mkdir(parents=True, exist_ok=True)
    path = out / "scenario.yaml"
    path.write_text(yaml.safe_dump(scenario, sort_keys=False))
    command = [sys.executable, "-m", "noisylink", "run", str(path), "--out", str(out / "run"),
               "--force"]
    subprocess.run(command, check=True)
    return out / "run" / "results.csv"
