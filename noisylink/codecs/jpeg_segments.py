"""The importance order of a JPEG file's bits, for unequal error protection.

``jpeg_importance(payload)`` cuts a JPEG file (the ``jpeg`` codec's payload: the whole file)
into segments and ranks them, most important first. It returns bit ranges ``[start, stop)``
of the payload, in bits (bit ``8 * i`` is the first bit of byte ``i``), that cover every bit
of ``8 * len(payload)`` exactly once, in the order:

1. **Header**: everything before the first scan's entropy-coded data: SOI, the tables (DQT,
   DHT), the frame header (SOF), DRI, and the first scan's own SOS header. Without these
   nothing decodes. (The first SOS header is part of it because its scan cannot be decoded
   without it; the segment ends exactly where the first scan's entropy-coded data starts.)
2. **Scans**: each scan is one contiguous range, from the end of the previous scan's
   entropy-coded data (so it holds the tables and SOS header written just for it; libjpeg
   writes a DHT before each scan of an optimised progressive file) to the end of its own
   entropy-coded data. Restart markers (RSTn) stay inside their scan. Whatever follows the
   last scan (EOI, trailing bytes) belongs to the last scan in the file. The DC scans (SOS
   ``Ss == 0``: the first DC scan and its successive-approximation refinements) come
   before the AC scans (``Ss > 0``), each group in file order. A baseline file has one scan
   per component group, all with ``Ss == 0``, so its scans stay in file order.

It is a pure function on bytes and never raises: a file without SOI or without any SOS
marker (garbage, a cut header) gives one segment, ``((0, 8 * len(payload)),)``, the codec
contract's default. Damage is read through as well as it goes (a file is only ranked at the
transmitter, where it is whole, but the decoder also cuts damaged files into scans to leave
the broken ones out, ``jpeg_scan_pieces``): a marker segment whose length is below 2 or runs
past the end is skipped to the next marker, and an SOS header that cannot be read still
starts a scan (counted as AC). Empty segments are left out (an empty payload gives
``((0, 0),)``).
"""

from __future__ import annotations

__all__ = ["jpeg_importance", "jpeg_scan_pieces", "jpeg_with_scans"]

_SOI = 0xD8
_EOI = 0xD9
_SOS = 0xDA
_TEM = 0x01
_RST = range(0xD0, 0xD8)


def jpeg_importance(payload: bytes) -> tuple[tuple[int, int], ...]:
    """Bit ranges of ``payload``, most important first (see module docstring)."""
    data = bytes(payload)
    whole = ((0, 8 * len(data)),)
    scans = _scans(data)
    if not scans:
        return whole
    # Byte pieces: header [0, first data start); scan i from the end of the previous scan's
    # data (its first one: from its data start) to the end of its data; the tail to the last.
    header = (0, scans[0][2])
    pieces: list[tuple[int, int, bool]] = []  # (start, stop, is_dc)
    for index, (is_dc, _, data_start, data_end) in enumerate(scans):
        start = data_start if index == 0 else scans[index - 1][3]
        stop = len(data) if index == len(scans) - 1 else data_end
        pieces.append((start, stop, is_dc))
    ordered = [header]
    ordered += [(start, stop) for start, stop, is_dc in pieces if is_dc]
    ordered += [(start, stop) for start, stop, is_dc in pieces if not is_dc]
    ranges = tuple((8 * start, 8 * stop) for start, stop in ordered if stop > start)
    return ranges if _covers(ranges, 8 * len(data)) else whole


