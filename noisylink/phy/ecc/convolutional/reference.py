"""The reference convolutional encoder and soft Viterbi decoder: commpy's, one block at a time.

Slow (0.1-0.3 Mbit/s); the batched ones (``code.py``'s encoder, ``numba.py``, ``torch.py``) are
checked against these decision for decision. Blocks: uint8 0/1 ``[blocks, k]``; LLRs: finite
float64 ``[blocks, n]`` (positive means 0), cleaned by the ``Convolutional`` code first.
"""

from __future__ import annotations

import functools

import numpy as np
from commpy import ConvolutionalEncoder, Trellis, viterbi_decode
from numpy.typing import NDArray

from noisylink.phy.ecc.convolutional.code import CONSTRAINT_LENGTH, GENERATORS


@functools.lru_cache(maxsize=1)
def _trellis() -> Trellis:
    return Trellis(CONSTRAINT_LENGTH, list(GENERATORS))


def encode_reference(blocks: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """Each row zero-tail terminated by commpy's encoder, all concatenated: ``[blocks * n]``."""
    encoder = ConvolutionalEncoder(_trellis())
    coded = [encoder.encode(block, terminate=True)[0] for block in blocks]
    return np.concatenate(coded).astype(np.uint8)


def viterbi_decode_reference(llr: NDArray[np.float64], k: int) -> NDArray[np.uint8]:
    """commpy's soft, terminated Viterbi decoder on each row: ``[blocks, k]`` bits."""
    decoded = np.zeros((llr.shape[0], k), dtype=np.uint8)
    for b, block in enumerate(llr):
        decoded[b] = viterbi_decode(_trellis(), block, mode="soft", terminated=True)
    return decoded
