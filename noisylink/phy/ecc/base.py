"""The ECC contract, its registry and the one LLR cleaning every decoder starts with.

Bits are ``uint8`` arrays of 0/1, shape ``[n_bits]``. LLRs are ``float`` arrays with the
project's sign: ``LLR = ln P(b=0|y) / P(b=1|y)`` (positive means 0; 0 means erased).

A code works on blocks of ``k`` information bits mapped to ``n`` coded bits. ``encode`` pads
the last block with zero bits (the caller counts the padding as bandwidth) and returns
``n_blocks * n`` bits. ``decode`` takes ``n_blocks * n`` LLRs and returns the
``n_blocks * k`` decided information bits and one ``ok`` flag per block: ``False`` where the
decoder knows it failed (a code that cannot tell reports ``True``). Decoders never raise on
channel errors: each ``decode`` first passes its LLRs through ``clean_llr`` (NaN -> 0, an
erasure; +-inf and beyond -> +-``LLR_LIMIT``), so no decoder sees a non-finite value; a numba
kernel that reads each LLR once anyway may instead apply the same rule as it goes
(``clean_value``), as Reed-Solomon's does.

Where a decoder runs (numba, torch or the reference) is chosen in ``backends``.
"""

from __future__ import annotations

import math
from typing import Protocol

import numba
import numpy as np
from numpy.typing import ArrayLike, NDArray

from noisylink.registry import ComponentConfig, Registry

Bits = NDArray[np.uint8]
LLRs = NDArray[np.floating]

LLR_LIMIT = 1e6  # cleaned LLRs lie in [-LLR_LIMIT, LLR_LIMIT]: sums of them stay finite, and
# Viterbi path metrics stay far below commpy's 1e18 "unreachable" mark


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


def clean_llr(llr: ArrayLike) -> NDArray[np.float64]:
    """A fresh C-contiguous float64 copy of ``llr`` (same shape), each value cleaned by
    ``clean_value``: what every decoder takes."""
    values = np.asarray(llr, dtype=np.float64)
    cleaned = np.empty(values.shape)
    _clean_into(values.ravel(), cleaned.reshape(-1))
    return cleaned


@numba.njit(cache=True, inline="always", error_model="numpy")
def clean_value(value: float) -> float:
    """One LLR cleaned: NaN -> 0 (an erasure), +-inf and anything beyond +-``LLR_LIMIT`` ->
    +-``LLR_LIMIT``, the rest as is (``np.clip``'s values, -0.0 kept). For kernels that read
    each LLR once anyway and clean it as they go, saving ``clean_llr``'s pass."""
    return 0.0 if np.isnan(value) else min(max(value, -LLR_LIMIT), LLR_LIMIT)


@numba.njit(cache=True, parallel=True, error_model="numpy")
def _clean_into(values: NDArray[np.float64], out: NDArray[np.float64]) -> None:
    """``out[i] = clean_value(values[i])``, in one parallel pass (one numpy pass after a numba
    decoder would compete with its still-spinning worker threads)."""
    for i in numba.prange(values.size):
        out[i] = clean_value(values[i])
