"""The codec contract every image codec follows.

Images are ``uint8`` arrays of shape ``[H, W, C]`` with ``C`` 1 (gray) or 3 (RGB).
``encode`` returns the payload (bytes; a classical codec's whole file, headers included),
the number of meaningful bits in it, and side info: what the receiver knows out of band
(image size, codec parameters, model id, seed). Side info is never corrupted and holds only
JSON-serialisable values. ``decode`` gets the possibly corrupted payload and must either
return an image of the side info's shape or raise ``DecodeError``; no other exception may
escape it, whatever the bits.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

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


class Codec(Protocol):
    """An image codec behind the project's contract (see module docstring)."""

    config: ComponentConfig

    def encode(self, image: Image) -> Encoded: ...

    def decode(self, payload: bytes, n_bits: int, side_info: Mapping[str, Any]) -> Image: ...


CODECS: Registry[Codec] = Registry("codec")


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
