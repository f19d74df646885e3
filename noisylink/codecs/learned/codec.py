"""``hyperprior``: the mean-scale hyperprior as a link codec, with a real bitstream.

Payload layout (all little-endian)::

    "HP"  version(1)  quality(1)  height(2)  width(2)  z_words(2)  | z words | y words

``z_words`` counts the 32-bit words of the hyper-latent's ANS stream; the latent's stream is
the rest (zero-padded to whole words). Bit flips act on it as on a file: a flip in a stream
desynchronises that stream's decoder from there on, and a flip in z also changes every scale
the latent is decoded with. The decoder never raises on the streams (any words decode to some
latent, see ``coding``); only a header that cannot be parsed, or that disagrees with the side
info (magic, version, quality, size, a z length past the end), is ``DecodeError``.

Pictures are padded (edge-replicated) to multiples of 64 for the transforms and cropped back.
Gray pictures go through as three equal channels and come back as their mean.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pydantic

from noisylink.codecs.base import (
    CODECS,
    Codec,
    Encoded,
    RateKnob,
    SideInfo,
    as_hwc,
    json_int,
    json_text,
)
from noisylink.codecs.base import Image as ImageArray
from noisylink.codecs.learned.weights import available_qualities, load_model, quality_dir
from noisylink.errors import DecodeError, LinkError
from noisylink.registry import ComponentConfig

if TYPE_CHECKING:  # torch loads on first encode/decode, not at start-up
    import torch

    from noisylink.codecs.learned.model import HyperpriorModel

__all__ = ["HyperpriorCodec", "HyperpriorConfig", "HyperpriorSideInfo"]

MAGIC = b"HP"
VERSION = 1
HEADER = struct.Struct("<2sBBHHH")
MAX_QUALITY = 255
MAX_SIDE = 65535


@dataclass(frozen=True)
class HyperpriorSideInfo(SideInfo):
    """The picture's shape, the models folder ('bundled' or a path) and the rate point."""

    model: str
    quality: int

    @classmethod
    def fields_from_json(cls, data: Mapping[str, object]) -> dict[str, Any]:
        return {
            **super().fields_from_json(data),
            "model": json_text(data, "model"),
            "quality": json_int(data, "quality", 1, MAX_QUALITY),
        }


class HyperpriorConfig(ComponentConfig):
    """Which rate point (``quality``, 1 = lowest rate) of which models folder."""

    quality: int = pydantic.Field(1, ge=1, le=MAX_QUALITY, description="rate point, 1 = lowest")
    model: str = pydantic.Field("bundled", description="'bundled' or a folder of quality-K models")

    @pydantic.model_validator(mode="after")
    def _quality_exists(self) -> HyperpriorConfig:
        qualities = available_qualities(self.model)
        if not qualities:
            where = "the package" if self.model == "bundled" else self.model
            raise ValueError(f"no hyperprior models (quality-K folders) in {where}; train "
                             "them with 'noisylink train-learned'")
        if self.quality not in qualities:
            raise ValueError(f"no quality {self.quality} model: choose one of "
                             f"{', '.join(str(q) for q in qualities)}")
        return self


def pack_payload(quality: int, height: int, width: int, z_words: np.ndarray,
                 y_words: np.ndarray) -> bytes:
    """Header, then the two word streams (see module docstring)."""
    if len(z_words) > 0xFFFF:
        raise LinkError(f"hyper-latent stream of {len(z_words)} words does not fit the header",
                        stage="encode")
    header = HEADER.pack(MAGIC, VERSION, quality, height, width, len(z_words))
    return (header + z_words.astype("<u4").tobytes() + y_words.astype("<u4").tobytes())


