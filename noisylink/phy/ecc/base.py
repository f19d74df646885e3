"""The ECC contract, its registry and the one LLR cleaning every decoder starts with.

Bits are ``uint8`` arrays of 0/1, shape ``[n_bits]``. LLRs are ``float`` arrays with the
project's sign: ``LLR = ln P(b=0|y) / P(b=1|y)`` (positive means 0; 0 means erased).

A code works on blocks of ``k`` information bits mapped to ``n`` coded bits. ``encode`` pads
the last block with zero bits and returns ``coded_bits(n_info_bits)`` bits: ``n_blocks * n``
(the caller counts the padding as bandwidth), or, for a *shortened* systematic code, that less
the padding, which both ends know and which is never sent. ``decode`` takes ``coded_bits(...)``
LLRs and returns the ``n_blocks * k`` decided information bits and one ``ok`` flag per block:
``False`` where the decoder knows it failed (a code that cannot tell reports ``True``).
Decoders never raise on channel errors: each ``decode`` first passes its LLRs through
``clean_llr`` (NaN -> 0, an erasure; +-inf and beyond -> +-``LLR_LIMIT``), so no decoder sees a
non-finite value; a numba kernel that reads each LLR once anyway may instead apply the same
rule as it goes (``clean_value``), as Reed-Solomon's does.

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

    def coded_bits(self, n_info_bits: int) -> int:
        """Bits ``encode`` makes of ``n_info_bits`` information bits."""
        ...

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


def block_coded_bits(n_info_bits: int, k: int, n: int) -> int:
    """Coded bits of a code that sends whole blocks, padding included."""
    return n_blocks(n_info_bits, k) * n


def shortened_coded_bits(n_info_bits: int, k: int, n: int) -> int:
    """Coded bits of a shortened code: whole blocks less the last block's padding."""
    blocks = n_blocks(n_info_bits, k)
    return blocks * n - (blocks * k - n_info_bits)


def coded_bits_of(n_info_bits: int, k: int, n: int, shortened: bool) -> int:
    """``shortened_coded_bits`` or ``block_coded_bits``: a systematic code's ``coded_bits``."""
    if shortened:
        return shortened_coded_bits(n_info_bits, k, n)
    return block_coded_bits(n_info_bits, k, n)


def drop_padding(codewords: Bits, n_info_bits: int, info_positions: NDArray[np.int64]) -> Bits:
    """A shortened code's bits: ``codewords`` (``[n_blocks, n]``, from ``n_info_bits``
    zero-padded information bits) without the last block's padding positions, flattened.
    ``info_positions[i]`` is where information bit ``i`` of a block sits in its codeword."""
    blocks = codewords.shape[0]
    pad = blocks * info_positions.size - n_info_bits
    keep = np.ones(codewords.shape, dtype=bool)
    keep[-1, info_positions[info_positions.size - pad:]] = False
    return codewords[keep]


def restore_padding(llr: LLRs, n: int, info_positions: NDArray[np.int64]) -> NDArray[np.float64]:
    """Whole-block LLRs ``[n_blocks, n]`` of a shortened code's received ``llr``: the unsent
    padding, known zeros, comes back as the surest 0 (``+LLR_LIMIT``). The padding length
    follows from ``len(llr)``, as ``drop_padding`` leaves ``n_blocks * n - pad`` bits with
    ``0 <= pad <= k < n``; a length no encoding gives is padded out as erasures."""
    values = np.asarray(llr, dtype=np.float64).reshape(-1)
    k = info_positions.size
    blocks = max(1, -(-values.size // n))
    pad = min(blocks * n - values.size, k)
    full = np.full((blocks, n), LLR_LIMIT)
    keep = np.ones((blocks, n), dtype=bool)
    keep[-1, info_positions[k - pad:]] = False
    kept = np.zeros(int(keep.sum()))  # erasures where a wrong length left bits missing
    kept[: min(values.size, kept.size)] = values[: kept.size]
    full[keep] = kept
    return full


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
