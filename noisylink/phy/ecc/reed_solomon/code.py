"""Reed-Solomon RS(255, k) over GF(256) bytes: the classic burst-tolerant outer code.

Bits: uint8 0/1, MSB first within a byte; LLRs: float, positive means 0. A block is ``k``
information bytes (``8k`` bits) mapped to a 255-byte codeword in commpy's order
(``commpy.ReedSolomonCode(8, k)``): the ``255 - k`` parity bytes, then the ``k`` message
bytes. ``shortened: true`` leaves the last block's zero padding unsent (a shortened code, as
DVB's RS(204,188) is of RS(255,239)); the receiver puts it back as certain zeros. It corrects
``t = (255 - k) // 2`` byte errors, or up to ``255 - k`` erased bytes (a
byte is erased when any of its bits has LLR exactly 0, NaN included: ``decode`` cleans the
LLRs by ``clean_llr``'s rule, on the batched backends within ``llr_to_bytes``'s one pass, and
never raises on channel errors).

The systematic encoder is vectorised here over all blocks at once (a GF(256) parity table,
tested against commpy's encoder). Decoding runs on the chosen ``backend`` (``backends``): the
batched errors-and-erasures decoder of ``numba.py`` (CPU) or ``torch.py`` (any torch device),
which corrects ``2 * errors + erasures <= 255 - k`` and whose ``ok`` words are verified
codewords; or ``reference.py``, commpy's decoders one block at a time.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import ClassVar, Literal

import numpy as np
import pydantic
from commpy import ReedSolomonCode
from numpy.typing import NDArray

from noisylink.phy.ecc.backends import (
    DecoderBackend,
    DecoderConfig,
    ResolvedBackend,
    resolve_backend,
)
from noisylink.phy.ecc.base import (
    ECCS,
    Bits,
    LLRs,
    clean_llr,
    coded_bits_of,
    drop_padding,
    pad_to_blocks,
    restore_padding,
)
from noisylink.phy.ecc.reed_solomon.numba import decode_numba, llr_to_bytes

N_BYTES = 255
CHUNK_BLOCKS = 64  # blocks per vectorised step (bounds memory at a few MB)

Symbols = NDArray[np.int64]


class ReedSolomonConfig(DecoderConfig):
    """``{name: rs, k: 223}``: RS(255, k); common k are 239, 223 (CCSDS), 191."""

    name: Literal["rs"] = "rs"
    k: int = pydantic.Field(223, ge=1, le=253)
    backend: DecoderBackend = "auto"
    shortened: bool = False  # the last block's padding bytes are not sent (known zeros)

    quiet_defaults: ClassVar[tuple[str, ...]] = ("backend", "shortened")


@dataclass(frozen=True)
class _RSTables:
    """commpy's code plus the tables for vectorised encoding and syndromes."""

    code: ReedSolomonCode
    exp: Symbols  # exp[i] = alpha**i, i in [0, 255)
    log: Symbols  # log[alpha**i] = i (log[0] unused)
    parity_log: Symbols  # [k, n-k]: log of x**(n-k+j) mod g(x), coefficient by coefficient
    parity_nonzero: NDArray[np.bool_]
    syndrome_exponent: Symbols  # [255, n-k]: i * j mod 255 for j = 1 .. n-k


@functools.lru_cache(maxsize=16)
def _tables(k: int) -> _RSTables:
    code = ReedSolomonCode(8, k)
    field = code.field
    exp = np.asarray(field.exp(np.arange(N_BYTES)), dtype=np.int64)
    log = np.zeros(N_BYTES + 1, dtype=np.int64)
    log[exp] = np.arange(N_BYTES)
    d = N_BYTES - k
    g_low = np.asarray(code.generator, dtype=np.int64)[:d]  # g is monic of degree d
    # Row j holds x**(d + j) mod g(x); char 2, so x**d mod g = the lower terms of g.
    parity = np.zeros((k, d), dtype=np.int64)
    row = g_low.copy()
    for j in range(k):
        parity[j] = row
        top = int(row[-1])
        row = np.concatenate([[0], row[:-1]])
        if top:
            row = np.bitwise_xor(row, np.asarray(field.multiply(top, g_low)))
    positions = np.arange(N_BYTES)[:, None]
    powers = np.arange(1, d + 1)[None, :]
    return _RSTables(
        code=code,
        exp=exp,
        log=log,
        parity_log=log[parity],
        parity_nonzero=parity != 0,
        syndrome_exponent=(positions * powers) % N_BYTES,
    )


