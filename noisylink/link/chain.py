"""A cell's components wired into the transmit and receive chains of one frame.

Transmit: frame -> wire bytes (header if inband, chunk, CRC-32) -> bits -> ECC -> interleaver
-> (modulation) -> on air. Receive: LLRs -> deinterleaver -> ECC decoding -> wire bits. The
chains are pure functions of their inputs; only the channel holds per-stream state.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
from numpy.typing import NDArray

from noisylink.codecs import CODECS, Codec
from noisylink.codecs.base import SideInfo
from noisylink.errors import LinkError
from noisylink.link.frames import HEADER_BYTES, Frame, chunk_lengths
from noisylink.phy.bits import bits_to_bytes, bytes_to_bits
from noisylink.phy.channels import Channel, NoiseVariance, channel_class
from noisylink.phy.ecc import ECC, ECCS
from noisylink.phy.ecc.base import n_blocks
from noisylink.phy.interleaver import INTERLEAVERS
from noisylink.phy.modulation import MODULATIONS, Modulation
from noisylink.scenarios.grid import Cell
from noisylink.scenarios.schema import FramesSpec


@dataclass(frozen=True)
class FrameLayout:
    """Bit counts of one frame at each stage."""

    wire_bits: int
    coded_bits: int
    parity_bits: int
    interleaved_bits: int
    channel_bits: int


class LinkChain:
    """The components of one cell; builds channels per stream."""

    def __init__(self, cell: Cell, frames: FramesSpec, device: str = "auto"):
        self.cell = cell
        self.frames = frames
        self.device = device
        self.ecc: ECC = ECCS.build(cell.ecc)
        self.interleaver = INTERLEAVERS.build(cell.interleaver)
        # What the channel carries; the grid checked that symbol channels have a modulation.
        self.channel_kind = channel_class(cell.channel.name).kind
        self.modulation = MODULATIONS.build(cell.modulation) if cell.modulation else None
        self.bits_per_symbol = self.modulation.bits_per_symbol if self.modulation else 1

    @cached_property
    def codec(self) -> Codec[SideInfo]:
        codec = CODECS.build(self.cell.codec)
        codec.bind_device(self.device)  # codecs with a model run on the scenario's device
        return codec

    def new_channel(self) -> Channel:
        """A fresh channel for one stream (its own Markov/fading state)."""
        return channel_class(self.cell.channel.name)(
            self.cell.channel, bits_per_symbol=self.bits_per_symbol, code_rate=self.ecc.rate
        )

    @property
    def inband_header(self) -> bool:
        return self.frames.header == "inband"

    def layout(self, chunk_bytes: int) -> FrameLayout:
        """Bit counts of a frame carrying ``chunk_bytes`` payload bytes."""
        wire_bits = 8 * (chunk_bytes + 4 + (HEADER_BYTES if self.inband_header else 0))
        blocks = n_blocks(wire_bits, self.ecc.k)
        coded_bits = blocks * self.ecc.n
        interleaved = self.interleaver.padded_length(coded_bits)
        channel_bits = -(-interleaved // self.bits_per_symbol) * self.bits_per_symbol
        return FrameLayout(
            wire_bits, coded_bits, blocks * (self.ecc.n - self.ecc.k), interleaved, channel_bits
        )

    def stream_channel_bits(self, n_payload_bytes: int) -> int:
        """Bits on air for a whole payload of ``n_payload_bytes``: each frame's, summed."""
        lengths = chunk_lengths(n_payload_bytes, self.frames.payload_bytes)
        return sum(self.layout(length).channel_bits for length in lengths)

    def encode_frame(self, frame: Frame) -> tuple[NDArray[np.generic], FrameLayout]:
        """Bits (bit channels) or symbols (symbol channels) to put on air for one frame."""
        layout = self.layout(len(frame.chunk))
        wire = (frame.header.pack() if self.inband_header else b"") + frame.body()
        coded = self.ecc.encode(bytes_to_bits(wire))
        interleaved = self.interleaver.interleave(coded)
        on_air = np.zeros(layout.channel_bits, dtype=np.uint8)
        on_air[: interleaved.size] = interleaved
        if self.channel_kind == "bits":
            return on_air, layout
        return self.symbol_modulation.modulate(on_air), layout

    @property
    def symbol_modulation(self) -> Modulation:
        """The modulation of a symbol channel's cell."""
        if self.modulation is None:
            raise LinkError(f"cell {self.cell.label}: a symbol channel without a modulation",
                            stage="chain")
        return self.modulation

    def demodulate(
        self, received: NDArray[np.generic], noise_var: NoiseVariance | None
    ) -> NDArray[np.float64]:
        """LLRs of the channel bits (bit channels already deliver LLRs)."""
        if self.channel_kind == "bits":
            return np.asarray(received, dtype=np.float64)
        if noise_var is None:
            raise LinkError("a symbol frame without its noise variance", stage="receiver")
        return self.symbol_modulation.llr(received, noise_var)

    def decode_frame(self, llr: NDArray[np.float64], layout: FrameLayout) -> tuple[bytes, int]:
        """Wire bytes decided from a frame's channel LLRs, and how many ECC blocks failed."""
        interleaved = llr[: layout.interleaved_bits]
        coded = self.interleaver.deinterleave(interleaved, layout.coded_bits)
        bits, ok = self.ecc.decode(coded)
        return bits_to_bytes(bits[: layout.wire_bits]), int(np.count_nonzero(~ok))
