"""The channel contract and its registry.

A channel instance serves one stream (one image's transmission in one trial): it is created
per stream, so a bursty channel's Markov state (and a fading channel's block position) carries
across the chunks (frames) of that stream, and never leaks into another. Randomness comes only
from the ``numpy.random.Generator`` passed to ``transmit``.

Bit channels (``kind = "bits"``) take ``uint8`` bits ``[n]`` and return LLRs ``[n]``
(float64, project sign ``ln P(b=0|y)/P(b=1|y)``; ``±ln((1-p)/p)`` for a BSC, 0 for an erasure).

Symbol channels (``kind = "symbols"``) take complex symbols ``[n]`` of unit average energy and
return ``(y, noise_var)``: the received symbols, equalised where the channel fades (perfect
CSI), and the noise variance per complex symbol (N0, both dimensions together; scalar or
``[n]``) that the soft demapper needs.

Every channel class is built as ``Cls(config, bits_per_symbol=..., code_rate=...)``; the two
keywords let a channel given in Eb/N0 convert to Es/N0 = Eb/N0 * code_rate * bits_per_symbol.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from noisylink.registry import ComponentConfig, Registry

ChannelKind = Literal["bits", "symbols"]
NoiseVariance = NDArray[np.float64] | float
"""N0 per complex symbol: one value for a whole frame, or one per symbol (fading)."""


class ChannelConfig(ComponentConfig):
    """Settings of a channel; ``sweep_params`` names the settings a study sweeps, in order
    of preference, so results can say which one a cell varies."""

    sweep_params: ClassVar[tuple[str, ...]] = ()


class BitChannel(ABC):
    """A channel on bits: ``uint8`` bits ``[n]`` in, LLRs ``float64 [n]`` out."""

    kind: ClassVar[Literal["bits"]] = "bits"

    def __init__(self, config: ChannelConfig, bits_per_symbol: int = 1, code_rate: float = 1.0):
        self.config = config

    @abstractmethod
    def transmit(self, x: ArrayLike, rng: np.random.Generator) -> NDArray[np.float64]:
        """LLRs of the bits ``x`` after the channel (project sign; 0 for an erasure)."""


class SymbolChannel(ABC):
    """A channel on complex symbols: unit-energy symbols ``[n]`` in, the received (equalised)
    symbols and the noise variance the soft demapper needs out."""

    kind: ClassVar[Literal["symbols"]] = "symbols"

    def __init__(self, config: ChannelConfig, bits_per_symbol: int = 1, code_rate: float = 1.0):
        self.config = config

    @abstractmethod
    def transmit(
        self, x: ArrayLike, rng: np.random.Generator
    ) -> tuple[NDArray[np.complex128], NoiseVariance]:
        """Received ``complex128 [n]`` and N0 (scalar or ``float64 [n]``)."""


Channel = BitChannel | SymbolChannel
CHANNELS: Registry[Channel] = Registry("channel")


def channel_class(name: str) -> type[BitChannel] | type[SymbolChannel]:
    """The class registered as channel ``name``, whose ``kind`` says what it carries."""
    factory = CHANNELS.entry(name).factory
    if isinstance(factory, type) and issubclass(factory, (BitChannel, SymbolChannel)):
        return factory
    raise TypeError(f"channel {name!r} is registered with a class that is neither a "
                    "BitChannel nor a SymbolChannel")
