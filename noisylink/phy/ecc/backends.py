"""Where a code's fast decoder runs: the ``backend`` setting and its one resolution.

``rs``, ``ldpc`` and ``conv`` take ``backend``: ``numba`` (the CPU), ``torch`` (a torch device:
the GPU when CUDA is available, else the CPU), ``reference`` (commpy's slow decoder, which ours
are checked against) or ``auto`` (torch when CUDA is available, else numba). Every backend of a
code gives the same decisions, so the setting stays out of results and labels at its default
(``DecoderConfig``). torch is imported only when CUDA availability or a device is asked for.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from noisylink.registry import ComponentConfig

if TYPE_CHECKING:
    import torch

DecoderBackend = Literal["auto", "numba", "torch", "reference"]
ResolvedBackend = Literal["numba", "torch", "reference"]


@functools.cache
def cuda_available() -> bool:
    """Whether torch sees a CUDA device (torch is imported on first use only)."""
    import torch

    return bool(torch.cuda.is_available())


def resolve_backend(backend: DecoderBackend) -> ResolvedBackend:
    """``auto`` -> torch when CUDA is available, else numba; the others as given."""
    if backend == "auto":
        return "torch" if cuda_available() else "numba"
    return backend


def torch_device() -> torch.device:
    """The device the torch decoders use: the GPU when there is one."""
    import torch

    return torch.device("cuda" if cuda_available() else "cpu")


class DecoderConfig(ComponentConfig):
    """Base of the settings of codes with fast decoders (each declares ``backend``).

    Settings listed in ``quiet_defaults`` are left out of ``params()`` (results, labels) at
    their default values: every backend decodes alike, so existing labels stay as they were.
    """

    quiet_defaults: ClassVar[tuple[str, ...]] = ("backend",)

    def params(self) -> dict[str, Any]:
        params = super().params()
        for key in self.quiet_defaults:
            if key in params and params[key] == type(self).model_fields[key].default:
                del params[key]
        return params
