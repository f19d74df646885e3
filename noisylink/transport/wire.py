"""The link's messages as bytes: a JSON head, then raw array and byte fields.

Layout: ``u32 head length | head (UTF-8 JSON) | blobs``. The head holds the kind, the scalar
fields and, for each blob, its name, dtype, shape and length; arrays travel as their raw bytes,
so floats arrive bit for bit and an MQTT run equals the in-process run.

Small messages may travel several to a payload (``encode_batch``): ``b"NLKB" | u32 count |
count x (u32 length | message)``. No single message starts with those four bytes (as a head
length they would be over a gigabyte), so ``decode_all`` tells the two apart. A batch is
refused whole when any part of it does not follow this layout or any message in it is not a
message.
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
from noisylink.transport import schema

BATCH_MAGIC = b"NLKB"
MAX_BATCH = 256  # messages in one batch at most


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
                 "side_info": message.side_info.to_json(), "n_frames": message.n_frames,
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


BLOBS: dict[str, dict[str, tuple[bool, bool]]] = {
    "start": {"truth": (False, True)},
    "frame": {"data": (True, True)},
    "received": {"received": (True, True), "noise_var": (True, False)},
    "end": {},
    "finished": {},
}
"""Per kind: the blobs it may carry, each as (is an array, is required)."""


def decode(data: bytes) -> tuple[Message, dict[str, Any]]:
    """The message and its envelope; ``WireError`` for anything that does not follow the
    schema (``noisylink.transport.schema``), whatever the bytes."""
    if len(data) > schema.MAX_MESSAGE_BYTES:
        raise WireError(f"message of {len(data)} bytes (at most {schema.MAX_MESSAGE_BYTES})")
    if len(data) < 4:
        raise WireError("not a noisylink message: shorter than its length field")
    (length,) = struct.unpack_from("!I", data)
    if 4 + length > len(data):
        raise WireError("not a noisylink message: truncated head")
    try:
        head = schema.link_head(schema.parse_json(data[4 : 4 + length]))
    except schema.SchemaError as exc:
        raise WireError(f"not a noisylink message: {exc}") from None
    blobs = _blobs(head, data, 4 + length)
    message: Message
    if isinstance(head, schema.StartHead):
        message = StreamStart(StreamId(*head.stream), head.n_bits, head.side_info,
                              head.n_frames, float(head.encode_s), blobs["truth"])
    elif isinstance(head, schema.FrameHead):
        message = FrameOnAir(StreamId(*head.stream), head.seq, _frame_header(head.header),
                             blobs["data"])
    elif isinstance(head, schema.ReceivedHead):
        noise_var = blobs.get("noise_var", head.noise_var)
        message = FrameReceived(StreamId(*head.stream), head.seq, _frame_header(head.header),
                                blobs["received"], noise_var, head.raw_bit_errors)
    elif isinstance(head, schema.EndHead):
        message = StreamEnd(StreamId(*head.stream))
    else:
        message = Finished()
    return message, head.env.model_dump()


def _frame_header(fields: list[int] | None) -> FrameHeader | None:
    return None if fields is None else FrameHeader(*fields)


def _blobs(head: Any, data: bytes, offset: int) -> dict[str, Any]:
    """The raw fields after the head, each as its spec says, with no byte left over."""
    allowed = BLOBS[head.kind]
    found: dict[str, Any] = {}
    for raw_spec in head.blobs:
        spec = schema.BlobSpec.from_list(raw_spec)
        if spec.name not in allowed or spec.name in found:
            raise WireError(f"not a noisylink message: unexpected blob {spec.name!r}")
        if (spec.dtype is None) == allowed[spec.name][0]:
            raise WireError(f"not a noisylink message: blob {spec.name!r} of the wrong type")
        raw = data[offset : offset + spec.size]
        if len(raw) != spec.size:
            raise WireError("truncated message")
        offset += spec.size
        found[spec.name] = raw if spec.dtype is None else \
            np.frombuffer(raw, spec.dtype).reshape(spec.shape).copy()
    if offset != len(data):
        raise WireError("not a noisylink message: bytes after the last blob")
    missing = [name for name, (_, required) in allowed.items()
               if required and name not in found]
    if missing:
        raise WireError(f"not a noisylink message: missing blob {missing[0]!r}")
    return found


def encode_batch(messages: list[bytes]) -> bytes:
    """Encoded messages (``encode``) as one payload, in order."""
    if not 1 <= len(messages) <= MAX_BATCH:
        raise ValueError(f"a batch holds 1 to {MAX_BATCH} messages, not {len(messages)}")
    parts = [BATCH_MAGIC, struct.pack("!I", len(messages))]
    for message in messages:
        parts += [struct.pack("!I", len(message)), message]
    return b"".join(parts)


def decode_all(data: bytes) -> list[tuple[Message, dict[str, Any]]]:
    """The messages and envelopes of a payload: one message, or the messages of a batch in
    order; ``WireError`` for anything else, whatever the bytes."""
    if not data.startswith(BATCH_MAGIC):
        return [decode(data)]
    if len(data) > schema.MAX_MESSAGE_BYTES:
        raise WireError(f"batch of {len(data)} bytes (at most {schema.MAX_MESSAGE_BYTES})")
    if len(data) < len(BATCH_MAGIC) + 4:
        raise WireError("not a batch: shorter than its count")
    (count,) = struct.unpack_from("!I", data, len(BATCH_MAGIC))
    if not 1 <= count <= MAX_BATCH:
        raise WireError(f"a batch of {count} messages (1 to {MAX_BATCH})")
    offset = len(BATCH_MAGIC) + 4
    decoded = []
    for _ in range(count):
        if offset + 4 > len(data):
            raise WireError("truncated batch")
        (length,) = struct.unpack_from("!I", data, offset)
        offset += 4
        if offset + length > len(data):
            raise WireError("truncated batch")
        decoded.append(decode(data[offset : offset + length]))
        offset += length
    if offset != len(data):
        raise WireError("not a batch: bytes after its last message")
    return decoded
