"""Frames: how a codec's payload is cut up, checked and put back together.

Wire format of one frame (big-endian, fixed fields):

    header (12 bytes)  stream_id u32 | seq u16 | count u16 | length u16 | crc16 u16
    body               payload chunk (``length`` bytes) | crc32 u32 of the chunk

The header's CRC-16 covers its first 10 bytes. With ``header: ideal`` the header travels out
of band and is never corrupted (the setting of the bit-flip papers); with ``inband`` it goes
through the channel with the body, and a frame whose header CRC fails cannot be placed and is
lost. A body whose CRC-32 fails is delivered with its errors or dropped, per scenario; a lost
or dropped chunk is zero-filled so later bytes keep their positions.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from noisylink.phy.crc import crc16, crc32

HEADER_FORMAT = "!IHHH"
HEADER_BYTES = struct.calcsize(HEADER_FORMAT) + 2
CRC_BYTES = 4
MAX_FRAMES = 0xFFFF
MAX_PAYLOAD_BYTES = 0xFFFF


@dataclass(frozen=True)
class FrameHeader:
    stream_id: int
    seq: int
    count: int
    length: int

    def pack(self) -> bytes:
        fields = struct.pack(HEADER_FORMAT, self.stream_id, self.seq, self.count, self.length)
        return fields + struct.pack("!H", crc16(fields))

    @classmethod
    def unpack(cls, data: bytes) -> FrameHeader | None:
        """The header, or None when its CRC fails or its fields are impossible."""
        if len(data) != HEADER_BYTES:
            return None
        fields, (check,) = data[:-2], struct.unpack("!H", data[-2:])
        if crc16(fields) != check:
            return None
        header = cls(*struct.unpack(HEADER_FORMAT, fields))
        if header.count == 0 or header.seq >= header.count:
            return None
        return header


@dataclass(frozen=True)
class Frame:
    header: FrameHeader
    chunk: bytes
    ecc_class: int = 0  # the code protecting it, under unequal protection (``LinkChain``)

    def body(self) -> bytes:
        """Chunk followed by its CRC-32."""
        return self.chunk + struct.pack("!I", crc32(self.chunk))


def chunk_lengths(n_payload_bytes: int, payload_bytes: int) -> list[int]:
    """Lengths of the chunks a payload is cut into (one empty chunk for an empty payload)."""
    if n_payload_bytes == 0:
        return [0]
    full, last = divmod(n_payload_bytes, payload_bytes)
    return [payload_bytes] * full + ([last] if last else [])


def packetize(payload: bytes, payload_bytes: int, stream_id: int) -> list[Frame]:
    """Cut a payload into frames of at most ``payload_bytes`` bytes each."""
    lengths = chunk_lengths(len(payload), payload_bytes)
    return cut_into_frames(payload, lengths, [0] * len(lengths), stream_id)


def cut_into_frames(
    payload: bytes, lengths: list[int], ecc_classes: list[int], stream_id: int
) -> list[Frame]:
    """The frames of a payload cut into chunks of these lengths, in order, each protected by
    its class's code."""
    if len(lengths) > MAX_FRAMES:
        raise ValueError(f"payload needs {len(lengths)} frames; at most {MAX_FRAMES}")
    frames, start = [], 0
    for seq, (length, ecc_class) in enumerate(zip(lengths, ecc_classes, strict=True)):
        header = FrameHeader(stream_id, seq, len(lengths), length)
        frames.append(Frame(header, payload[start : start + length], ecc_class))
        start += length
    return frames


def split_body(body: bytes, length: int) -> tuple[bytes, bool]:
    """The chunk of a received body and whether its CRC-32 holds."""
    chunk, check = body[:length], body[length : length + CRC_BYTES]
    return chunk, struct.pack("!I", crc32(chunk)) == check


def reassemble(chunks: dict[int, bytes], lengths: list[int]) -> bytes:
    """Payload from received chunks by sequence number; missing chunks become zeros."""
    return b"".join(chunks.get(seq, bytes(length)) for seq, length in enumerate(lengths))
