"""Gray-mapped BPSK, QPSK, 16-QAM and 64-QAM with hard and soft (LLR) demapping.

The constellations and bit labels come from commpy (``MPSKModulator(2)`` for BPSK,
``MQAMModulator(M)`` for the rest): Gray-mapped, unit average symbol energy, bits MSB first
(for QAM: the in-phase bits, then the quadrature bits). BPSK is the real pair ``0 -> +1``,
``1 -> -1`` stored as complex.

Shapes and dtypes: ``modulate`` takes ``uint8`` bits ``[n]`` with ``n`` a multiple of
``bits_per_symbol`` (the caller pads) and returns ``complex128`` symbols
``[n / bits_per_symbol]``; ``demodulate_hard`` and ``llr`` undo it, bit order preserved.

Noise convention: ``noise_var`` is N0, the variance of the complex noise per symbol with both
dimensions together (N0/2 per real dimension), so ``p(y|s) ∝ exp(-|y - s|² / N0)``. That is
what the channels return (see ``noisylink.phy.channels.base``). commpy's ``soft_demodulate``
computes ``(min_{b=1} |y-s|² - min_{b=0} |y-s|²) / noise_var``, which is the max-log LLR
exactly when its ``noise_var`` is this N0; the ``maxlog`` demapper passes N0 straight through.

LLR sign is the project's: ``ln P(b=0|y) / P(b=1|y)``, positive means 0.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from commpy import Modulator, MPSKModulator, MQAMModulator
from numpy.typing import ArrayLike, NDArray

from noisylink.registry import ComponentConfig, Registry

ModulationName = Literal["bpsk", "qpsk", "16qam", "64qam"]

ORDERS: dict[str, int] = {"bpsk": 2, "qpsk": 4, "16qam": 16, "64qam": 64}
"""Constellation size M per modulation name."""

MIN_NOISE_VAR = 1e-12
"""N0 floor for the demappers: a noiseless channel (N0 = 0) gives large, finite LLRs."""

CHUNK_SYMBOLS = 1 << 10
"""Symbols demapped at a time: the ``[symbols, M]`` work arrays stay in cache (measured
fastest; 16x larger chunks were about 3x slower for 64-QAM)."""


class ModulationConfig(ComponentConfig):
    """``{name: bpsk|qpsk|16qam|64qam, demapper: exact|maxlog}``."""

    name: ModulationName
    demapper: Literal["exact", "maxlog"] = "exact"


class Modulation:
    """A Gray-mapped constellation behind the project's modem API (see module docstring)."""

    def __init__(self, config: ModulationConfig):
        self.config = config
        self.bits_per_symbol: int = bits_per_symbol(config.name)
        self._modem: Modulator = _commpy_modem(config.name)
        self.constellation: NDArray[np.complex128] = self._modem.constellation
        self.bit_labels: NDArray[np.uint8] = self._modem.bit_labels.astype(np.uint8)
        # Constellation indices with bit j equal to 0 (resp. 1): [bits_per_symbol, M/2] each.
        self._zeros = np.array([np.flatnonzero(col == 0) for col in self.bit_labels.T])
        self._ones = np.array([np.flatnonzero(col == 1) for col in self.bit_labels.T])

    def modulate(self, bits: ArrayLike) -> NDArray[np.complex128]:
        """Symbols ``complex128 [n / bits_per_symbol]`` for ``uint8`` bits ``[n]``.

        Raises ValueError when ``n`` is not a multiple of ``bits_per_symbol``.
        """
        bits = np.asarray(bits, dtype=np.uint8)
        if bits.ndim != 1:
            raise ValueError(f"bits must be one-dimensional, got shape {bits.shape}")
        if bits.size % self.bits_per_symbol:
            raise ValueError(
                f"{self.config.name} needs a multiple of {self.bits_per_symbol} bits, "
                f"got {bits.size} (pad before modulating)"
            )
        return np.asarray(self._modem.modulate(bits), dtype=np.complex128)

    def demodulate_hard(self, y: ArrayLike) -> NDArray[np.uint8]:
        """Nearest-point decisions: ``uint8`` bits ``[n * bits_per_symbol]`` for ``y [n]``."""
        y = _symbols(y)
        out = np.empty((y.size, self.bits_per_symbol), dtype=np.uint8)
        for start in range(0, y.size, CHUNK_SYMBOLS):
            bits = self._modem.demodulate(y[start : start + CHUNK_SYMBOLS])
            out[start : start + CHUNK_SYMBOLS] = bits.reshape(-1, self.bits_per_symbol)
        return out.reshape(-1)

    def llr(self, y: ArrayLike, noise_var: float | ArrayLike) -> NDArray[np.float64]:
        """Bit LLRs ``float64 [n * bits_per_symbol]`` for received symbols ``y [n]``.

        ``noise_var`` is N0 per complex symbol (scalar or ``[n]``), floored at
        ``MIN_NOISE_VAR``. The ``exact`` demapper is the log-sum-exp over the constellation;
        ``maxlog`` keeps only the nearest point of each bit value (commpy's soft demapper).
        """
        y = _symbols(y)
        n0 = np.asarray(noise_var, dtype=np.float64)
        if n0.ndim not in (0, 1) or (n0.ndim == 1 and n0.size != y.size):
            raise ValueError(
                f"noise_var must be a scalar or have one value per symbol ({y.size}), "
                f"got shape {n0.shape}"
            )
        n0 = np.maximum(np.broadcast_to(n0, y.shape), MIN_NOISE_VAR)
        out = np.empty((y.size, self.bits_per_symbol), dtype=np.float64)
        for start in range(0, y.size, CHUNK_SYMBOLS):
            stop = start + CHUNK_SYMBOLS
            if self.config.demapper == "maxlog":
                llr = self._modem.soft_demodulate(y[start:stop], n0[start:stop])
                out[start:stop] = llr.reshape(-1, self.bits_per_symbol)
            else:
                out[start:stop] = self._exact_llr(y[start:stop], n0[start:stop])
        return out.reshape(-1)

    def _exact_llr(self, y: NDArray[np.complex128], n0: NDArray[np.float64]) -> NDArray:
        """``[n, bits_per_symbol]`` exact LLRs: ``lse_{b=0}(-d/N0) - lse_{b=1}(-d/N0)``."""
        points = self.constellation
        distance = (y.real[:, None] - points.real) ** 2 + (y.imag[:, None] - points.imag) ** 2
        metric = -distance / n0[:, None]
        return _logsumexp(metric[:, self._zeros]) - _logsumexp(metric[:, self._ones])