def jpeg_scan_pieces(payload: bytes) -> tuple[int, tuple[tuple[int, int], ...]] | None:
    """The file cut for dropping scans: where the first scan's SOS marker starts (everything
    before it is the frame's header: tables, SOF, DRI) and each scan's byte range ``[start,
    stop)`` in file order, the first from its SOS marker, each later one from the end of the
    previous scan's entropy-coded data (its own tables and SOS header) to the end of its own.
    What follows the last scan (EOI) is in no piece. None when no scan can be read."""
    data = bytes(payload)
    scans = _scans(data)
    if not scans:
        return None
    pieces = tuple(
        (sos_at if index == 0 else scans[index - 1][3], data_end)
        for index, (_, sos_at, _, data_end) in enumerate(scans)
    )
    return scans[0][1], pieces


def jpeg_with_scans(payload: bytes, header_end: int, pieces: list[tuple[int, int]]) -> bytes:
    """The file made of ``payload``'s header (bytes before ``header_end``), the given scan
    pieces in order, and an EOI marker (pieces as ``jpeg_scan_pieces`` gives them)."""
    data = bytes(payload)
    return data[:header_end] + b"".join(data[start:stop] for start, stop in pieces) + b"\xff\xd9"


def _scans(data: bytes) -> list[tuple[bool, int, int, int]]:
    """Each scan as (is_dc, start of its SOS marker, start and end of its entropy-coded data),
    in file order; empty when the file cannot be read up to its first scan's data."""
    if len(data) < 4 or data[0] != 0xFF or data[1] != _SOI:
        return []
    scans: list[tuple[bool, int, int, int]] = []
    position = 2
    while position < len(data):
        marker_at = _next_marker(data, position)
        if marker_at is None:
            break
        marker = data[marker_at + 1]
        position = marker_at + 2
        if marker == _EOI:
            break
        if marker in (_TEM, _SOI) or marker in _RST:
            continue  # markers without a length (a stray RSTn between scans, say)
        length = int.from_bytes(data[position : position + 2], "big")
        end = position + length
        readable = length >= 2 and end <= len(data)
        if marker == _SOS:
            # a damaged SOS header still starts a scan (an AC scan, for all we know)
            is_dc = _sos_is_dc(data[position + 2 : end]) if readable else None
            data_start = end if readable else min(position + 2, len(data))
            data_end = _entropy_end(data, data_start)
            scans.append((bool(is_dc), marker_at, data_start, data_end))
            position = data_end
            continue
        # a length that cannot be right (damage): go on at the next marker after it
        position = end if readable else position
    return scans


def _next_marker(data: bytes, position: int) -> int | None:
    """Where the next marker (0xFF, then fill bytes 0xFF, then a code) starts at or after
    ``position``; None when there is none. Stray bytes before it are skipped."""
    index = data.find(b"\xff", position)
    while index != -1:
        code_at = index + 1
        while code_at < len(data) and data[code_at] == 0xFF:
            code_at += 1
        if code_at >= len(data):
            return None
        if data[code_at] != 0x00:
            return code_at - 1
        index = data.find(b"\xff", code_at + 1)
    return None


def _sos_is_dc(header: bytes) -> bool | None:
    """Whether an SOS header (the bytes after its length) starts at coefficient 0 (Ss == 0);
    None when it is too short for its component count."""
    if not header:
        return None
    components = header[0]
    ss_at = 1 + 2 * components
    if components == 0 or len(header) < ss_at + 3:
        return None
    return header[ss_at] == 0


def _entropy_end(data: bytes, position: int) -> int:
    """The end of entropy-coded data starting at ``position``: the first marker other than a
    stuffed zero (0xFF00) or a restart marker (RSTn), or the end of the file."""
    while True:
        marker_at = _next_marker(data, position)
        if marker_at is None:
            return len(data)
        if data[marker_at + 1] not in _RST:
            return marker_at
        position = marker_at + 2


def _covers(ranges: tuple[tuple[int, int], ...], n_bits: int) -> bool:
    """Whether ``ranges`` cover ``[0, n_bits)`` exactly once."""
    covered = sorted(ranges)
    cursor = 0
    for start, stop in covered:
        if start != cursor or stop <= start:
            return False
        cursor = stop
    return cursor == n_bits
