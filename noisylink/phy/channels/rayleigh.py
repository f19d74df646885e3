"""Block Rayleigh fading with AWGN and perfect-CSI equalisation.

One CN(0, 1) coefficient ``h`` holds for each block of ``block_symbols`` symbols (counted from
the start of the stream, so a block may span chunks); the receiver sees ``h x + n`` with
``n ~ CN(0, N0)`` and, knowing ``h``, returns ``y = (h x + n) / h`` with per-symbol noise
variance ``N0 / |h|²``. The SNR is the average one (E|h|² = 1), given as ``esn0_db`` or
``ebn0_db`` as for AWGN.

Every symbol consumes four normal draws (two for the noise, two for a fresh coefficient that is
used only where a block starts), so the output depends on the stream position alone: sending a
stream in one call or in many chunks gives identical results.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import pydantic
from numpy.typing import ArrayLike, NDArray

from noisylink.phy.channels.awgn import SNRConfig, as_symbols, complex_gaussian, noise_variance
from noisylink.phy.channels.base import CHANNELS, SymbolChannel


class RayleighConfig(SNRConfig):
    """``{name: rayleigh, esn0_db | ebn0_db, block_symbols: 1}``."""

    name: Literal["rayleigh"] = "rayleigh"
    block_symbols: pydantic.PositiveInt = 1


@CHANNELS.register("rayleigh", RayleighConfig)
class Rayleigh(SymbolChannel):
    """``transmit(symbols, rng) -> (equalised symbols, N0 / |h|² per symbol)``."""

    def __init__(self, config: RayleighConfig, bits_per_symbol: int = 1, code_rate: float = 1.0):
        self.config = config
        self.noise_var = noise_variance(config, bits_per_symbol, code_rate)
        self._position = 0  # symbols sent so far in this stream
        self._h = 0j  # coefficient of the block in progress

    def transmit(
        self, x: ArrayLike, rng: np.random.Generator
    ) -> tuple[NDArray[np.complex128], NDArray[np.float64]]:
        """Equalised ``complex128 [n]`` and noise variances ``float64 [n]``."""
        symbols = as_symbols(x)
        n = symbols.size
        draws = complex_gaussian(rng, (n, 2))
        noise = draws[:, 0] * math.sqrt(self.noise_var)
        index = np.arange(n)
        starts = (self._position + index) % self.config.block_symbols == 0
        last_start = np.maximum.accumulate(np.where(starts, index, -1)) if n else index
        h = np.where(last_start >= 0, draws[np.maximum(last_start, 0), 1], self._h)
        if n:
            self._h = complex(h[-1])
        self._position += n
        y = (h * symbols + noise) / h
        return y, self.noise_var / np.abs(h) ** 2
