"""The receiver's work on one stream: frames in, one results row out.

Per frame: demodulate, deinterleave, decode the ECC, check the header (inband) and the
payload CRC, keep or drop the chunk. At the stream's end: reassemble the payload (lost
chunks zero-filled), decode the image (mid-gray and ``decoded = false`` when nothing can be
shown), measure picture quality and bandwidth.

A stream of which no frame arrived is not decoded, whatever the codec: mid-gray, ``decoded =
false``, "no frame arrived" (the rule is stated in ``noisylink.codecs.base``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from noisylink.codecs.base import gray_image
from noisylink.errors import DecodeError
from noisylink.link.chain import FrameLayout, LinkChain, PlannedFrame
from noisylink.link.frames import HEADER_BYTES, FrameHeader, reassemble, split_body
from noisylink.link.messages import FrameReceived, StreamStart
from noisylink.metrics import quality_metrics
from noisylink.phy.bits import bytes_to_bits


@dataclass
class StreamReception:
    """Receiver state of one stream."""

    start: StreamStart
    chain: LinkChain
    chunks: dict[int, bytes] = field(default_factory=dict)
    frames_received: int = 0
    frames_crc_failed: int = 0
    frames_lost: int = 0
    ecc_blocks_failed: int = 0
    raw_bit_errors: int = 0
    ecc_decode_s: float = 0.0

    @cached_property
    def plan(self) -> list[PlannedFrame]:
        """The stream's frames, by sequence number (``LinkChain.frame_plan``)."""
        return self.chain.frame_plan(-(-self.start.n_bits // 8))

    @cached_property
    def layouts(self) -> list[FrameLayout]:
        return [self.chain.layout(frame.length, frame.ecc_class) for frame in self.plan]

    @cached_property
    def lengths(self) -> list[int]:
        return [frame.length for frame in self.plan]

    def receive(self, frame: FrameReceived) -> None:
        """Decode one frame and keep its chunk if it may be used."""
        started = time.perf_counter()
        self.frames_received += 1
        self.raw_bit_errors += frame.raw_bit_errors
        lengths = self.lengths
        if not 0 <= frame.seq < len(lengths):
            return
        layout = self.layouts[frame.seq]
        llr = self.chain.demodulate(frame.received, frame.noise_var)
        wire, failed_blocks = self.chain.decode_frame(llr, layout)
        self.ecc_blocks_failed += failed_blocks
        self.ecc_decode_s += time.perf_counter() - started
        header = frame.header
        if self.chain.inband_header:
            header = FrameHeader.unpack(wire[:HEADER_BYTES])
            wire = wire[HEADER_BYTES:]
            if header is None or header.stream_id != self.start.stream.wire_id:
                return
        if header is None or header.length != lengths[header.seq]:
            return
        chunk, crc_ok = split_body(wire, header.length)
        if not crc_ok:
            self.frames_crc_failed += 1
            if self.chain.frames.on_crc_fail == "drop":
                return
        self.chunks[header.seq] = chunk

    @property
    def arrived(self) -> bool:
        """Whether a chunk of the stream arrived (else the codec gets nothing to decode)."""
        return bool(self.chunks)

    @cached_property
    def payload(self) -> bytes:
        """The reassembled payload (lost chunks zero-filled) once every frame is in; counts
        the lost frames."""
        lengths = self.lengths
        self.frames_lost = len(lengths) - len(self.chunks)
        start = self.start
        return self.chain.restore_order(reassemble(self.chunks, lengths), start.n_bits,
                                        start.side_info)

    def finish(
        self, reference: np.ndarray, image_name: str
    ) -> tuple[dict[str, Any], np.ndarray]:
        """Decode the image; its results row (cell columns excluded) and the picture shown."""
        (outcome,) = decode_receptions([self], [reference.shape])
        return self.row(reference, image_name, outcome), outcome.image

    def row(self, reference: np.ndarray, image_name: str, outcome: DecodeOutcome) -> dict[str, Any]:
        """The stream's results row (cell columns excluded) for a decoded picture."""
        lengths = self.lengths
        n_bits = self.start.n_bits
        sent = bytes_to_bits(self.start.truth)[:n_bits]
        got = bytes_to_bits(self.payload)[:n_bits]
        post_errors = int(np.count_nonzero(sent != got))
        height, width, _ = reference.shape
        layouts = self.layouts
        channel_bits = sum(layout.channel_bits for layout in layouts)
        parity_bits = sum(layout.parity_bits for layout in layouts)
        bits_per_symbol = self.chain.bits_per_symbol
        pixels = height * width
        quality = quality_metrics(reference, outcome.image)
        return {
            "trial": self.start.stream.trial,
            "image": image_name,
            "width": width,
            "height": height,
            "source_bits": n_bits,
            "overhead_bits": channel_bits - n_bits - parity_bits,
            "parity_bits": parity_bits,
            "class_parity_bits": "/".join(
                str(sum(layout.parity_bits for layout in layouts if layout.ecc_class == c))
                for c in range(len(self.chain.protection.codes))),
            "channel_bits": channel_bits,
            "channel_uses": channel_bits // bits_per_symbol,
            "bpp_source": n_bits / pixels,
            "bpp_channel": channel_bits / pixels,
            "ecc_overhead": parity_bits / channel_bits,
            "raw_ber": self.raw_bit_errors / channel_bits,
            "post_ber": post_errors / n_bits if n_bits else 0.0,
            "frames": len(lengths),
            "frames_crc_failed": self.frames_crc_failed,
            "frames_lost": self.frames_lost,
            "ecc_blocks_failed": self.ecc_blocks_failed,
            "decoded": outcome.decoded,
            "decode_error": outcome.error,
            **quality,
            "encode_s": self.start.encode_s,
            "ecc_decode_s": self.ecc_decode_s,
            "decode_s": outcome.seconds,
        }


@dataclass(frozen=True)
class DecodeOutcome:
    """The picture a receiver shows for one stream, and whether the codec could decode it."""

    image: np.ndarray
    decoded: bool
    error: str
    seconds: float


def decode_receptions(
    receptions: Sequence[StreamReception], shapes: Sequence[tuple[int, ...]]
) -> list[DecodeOutcome]:
    """Decode finished streams of one codec: those that arrived in one ``decode_batch`` call
    when the codec batches (``Codec.batches``, e.g. the trials of a diffusion codec), else
    one by one. A stream with nothing decodable, or of which no frame arrived, shows
    mid-gray; a codec that breaks its contract is recorded, never fatal."""
    codec = receptions[0].chain.codec
    payloads = [reception.payload for reception in receptions]
    outcomes: list[DecodeOutcome | None] = [None] * len(receptions)
    batch = [
        i for i, reception in enumerate(receptions) if reception.arrived
    ] if codec.batches and len(receptions) > 1 else []
    if batch:
        started = time.perf_counter()
        try:
            images = codec.decode_batch(
                [(payloads[i], receptions[i].start.n_bits, receptions[i].start.side_info)
                 for i in batch]
            )
        except Exception:  # fall back to one by one, which records each stream's error
            images = None
        seconds = (time.perf_counter() - started) / len(batch)
        if images is not None:
            for i, image in zip(batch, images, strict=True):
                if image.shape == tuple(shapes[i]):
                    outcomes[i] = DecodeOutcome(image, True, "", seconds)
    return [
        outcome if outcome is not None else _decode_one(reception, payload, shape)
        for outcome, reception, payload, shape in zip(
            outcomes, receptions, payloads, shapes, strict=True)
    ]


def _decode_one(
    reception: StreamReception, payload: bytes, shape: tuple[int, ...]
) -> DecodeOutcome:
    height, width, channels = shape
    started = time.perf_counter()
    try:
        if not reception.arrived:
            raise DecodeError("no frame arrived")
        image = reception.chain.codec.decode(
            payload, reception.start.n_bits, reception.start.side_info
        )
        if image.shape != tuple(shape):
            raise DecodeError(f"decoded shape {image.shape} != {tuple(shape)}")
        return DecodeOutcome(image, True, "", time.perf_counter() - started)
    except DecodeError as exc:
        error = str(exc)
    except Exception as exc:  # a codec broke its contract: record it, keep the run going
        error = f"{type(exc).__name__}: {exc}"
    return DecodeOutcome(
        gray_image(height, width, channels), False, error, time.perf_counter() - started
    )
