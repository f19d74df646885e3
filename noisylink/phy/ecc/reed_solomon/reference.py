"""The reference RS(255, k) decoder: commpy's, one block at a time (milliseconds per block).

LLRs: float64 ``[B, 2040]``, cleaned by the ``ReedSolomon`` code first (positive means 0;
a byte with a bit of LLR exactly 0 is erased). A vectorised syndrome check lets clean blocks
skip decoding; the others go one by one to commpy's erasure decoder, then its errors-only
decoder, and each result is checked to be a codeword before it is believed. commpy's
exceptions on hopeless blocks are caught: a block it cannot decode is returned as received,
not ``ok``. The batched decoders (``numba.py``, ``torch.py``) are checked against this one.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from commpy import ReedSolomonCode
from numpy.typing import NDArray

from noisylink.phy.ecc.reed_solomon.code import N_BYTES, Symbols, rs_syndromes


def decode_reference(
    code: ReedSolomonCode, k: int, llr: NDArray[np.float64]
) -> tuple[NDArray[np.uint8], NDArray[np.bool_]]:
    """Byte words ``[B, 255]`` (decoded, or as received where decoding failed) and ``ok``."""
    bits = llr.reshape(-1, N_BYTES, 8)
    received = np.packbits(bits < 0, axis=2)[:, :, 0].astype(np.int64)
    erased = np.any(bits == 0, axis=2)
    n_erased = erased.sum(axis=1)
    d = N_BYTES - k

    words = received.copy()
    ok = np.all(rs_syndromes(k, received) == 0, axis=1) & (n_erased <= d)
    for b in np.nonzero(~ok & (n_erased <= d))[0]:
        decoded = _decode_block(code, k, received[b], np.nonzero(erased[b])[0])
        if decoded is not None:
            words[b] = decoded
            ok[b] = True
    return words.astype(np.uint8), ok


def _decode_block(
    code: ReedSolomonCode, k: int, word: Symbols, erasures: Symbols
) -> Symbols | None:
    """A verified codeword near ``word``, or None: erasures first, then errors only."""
    attempts: list[Callable[[], object]] = []
    if erasures.size:
        attempts.append(lambda: code.decode_erasures(word, erasures)[1])
    attempts.append(lambda: code.decode(word)[1])
    for attempt in attempts:
        try:
            candidate = np.asarray(attempt(), dtype=np.int64)
        except (ValueError, ArithmeticError, IndexError):
            continue
        if _is_codeword(k, candidate):
            return candidate
    return None


def _is_codeword(k: int, word: Symbols) -> bool:
    if word.shape != (N_BYTES,) or np.any((word < 0) | (word >= 256)):
        return False
    return not np.any(rs_syndromes(k, word[None]))
