"""Which torch device a codec's network runs on: the scenario's ``device`` resolved.

Imported only by codecs with a model (it imports torch). "auto" is CUDA where torch sees a GPU,
else the CPU; a device that is not there is one ``NoisylinkError`` line.
"""

from __future__ import annotations

import torch

from noisylink.errors import NoisylinkError


def resolve_torch_device(device: str | torch.device) -> torch.device:
    """The torch device a setting names; "auto" picks CUDA when there is one, else the CPU."""
    if isinstance(device, torch.device):
        resolved = device
    elif device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        try:
            resolved = torch.device(device)
        except (RuntimeError, TypeError, ValueError):
            raise NoisylinkError(
                f"unknown torch device {device!r}; use 'auto', 'cpu', 'cuda' or 'cuda:N'"
            ) from None
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise NoisylinkError(f"device {str(resolved)!r} asked for, but CUDA is not available")
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise NoisylinkError(
                f"device {str(resolved)!r} asked for, but there are only "
                f"{torch.cuda.device_count()} CUDA devices"
            )
    return resolved
