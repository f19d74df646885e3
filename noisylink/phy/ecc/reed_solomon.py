"""Reed-Solomon RS(255, k) over GF(256) bytes: the classic burst-tolerant outer code.

Wraps ``commpy.ReedSolomonCode(8, k)``. A block is ``k`` information bytes (``8k`` bits,
MSB first) mapped to a 255-byte codeword in commpy's order: the ``255 - k`` parity bytes,
then the ``k`` message bytes. It corrects ``t = (255 - k) // 2`` byte errors, or up to
``255 - k`` erased bytes (a byte is erased when any of its bits has LLR exactly 0).

The systematic encoder is vectorised here over all blocks at once (a GF(256) parity table,
tested against commpy's encoder). Decoding goes to the batched errors-and-erasures decoder of
``rs_decoder`` (``backend``: ``numba`` on CPU, ``torch`` on any torch device, ``auto`` = torch
when CUDA is available, else numba); it corrects ``2 * errors + erasures <= 255 - k`` and its
``ok`` words are verified codewords. ``backend: reference`` keeps the original path: a
vectorised syndrome check lets clean blocks skip decoding, the others go one by one to
commpy's erasure decoder, then its errors-only decoder (milliseconds per block), and each
result is checked to be a codeword before it is believed.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pydantic
from commpy import ReedSolomonCode
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
from noisylink.phy.ecc.rs_decoder import decode_numba, decode_torch, llr_to_bytes

N_BYTES = 255
CHUNK_BLOCKS = 64  # blocks per vectorised step (bounds memory at a few MB)
LLR_LIMIT = 1e6

Symbols = NDArray[np.int64]
class ReedSolomonConfig(DecoderConfig):
    """``{name: rs, k: 223}``: RS(255, k); common k are 239, 223 (CCSDS), 191."""

    name: Literal["rs"] = "rs"
    k: int = pydantic.Field(223, ge=1, le=253)
    backend: DecoderBackend = "auto"


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
    i = np.arange(N_BYTES)[:, None]
    j = np.arange(1, d + 1)[None, :]
    return _RSTables(
        code=code,
        exp=exp,
        log=log,
        parity_log=log[parity],
        parity_nonzero=parity != 0,
        syndrome_exponent=(i * j) % N_BYTES,
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

    @property
    def rate(self) -> float:
        return self.k / self.n

    def encode(self, bits: Bits) -> Bits:
        blocks = pad_to_blocks(np.asarray(bits, dtype=np.uint8), self.k)
        messages = np.packbits(blocks, axis=1).astype(np.int64)
        codewords = rs_encode_blocks(self.k_bytes, messages)
        return np.unpackbits(codewords.astype(np.uint8), axis=1).reshape(-1)

    @functools.cached_property
    def backend(self) -> Literal["numba", "torch", "reference"]:
        """The decoder in use: ``auto`` resolves to torch when CUDA is available, else numba."""
        return resolve_backend(self.config.backend)

    def decode(self, llr: LLRs) -> tuple[Bits, NDArray[np.bool_]]:
        if self.backend == "reference":
            return self._decode_reference(llr)
        words, erased = llr_to_bytes(llr)
        if self.backend == "torch":
            import torch

            device = torch_device()
            decoded, ok_t = decode_torch(
                torch.from_numpy(words).to(device),
                torch.from_numpy(erased).to(device),
                self.k_bytes,
            )
            words, ok = decoded.cpu().numpy(), ok_t.cpu().numpy()
        else:
            words, ok = decode_numba(words, erased, self.k_bytes)
        messages = words[:, N_BYTES - self.k_bytes :]
        return np.unpackbits(messages, axis=1).reshape(-1), ok

    def _decode_reference(self, llr: LLRs) -> tuple[Bits, NDArray[np.bool_]]:
        """The commpy path: clean blocks skip decoding, the others go to commpy one by one."""
        llr = np.asarray(llr, dtype=np.float64).reshape(-1, N_BYTES, 8)
        llr = np.clip(np.nan_to_num(llr, nan=0.0), -LLR_LIMIT, LLR_LIMIT)
        received = np.packbits(llr < 0, axis=2)[:, :, 0].astype(np.int64)
        erased = np.any(llr == 0, axis=2)
        n_erased = erased.sum(axis=1)
        d = N_BYTES - self.k_bytes

        words = received.copy()
        ok = np.all(rs_syndromes(self.k_bytes, received) == 0, axis=1) & (n_erased <= d)
        for b in np.nonzero(~ok & (n_erased <= d))[0]:
            decoded = self._decode_block(received[b], np.nonzero(erased[b])[0])
            if decoded is not None:
                words[b] = decoded
                ok[b] = True
        messages = words[:, d:].astype(np.uint8)
        return np.unpackbits(messages, axis=1).reshape(-1), ok

    def _decode_block(self, word: Symbols, erasures: Symbols) -> Symbols | None:
        """A verified codeword near ``word``, or None: erasures first, then errors only."""
        code = self._tables.code
        attempts = []
        if erasures.size:
            attempts.append(lambda: code.decode_erasures(word, erasures)[1])
        attempts.append(lambda: code.decode(word)[1])
        for attempt in attempts:
            try:
                candidate = np.asarray(attempt(), dtype=np.int64)
            except (ValueError, ArithmeticError, IndexError):
                continue
            if self._is_codeword(candidate):
                return candidate
        return None

    def _is_codeword(self, word: Symbols) -> bool:
        if word.shape != (N_BYTES,) or np.any((word < 0) | (word >= 256)):
            return False
        return not np.any(rs_syndromes(self.k_bytes, word[None]))
