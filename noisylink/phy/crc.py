"""CRCs for frames: CRC-16/CCITT-FALSE on headers, CRC-32 (IEEE 802.3) on payloads.

Both come from the standard library (``binascii``, ``zlib``): C implementations of the
standard polynomials.
"""

from __future__ import annotations

import binascii
import zlib


def crc16(data: bytes) -> int:
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF): 0x29B1 for b"123456789"."""
    return binascii.crc_hqx(data, 0xFFFF)


def crc32(data: bytes) -> int:
    """CRC-32 (IEEE 802.3, as in zlib/PNG/Ethernet): 0xCBF43926 for b"123456789"."""
    return zlib.crc32(data) & 0xFFFFFFFF
