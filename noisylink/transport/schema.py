"""The schema of everything that arrives from the broker: every field checked before use.

Anyone who can publish on the broker can send these topics anything, so bytes from the network
are parsed here and nowhere else: JSON of bounded size and depth, then a strict pydantic model
per message kind (no coercion: ``"abc"`` is not a number, ``true`` is not 1, ``1e400`` is not
an int). ``SchemaError`` is the one exception; callers drop and count the message.
"""

from __future__ import annotations

import json
import math
from typing import Annotated, Any, Literal

import numpy as np
import pydantic
from pydantic import ConfigDict, Field, StrictInt, StrictStr
from pydantic_core import PydanticCustomError

from noisylink.codecs.base import SideInfo

MAX_HEAD_BYTES = 1 << 20  # the JSON head of a link message (side info included)
MAX_JSON_DEPTH = 16
MAX_MESSAGE_BYTES = 256 << 20  # a whole payload, the transmitted file included
MAX_COUNT = 1 << 40  # sequence numbers and bit counts
ROLE_NAMES = ("transmitter", "channel", "receiver")
ARRAY_KINDS = "buifc"  # bool, unsigned, signed, float, complex: never object or structured


class SchemaError(ValueError):
    """Bytes that do not follow the schema (the reason is one line)."""


Count = Annotated[StrictInt, Field(ge=0, le=MAX_COUNT)]
Finite = Annotated[float, Field(allow_inf_nan=False, strict=True)]
Name = Annotated[StrictStr, Field(min_length=1, max_length=64)]


