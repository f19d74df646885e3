"""LDPC codes of IEEE 802.11n (n = 648/1296/1944, rates 1/2..5/6): the modern soft-decision code.

Bits: uint8 0/1; LLRs: float, positive means 0. The standard's prototype matrices
(``ieee80211n.py``) are lifted by commpy (``LDPCCode.from_base_graph``), which also derives a
systematic generator matrix. Building a code is cached per (n, rate). We batch the encoder
(one BLAS product for all blocks, same generator matrix) and check syndromes with a sparse
``H``, so that blocks whose hard decisions already form a codeword skip BP. The others go to
belief propagation (``bp.py``: sum-product or normalised min-sum) on the chosen ``backend``
(``backends``): our batched decoders ``numba.py`` (CPU) or ``torch.py`` (a torch device),
whose flooding schedule reproduces commpy's decoder, or ``reference.py``, commpy's own, one
block at a time; ``schedule: layered`` converges in about half the iterations.
``precision: int16`` (layered min-sum only) picks ``simd.py`` instead: the same rule in 16-bit
fixed point, many frames per SIMD instruction on the CPU (numba, whatever ``auto`` would pick),
several times faster at the same frame error rate, though single words can decide differently
from float64. ``shortened: true`` leaves the last block's zero padding unsent (the standard's
own shortening); the decoder puts it back as certain zeros. ``ok`` means the output satisfies
every parity check (and the block had no more erased bits, LLR exactly 0 or NaN, than parity
bits). ``decode`` cleans the LLRs once (``clean_llr``; the int16 kernel as it reads them) and
never raises on channel errors.

``decode_batch`` is the batched decoder on its own, for any parity-check matrix given as its
Tanner graph (``graph.py``): it picks the backend, the one place that imports ``torch.py``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Literal

import numpy as np
import pydantic
import scipy.sparse
from commpy import LDPCCode
from numpy.typing import ArrayLike, NDArray

from noisylink.phy.ecc.backends import DecoderBackend, DecoderConfig, resolve_backend
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
from noisylink.phy.ecc.ldpc.bp import BPResult, Method, Schedule, default_scale
from noisylink.phy.ecc.ldpc.graph import LDPCGraph, ldpc_graph
from noisylink.phy.ecc.ldpc.ieee80211n import LIFTING, base_matrix
from noisylink.phy.ecc.ldpc.numba import decode_numba
from noisylink.phy.ecc.ldpc.simd import QCLayout, decode_simd, qc_layout

if TYPE_CHECKING:
    import torch

BatchBackend = Literal["auto", "numba", "torch"]
Precision = Literal["float64", "int16"]


class LDPCConfig(DecoderConfig):
    """``{name: ldpc, n: 1944, rate: "1/2", iterations: 20, method: sum-product}``, plus
    ``backend`` (``auto``: torch on CUDA if available, else numba; ``reference``: commpy),
    ``schedule`` (``flooding`` or ``layered``; commpy only floods) and ``precision``
    (``float64``, or ``int16``: the fast CPU decoder, for layered min-sum only)."""

    name: Literal["ldpc"] = "ldpc"
    n: Literal[648, 1296, 1944] = 1944
    rate: Literal["1/2", "2/3", "3/4", "5/6"] = "1/2"
    iterations: int = pydantic.Field(20, ge=1, le=1000)
    method: Method = "sum-product"
    backend: DecoderBackend = "auto"
    schedule: Schedule = "flooding"
    precision: Precision = "float64"
    shortened: bool = False  # the last block's padding bits are not sent (known zeros)

    quiet_defaults: ClassVar[tuple[str, ...]] = ("backend", "schedule", "precision",
                                                  "shortened")

    @pydantic.model_validator(mode="after")
    def _reference_only_floods(self) -> LDPCConfig:
        if self.backend == "reference" and self.schedule != "flooding":
            raise ValueError("backend 'reference' (commpy) supports only schedule 'flooding'")
        return self

    @pydantic.model_validator(mode="after")
    def _int16_is_layered_min_sum_on_the_cpu(self) -> LDPCConfig:
        if self.precision == "int16" and (self.method != "min-sum" or self.schedule != "layered"):
            raise ValueError("precision 'int16' needs method 'min-sum' and schedule 'layered'")
        if self.precision == "int16" and self.backend not in ("auto", "numba"):
            raise ValueError("precision 'int16' runs on the CPU: backend 'auto' or 'numba'")
        return self


@dataclass(frozen=True)
class LDPCTables:
    code: LDPCCode
    generator: NDArray[np.float32]  # [k, n], 0/1, for one exact BLAS product
    parity_check: scipy.sparse.csr_array  # [n - k, n], int32
    graph: LDPCGraph  # edge lists for the batched decoders
    layout: QCLayout  # the prototype's blocks, for the int16 decoder


@functools.lru_cache(maxsize=12)
def build_code(n: int, rate: str) -> LDPCTables:
    """The lifted 802.11n code for (n, rate), built once per process."""
    code = LDPCCode.from_base_graph(base_matrix(n, rate), LIFTING[n])
    return LDPCTables(
        code=code,
        generator=code.G.astype(np.float32),
        parity_check=scipy.sparse.csr_array(code.H.astype(np.int32)),
        graph=ldpc_graph(code.H),
        layout=qc_layout(base_matrix(n, rate), LIFTING[n]),
    )


def syndrome_ok(tables: LDPCTables, words: Bits) -> NDArray[np.bool_]:
    """Per row of ``words`` ``[B, n]``: whether every parity check holds."""
    checks = tables.parity_check @ words.T.astype(np.int32)
    odd: NDArray[np.bool_] = np.any(checks % 2, axis=0)
    return ~odd


# --- batched BP -----------------------------------------------------------------------------


def decode_batch(
    graph: LDPCGraph,
    llr: ArrayLike,
    iterations: int,
    method: Method = "sum-product",
    schedule: Schedule = "flooding",
    backend: BatchBackend = "numba",
    *,
    scale: float | None = None,
    device: str | torch.device | None = None,
) -> BPResult:
    """Decode ``llr`` (``[B, n]``, or anything reshaping to it) with at most ``iterations``
    BP iterations per word. ``scale`` normalises min-sum (default: 0.75 flooding, 0.8
    layered); ``device`` is torch's (default: CUDA if available, else CPU). Never raises on
    bad LLRs (they are cleaned first); bad arguments raise ``ValueError``."""
    if method not in ("sum-product", "min-sum"):
        raise ValueError(f"unknown method {method!r}")
    if schedule not in ("flooding", "layered"):
        raise ValueError(f"unknown schedule {schedule!r}")
    if iterations < 0:
        raise ValueError("iterations must be >= 0")
    rows = clean_llr(llr).reshape(-1, graph.n)
    return decode_cleaned(graph, rows, iterations, method, schedule, backend, scale, device)


def decode_cleaned(
    graph: LDPCGraph,
    rows: NDArray[np.float64],
    iterations: int,
    method: Method,
    schedule: Schedule,
    backend: DecoderBackend,
    scale: float | None = None,
    device: str | torch.device | None = None,
) -> BPResult:
    """``decode_batch`` for LLRs ``[B, n]`` already cleaned (``clean_llr``), method and
    schedule already checked: the one place that picks the batched backend (``auto``,
    ``numba`` or ``torch``; any other is a ``ValueError``)."""
    scale = default_scale(schedule) if scale is None else scale
    if rows.shape[0] == 0:
        return BPResult(
            np.zeros(rows.shape, dtype=np.uint8),
            np.zeros(0, dtype=np.bool_),
            np.zeros(0, dtype=np.int32),
        )
    resolved = resolve_backend(backend)
    if resolved == "torch":
        from noisylink.phy.ecc.ldpc.torch import decode_on_device

        return decode_on_device(graph, rows, iterations, method, schedule, scale, device)
    if resolved != "numba":
        raise ValueError(f"unknown backend {backend!r}")
    return decode_numba(graph, rows, iterations, method == "min-sum", schedule == "layered", scale)


# --- the code -------------------------------------------------------------------------------


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

    def coded_bits(self, n_info_bits: int) -> int:
        return coded_bits_of(n_info_bits, self.k, self.n, self.config.shortened)

    def encode(self, bits: Bits) -> Bits:
        info = np.asarray(bits, dtype=np.uint8)
        blocks = pad_to_blocks(info, self.k)
        products = blocks.astype(np.float32) @ self._tables.generator  # exact: sums < 2**24
        codewords = (products.astype(np.int64) % 2).astype(np.uint8)
        if self.config.shortened:
            return drop_padding(codewords, info.size, self.info_positions)
        return codewords.reshape(-1)

    @functools.cached_property
    def info_positions(self) -> NDArray[np.int64]:
        """Where information bit ``i`` of a block sits in its codeword."""
        return np.asarray(self._tables.code.info_positions, dtype=np.int64)

    def decode(self, llr: LLRs) -> tuple[Bits, NDArray[np.bool_]]:
        config = self.config
        info = self._tables.code.info_positions
        if config.shortened:
            llr = restore_padding(llr, self.n, self.info_positions)
        if config.precision == "int16":  # cleans, refuses and skips codewords on its own
            result = decode_simd(
                self._tables.layout,
                np.asarray(llr),
                config.iterations,
                default_scale("layered"),
                max_erasures=self.n - self.k,
                positions=info,
            )
            return result.words.reshape(-1), result.ok
        rows = clean_llr(llr).reshape(-1, self.n)
        words = (rows < 0).astype(np.uint8)
        decidable = np.count_nonzero(rows == 0, axis=1) <= self.n - self.k
        ok = syndrome_ok(self._tables, words) & decidable
        todo = np.nonzero(~ok & decidable)[0]
        if config.backend == "reference":
            from noisylink.phy.ecc.ldpc.reference import decode_reference

            words[todo], ok[todo] = decode_reference(
                self._tables, rows[todo], config.iterations, config.method
            )
        elif todo.size:
            result = decode_cleaned(
                self._tables.graph,
                rows[todo],
                config.iterations,
                config.method,
                config.schedule,
                config.backend,
            )
            words[todo] = result.words
            ok[todo] = result.ok
        return words[:, info].reshape(-1), ok
