"""Hyperprior models on disk: one folder per rate point, ``quality-K`` (1 = lowest rate), or
the bundled ones, ``hyperprior-qK`` entries of ``noisylink.weights``.

A model folder holds ``model.safetensors`` (fp16 or fp32) and ``config.json``
(``{"shape": {"N": .., "M": ..}, "lambda": .., ...}``). The shape is checked before anything is
allocated and the safetensors header against a meta-device model (``noisylink.safeload``);
any problem is one ``LinkError`` line naming the file.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from noisylink.errors import LinkError

if TYPE_CHECKING:
    from noisylink.codecs.learned.model import HyperpriorModel

BUNDLED_PREFIX = "hyperprior-q"
"""The bundled rate points are the ``noisylink.weights`` entries ``hyperprior-q1``, ``-q2``, ..."""


def _quality_folders(model: str) -> dict[int, Path]:
    """Every rate point ``model`` names, by quality: the bundled entries or ``quality-K``."""
    if model == "bundled":
        from noisylink.weights import BUNDLED

        return {int(name.removeprefix(BUNDLED_PREFIX)): entry.folder
                for name, entry in BUNDLED.items() if name.startswith(BUNDLED_PREFIX)}
    root = Path(model)
    found = {}
    for folder in root.glob("quality-*") if root.is_dir() else []:
        suffix = folder.name.removeprefix("quality-")
        if suffix.isdigit():
            found[int(suffix)] = folder
    return found


def quality_dir(model: str, quality: int) -> Path:
    """The folder of rate point ``quality`` of ``model`` ('bundled' or a models folder)."""
    if model == "bundled":
        from noisylink.weights import bundled_weights

        return bundled_weights(f"{BUNDLED_PREFIX}{quality}").folder
    return Path(model) / f"quality-{quality}"


def available_qualities(model: str) -> list[int]:
    """The rate points a models folder (or the package) holds, lowest first."""
    return sorted(quality for quality, folder in _quality_folders(model).items()
                  if (folder / "config.json").is_file())


def read_description(folder: Path) -> dict[str, Any]:
    path = folder / "config.json"
    try:
        description = json.loads(path.read_text())
    except FileNotFoundError:
        raise LinkError(f"{path}: no such file (a hyperprior model folder needs config.json)"
                        ) from None
    except (OSError, ValueError) as exc:
        raise LinkError(f"{path}: not a readable JSON description ({exc})") from None
    if not isinstance(description, dict):
        raise LinkError(f"{path}: must hold a JSON object")
    return description


@lru_cache(maxsize=16)
def load_model(folder: Path) -> HyperpriorModel:
    """The model in ``folder`` in float32 eval mode; one ``LinkError`` line if it is damaged."""
    import torch

    from noisylink.codecs.learned.model import HyperpriorModel, HyperpriorShape
    from noisylink.safeload import load_safetensors

    description = read_description(folder)
    try:
        shape = HyperpriorShape.from_json(description.get("shape"))
    except ValueError as exc:
        raise LinkError(f"{folder / 'config.json'}: {exc}") from None
    with torch.device("meta"):
        expected = {name: tuple(t.shape) for name, t in HyperpriorModel(shape).state_dict().items()}
    weights = folder / "model.safetensors"
    try:
        state = load_safetensors(weights, expected)
    except ValueError as exc:
        raise LinkError(f"{weights}: {exc}") from None
    except OSError as exc:
        raise LinkError(f"cannot read {weights}: {str(exc).splitlines()[0]}") from None
    model = HyperpriorModel(shape)
    model.load_state_dict({name: tensor.float() for name, tensor in state.items()})
    return model.eval().requires_grad_(False)