MODULATIONS: Registry[Modulation] = Registry("modulation")
for _name in ORDERS:
    MODULATIONS.register(_name, ModulationConfig)(Modulation)


def bits_per_symbol(name: str) -> int:
    """Bits carried by one symbol of the named modulation (1, 2, 4 or 6)."""
    if name not in ORDERS:
        raise ValueError(f"unknown modulation {name!r}; valid: {', '.join(ORDERS)}")
    return ORDERS[name].bit_length() - 1


def _commpy_modem(name: str) -> Modulator:
    """commpy's Gray-mapped, unit-energy modulator for ``name``."""
    if name == "bpsk":
        modem = MPSKModulator(2)
        # exp(j*pi) leaves a 1e-16 imaginary part; BPSK is exactly the real pair +1 / -1.
        modem.constellation = modem.constellation.real.astype(np.complex128)
        return modem
    return MQAMModulator(ORDERS[name])


def _logsumexp(a: NDArray[np.float64]) -> NDArray[np.float64]:
    """``ln sum exp`` over the last axis of finite values, shifted by the maximum for stability
    (scipy's ``logsumexp`` does the same with more checks and was 2x slower here)."""
    peak = a.max(axis=-1)
    return peak + np.log(np.exp(a - peak[..., None]).sum(axis=-1))


def _symbols(y: ArrayLike) -> NDArray[np.complex128]:
    y = np.asarray(y, dtype=np.complex128)
    if y.ndim != 1:
        raise ValueError(f"symbols must be one-dimensional, got shape {y.shape}")
    return y
