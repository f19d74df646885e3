"""Convolutional code K=7, generators 171/133 (octal), rate 1/2 and punctured rates: the
deep-space workhorse.

Bits: uint8 0/1; LLRs: float, positive means 0. Each block of ``block_bits`` information bits
is zero-tail terminated (6 tail bits) into ``2 * (block_bits + 6)`` mother-code bits. At
``rate`` "1/2" (the default) they are all sent, ``n = 2 * (block_bits + 6)``; at "2/3", "3/4",
"5/6" or "7/8" the block is punctured with the DVB-S / CCSDS pattern of that rate, tail
included (``puncturing``), and ``n`` is the number of bits kept. Encoding runs batched over all
blocks here (numba); soft Viterbi decoding runs on the chosen ``backend`` (``backends``):
``numba.py`` on the CPU, ``torch.py`` on a torch device, or ``reference.py`` (commpy, one block
at a time), always on the mother code: the deleted bits come back as LLR 0 (erasures). The
batched encoder and decoders reproduce commpy's ``ConvolutionalEncoder`` and soft
``viterbi_decode`` (which takes our LLR sign) decision for decision, ties included. ``decode``
cleans the LLRs first (``clean_llr``; the numba decoder as it reads them) and never raises on
channel errors. Viterbi cannot tell when it failed, so ``ok`` is always True; the frame CRC
catches residual errors.
"""

from __future__ import annotations

import functools
from typing import ClassVar, Literal

import numba
import numpy as np
import pydantic
from numpy.typing import ArrayLike, NDArray

from noisylink.phy.ecc.backends import (
    DecoderBackend,
    DecoderConfig,
    ResolvedBackend,
    resolve_backend,
)
from noisylink.phy.ecc.base import ECCS, Bits, LLRs, block_coded_bits, clean_llr, pad_to_blocks
from noisylink.phy.ecc.convolutional.numba import viterbi_decode_numba
from noisylink.phy.ecc.convolutional.puncturing import (
    ConvRate,
    depuncture,
    puncture,
    punctured_length,
)
from noisylink.phy.ecc.convolutional.trellis import (
    Int64s,
    TrellisTables,
    shift_register_trellis,
)

CONSTRAINT_LENGTH = 7
GENERATORS = (0o171, 0o133)


class ConvolutionalConfig(DecoderConfig):
    """``{name: conv, rate: "1/2", block_bits: 2048}``: code rate (punctured above 1/2) and
    information bits per terminated block. ``rate`` stays out of labels at its default."""

    name: Literal["conv"] = "conv"
    rate: ConvRate = "1/2"
    block_bits: int = pydantic.Field(2048, ge=1, le=1 << 20)
    backend: DecoderBackend = "auto"

    quiet_defaults: ClassVar[tuple[str, ...]] = ("backend", "rate")


@functools.cache
def k7_trellis() -> TrellisTables:
    """The K=7, (171, 133) octal, rate-1/2 code (NASA/CCSDS, 802.11)."""
    return shift_register_trellis(CONSTRAINT_LENGTH, GENERATORS)


# --- encoder --------------------------------------------------------------------------------


@numba.njit(cache=True, parallel=True)
def _encode_kernel(
    bits: NDArray[np.uint8],
    next_state: Int64s,
    output_bits: NDArray[np.uint8],
    memory: int,
    out: NDArray[np.uint8],
) -> None:
    n_blocks, k = bits.shape
    n_outputs = output_bits.shape[2]
    for b in numba.prange(n_blocks):
        state = 0
        for t in range(k + memory):
            u = np.int64(bits[b, t]) if t < k else 0
            for j in range(n_outputs):
                out[b, t * n_outputs + j] = output_bits[state, u, j]
            state = next_state[state, u]


def encode_blocks(tables: TrellisTables, bits: ArrayLike) -> NDArray[np.uint8]:
    """Encode each row of ``bits`` (``[blocks, k]``, 0/1) as a zero-tail terminated block:
    ``[blocks, n * (k + memory)]`` coded bits, the same as commpy's ``encode(terminate=True)``."""
    rows = np.ascontiguousarray(bits, dtype=np.uint8)
    if rows.ndim != 2:
        raise ValueError("bits must have shape [blocks, k]")
    if rows.size and rows.max() > 1:
        raise ValueError("bits must be 0/1")
    n_blocks, k = rows.shape
    out = np.empty((n_blocks, tables.n_outputs * (k + tables.memory)), dtype=np.uint8)
    if n_blocks:
        _encode_kernel(rows, tables.next_state, tables.output_bits, tables.memory, out)
    return out


# --- the code -------------------------------------------------------------------------------


@ECCS.register("conv", ConvolutionalConfig)
class Convolutional:
    """K=7 (171, 133) code, zero-tail terminated per block, punctured to ``rate``, soft
    Viterbi."""

    def __init__(self, config: ConvolutionalConfig):
        self.config = config
        self._tables = k7_trellis()
        self.k = config.block_bits
        self._steps = config.block_bits + self._tables.memory
        self.n = punctured_length(config.rate, self._steps)

    @property
    def rate(self) -> float:
        return self.k / self.n

    @functools.cached_property
    def backend(self) -> ResolvedBackend:
        """The decoder in use: ``auto`` resolves to torch when CUDA is available, else numba."""
        return resolve_backend(self.config.backend)

    def coded_bits(self, n_info_bits: int) -> int:
        return block_coded_bits(n_info_bits, self.k, self.n)

    def encode(self, bits: Bits) -> Bits:
        blocks = pad_to_blocks(np.asarray(bits, dtype=np.uint8), self.k)
        if self.backend == "reference":
            from noisylink.phy.ecc.convolutional.reference import encode_reference

            mother = encode_reference(blocks).reshape(blocks.shape[0], -1)
        else:
            mother = encode_blocks(self._tables, blocks)
        return puncture(self.config.rate, mother).reshape(-1)

    def decode(self, llr: LLRs) -> tuple[Bits, NDArray[np.bool_]]:
        if self.backend == "numba":  # it cleans each LLR as it reads it: no extra pass
            rows = np.asarray(llr, dtype=np.float64).reshape(-1, self.n)
        else:
            rows = clean_llr(llr).reshape(-1, self.n)
        rows = depuncture(self.config.rate, rows, self._steps)  # deleted bits: LLR 0
        ok = np.ones(rows.shape[0], dtype=bool)
        if self.backend == "reference":
            from noisylink.phy.ecc.convolutional.reference import viterbi_decode_reference

            decoded = viterbi_decode_reference(rows, self.k)
        elif self.backend == "torch":
            from noisylink.phy.ecc.convolutional.torch import viterbi_decode_on_device

            decoded = viterbi_decode_on_device(self._tables, rows)
        else:
            decoded = viterbi_decode_numba(self._tables, rows)
        return decoded.reshape(-1), ok
