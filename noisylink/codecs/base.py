"""The codec contract every image codec follows.

Images are ``uint8`` arrays of shape ``[H, W, C]`` with ``C`` 1 (gray) or 3 (RGB).
``encode`` returns the payload (bytes; a classical codec's whole file, headers included),
the number of meaningful bits in it, and side info: what the receiver knows out of band
(image size, codec parameters, model id, seed). Side info is never corrupted and holds only
JSON-serialisable values. ``decode`` gets the possibly corrupted payload and must either
return an image of the side info's shape or raise ``DecodeError``; no other exception may
escape it, whatever the bits.

Every codec subclasses ``Codec`` and states, as class attributes that the link reads directly:

- ``always_decodable``: ``decode`` gives a picture for any bits (corrupted, truncated, all
  zeros) and never raises ``DecodeError`` (the diffusion and the learned JSCC codecs).
- ``batches``: ``encode_batch`` and ``decode_batch`` put several images through a model
  together. The transmitter then encodes all images of a codec setting in one call, and the
  receiver decodes up to ``batch_size`` finished streams of one setting in one call. Other
  codecs inherit loops over ``encode``/``decode`` and get their streams one at a time.
- ``uses_model``: runs a neural network, so it gains from a GPU (``bind_device`` names the
  scenario's device; codecs without a model ignore it).

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
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from noisylink.registry import ComponentConfig, Registry

Image = NDArray[np.uint8]


@dataclass(frozen=True)
class Encoded:
    """What the transmitter sends (payload) and what the receiver knows anyway (side info)."""

    payload: bytes
    n_bits: int
    side_info: Mapping[str, Any] = field(default_factory=dict)


#: One received stream as ``decode`` takes it: (payload, n_bits, side info).
Stream = tuple[bytes, int, Mapping[str, Any]]


class Codec(abc.ABC):
    """An image codec behind the project's contract (see module docstring)."""

    #: ``decode`` gives a picture for any bits and never raises ``DecodeError``
    always_decodable: ClassVar[bool] = False
    #: ``encode_batch``/``decode_batch`` put several images through a model together
    batches: ClassVar[bool] = False
    #: runs a neural network (gains from a GPU)
    uses_model: ClassVar[bool] = False

    config: ComponentConfig

    @abc.abstractmethod
    def encode(self, image: Image) -> Encoded:
        """Compress one ``uint8 [H, W, C]`` image."""

    @abc.abstractmethod
    def decode(self, payload: bytes, n_bits: int, side_info: Mapping[str, Any]) -> Image:
        """The picture in a possibly corrupted payload, or ``DecodeError``."""

    def encode_batch(self, images: Sequence[Image]) -> list[Encoded]:
        """Encode several images, in order (here one by one)."""
        return [self.encode(image) for image in images]

    def decode_batch(self, streams: Sequence[Stream]) -> list[Image]:
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


CODECS: Registry[Codec] = Registry("codec")


def codec_class(name: str) -> type[Codec]:
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
