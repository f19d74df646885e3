"""Convolutional code K=7, generators 171/133 (octal), rate 1/2: the deep-space workhorse.

Each block of ``block_bits`` information bits is zero-tail terminated (6 tail bits), so
``n = 2 * (block_bits + 6)``. Encoding and soft Viterbi decoding run batched over all blocks
in ``viterbi`` (``backend``: ``numba`` on CPU, ``torch`` on any torch device, ``auto`` = torch
when CUDA is available, else numba); they reproduce commpy's ``ConvolutionalEncoder`` and soft
``viterbi_decode`` (which takes our LLR sign) decision for decision, ties included.
``backend: reference`` keeps the original path: commpy, one block at a time. Viterbi cannot
tell when it failed, so ``ok`` is always True; the frame CRC catches residual errors.
"""

from __future__ import annotations

import functools
from typing import Literal

import numpy as np
import pydantic
from commpy import ConvolutionalEncoder, Trellis, viterbi_decode
from numpy.typing import NDArray

from noisylink.phy.ecc.base import (
    ECCS,
    Bits,
    DecoderBackend,
    DecoderConfig,
    LLRs,
    pad_to_blocks,
    resolve_backend,
    torch_device,
)
from noisylink.phy.ecc.viterbi import (
    encode_blocks,
    k7_trellis,
    viterbi_decode_numba,
    viterbi_decode_torch,
)

CONSTRAINT_LENGTH = 7
GENERATORS = (0o171, 0o133)
LLR_LIMIT = 1e6  # keeps Viterbi path metrics far below commpy's 1e18 "unreachable" mark


class ConvolutionalConfig(DecoderConfig):
    """``{name: conv, block_bits: 2048}``: information bits per terminated block."""

    name: Literal["conv"] = "conv"
    block_bits: int = pydantic.Field(2048, ge=1, le=1 << 20)
    backend: DecoderBackend = "auto"


@functools.lru_cache(maxsize=1)
def _trellis() -> Trellis:
    return Trellis(CONSTRAINT_LENGTH, list(GENERATORS))


@ECCS.register("conv", ConvolutionalConfig)
class Convolutional:
    """K=7 (171, 133) rate-1/2 code, zero-tail terminated per block, soft Viterbi."""

    def __init__(self, config: ConvolutionalConfig):
        self.config = config
        self._tables = k7_trellis()
        self.k = config.block_bits
        self.n = self._tables.n_outputs * (config.block_bits + self._tables.memory)

    @property
    def rate(self) -> float:
        return self.k / self.n

    @functools.cached_property
    def backend(self) -> Literal["numba", "torch", "reference"]:
        """The decoder in use: ``auto`` resolves to torch when CUDA is available, else numba."""
        return resolve_backend(self.config.backend)

    def encode(self, bits: Bits) -> Bits:
        blocks = pad_to_blocks(np.asarray(bits, dtype=np.uint8), self.k)
        if self.backend == "reference":
            encoder = ConvolutionalEncoder(_trellis())
            coded = [encoder.encode(block, terminate=True)[0] for block in blocks]
            return np.concatenate(coded).astype(np.uint8)
        return encode_blocks(self._tables, blocks).reshape(-1)

    def decode(self, llr: LLRs) -> tuple[Bits, NDArray[np.bool_]]:
        llr = np.clip(np.asarray(llr, dtype=np.float64).reshape(-1, self.n), -LLR_LIMIT, LLR_LIMIT)
        llr[np.isnan(llr)] = 0.0  # erased
        ok = np.ones(llr.shape[0], dtype=bool)
        if self.backend == "reference":
            decoded = np.zeros((llr.shape[0], self.k), dtype=np.uint8)
            for b, block in enumerate(llr):
                decoded[b] = viterbi_decode(_trellis(), block, mode="soft", terminated=True)
        elif self.backend == "torch":
            import torch

            device = torch_device()
            rows = torch.from_numpy(llr).to(device)
            decoded = viterbi_decode_torch(self._tables, rows).cpu().numpy()
        else:
            decoded = viterbi_decode_numba(self._tables, llr)
        return decoded.reshape(-1), ok
