"""Finding and loading trained NECST/IABF models (fp16 safetensors + config.json).

The committed models live in this package's ``weights/<method>-eps<ε>/``; any folder with the
same two files can stand in (``weights:`` in a scenario, ``--weights`` on the command line).
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from noisylink.errors import LinkError

if TYPE_CHECKING:
    from noisylink.codecs.jscc.model import JsccModel

BUNDLED_DIR = Path(__file__).parent / "weights"
BUNDLED_EPS = (0.1, 0.2, 0.3, 0.4)
METHODS = ("necst", "iabf")


def model_dir_name(method: str, eps: float) -> str:
    """``necst-eps0.1``: the folder of one model inside a weights root."""
    return f"{method}-eps{eps:g}"


def model_dir(root: str | Path, method: str, eps: float) -> Path:
    """The folder of ``method`` trained at ``eps`` under ``root`` ('bundled' = the package's)."""
    base = BUNDLED_DIR if str(root) == "bundled" else Path(root)
    return base / model_dir_name(method, eps)


def read_description(folder: Path) -> dict[str, Any]:
    """The model's ``config.json`` (shape, recipe, validation facts)."""
    path = folder / "config.json"
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise LinkError(f"no trained model at {folder} (missing config.json)") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise LinkError(f"cannot read {path}: {exc}") from None


@lru_cache(maxsize=16)
def load_model(folder: Path) -> JsccModel:
    """Load a model in float32 for inference (cached per folder)."""
    from safetensors.torch import load_file

    from noisylink.codecs.jscc.model import JsccModel, JsccShape

    description = read_description(folder)
    model = JsccModel(JsccShape(**description["shape"]))
    weights = folder / "model.safetensors"
    try:
        state = load_file(str(weights))
    except (OSError, RuntimeError) as exc:
        raise LinkError(f"cannot read {weights}: {exc}") from None
    model.load_state_dict({key: value.float() for key, value in state.items()})
    return model.eval().requires_grad_(False)
