"""Binary erasure channel: each bit is erased independently with probability ``p``.

The erasures come from commpy's ``Channels.bec``; an erased bit gets LLR 0, a delivered bit
(always correct) ``±LLR_CAP``.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np
import pydantic
from commpy import Channels
from numpy.typing import ArrayLike, NDArray

from noisylink.phy.channels.base import CHANNELS, BitChannel, ChannelConfig
from noisylink.phy.channels.bsc import LLR_CAP, as_bits


class BECConfig(ChannelConfig):
    """``{name: bec, p: 0.01}``: erasure probability in [0, 1]."""

    sweep_params: ClassVar[tuple[str, ...]] = ("p",)

    name: Literal["bec"] = "bec"
    p: float = pydantic.Field(0.01, ge=0.0, le=1.0)


@CHANNELS.register("bec", BECConfig)
class BEC(BitChannel):
    """Memoryless erasures; ``transmit(bits, rng) -> LLRs`` with 0 where erased."""

    def __init__(self, config: BECConfig, bits_per_symbol: int = 1, code_rate: float = 1.0):
        self.config = config

    def transmit(self, x: ArrayLike, rng: np.random.Generator) -> NDArray[np.float64]:
        """LLRs ``float64 [n]`` for ``uint8`` bits ``[n]``; one uniform draw per bit."""
        bits = as_bits(x)
        out = Channels.bec(bits, self.config.p, erasure_value=-1, rng=rng)
        return np.where(out < 0, 0.0, LLR_CAP * (1.0 - 2.0 * out))
