"""NECST and IABF as link codecs: 28x28 gray images to m bits that go straight onto the channel.

The payload is already channel-coded (the model was trained against bit flips), so scenarios
use it with ECC ``none``. Side info names the model and m. Any bits decode: missing bits read
as 0, extra bits are ignored.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
import pydantic

from noisylink.codecs.base import CODECS, Codec, Encoded, as_hwc
from noisylink.codecs.base import Image as ImageArray
from noisylink.codecs.jscc.weights import (
    BUNDLED_EPS,
    load_model,
    model_dir,
    model_dir_name,
    read_description,
)
from noisylink.errors import LinkError
from noisylink.registry import ComponentConfig

if TYPE_CHECKING:  # torch loads on first encode/decode, not at start-up
    from noisylink.codecs.jscc.model import JsccModel

__all__ = ["IabfCodec", "JsccConfig", "NecstCodec"]

SIDE = 28


class JsccConfig(ComponentConfig):
    """Which trained model to use, and how the encoder turns bit probabilities into bits.

    ``sampling: sample`` draws each bit from Bernoulli(σ(ℓ)) as the models were trained and
    evaluated (seeded by ``seed`` and the image, so encoding is repeatable); ``mode`` sends
    the more likely value.
    """

    eps: float = pydantic.Field(0.1, gt=0, lt=0.5, description="flip probability trained for")
    weights: str = pydantic.Field("bundled", description="'bundled' or a folder of models")
    sampling: Literal["sample", "mode"] = "sample"
    seed: int = pydantic.Field(0, ge=0)

    @pydantic.model_validator(mode="after")
    def _bundled_eps(self) -> JsccConfig:
        if self.weights == "bundled" and not any(abs(self.eps - e) < 1e-9 for e in BUNDLED_EPS):
            raise ValueError(
                f"no bundled model for eps={self.eps:g}: choose one of "
                f"{', '.join(f'{e:g}' for e in BUNDLED_EPS)}, or give 'weights'"
            )
        return self

    def label(self) -> str:
        changed = self.model_dump(exclude={"name"}, exclude_defaults=True, mode="json")
        inner = ",".join(f"{key}={value}" for key, value in {"eps": self.eps, **changed}.items())
        return f"{self.name}({inner})"


class _JsccCodec(Codec):
    """One stream at a time, on the CPU; any bits decode (``always_decodable``)."""

    always_decodable: ClassVar[bool] = True
    uses_model: ClassVar[bool] = True
    method: str = ""
    config: JsccConfig

    def __init__(self, config: JsccConfig):
        self.config = config

    @cached_property
    def folder(self) -> Path:
        return model_dir(self.config.weights, self.method, self.config.eps)

    @cached_property
    def bits(self) -> int:
        return int(read_description(self.folder)["shape"]["bits"])

    @cached_property
    def model(self) -> JsccModel:
        return load_model(self.folder)

    def encode(self, image: ImageArray) -> Encoded:
        import torch

        image = as_hwc(image)
        if image.shape != (SIDE, SIDE, 1):
            raise LinkError(
                f"{self.config.name} codes 28x28 gray images, got {image.shape[1]}x"
                f"{image.shape[0]}x{image.shape[2]} (set images: {{size: 28, color: gray}})",
                stage="encode",
            )
        pixels = torch.from_numpy(image.reshape(1, -1).astype(np.float32) / 255.0)
        with torch.no_grad():
            probability = torch.sigmoid(self.model.logits(pixels))[0]
        if self.config.sampling == "mode":
            bits = (probability > 0.5).numpy()
        else:
            seed = (self.config.seed << 32) ^ zlib.crc32(image.tobytes())
            uniform = np.random.default_rng(seed).random(probability.shape[0])
            bits = uniform < probability.numpy()
        side_info = {
            "height": SIDE, "width": SIDE, "channels": 1,
            "model": model_dir_name(self.method, self.config.eps), "bits": self.bits,
        }
        return Encoded(np.packbits(bits.astype(np.uint8)).tobytes(), self.bits, side_info)

    def decode(self, payload: bytes, n_bits: int, side_info: Mapping[str, Any]) -> ImageArray:
        import torch

        bits = np.unpackbits(np.frombuffer(payload, dtype=np.uint8))[: self.bits]
        code = np.zeros(self.bits, dtype=np.float32)
        code[: len(bits)] = bits
        with torch.no_grad():
            pixels = self.model.decode(torch.from_numpy(code)[None])[0].numpy()
        picture = np.clip(np.rint(pixels * 255.0), 0, 255).astype(np.uint8)
        return picture.reshape(SIDE, SIDE, 1)


@CODECS.register("necst", JsccConfig)
class NecstCodec(_JsccCodec):
    """NECST (Choi et al., 2019): trained against random flips at the model's ε."""

    method = "necst"


@CODECS.register("iabf", JsccConfig)
class IabfCodec(_JsccCodec):
    """IABF (Song et al., 2020): trained against adversarial flips, with an infomax term."""

    method = "iabf"
