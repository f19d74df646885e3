"""Puncturing of the K=7 (171, 133) rate-1/2 mother code to rates 2/3, 3/4, 5/6 and 7/8.

The patterns are the standard ones for this mother code, as tabulated in ETSI EN 300 421
(DVB-S), section 4.4.3 (inner coding), Table 2 ("punctured code definition"), and CCSDS
131.0-B (TM Synchronization and Channel Coding), section 3 (its punctured convolutional codes,
same patterns, same free distances): with ``X`` the output of generator
171 and ``Y`` that of 133 (``output_bits[..., 0]`` and ``[..., 1]`` in ``trellis``), a 1 keeps
the bit and a 0 deletes it, one column per information bit of the period:

========  =============  =============  ==========================
rate      X              Y              sent, in order
========  =============  =============  ==========================
1/2       1              1              X1 Y1
2/3       1 0            1 1            X1 Y1 Y2
3/4       1 0 1          1 1 0          X1 Y1 Y2 X3
5/6       1 0 1 0 1      1 1 0 1 0      X1 Y1 Y2 X3 Y4 X5
7/8       1 0 0 0 1 0 1  1 1 1 1 0 1 0  X1 Y1 Y2 Y3 Y4 X5 Y6 X7
========  =============  =============  ==========================

(free distances 10, 6, 5, 4, 3). Within one step the kept bits keep the mother code's order
(X before Y), so the sent order is the mother stream with the deleted bits left out.

Blocks and the tail: each zero-tail terminated block (``block_bits`` information bits and 6
tail bits, ``2 * (block_bits + 6)`` mother bits) is punctured on its own; the pattern starts
at the block's first step and runs on, period after period, through the tail (a last partial
period keeps its first columns). So ``n = punctured_length(rate, block_bits + 6)`` and the
tail is punctured like the data. The decoder puts each received LLR back at its mother
position and LLR 0 (an erasure: no information) at the deleted ones, then runs the rate-1/2
Viterbi unchanged. Masks and positions are ``numpy`` arrays; nothing here depends on a decoder
backend.
"""

from __future__ import annotations

import functools
from typing import Literal

import numpy as np
from numpy.typing import NDArray

ConvRate = Literal["1/2", "2/3", "3/4", "5/6", "7/8"]

# rate -> (X row, Y row): 1 keeps the bit of that generator at that step of the period
PATTERNS: dict[str, tuple[str, str]] = {
    "1/2": ("1", "1"),
    "2/3": ("10", "11"),
    "3/4": ("101", "110"),
    "5/6": ("10101", "11010"),
    "7/8": ("1000101", "1111010"),
}


def pattern(rate: str) -> NDArray[np.bool_]:
    """The puncturing matrix of ``rate``: bool ``[period, 2]``, ``[t, j]`` keeps output ``j``
    (0: generator 171, 1: generator 133) of step ``t`` of the period."""
    x, y = PATTERNS[rate]
    return np.array([[a == "1", b == "1"] for a, b in zip(x, y, strict=True)], dtype=bool)


@functools.lru_cache(maxsize=64)
def kept_positions(rate: str, steps: int) -> NDArray[np.int64]:
    """Mother-stream positions (``2 * t + j``) kept in a block of ``steps`` trellis steps,
    ascending (read-only)."""
    matrix = pattern(rate)
    keep = np.resize(matrix, (steps, 2)).reshape(-1)  # the period repeated from step 0
    positions = np.flatnonzero(keep)
    positions.flags.writeable = False
    return positions


def punctured_length(rate: str, steps: int) -> int:
    """Coded bits sent for a block of ``steps`` trellis steps (tail included)."""
    return int(kept_positions(rate, steps).size)


def puncture(rate: str, mother: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """The sent bits of mother-code blocks ``[blocks, 2 * steps]``: ``[blocks, n]``."""
    if rate == "1/2":
        return mother
    return np.ascontiguousarray(mother[:, kept_positions(rate, mother.shape[1] // 2)])


def depuncture(rate: str, llr: NDArray[np.float64], steps: int) -> NDArray[np.float64]:
    """Mother-code LLRs ``[blocks, 2 * steps]`` from received ones ``[blocks, n]``: each at its
    mother position, 0 (erased) at the deleted positions."""
    if rate == "1/2":
        return llr
    mother = np.zeros((llr.shape[0], 2 * steps), dtype=llr.dtype)
    mother[:, kept_positions(rate, steps)] = llr
    return mother
