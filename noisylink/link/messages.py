"""What travels between the roles: plain dataclasses, one per kind of message.

A stream is one image sent once through one cell (one trial). The transmitter opens it with
``StreamStart``, sends its frames, and closes it with ``StreamEnd``; the channel turns each
``FrameOnAir`` into a ``FrameReceived``; ``Finished`` ends the run. ``StreamStart.truth`` is
the simulation's oracle (the payload as sent), used only to count post-decoding bit errors,
never to decode.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from noisylink.codecs.base import SideInfo
from noisylink.link.frames import FrameHeader


@dataclass(frozen=True)
class StreamId:
    cell: int
    image: int
    trial: int

    @property
    def wire_id(self) -> int:
        """32-bit id written in inband headers."""
        return (self.cell * 1_000_003 + self.image * 7_919 + self.trial) & 0xFFFFFFFF


@dataclass(frozen=True)
class StreamStart:
    stream: StreamId
    n_bits: int
    side_info: SideInfo
    n_frames: int
    encode_s: float
    truth: bytes


@dataclass(frozen=True)
class FrameOnAir:
    """One frame as sent: bits (bit channels) or complex symbols (symbol channels).

    ``header`` is the out-of-band header when headers are ideal, else None. Frame lengths
    are not sent: the receiver derives them from the payload size it knows out of band."""

    stream: StreamId
    seq: int
    header: FrameHeader | None
    data: NDArray[Any]


@dataclass(frozen=True)
class FrameReceived:
    """One frame as received: symbols and noise variance, or LLRs for bit channels."""

    stream: StreamId
    seq: int
    header: FrameHeader | None
    received: NDArray[Any]
    noise_var: NDArray[np.float64] | float | None
    raw_bit_errors: int


@dataclass(frozen=True)
class StreamEnd:
    stream: StreamId


@dataclass(frozen=True)
class Finished:
    """No more streams."""


Message = StreamStart | FrameOnAir | FrameReceived | StreamEnd | Finished
