"""The ECC contract and its registry.

Bits are ``uint8`` arrays of 0/1, shape ``[n_bits]``. LLRs are ``float`` arrays with the
project's sign: ``LLR = ln P(b=0|y) / P(b=1|y)`` (positive means 0; 0 means erased).

A code works on blocks of ``k`` information bits mapped to ``n`` coded bits. ``encode`` pads
the last block with zero bits (the caller counts the padding as bandwidth) and returns
``n_blocks * n`` bits. ``decode`` takes ``n_blocks * n`` LLRs and returns the
``n_blocks * k`` decided information bits and one ``ok`` flag per block: ``False`` where the
decoder knows it failed (a code that cannot tell reports ``True``). Decoders never raise on
channel errors.
"""

from __future__ import annotations

import functools
import math
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol

import numpy as np
from numpy.typing import NDArray

from noisylink.registry import ComponentConfig, Registry

if TYPE_CHECKING:
    import torch

Bits = NDArray[np.uint8]
LLRs = NDArray[np.floating]


class ECC(Protocol):
    """An error-correcting code behind the project's contract (see module docstring)."""

    config: ComponentConfig
    k: int
    n: int

    @property
    def rate(self) -> float: ...

    def encode(self, bits: Bits) -> Bits: ...

    def decode(self, llr: LLRs) -> tuple[Bits, NDArray[np.bool_]]: ...


ECCS: Registry[ECC] = Registry("ecc")


def n_blocks(n_info_bits: int, k: int) -> int:
    """Blocks needed for ``n_info_bits`` (at least one, so empty input still makes a block)."""
    return max(1, math.ceil(n_info_bits / k))


def pad_to_blocks(bits: Bits, k: int) -> Bits:
    """Zero-pad ``bits`` to a whole number of ``k``-bit blocks, shape ``[n_blocks, k]``."""
    blocks = n_blocks(bits.size, k)
    padded = np.zeros(blocks * k, dtype=np.uint8)
    padded[: bits.size] = bits
    return padded.reshape(blocks, k)


def hard_decision(llr: LLRs) -> Bits:
    """Bits from LLRs under the project's sign (LLR < 0 means 1; erasures decide 0)."""
    return (np.asarray(llr) < 0).astype(np.uint8)


# --- where a fast decoder runs ------------------------------------------------------------

DecoderBackend = Literal["auto", "numba", "torch", "reference"]


@functools.cache
def cuda_available() -> bool:
    """Whether torch sees a CUDA device (torch is imported on first use only)."""
    import torch

    return bool(torch.cuda.is_available())


def resolve_backend(backend: DecoderBackend) -> Literal["numba", "torch", "reference"]:
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
