"""The reference LDPC decoder: commpy's belief propagation, one block at a time.

Flooding only; slow (0.07-0.1 Mbit/s at n = 1944). The batched decoders (``numba.py``,
``torch.py``) reproduce its decisions. LLRs: float64 ``[B, n]``, cleaned by the ``LDPC`` code
first (positive means 0); words come back as uint8 ``[B, n]`` with ``ok`` where every parity
check holds.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from noisylink.phy.ecc.ldpc.bp import Method
from noisylink.phy.ecc.ldpc.code import LDPCTables, syndrome_ok


def decode_reference(
    tables: LDPCTables, llr: NDArray[np.float64], iterations: int, method: Method
) -> tuple[NDArray[np.uint8], NDArray[np.bool_]]:
    """commpy's ``LDPCCode.decode`` on each row, with at most ``iterations`` iterations."""
    words = np.zeros(llr.shape, dtype=np.uint8)
    for b, row in enumerate(llr):
        _, words[b], _ = tables.code.decode(row, max_iter=iterations, method=method)
    return words, syndrome_ok(tables, words)
