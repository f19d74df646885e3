"""LDPC codes of IEEE 802.11n (n = 648/1296/1944, rates 1/2..5/6): the modern soft-decision code.

The standard's prototype matrices (``ldpc_80211n``) are lifted by commpy
(``LDPCCode.from_base_graph``), which also derives a systematic generator matrix. Building a
code is cached per (n, rate). We batch the encoder (one BLAS product for all blocks, same
generator matrix) and check syndromes with a sparse ``H``, so that blocks whose hard
decisions already form a codeword skip BP. The others go to belief propagation (sum-product
or normalised min-sum) on our LLR sign: by default our batched decoders
(``ldpc_decoders``: numba on the CPU, torch on CUDA when available), whose flooding
schedule reproduces commpy's decoder; ``backend: reference`` runs commpy's own one block at
a time; ``schedule: layered`` converges in about half the iterations. ``ok`` means the output
satisfies every parity check (and the block had no more erased bits, LLR exactly 0, than
parity bits).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import ClassVar, Literal

import numpy as np
import pydantic
import scipy.sparse
from commpy import LDPCCode
from numpy.typing import NDArray

from noisylink.phy.ecc.base import ECCS, Bits, DecoderBackend, DecoderConfig, LLRs, pad_to_blocks
from noisylink.phy.ecc.ldpc_80211n import LIFTING, base_matrix
from noisylink.phy.ecc.ldpc_decoders import LDPCGraph, decode_batch, ldpc_graph

LLR_LIMIT = 1e6


class LDPCConfig(DecoderConfig):
    """``{name: ldpc, n: 1944, rate: "1/2", iterations: 20, method: sum-product}``, plus
    ``backend`` (``auto``: torch on CUDA if available, else numba; ``reference``: commpy) and
    ``schedule`` (``flooding`` or ``layered``; commpy only floods)."""

    name: Literal["ldpc"] = "ldpc"
    n: Literal[648, 1296, 1944] = 1944
    rate: Literal["1/2", "2/3", "3/4", "5/6"] = "1/2"
    iterations: int = pydantic.Field(20, ge=1, le=1000)
    method: Literal["sum-product", "min-sum"] = "sum-product"
    backend: DecoderBackend = "auto"
    schedule: Literal["flooding", "layered"] = "flooding"

    quiet_defaults: ClassVar[tuple[str, ...]] = ("backend", "schedule")

    @pydantic.model_validator(mode="after")
    def _reference_only_floods(self) -> LDPCConfig:
        if self.backend == "reference" and self.schedule != "flooding":
            raise ValueError("backend 'reference' (commpy) supports only schedule 'flooding'")
        return self


@dataclass(frozen=True)
class _LDPCTables:
    code: LDPCCode
    generator: NDArray[np.float32]  # [k, n], 0/1, for one exact BLAS product
    parity_check: scipy.sparse.csr_array  # [n - k, n], int32
    graph: LDPCGraph  # edge lists for the batched decoders


@functools.lru_cache(maxsize=12)
def build_code(n: int, rate: str) -> _LDPCTables:
    """The lifted 802.11n code for (n, rate), built once per process."""
    code = LDPCCode.from_base_graph(base_matrix(n, rate), LIFTING[n])
    return _LDPCTables(
        code=code,
        generator=code.G.astype(np.float32),
        parity_check=scipy.sparse.csr_array(code.H.astype(np.int32)),
        graph=ldpc_graph(code.H),
    )


def syndrome_ok(tables: _LDPCTables, words: Bits) -> NDArray[np.bool_]:
    """Per row of ``words`` ``[B, n]``: whether every parity check holds."""
    checks = tables.parity_check @ words.T.astype(np.int32)
    return ~np.any(checks % 2, axis=0)


@ECCS.register("ldpc", LDPCConfig)
class LDPC:
    """802.11n QC-LDPC code decoded by batched belief propagation (or commpy's)."""

    def __init__(self, config: LDPCConfig):
        self.config = config
        self._tables = build_code(config.n, config.rate)
        self.n = self._tables.code.n
        self.k = self._tables.code.k

    @property
    def rate(self) -> float:
        return self.k / self.n

    def encode(self, bits: Bits) -> Bits:
        blocks = pad_to_blocks(np.asarray(bits, dtype=np.uint8), self.k)
        products = blocks.astype(np.float32) @ self._tables.generator  # exact: sums < 2**24
        return (products.astype(np.int64) % 2).astype(np.uint8).reshape(-1)

    def decode(self, llr: LLRs) -> tuple[Bits, NDArray[np.bool_]]:
        llr = np.asarray(llr, dtype=np.float64).reshape(-1, self.n)
        llr = np.clip(np.nan_to_num(llr, nan=0.0), -LLR_LIMIT, LLR_LIMIT)
        code = self._tables.code
        words = (llr < 0).astype(np.uint8)
        decidable = np.count_nonzero(llr == 0, axis=1) <= self.n - self.k
        ok = syndrome_ok(self._tables, words) & decidable
        todo = np.nonzero(~ok & decidable)[0]
        config = self.config
        if config.backend == "reference":
            for b in todo:
                _, words[b], _ = code.decode(
                    llr[b], max_iter=config.iterations, method=config.method
                )
                ok[b] = syndrome_ok(self._tables, words[b][None])[0]
        elif todo.size:
            result = decode_batch(
                self._tables.graph,
                llr[todo],
                config.iterations,
                config.method,
                config.schedule,
                config.backend,
            )
            words[todo] = result.words
            ok[todo] = result.ok
        return words[:, code.info_positions].reshape(-1), ok
