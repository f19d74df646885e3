"""GF(256) as commpy's RS code builds it, for the batched decoders (``numba.py``, ``torch.py``).

Field polynomial ``x^8+x^4+x^3+x^2+1`` (0x11D), primitive element ``alpha = 2``. Tables are
int64 and read-only.
"""

from __future__ import annotations

import functools

import numpy as np
from numpy.typing import NDArray

N = 255  # code length in bytes
FIELD_POLY = 0x11D  # commpy's GF(256): the smallest primitive polynomial of degree 8

Int64s = NDArray[np.int64]


@functools.cache
def gf_tables() -> tuple[Int64s, Int64s]:
    """``(exp, log)``: ``exp[i] = alpha^(i mod 255)`` for i < 512 (sums of two logs need no
    reduction), ``log[alpha^i] = i`` (``log[0] = 0`` is never used unmasked)."""
    exp = np.zeros(2 * 256, dtype=np.int64)
    value = 1
    for i in range(N):
        exp[i] = value
        value <<= 1
        if value & 0x100:
            value ^= FIELD_POLY
    exp[N : 2 * N] = exp[:N]
    exp[2 * N :] = exp[: 512 - 2 * N]
    log = np.zeros(256, dtype=np.int64)
    log[exp[:N]] = np.arange(N)
    exp.setflags(write=False)
    log.setflags(write=False)
    return exp, log


def check_k(k: int) -> int:
    """``d = 255 - k``, the number of parity bytes; ``ValueError`` unless ``1 <= k < 255``."""
    if not 1 <= k < N:
        raise ValueError(f"k must be in [1, {N - 1}], got {k}")
    return N - k
