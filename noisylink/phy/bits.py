"""Bytes <-> bits, MSB first: the one bit order used on the whole link."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray


def bytes_to_bits(data: bytes) -> NDArray[np.uint8]:
    """``uint8`` bits ``[8 * len(data)]``, most significant bit of each byte first."""
    return np.unpackbits(np.frombuffer(data, dtype=np.uint8))


def bits_to_bytes(bits: NDArray[np.uint8]) -> bytes:
    """Bytes from bits, MSB first; a trailing partial byte is zero-padded."""
    return np.packbits(np.asarray(bits, dtype=np.uint8)).tobytes()
