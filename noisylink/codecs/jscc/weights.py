"""Finding and loading trained NECST/IABF models (fp16 safetensors + config.json).

The committed models live in this package's ``weights/<method>-eps<ε>/``, each an entry of the
registry of bundled weights (``noisylink.weights``, where ``weights: bundled`` resolves); any
folder with the same two files can stand in (``weights:`` in a scenario, ``--weights`` on the
command line).

Such a folder is checked before anything is allocated: ``config.json`` must describe a shape of
bounded size (``JsccShape.from_json``), and ``model.safetensors`` must declare, in its header,
exactly that model's tensors with their shapes in a float dtype, in byte ranges that fit the
file (``noisylink.safeload``). A truncated file, a wrong shape, a missing tensor or an absurd
size is a one-line ``LinkError`` naming the file.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from noisylink.errors import LinkError
from noisylink.safeload import load_safetensors
from noisylink.weights import bundled_weights

if TYPE_CHECKING:
    from noisylink.codecs.jscc.model import JsccModel

BUNDLED_EPS = (0.1, 0.2, 0.3, 0.4)
METHODS = ("necst", "iabf")


def model_dir_name(method: str, eps: float) -> str:
    """``necst-eps0.1``: the folder of one model inside a weights root."""
    return f"{method}-eps{eps:g}"


def model_dir(root: str | Path, method: str, eps: float) -> Path:
    """The folder of ``method`` trained at ``eps`` under ``root`` ('bundled': the registry's)."""
    if str(root) == "bundled":
        return bundled_weights(model_dir_name(method, eps)).folder
    return Path(root) / model_dir_name(method, eps)


def read_description(folder: Path) -> dict[str, Any]:
    """The model's ``config.json`` (shape, recipe, validation facts), its shape checked."""
    from noisylink.codecs.jscc.model import JsccShape

    path = folder / "config.json"
    try:
        description = json.loads(path.read_text())
    except FileNotFoundError:
        raise LinkError(f"no trained model at {folder} (missing config.json)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LinkError(f"cannot read {path}: {exc}") from None
    if not isinstance(description, dict):
        raise LinkError(f"{path}: not a JSON object")
    try:
        JsccShape.from_json(description.get("shape"))
    except ValueError as exc:
        raise LinkError(f"{path}: {exc}") from None
    return description


@lru_cache(maxsize=16)
def load_model(folder: Path) -> JsccModel:
    """Load a model in float32 for inference (cached per folder), after checking its files."""
    from noisylink.codecs.jscc.model import JsccModel, JsccShape, tensor_shapes

    shape = JsccShape.from_json(read_description(folder)["shape"])
    weights = folder / "model.safetensors"
    try:
        state = load_safetensors(weights, tensor_shapes(shape))
    except ValueError as exc:
        raise LinkError(f"{weights}: {exc}") from None
    except OSError as exc:
        raise LinkError(f"cannot read {weights}: {str(exc).splitlines()[0]}") from None
    model = JsccModel(shape)
    model.load_state_dict({key: value.float() for key, value in state.items()})
    return model.eval().requires_grad_(False)
