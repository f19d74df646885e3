"""The codec contract every image codec follows.

Images are ``uint8`` arrays of shape ``[H, W, C]`` with ``C`` 1 (gray) or 3 (RGB).
``encode`` returns the payload (bytes; a classical codec's whole file, headers included),
the number of meaningful bits in it, and side info: what the receiver knows out of band
(image size, codec parameters, model id, seed). ``decode`` gets the possibly corrupted payload
and must either return an image of the side info's shape or raise ``DecodeError``; no other
exception may escape it, whatever the bits.

Side info is never corrupted. It is a frozen ``SideInfo`` dataclass: the picture's ``height``,
``width`` and ``channels``, and what a codec family adds (each family subclasses it and is
``Codec[ThatSideInfo]``). Over MQTT it travels as a JSON object of its fields in declaration
order (``to_json``); ``SideInfo.from_json`` reads one back strictly: the family is the one
whose field names the object holds exactly, and each value must have its field's type and
range (booleans are not numbers); anything else is a one-line ``ValueError``. Every family is
defined by the time any codec module is imported (this package's ``__init__`` imports them
all).

Every codec subclasses ``Codec`` and states, as class attributes that the link reads directly:

- ``always_decodable``: ``decode`` gives a picture for any bits (corrupted, truncated, all
  zeros) and never raises ``DecodeError`` (the diffusion and the learned JSCC codecs).
- ``batches``: ``encode_batch`` and ``decode_batch`` put several images through a model
  together. The transmitter then encodes all images of a codec setting in one call, and the
  receiver decodes up to ``batch_size`` finished streams of one setting in one call. Other
  codecs inherit loops over ``encode``/``decode`` and get their streams one at a time.
- ``uses_model``: runs a neural network, so it gains from a GPU (``bind_device`` names the
  scenario's device; codecs without a model ignore it).
- ``rate_knobs``: the settings that set its rate (``RateKnob``: the field and its range, the
  more bits the higher the value), the one ``noisylink design`` turns by default first; empty
  for a codec of fixed rate. ``rate_range`` narrows a knob's range where the other settings
  bound it, and ``payload_bytes`` gives the payload size without encoding when the setting
  alone fixes it.
- ``importance``: the payload's bit ranges, most important first, for unequal error
  protection (``ecc: {name: unequal}``); by default the whole payload is one range. It may
  depend only on the payload size and the side information, which a receiver has out of band.

"Decoded" means the same for every codec: the codec made a picture from what arrived. A stream
of which no frame arrived (each lost to a failed inband header or dropped after a failed CRC)
is never handed to the codec: the receiver shows mid-gray and records ``decoded = false``
("no frame arrived"), for always-decodable codecs too, because a picture made from no data is
not a decode. So the corruption rate counts the same channel events for every codec, and an
always-decodable codec counts as corrupted exactly when nothing of its stream arrived.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any, ClassVar, Generic, TypeVar

import numpy as np
from numpy.typing import NDArray

from noisylink.registry import ComponentConfig, Registry

Image = NDArray[np.uint8]

MAX_PIXELS = 1 << 28
"""Most pixels a side info's picture may have (Pillow refuses to read images of more than
about 179 million pixels, so no image the project reads comes near it)."""

MAX_TEXT = 4096
"""Longest text field of a side info (a model's folder path)."""

_FAMILIES: list[type[SideInfo]] = []


@dataclass(frozen=True)
class SideInfo:
    """What the receiver knows out of band about one stream (see module docstring)."""

    height: int
    width: int
    channels: int

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _FAMILIES.append(cls)

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(height, width, channels)`` of the picture."""
        return self.height, self.width, self.channels

    def to_json(self) -> dict[str, Any]:
        """The fields as a JSON object, in declaration order (the wire format)."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: object) -> SideInfo:
        """The side info a JSON object describes: of the family whose field names it holds
        exactly (``cls`` itself when called on a family); for anything else a one-line
        ``ValueError`` naming the field (callers say that it is side info)."""
        if not isinstance(data, dict):
            raise ValueError(f"must be a JSON object, got {_brief(data)}")
        families = _FAMILIES if cls is SideInfo else [cls]
        for family in families:
            if set(data) == {item.name for item in fields(family)}:
                return family(**family.fields_from_json(data))
        if cls is not SideInfo:
            names = ", ".join(item.name for item in fields(cls))
            raise ValueError(f"must hold exactly {names}, got {_brief(sorted(data))}")
        raise ValueError(f"fields {_brief(sorted(data))} match no codec's side info")

    @classmethod
    def fields_from_json(cls, data: Mapping[str, object]) -> dict[str, Any]:
        """The checked values of this family's fields in ``data``; families add theirs."""
        height = json_int(data, "height", 1, MAX_PIXELS)
        width = json_int(data, "width", 1, MAX_PIXELS)
        if height * width > MAX_PIXELS:
            raise ValueError(f"{width}x{height} is more than {MAX_PIXELS} pixels")
        return {"height": height, "width": width, "channels": json_choice(data, "channels", (1, 3))}


def _brief(value: object) -> str:
    """``repr(value)``, cut to one short line."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def json_int(data: Mapping[str, object], name: str, low: int, high: int | None) -> int:
    """Side info field ``name``: an integer (not a boolean) in ``low..high`` (no upper bound
    when ``high`` is None)."""
    value = data[name]
    if (
        not isinstance(value, int) or isinstance(value, bool) or value < low
        or (high is not None and value > high)
    ):
        bounds = f"at least {low}" if high is None else f"in {low}..{high}"
        raise ValueError(f"{name} must be an integer {bounds}, got {_brief(value)}")
    return value


def json_choice(data: Mapping[str, object], name: str, choices: Sequence[object]) -> Any:
    """Side info field ``name``: one of ``choices`` (of their own type: 1 is not True)."""
    value = data[name]
    if not any(type(value) is type(choice) and value == choice for choice in choices):
        raise ValueError(
            f"{name} must be one of {', '.join(map(repr, choices))}, got {_brief(value)}"
        )
    return value


def json_text(data: Mapping[str, object], name: str) -> str:
    """Side info field ``name``: a string of at most ``MAX_TEXT`` characters."""
    value = data[name]
    if not isinstance(value, str) or len(value) > MAX_TEXT:
        raise ValueError(
            f"{name} must be a string of at most {MAX_TEXT} characters, "
            f"got {_brief(value)}"
        )
    return value


InfoT = TypeVar("InfoT", bound=SideInfo)


@dataclass(frozen=True)
class RateKnob:
    """A codec setting that sets its rate: the higher the value, the more bits (by and large:
    a search for a budget checks the size it finds). ``integer`` knobs take whole values;
    others are searched down to ``resolution``."""

    field: str
    low: float
    high: float
    integer: bool = True
    resolution: float = 1.0


@dataclass(frozen=True)
class Encoded(Generic[InfoT]):
    """What the transmitter sends (payload) and what the receiver knows anyway (side info)."""

    payload: bytes
    n_bits: int
    side_info: InfoT


#: One received stream as ``decode`` takes it: (payload, n_bits, side info).
Stream = tuple[bytes, int, InfoT]
Segments = tuple[tuple[int, int], ...]  # bit ranges [start, stop) of a payload


class Codec(abc.ABC, Generic[InfoT]):
    """An image codec behind the project's contract (see module docstring)."""

    #: ``decode`` gives a picture for any bits and never raises ``DecodeError``
    always_decodable: ClassVar[bool] = False
    #: ``encode_batch``/``decode_batch`` put several images through a model together
    batches: ClassVar[bool] = False
    #: runs a neural network (gains from a GPU)
    uses_model: ClassVar[bool] = False
    #: the settings that set the rate, the default first (empty: a fixed rate)
    rate_knobs: ClassVar[tuple[RateKnob, ...]] = ()

    config: ComponentConfig

    @abc.abstractmethod
    def encode(self, image: Image) -> Encoded[InfoT]:
        """Compress one ``uint8 [H, W, C]`` image."""

    @abc.abstractmethod
    def decode(self, payload: bytes, n_bits: int, side_info: InfoT) -> Image:
        """The picture in a possibly corrupted payload, or ``DecodeError``."""

    def encode_batch(self, images: Sequence[Image]) -> list[Encoded[InfoT]]:
        """Encode several images, in order (here one by one)."""
        return [self.encode(image) for image in images]

    def decode_batch(self, streams: Sequence[Stream[InfoT]]) -> list[Image]:
        """Decode several streams, in order (here one by one); the first ``DecodeError``
        escapes, and the receiver then decodes the streams one by one."""
        return [self.decode(payload, n_bits, info) for payload, n_bits, info in streams]

    @property
    def batch_size(self) -> int:
        """How many finished streams the receiver hands to ``decode_batch`` at once."""
        return 1

    def bind_device(self, device: str) -> None:
        """Run on the scenario's device ("auto", "cpu", "cuda"); nothing to do without a
        model."""
        return None

    @classmethod
    def rate_range(cls, knob: RateKnob, config: ComponentConfig) -> tuple[float, float]:
        """The values ``knob`` may take with ``config``'s other settings (here its own
        range)."""
        return knob.low, knob.high

    def payload_bytes(self, height: int, width: int, channels: int) -> int | None:
        """The size of every payload this setting gives a picture of this shape, when the
        setting alone fixes it; None when only an encode tells (here)."""
        return None

    def importance(self, n_bits: int, side_info: InfoT) -> Segments:
        """The payload's bit ranges ``[start, stop)``, most important first, covering each of
        its ``n_bits`` bits once: what unequal error protection protects most. A function of
        what a receiver knows out of band (the size and the side information), so both ends
        order the bits alike. Here: the whole payload, one segment."""
        return ((0, n_bits),)


CODECS: Registry[Codec[Any]] = Registry("codec")


def codec_class(name: str) -> type[Codec[Any]]:
    """The class registered as codec ``name``, whose class attributes say what it is."""
    factory = CODECS.entry(name).factory
    if not (isinstance(factory, type) and issubclass(factory, Codec)):
        raise TypeError(f"codec {name!r} is registered with a class that is not a Codec")
    return factory


def gray_image(height: int, width: int, channels: int) -> Image:
    """The mid-gray picture a receiver shows when nothing is decodable."""
    return np.full((height, width, channels), 128, dtype=np.uint8)


def as_hwc(image: NDArray[Any]) -> Image:
    """Normalise an image to ``uint8 [H, W, C]`` with C in {1, 3}."""
    array = np.asarray(image)
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[2] not in (1, 3):
        raise ValueError(f"image must be [H, W] or [H, W, 1|3], got shape {array.shape}")
    if array.dtype != np.uint8:
        raise ValueError(f"image must be uint8, got {array.dtype}")
    return array