def _gf_dot(
    tables: _RSTables, symbols: Symbols, logs: Symbols, nonzero: NDArray[np.bool_]
) -> Symbols:
    """XOR over axis 1 of ``symbols[b, i] * table[i, j]`` (table given by logs, nonzero)."""
    out = np.zeros((symbols.shape[0], logs.shape[1]), dtype=np.int64)
    for start in range(0, symbols.shape[0], CHUNK_BLOCKS):
        part = symbols[start : start + CHUNK_BLOCKS]
        index = (tables.log[part][:, :, None] + logs[None]) % N_BYTES
        mask = (part != 0)[:, :, None] & nonzero[None]
        terms = np.where(mask, tables.exp[index], 0)
        out[start : start + CHUNK_BLOCKS] = np.bitwise_xor.reduce(terms, axis=1)
    return out


def rs_encode_blocks(k: int, messages: Symbols) -> Symbols:
    """Systematic RS(255, k) codewords (commpy's layout) for messages of shape ``[B, k]``."""
    tables = _tables(k)
    parity = _gf_dot(tables, messages, tables.parity_log, tables.parity_nonzero)
    return np.concatenate([parity, messages], axis=1)


def rs_syndromes(k: int, words: Symbols) -> Symbols:
    """Syndromes ``S_j = r(alpha**j)``, j = 1 .. 255-k, of words ``[B, 255]``; 0 = codeword."""
    tables = _tables(k)
    d = N_BYTES - k
    always = np.ones((N_BYTES, d), dtype=bool)
    return _gf_dot(tables, words, tables.syndrome_exponent, always)


@ECCS.register("rs", ReedSolomonConfig)
class ReedSolomon:
    """RS(255, k) on bytes; ``k`` bits = 8 * k, ``n`` bits = 8 * 255."""

    def __init__(self, config: ReedSolomonConfig):
        self.config = config
        self.k_bytes = config.k
        self.k = 8 * config.k
        self.n = 8 * N_BYTES
        self._tables = _tables(config.k)
        # Bit i of a message sits at codeword bit 8 * (255 - k) + i (parity bytes first).
        self.info_positions = np.arange(8 * (N_BYTES - config.k), self.n, dtype=np.int64)

    @property
    def rate(self) -> float:
        return self.k / self.n

    def coded_bits(self, n_info_bits: int) -> int:
        return coded_bits_of(n_info_bits, self.k, self.n, self.config.shortened)

    def encode(self, bits: Bits) -> Bits:
        info = np.asarray(bits, dtype=np.uint8)
        blocks = pad_to_blocks(info, self.k)
        messages = np.packbits(blocks, axis=1).astype(np.int64)
        codewords = np.unpackbits(rs_encode_blocks(self.k_bytes, messages).astype(np.uint8),
                                  axis=1)
        if self.config.shortened:
            return drop_padding(codewords, info.size, self.info_positions)
        return codewords.reshape(-1)

    @functools.cached_property
    def backend(self) -> ResolvedBackend:
        """The decoder in use: ``auto`` resolves to torch when CUDA is available, else numba."""
        return resolve_backend(self.config.backend)

    def decode(self, llr: LLRs) -> tuple[Bits, NDArray[np.bool_]]:
        if self.config.shortened:
            llr = restore_padding(llr, self.n, self.info_positions)
        if self.backend == "reference":
            from noisylink.phy.ecc.reed_solomon.reference import decode_reference

            rows = clean_llr(llr).reshape(-1, 8 * N_BYTES)
            words, ok = decode_reference(self._tables.code, self.k_bytes, rows)
        else:
            received, erased = llr_to_bytes(llr)  # cleans each LLR as it reads it
            if self.backend == "torch":
                from noisylink.phy.ecc.reed_solomon.torch import decode_on_device

                words, ok = decode_on_device(received, erased, self.k_bytes)
            else:
                words, ok = decode_numba(received, erased, self.k_bytes)
        messages = words[:, N_BYTES - self.k_bytes :]
        return np.unpackbits(messages, axis=1).reshape(-1), ok
