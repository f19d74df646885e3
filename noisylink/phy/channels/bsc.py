"""Binary symmetric channel: each bit flips independently with probability ``ber``.

The flips come from commpy's ``Channels.bsc``; the receiver knows ``ber`` and returns the LLR
``±ln((1-p)/p)`` of each received bit. This module also holds the helpers the other bit
channels share to turn received bits into LLRs.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np
import pydantic
from commpy import Channels
from numpy.typing import ArrayLike, NDArray

from noisylink.phy.channels.base import CHANNELS, BitChannel, ChannelConfig

LLR_CAP = 30.0
"""Largest |LLR| a bit channel reports (a crossover probability of about 1e-13): p = 0 gives
±30 rather than infinity, which every decoder handles."""

LLR_FLOOR = 1e-9
"""Smallest |LLR| for a received (not erased) bit: at p = 0.5 the sign still carries the
received bit, so hard decisions reproduce it; 0 stays reserved for erasures."""


def llr_magnitude(p: float) -> float:
    """``ln((1-p)/p)`` for a crossover probability ``p``, kept within [LLR_FLOOR, LLR_CAP]."""
    if p <= 0.0:
        return LLR_CAP
    if p >= 0.5:
        return LLR_FLOOR
    return float(np.clip(np.log1p(-p) - np.log(p), LLR_FLOOR, LLR_CAP))


def bits_to_llr(received: NDArray[np.uint8], p: float) -> NDArray[np.float64]:
    """LLRs ``float64 [n]`` of received bits through a channel with crossover ``p`` (0 -> +)."""
    return llr_magnitude(p) * (1.0 - 2.0 * received.astype(np.float64))


def as_bits(x: ArrayLike) -> NDArray[np.uint8]:
    """Validate a bit channel's input: one-dimensional 0/1, returned as ``uint8``."""
    bits = np.asarray(x, dtype=np.uint8)
    if bits.ndim != 1:
        raise ValueError(f"bits must be one-dimensional, got shape {bits.shape}")
    return bits


class BSCConfig(ChannelConfig):
    """``{name: bsc, ber: 1e-3}``: crossover probability in [0, 0.5]."""

    sweep_params: ClassVar[tuple[str, ...]] = ("ber",)

    name: Literal["bsc"] = "bsc"
    ber: float = pydantic.Field(1e-3, ge=0.0, le=0.5)


@CHANNELS.register("bsc", BSCConfig)
class BSC(BitChannel):
    """Memoryless bit flips; ``transmit(bits, rng) -> LLRs`` (see module docstring)."""

    def __init__(self, config: BSCConfig, bits_per_symbol: int = 1, code_rate: float = 1.0):
        self.config = config

    def transmit(self, x: ArrayLike, rng: np.random.Generator) -> NDArray[np.float64]:
        """LLRs ``float64 [n]`` for ``uint8`` bits ``[n]``; one uniform draw per bit."""
        bits = as_bits(x)
        received = np.asarray(Channels.bsc(bits, self.config.ber, rng=rng), dtype=np.uint8)
        return bits_to_llr(received, self.config.ber)