class _Strict(pydantic.BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class Envelope(_Strict):
    n: Count


class BlobSpec(_Strict):
    """One raw field after the head: name, byte length, numpy dtype (None: bytes), shape."""

    name: Name
    size: Count
    dtype: StrictStr | None
    shape: list[Count] | None

    @pydantic.model_validator(mode="after")
    def _consistent(self) -> BlobSpec:
        if self.dtype is None:
            if self.shape is not None:
                raise ValueError("a bytes blob has no shape")
            return self
        if self.shape is None or len(self.shape) > 4:
            raise ValueError("an array blob needs a shape of at most 4 dimensions")
        try:
            dtype = np.dtype(self.dtype)
        except TypeError:
            raise ValueError(f"unknown dtype {self.dtype!r}") from None
        if dtype.kind not in ARRAY_KINDS or dtype.fields is not None or dtype.subdtype:
            raise ValueError(f"dtype {self.dtype!r} is not a plain number type")
        if math.prod(self.shape) * dtype.itemsize != self.size:
            raise ValueError(f"{self.size} bytes cannot hold {self.dtype} of shape {self.shape}")
        return self

    @classmethod
    def from_list(cls, value: Any) -> BlobSpec:
        if not isinstance(value, list) or len(value) != 4:
            raise ValueError("a blob is [name, size, dtype, shape]")
        name, size, dtype, shape = value
        return cls(name=name, size=size, dtype=dtype, shape=shape)


StreamField = Annotated[list[Count], Field(min_length=3, max_length=3)]
HeaderField = Annotated[list[Count], Field(min_length=4, max_length=4)]


class _Head(_Strict):
    env: Envelope
    blobs: list[list[Any]] = Field(max_length=4)


def _side_info(value: Any) -> SideInfo:
    """A stream's side info, read strictly by its codec family (``SideInfo.from_json``)."""
    try:
        return SideInfo.from_json(value)
    except ValueError as exc:
        raise PydanticCustomError("side_info", "{reason}", {"reason": str(exc)}) from None


class StartHead(_Head):
    kind: Literal["start"]
    stream: StreamField
    n_bits: Count
    side_info: Annotated[SideInfo, pydantic.PlainValidator(_side_info)]
    n_frames: Count
    encode_s: Finite


class FrameHead(_Head):
    kind: Literal["frame"]
    stream: StreamField
    seq: Count
    header: HeaderField | None


class ReceivedHead(_Head):
    kind: Literal["received"]
    stream: StreamField
    seq: Count
    header: HeaderField | None
    raw_bit_errors: Count
    noise_var: Finite | None = None


class EndHead(_Head):
    kind: Literal["end"]
    stream: StreamField


class FinishedHead(_Head):
    kind: Literal["finished"]


LinkHead = Annotated[
    StartHead | FrameHead | ReceivedHead | EndHead | FinishedHead, Field(discriminator="kind")
]
_LINK_HEAD: pydantic.TypeAdapter[Any] = pydantic.TypeAdapter(LinkHead)


class Ack(_Strict):
    """A link reader's progress: it consumed every message below ``next`` and holds every
    message below ``have``."""

    next: Count
    have: Count

    @pydantic.model_validator(mode="after")
    def _ordered(self) -> Ack:
        if self.next > self.have:
            raise ValueError("next must not exceed have")
        return self


class Status(_Strict):
    """A role's heartbeat: who (role, instance), since when, for which scenario, what state."""

    role: Literal["transmitter", "channel", "receiver"]
    instance: Annotated[StrictStr, Field(min_length=1, max_length=64)]
    state: Literal["running", "done", "clash"]
    since: Finite
    scenario: Annotated[StrictStr, Field(min_length=1, max_length=64)]


Nonce = Annotated[StrictStr, Field(min_length=1, max_length=64)]


class Probe(_Strict):
    """Who runs this run id? (a role that does not know the run's token yet)"""

    kind: Literal["probe"]
    nonce: Nonce


class Answer(_Strict):
    """The receiver's answer to a probe: the run's token travels in the seal around it."""

    kind: Literal["answer"]
    nonce: Nonce
    instance: Nonce
    since: Finite
    scenario: Nonce
    members: dict[Literal["transmitter", "channel"], Nonce] = Field(default_factory=dict)


RunMessage = Annotated[Probe | Answer, Field(discriminator="kind")]
_RUN_MESSAGE: pydantic.TypeAdapter[Any] = pydantic.TypeAdapter(RunMessage)


def check_depth(text: bytes, max_depth: int = MAX_JSON_DEPTH) -> None:
    """Refuse JSON nested deeper than ``max_depth`` before any parser recurses into it."""
    depth = 0
    in_string = escaped = False
    for byte in text:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            if depth > max_depth:
                raise SchemaError(f"JSON nested deeper than {max_depth}")
        elif byte in (0x5D, 0x7D):
            depth -= 1


def parse_json(data: bytes, max_bytes: int = MAX_HEAD_BYTES) -> Any:
    """JSON of at most ``max_bytes`` and bounded depth, else ``SchemaError``."""
    if len(data) > max_bytes:
        raise SchemaError(f"JSON of {len(data)} bytes (at most {max_bytes})")
    check_depth(data)
    try:
        return json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise SchemaError(f"not JSON: {exc}") from None


def _validated(model: Any, value: Any) -> Any:
    try:
        return model.validate_python(value) if isinstance(model, pydantic.TypeAdapter) \
            else model.model_validate(value)
    except pydantic.ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"]) or "message"
        raise SchemaError(f"{where}: {error['msg']}") from None


def link_head(value: Any) -> StartHead | FrameHead | ReceivedHead | EndHead | FinishedHead:
    """The validated head of a link message, its blob specs checked too."""
    head = _validated(_LINK_HEAD, value)
    try:
        for blob in head.blobs:
            BlobSpec.from_list(blob)
    except (ValueError, pydantic.ValidationError) as exc:
        raise SchemaError(f"blobs: {str(exc).splitlines()[0]}") from None
    return head


def ack(data: bytes) -> Ack:
    return _validated(Ack, parse_json(data, 1024))


def status(data: bytes) -> Status:
    return _validated(Status, parse_json(data, 4096))


def run_message(data: bytes) -> Probe | Answer:
    return _validated(_RUN_MESSAGE, parse_json(data, 4096))