def unpack_payload(payload: bytes, side_info: HyperpriorSideInfo
                   ) -> tuple[np.ndarray, np.ndarray]:
    """The z and y word streams; ``DecodeError`` for a header that cannot be parsed."""
    if len(payload) < HEADER.size:
        raise DecodeError("hyperprior header truncated")
    magic, version, quality, height, width, z_count = HEADER.unpack_from(payload)
    if magic != MAGIC or version != VERSION:
        raise DecodeError("not a hyperprior stream (magic or version)")
    if (quality, height, width) != (side_info.quality, side_info.height, side_info.width):
        raise DecodeError("hyperprior header disagrees with the side info")
    body = payload[HEADER.size:]
    if 4 * z_count > len(body):
        raise DecodeError("hyperprior header declares more hyper-latent words than arrived")
    z_words = np.frombuffer(body[: 4 * z_count], dtype="<u4").astype(np.uint32)
    rest = body[4 * z_count:]
    rest = rest + b"\0" * (-len(rest) % 4)
    y_words = np.frombuffer(rest, dtype="<u4").astype(np.uint32)
    return z_words, y_words


def padded_size(side: int) -> int:
    from noisylink.codecs.learned.model import STRIDE

    return -(-side // STRIDE) * STRIDE


@CODECS.register("hyperprior", HyperpriorConfig)
class HyperpriorCodec(Codec[HyperpriorSideInfo]):
    """The mean-scale hyperprior at one rate point. It runs on the CPU (the entropy models
    must match at both ends, see ``coding``), so it does not ask for a GPU (``uses_model``)."""

    rate_knobs: ClassVar[tuple[RateKnob, ...]] = (RateKnob("quality", 1, MAX_QUALITY),)
    config: HyperpriorConfig

    def __init__(self, config: HyperpriorConfig):
        self.config = config

    @classmethod
    def rate_range(cls, knob: RateKnob, config: ComponentConfig) -> tuple[float, float]:
        """The qualities the models folder holds (they must be consecutive to be searched)."""
        model = config.model if isinstance(config, HyperpriorConfig) else "bundled"
        qualities = available_qualities(model)
        return (min(qualities), max(qualities)) if qualities else (knob.low, knob.high)

    @cached_property
    def folder(self) -> Path:
        return quality_dir(self.config.model, self.config.quality)

    @cached_property
    def model(self) -> HyperpriorModel:
        return load_model(self.folder)

    def _pixels(self, image: ImageArray) -> torch.Tensor:
        import torch
        from torch.nn import functional

        rgb = np.repeat(image, 3, axis=2) if image.shape[2] == 1 else image
        x = torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1))).float()[None] / 255.0
        height, width = image.shape[:2]
        pad = (0, padded_size(width) - width, 0, padded_size(height) - height)
        return functional.pad(x, pad, mode="replicate")

    def encode(self, image: ImageArray) -> Encoded[HyperpriorSideInfo]:
        import torch

        from noisylink.codecs.learned.coding import encode_latents

        image = as_hwc(image)
        height, width, channels = image.shape
        if height > MAX_SIDE or width > MAX_SIDE:
            raise LinkError(f"hyperprior codes pictures up to {MAX_SIDE} pixels a side",
                            stage="encode")
        with torch.no_grad():
            y = self.model.g_a(self._pixels(image))[0]
        z_words, y_words = encode_latents(self.model, y)
        payload = pack_payload(self.config.quality, height, width, z_words, y_words)
        side_info = HyperpriorSideInfo(height, width, channels, self.config.model,
                                       self.config.quality)
        return Encoded(payload, 8 * len(payload), side_info)

    def decode(self, payload: bytes, n_bits: int, side_info: HyperpriorSideInfo) -> ImageArray:
        import torch

        from noisylink.codecs.learned.coding import decode_latents

        z_words, y_words = unpack_payload(payload, side_info)
        latent_hw = (padded_size(side_info.height) // 16, padded_size(side_info.width) // 16)
        y_hat = decode_latents(self.model, z_words, y_words, latent_hw)
        with torch.no_grad():
            x_hat = self.model.g_s(y_hat[None])[0, :, : side_info.height, : side_info.width]
        pixels = np.clip(np.rint(x_hat.numpy().transpose(1, 2, 0) * 255.0), 0, 255)
        if side_info.channels == 1:
            pixels = np.rint(pixels.mean(axis=2, keepdims=True))
        return pixels.astype(np.uint8)
