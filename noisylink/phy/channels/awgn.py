"""Additive white Gaussian noise on unit-energy complex symbols.

The SNR is given as ``esn0_db`` or ``ebn0_db`` (exactly one). With unit average symbol energy,
``N0 = 10^(-Es/N0 / 10)`` and ``Es/N0 = Eb/N0 + 10 log10(code_rate * bits_per_symbol)``, where
Eb is the energy per information bit. The noise is circular complex Gaussian with variance N0
(N0/2 per real dimension); ``transmit`` returns ``(x + noise, N0)``.

commpy's ``Channels.awgn`` scales the noise to the measured power of each call's input, which
would make the noise depend on the data (and on the chunking); here N0 follows the configured
SNR and the contract's unit-energy symbols.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Literal

import numpy as np
import pydantic
from numpy.typing import ArrayLike, NDArray

from noisylink.phy.channels.base import CHANNELS, ChannelConfig, SymbolChannel


class SNRConfig(ChannelConfig):
    """A symbol channel's SNR: exactly one of ``esn0_db`` and ``ebn0_db``."""

    sweep_params: ClassVar[tuple[str, ...]] = ("esn0_db", "ebn0_db")

    esn0_db: pydantic.FiniteFloat | None = None
    ebn0_db: pydantic.FiniteFloat | None = None

    @pydantic.model_validator(mode="after")
    def _exactly_one_snr(self) -> SNRConfig:
        if (self.esn0_db is None) == (self.ebn0_db is None):
            raise ValueError(f"{self.name} needs exactly one of esn0_db or ebn0_db")
        return self

    def params(self) -> dict[str, Any]:
        """Settings other than the name, leaving out the SNR form not given."""
        return self.model_dump(exclude={"name"}, exclude_none=True, mode="json")

    def esn0(self, bits_per_symbol: int, code_rate: float) -> float:
        """Es/N0 in dB, converting from Eb/N0 with the link's bits per symbol and code rate."""
        if self.esn0_db is not None:
            return self.esn0_db
        assert self.ebn0_db is not None
        return self.ebn0_db + 10.0 * math.log10(code_rate * bits_per_symbol)


def noise_variance(config: SNRConfig, bits_per_symbol: int, code_rate: float) -> float:
    """N0 per complex symbol for unit-energy symbols at the configured SNR."""
    if bits_per_symbol < 1 or not 0.0 < code_rate <= 1.0:
        raise ValueError(
            f"need bits_per_symbol >= 1 and 0 < code_rate <= 1, "
            f"got {bits_per_symbol} and {code_rate}"
        )
    return 10.0 ** (-config.esn0(bits_per_symbol, code_rate) / 10.0)


def as_symbols(x: ArrayLike) -> NDArray[np.complex128]:
    """Validate a symbol channel's input: one-dimensional, returned as ``complex128``."""
    symbols = np.asarray(x, dtype=np.complex128)
    if symbols.ndim != 1:
        raise ValueError(f"symbols must be one-dimensional, got shape {symbols.shape}")
    return symbols


def complex_gaussian(rng: np.random.Generator, shape: tuple[int, ...]) -> NDArray[np.complex128]:
    """Circular CN(0, 1) samples (1/2 per real dimension); two normal draws per sample."""
    return rng.standard_normal((*shape, 2)).view(np.complex128)[..., 0] * math.sqrt(0.5)


class AWGNConfig(SNRConfig):
    """``{name: awgn, esn0_db: ..}`` or ``{name: awgn, ebn0_db: ..}``."""

    name: Literal["awgn"] = "awgn"


@CHANNELS.register("awgn", AWGNConfig)
class AWGN(SymbolChannel):
    """``transmit(symbols, rng) -> (symbols + noise, N0)``; two normal draws per symbol."""

    def __init__(self, config: AWGNConfig, bits_per_symbol: int = 1, code_rate: float = 1.0):
        self.config = config
        self.noise_var = noise_variance(config, bits_per_symbol, code_rate)

    def transmit(
        self, x: ArrayLike, rng: np.random.Generator
    ) -> tuple[NDArray[np.complex128], float]:
        """Received ``complex128 [n]`` and the scalar N0 for unit-energy symbols ``[n]``."""
        symbols = as_symbols(x)
        noise = complex_gaussian(rng, symbols.shape) * math.sqrt(self.noise_var)
        return symbols + noise, self.noise_var
