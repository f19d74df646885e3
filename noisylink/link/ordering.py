"""A payload in importance order and back: what unequal error protection splits into classes.

``segments`` are bit ranges ``[start, stop)`` of an ``n_bits``-bit payload, most important
first, covering each bit once (``Codec.importance``). ``to_importance_order`` concatenates the
segments' bits (padded with zeros to whole bytes, as the payload is); ``from_importance_order``
puts received bits back in payload order. Both are pure and exact: one undoes the other for
every payload, and corrupted bytes stay where they fall (a wrong bit of segment 2 comes back
as a wrong bit of segment 2's range).
"""

from __future__ import annotations

import numpy as np

from noisylink.codecs.base import Segments
from noisylink.phy.bits import bits_to_bytes, bytes_to_bits


def check_segments(segments: Segments, n_bits: int) -> None:
    """``ValueError`` unless ``segments`` cover ``[0, n_bits)`` exactly once."""
    covered = np.zeros(n_bits, dtype=np.int64)
    for start, stop in segments:
        if not 0 <= start <= stop <= n_bits:
            raise ValueError(f"segment [{start}, {stop}) outside a payload of {n_bits} bits")
        covered[start:stop] += 1
    if n_bits and not np.all(covered == 1):
        raise ValueError(f"segments do not cover the {n_bits} payload bits exactly once")


def _permutation(segments: Segments) -> np.ndarray:
    if not segments:
        return np.zeros(0, dtype=np.int64)
    return np.concatenate([np.arange(start, stop, dtype=np.int64) for start, stop in segments])


def to_importance_order(payload: bytes, n_bits: int, segments: Segments) -> bytes:
    """The payload's bits in importance order, as bytes of the payload's length."""
    bits = bytes_to_bits(payload)
    ordered = np.zeros(bits.size, dtype=np.uint8)
    ordered[:n_bits] = bits[_permutation(segments)]
    return bits_to_bytes(ordered)


def from_importance_order(ordered: bytes, n_bits: int, segments: Segments) -> bytes:
    """Bits received in importance order, back in payload order (the inverse of
    ``to_importance_order``)."""
    bits = bytes_to_bits(ordered)
    payload = np.zeros(bits.size, dtype=np.uint8)
    payload[_permutation(segments)] = bits[:n_bits]
    return bits_to_bytes(payload)
