"""Which settings and which image a results row belongs to: the columns that identify it.

``cell_columns`` are the columns every row of a cell shares (its settings, ``cell_id``);
``setting`` and ``image_id`` identify the rest of what shaped a row's numbers, so a sweep can
tell a finished row from one made under other settings.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np

from noisylink import __version__
from noisylink.scenarios.grid import Cell
from noisylink.scenarios.schema import Scenario

# Scenario fields that are not part of a row's ``setting``: labels, how many trials (more
# trials only add rows), the device (results are meant not to depend on it), and the grid
# (each row's ``cell_id`` stands for its own cell's settings). Everything else counts, so a
# field added to the scenario later counts too.
NOT_IN_SETTING = frozenset(
    {"name", "description", "trials", "device", "codec", "ecc", "interleaver", "modulation",
     "channel"}
)


def _short_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def setting_id(scenario: Scenario) -> str:
    """16 hex digits identifying what, besides the cell and the image, shapes a row's numbers:
    the scenario's seed, image shaping and frames (everything but ``NOT_IN_SETTING`` and
    ``images.limit``, which only selects how many images) and the noisylink version."""
    settings = scenario.model_dump(mode="json", exclude=set(NOT_IN_SETTING))
    settings["images"].pop("limit", None)
    settings["noisylink"] = __version__
    return _short_hash(json.dumps(settings, sort_keys=True, separators=(",", ":")).encode())


def image_id(index: int, pixels: np.ndarray) -> str:
    """16 hex digits identifying an image as a run used it: its place in the scenario's image
    list (which keys its random streams) and its shaped pixels (shape and bytes)."""
    header = json.dumps([index, list(pixels.shape), str(pixels.dtype)]).encode()
    return _short_hash(header + np.ascontiguousarray(pixels).tobytes())


def identity_columns(scenario: Scenario, index: int, pixels: np.ndarray) -> dict[str, str]:
    """The ``setting`` and ``image_id`` columns of the rows of one image of a scenario."""
    return {"setting": setting_id(scenario), "image_id": image_id(index, pixels)}


def cell_columns(scenario_name: str, index: int, cell: Cell, ecc_rate: float) -> dict[str, Any]:
    """The columns every row of a cell shares."""
    return {
        "scenario": scenario_name,
        "cell": index,
        "cell_id": cell.id,
        "codec": cell.codec.name,
        "codec_label": cell.codec.label(),
        "codec_params": json.dumps(cell.codec.params(), sort_keys=True),
        "ecc": cell.ecc.label(),
        "ecc_params": json.dumps(cell.ecc.params(), sort_keys=True),
        "ecc_rate": ecc_rate,
        "interleaver": cell.interleaver.label(),
        "modulation": cell.modulation.label() if cell.modulation else "",
        "channel": cell.channel.name,
        "channel_params": json.dumps(cell.channel.params(), sort_keys=True),
        "channel_param": cell.channel_param,
        "channel_value": cell.channel_value,
    }
