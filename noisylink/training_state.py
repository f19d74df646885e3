"""Resumable training: one checkpoint file per run, read safely and checked before use.

A checkpoint holds only tensors and plain data: the recipe, the state dicts of the model(s) and
optimizer, the numpy and torch RNG states and the step. It is read with ``weights_only=True``
(``noisylink.safeload``), so a file planted in the folder cannot run code. A damaged file, one
of another kind, one made with another recipe (the step count aside: a run may be resumed to
train for longer) or one that does not fit the model is a one-line ``NoisylinkError`` naming
the file.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from noisylink.errors import NoisylinkError
from noisylink.safeload import load_torch_checkpoint


class Stateful(Protocol):
    def state_dict(self) -> Any: ...

    def load_state_dict(self, state: Any, /) -> Any: ...


def _without_steps(recipe: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in recipe.items() if key != "steps"}


def save_training_state(path: Path, recipe: Mapping[str, Any], parts: Mapping[str, Stateful],
                        rng: np.random.Generator, step: int) -> None:
    """Write the checkpoint atomically (a temporary file, then a rename)."""
    import torch

    state = {"recipe": dict(recipe), **{name: part.state_dict() for name, part in parts.items()},
             "rng": rng.bit_generator.state, "torch_rng": torch.get_rng_state(), "step": step}
    temporary = path.with_suffix(".tmp")
    torch.save(state, temporary)
    temporary.replace(path)


def resume_training_state(path: Path, recipe: Mapping[str, Any], parts: Mapping[str, Stateful],
                          rng: np.random.Generator, hint: str) -> int:
    """Load ``path`` into ``parts`` and the RNGs and return its step; 0 if there is no file.
    ``hint`` says what to do instead (e.g. "use another --out")."""
    import torch

    if not path.exists():
        return 0
    try:
        state = load_torch_checkpoint(path)
    except ValueError as exc:
        raise NoisylinkError(f"{path}: {exc}; delete it or {hint}") from None
    keys = ("recipe", *parts, "rng", "torch_rng", "step")
    if not isinstance(state, dict):
        raise NoisylinkError(f"{path}: not a noisylink training checkpoint (not a mapping)")
    missing = [key for key in keys if key not in state]
    if missing:
        raise NoisylinkError(
            f"{path}: not a noisylink training checkpoint (no {', '.join(missing)})"
        )
    if not isinstance(state["recipe"], dict) or not isinstance(state["step"], int):
        raise NoisylinkError(f"{path}: not a noisylink training checkpoint (odd recipe or step)")
    if _without_steps(state["recipe"]) != _without_steps(recipe):
        raise NoisylinkError(f"{path} was made with another recipe; {hint}")
    try:
        for name, part in parts.items():
            part.load_state_dict(state[name])
        rng.bit_generator.state = state["rng"]
        torch.set_rng_state(state["torch_rng"])
    except (RuntimeError, ValueError, TypeError, KeyError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise NoisylinkError(f"{path}: does not fit this model: {reason}") from None
    return int(state["step"])
