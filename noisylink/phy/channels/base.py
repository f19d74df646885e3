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

from typing import ClassVar, Literal, Protocol

import numpy as np
from numpy.typing import NDArray

from noisylink.registry import ComponentConfig, Registry

ChannelKind = Literal["bits", "symbols"]


class ChannelConfig(ComponentConfig):
    """Settings of a channel; ``sweep_params`` names the settings a study sweeps, in order
    of preference, so results can say which one a cell varies."""

    sweep_params: ClassVar[tuple[str, ...]] = ()


class Channel(Protocol):
    kind: ClassVar[ChannelKind]
    config: ChannelConfig

    def transmit(self, x: NDArray, rng: np.random.Generator): ...


CHANNELS: Registry[Channel] = Registry("channel")
