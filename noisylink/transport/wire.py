"""The link's messages as bytes: a JSON head, then raw array and byte fields.

Layout: ``u32 head length | head (UTF-8 JSON) | blobs``. The head holds the kind, the scalar
fields and, for each blob, its name, dtype, shape and length; arrays travel as their raw bytes,
so floats arrive bit for bit and an MQTT run equals the in-process run.
"""

from __future__ import annotations

import json
import struct
from typing import Any

import numpy as np

from noisylink.link.frames import FrameHeader
from noisylink.link.messages import (
    Finished,
    FrameOnAir,
    FrameReceived,
    Message,
    StreamEnd,
    StreamId,
    StreamStart,
)


class WireError(ValueError):
    """Bytes that are not a message of this version."""


def _stream(stream: StreamId) -> list[int]:
    return [stream.cell, stream.image, stream.trial]


def _header(header: FrameHeader | None) -> list[int] | None:
    if header is None:
        return None
    return [header.stream_id, header.seq, header.count, header.length]


def encode(message: Message, **envelope: Any) -> bytes:
    """``message`` as bytes; ``envelope`` fields (e.g. a sequence number) ride in the head."""
    head: dict[str, Any] = {"env": envelope}
    blobs: list[tuple[str, bytes, str | None, list[int] | None]] = []

    def add_array(name: str, value: Any) -> None:
        array = np.ascontiguousarray(value)
        blobs.append((name, array.tobytes(), array.dtype.str, list(array.shape)))

    if isinstance(message, StreamStart):
        head |= {"kind": "start", "stream": _stream(message.stream), "n_bits": message.n_bits,
                 "side_info": dict(message.side_info), "n_frames": message.n_frames,
                 "encode_s": message.encode_s}
        blobs.append(("truth", bytes(message.truth), None, None))
    elif isinstance(message, FrameOnAir):
        head |= {"kind": "frame", "stream": _stream(message.stream), "seq": message.seq,
                 "header": _header(message.header)}
        add_array("data", message.data)
    elif isinstance(message, FrameReceived):
        head |= {"kind": "received", "stream": _stream(message.stream), "seq": message.seq,
                 "header": _header(message.header), "raw_bit_errors": message.raw_bit_errors}
        add_array("received", message.received)
        if message.noise_var is None or isinstance(message.noise_var, float | int):
            head["noise_var"] = message.noise_var
        else:
            add_array("noise_var", message.noise_var)
    elif isinstance(message, StreamEnd):
        head |= {"kind": "end", "stream": _stream(message.stream)}
    elif isinstance(message, Finished):
        head |= {"kind": "finished"}
    else:  # pragma: no cover - the Message union is closed
        raise TypeError(f"not a link message: {type(message).__name__}")
    head["blobs"] = [[name, len(data), dtype, shape] for name, data, dtype, shape in blobs]
    text = json.dumps(head, separators=(",", ":")).encode()
    return struct.pack("!I", len(text)) + text + b"".join(data for _, data, _, _ in blobs)


def decode(data: bytes) -> tuple[Message, dict[str, Any]]:
    """The message and its envelope; ``WireError`` for anything else."""
    try:
        (length,) = struct.unpack_from("!I", data)
        head = json.loads(data[4 : 4 + length])
        offset = 4 + length
        blobs: dict[str, Any] = {}
        for name, size, dtype, shape in head["blobs"]:
            raw = data[offset : offset + size]
            if len(raw) != size:
                raise WireError("truncated message")
            offset += size
            blobs[name] = raw if dtype is None else np.frombuffer(raw, dtype).reshape(shape).copy()
        kind = head["kind"]
        stream = StreamId(*head["stream"]) if "stream" in head else None
        header = FrameHeader(*head["header"]) if head.get("header") is not None else None
        message: Message
        if kind == "start":
            message = StreamStart(stream, head["n_bits"], head["side_info"], head["n_frames"],
                                  head["encode_s"], blobs["truth"])
        elif kind == "frame":
            message = FrameOnAir(stream, head["seq"], header, blobs["data"])
        elif kind == "received":
            noise_var = blobs.get("noise_var", head.get("noise_var"))
            message = FrameReceived(stream, head["seq"], header, blobs["received"], noise_var,
                                    head["raw_bit_errors"])
        elif kind == "end":
            message = StreamEnd(stream)
        elif kind == "finished":
            message = Finished()
        else:
            raise WireError(f"unknown message kind {kind!r}")
    except WireError:
        raise
    except (struct.error, ValueError, KeyError, TypeError, IndexError) as exc:
        raise WireError(f"not a noisylink message: {exc}") from None
    return message, head.get("env", {})
