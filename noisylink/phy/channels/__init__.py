"""Channels behind one contract (see ``noisylink.phy.channels.base``).

Importing this package registers every channel in ``CHANNELS``.
"""

from noisylink.phy.channels.awgn import AWGN, AWGNConfig, SNRConfig
from noisylink.phy.channels.base import (
    CHANNELS,
    BitChannel,
    Channel,
    ChannelConfig,
    ChannelKind,
    NoiseVariance,
    SymbolChannel,
    channel_class,
)
from noisylink.phy.channels.bec import BEC, BECConfig
from noisylink.phy.channels.bsc import BSC, LLR_CAP, BSCConfig
from noisylink.phy.channels.gilbert_elliott import GilbertElliott, GilbertElliottConfig
from noisylink.phy.channels.rayleigh import Rayleigh, RayleighConfig

__all__ = [
    "AWGN",
    "BEC",
    "BSC",
    "CHANNELS",
    "LLR_CAP",
    "AWGNConfig",
    "BECConfig",
    "BSCConfig",
    "BitChannel",
    "Channel",
    "ChannelConfig",
    "ChannelKind",
    "GilbertElliott",
    "GilbertElliottConfig",
    "NoiseVariance",
    "Rayleigh",
    "RayleighConfig",
    "SNRConfig",
    "SymbolChannel",
    "channel_class",
]
