"""Convolutional code K=7, generators 171/133 (octal), rate 1/2: the deep-space workhorse.

Wraps commpy's ``Trellis``, ``ConvolutionalEncoder`` and soft ``viterbi_decode`` (which takes
our LLR sign). Each block of ``block_bits`` information bits is zero-tail terminated (6 tail
bits), so ``n = 2 * (block_bits + 6)``. Viterbi cannot tell when it failed, so ``ok`` is
always True; the frame CRC catches residual errors.
"""

from __future__ import annotations

import functools
from typing import Literal

import numpy as np
import pydantic
from commpy import ConvolutionalEncoder, Trellis, viterbi_decode
from numpy.typing import NDArray

from noisylink.phy.ecc.base import ECCS, Bits, LLRs, pad_to_blocks
from noisylink.registry import ComponentConfig

CONSTRAINT_LENGTH = 7
GENERATORS = (0o171, 0o133)
LLR_LIMIT = 1e6  # keeps Viterbi path metrics far below commpy's 1e18 "unreachable" mark


class ConvolutionalConfig(ComponentConfig):
    """``{name: conv, block_bits: 2048}``: information bits per terminated block."""

    name: Literal["conv"] = "conv"
    block_bits: int = pydantic.Field(2048, ge=1, le=1 << 20)


@functools.lru_cache(maxsize=1)
def _trellis() -> Trellis:
    return Trellis(CONSTRAINT_LENGTH, list(GENERATORS))


@ECCS.register("conv", ConvolutionalConfig)
class Convolutional:
    """K=7 (171, 133) rate-1/2 code, zero-tail terminated per block, soft Viterbi."""

    def __init__(self, config: ConvolutionalConfig):
        self.config = config
        self._trellis = _trellis()
        self._encoder = ConvolutionalEncoder(self._trellis)
        self.k = config.block_bits
        self.n = self._trellis.n_outputs * (config.block_bits + self._trellis.memory)

    @property
    def rate(self) -> float:
        return self.k / self.n

    def encode(self, bits: Bits) -> Bits:
        blocks = pad_to_blocks(np.asarray(bits, dtype=np.uint8), self.k)
        coded = [self._encoder.encode(block, terminate=True)[0] for block in blocks]
        return np.concatenate(coded).astype(np.uint8)

    def decode(self, llr: LLRs) -> tuple[Bits, NDArray[np.bool_]]:
        llr = np.asarray(llr, dtype=np.float64).reshape(-1, self.n)
        llr = np.clip(np.nan_to_num(llr, nan=0.0), -LLR_LIMIT, LLR_LIMIT)
        decoded = np.zeros((llr.shape[0], self.k), dtype=np.uint8)
        for b, block in enumerate(llr):
            decoded[b] = viterbi_decode(self._trellis, block, mode="soft", terminated=True)
        return decoded.reshape(-1), np.ones(llr.shape[0], dtype=bool)
