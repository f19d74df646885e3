"""A cell's components wired into the transmit and receive chains of one frame.

Transmit: frame -> wire bytes (header if inband, chunk, CRC-32) -> bits -> ECC -> interleaver
-> (modulation) -> on air. Receive: LLRs -> deinterleaver -> ECC decoding -> wire bits. The
chains are pure functions of their inputs; only the channel holds per-stream state.

A payload is cut into frames by ``frame_plan``: with one code, chunks of ``payload_bytes``;
with unequal protection (``ecc: {name: unequal}``), the payload in the codec's importance order
is split into classes and each class into its own chunks, protected by its class's code
(``FrameLayout.ecc_class``). The plan depends on the payload size alone, so the receiver
derives it as the transmitter does.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
from numpy.typing import NDArray

from noisylink.codecs import CODECS, Codec
from noisylink.codecs.base import SideInfo
from noisylink.errors import LinkError
from noisylink.link.frames import HEADER_BYTES, Frame, chunk_lengths, cut_into_frames
from noisylink.link.ordering import check_segments, from_importance_order, to_importance_order
from noisylink.phy.bits import bits_to_bytes, bytes_to_bits
from noisylink.phy.channels import Channel, NoiseVariance, channel_class
from noisylink.phy.ecc import Protection, protection_of
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
    ecc_class: int = 0  # which of the protection's codes (0 without unequal protection)


@dataclass(frozen=True)
class PlannedFrame:
    """One frame of a stream's plan: its class and its payload bytes."""

    ecc_class: int
    length: int


class LinkChain:
    """The components of one cell; builds channels per stream."""

    def __init__(self, cell: Cell, frames: FramesSpec, device: str = "auto"):
        self.cell = cell
        self.frames = frames
        self.device = device
        self.protection: Protection = protection_of(cell.ecc)
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
            self.cell.channel, bits_per_symbol=self.bits_per_symbol,
            code_rate=self.protection.rate,
        )

    @property
    def inband_header(self) -> bool:
        return self.frames.header == "inband"

    def layout(self, chunk_bytes: int, ecc_class: int = 0) -> FrameLayout:
        """Bit counts of a frame carrying ``chunk_bytes`` payload bytes, protected by the
        code of class ``ecc_class``."""
        code = self.protection.codes[ecc_class]
        wire_bits = 8 * (chunk_bytes + 4 + (HEADER_BYTES if self.inband_header else 0))
        blocks = n_blocks(wire_bits, code.k)
        coded_bits = code.coded_bits(wire_bits)
        interleaved = self.interleaver.padded_length(coded_bits)
        channel_bits = -(-interleaved // self.bits_per_symbol) * self.bits_per_symbol
        return FrameLayout(
            wire_bits, coded_bits, blocks * (code.n - code.k), interleaved, channel_bits,
            ecc_class,
        )

    def frame_plan(self, n_payload_bytes: int) -> list[PlannedFrame]:
        """The frames a payload of ``n_payload_bytes`` is sent in, in order: each class's
        chunks in turn (a class of no bytes has no frame; an empty payload one empty frame)."""
        payload_bytes = self.frames.payload_bytes
        if not self.protection.unequal or n_payload_bytes == 0:
            return [PlannedFrame(0, n) for n in chunk_lengths(n_payload_bytes, payload_bytes)]
        return [PlannedFrame(ecc_class, n)
                for ecc_class, size in enumerate(self.protection.class_bytes(n_payload_bytes))
                if size for n in chunk_lengths(size, payload_bytes)]

    def frame_layouts(self, n_payload_bytes: int) -> list[FrameLayout]:
        """The layout of each frame of a payload of ``n_payload_bytes``, in order."""
        return [self.layout(frame.length, frame.ecc_class)
                for frame in self.frame_plan(n_payload_bytes)]

    def stream_channel_bits(self, n_payload_bytes: int) -> int:
        """Bits on air for a whole payload of ``n_payload_bytes``: each frame's, summed."""
        return sum(layout.channel_bits for layout in self.frame_layouts(n_payload_bytes))

    def segments(self, n_bits: int, side_info: SideInfo) -> tuple[tuple[int, int], ...]:
        """The codec's importance order of a payload (checked), or the payload as it is
        when the protection is equal."""
        if not self.protection.unequal:
            return ((0, n_bits),)
        segments = self.codec.importance(n_bits, side_info)
        check_segments(segments, n_bits)
        return segments

    def packetize(self, payload: bytes, n_bits: int, side_info: SideInfo,
                  stream_id: int) -> list[Frame]:
        """A payload's frames, by ``frame_plan``, its bytes in importance order first when
        the protection is unequal."""
        if self.protection.unequal:
            payload = to_importance_order(payload, n_bits, self.segments(n_bits, side_info))
        plan = self.frame_plan(len(payload))
        return cut_into_frames(payload, [frame.length for frame in plan],
                               [frame.ecc_class for frame in plan], stream_id)

    def restore_order(self, ordered: bytes, n_bits: int, side_info: SideInfo) -> bytes:
        """A reassembled payload back in the codec's order (``packetize`` reordered it when
        the protection is unequal)."""
        if not self.protection.unequal:
            return ordered
        return from_importance_order(ordered, n_bits, self.segments(n_bits, side_info))

    def encode_frame(self, frame: Frame) -> tuple[NDArray[np.generic], FrameLayout]:
        """Bits (bit channels) or symbols (symbol channels) to put on air for one frame."""
        layout = self.layout(len(frame.chunk), frame.ecc_class)
        wire = (frame.header.pack() if self.inband_header else b"") + frame.body()
        coded = self.protection.codes[layout.ecc_class].encode(bytes_to_bits(wire))
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
        bits, ok = self.protection.codes[layout.ecc_class].decode(coded)
        return bits_to_bytes(bits[: layout.wire_bits]), int(np.count_nonzero(~ok))
