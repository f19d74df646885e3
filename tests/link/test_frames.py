"""Frames: header round trip and CRC, packetizing, reassembly with lost chunks."""

from __future__ import annotations

import pytest

from noisylink.link.frames import (
    HEADER_BYTES,
    FrameHeader,
    chunk_lengths,
    packetize,
    reassemble,
    split_body,
)
from noisylink.phy.crc import crc16, crc32


def test_crc_check_values() -> None:
    assert crc16(b"123456789") == 0x29B1
    assert crc32(b"123456789") == 0xCBF43926


def test_header_round_trip_and_corruption() -> None:
    header = FrameHeader(stream_id=0xDEADBEEF, seq=3, count=9, length=1000)
    packed = header.pack()
    assert len(packed) == HEADER_BYTES == 12
    assert FrameHeader.unpack(packed) == header
    for byte in range(HEADER_BYTES):
        for bit in range(8):
            corrupted = bytearray(packed)
            corrupted[byte] ^= 1 << bit
            assert FrameHeader.unpack(bytes(corrupted)) is None


def test_header_with_impossible_fields_is_rejected() -> None:
    assert FrameHeader.unpack(FrameHeader(1, seq=5, count=5, length=3).pack()) is None
    assert FrameHeader.unpack(b"short") is None


@pytest.mark.parametrize(("size", "chunk", "expected"), [
    (0, 10, [0]), (10, 10, [10]), (25, 10, [10, 10, 5]), (3, 1024, [3]),
])
def test_chunk_lengths(size: int, chunk: int, expected: list[int]) -> None:
    assert chunk_lengths(size, chunk) == expected


def test_packetize_split_and_reassemble() -> None:
    payload = bytes(range(256)) * 9
    frames = packetize(payload, 1000, stream_id=42)
    assert [f.header.seq for f in frames] == [0, 1, 2]
    assert all(f.header.count == 3 for f in frames)
    chunks = {}
    for frame in frames:
        chunk, ok = split_body(frame.body(), frame.header.length)
        assert ok
        chunks[frame.header.seq] = chunk
    assert reassemble(chunks, chunk_lengths(len(payload), 1000)) == payload
    del chunks[1]
    rebuilt = reassemble(chunks, chunk_lengths(len(payload), 1000))
    assert len(rebuilt) == len(payload)
    assert rebuilt[1000:2000] == bytes(1000)
    assert rebuilt[2000:] == payload[2000:]


def test_body_crc_detects_a_flip() -> None:
    frame = packetize(b"hello world", 64, stream_id=1)[0]
    body = bytearray(frame.body())
    body[3] ^= 0x10
    chunk, ok = split_body(bytes(body), frame.header.length)
    assert not ok
    assert len(chunk) == frame.header.length
