"""NECST and IABF as link codecs: 28x28 gray images to m bits that go straight onto the channel.

The payload is already channel-coded (the model was trained against bit flips), so scenarios
use it with ECC ``none``. Side info (``JsccSideInfo``) names the model and m. Any bits decode:
missing bits read as 0, extra bits are ignored.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
import pydantic

from noisylink.codecs.base import CODECS, Codec, Encoded, SideInfo, as_hwc, json_int, json_text
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
    import torch

    from noisylink.codecs.jscc.model import JsccModel

__all__ = ["IabfCodec", "JsccConfig", "JsccSideInfo", "NecstCodec"]

SIDE = 28
MAX_BITS = 1 << 24  # a model with more bits would have more than 16 million parameters


@dataclass(frozen=True)
class JsccSideInfo(SideInfo):
    """The picture's shape (28x28 gray), the model's folder name and its number of bits."""

    model: str
    bits: int

    @classmethod
    def fields_from_json(cls, data: Mapping[str, object]) -> dict[str, Any]:
        return {
            **super().fields_from_json(data),
            "model": json_text(data, "model"),
            "bits": json_int(data, "bits", 1, MAX_BITS),
        }


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


class _JsccCodec(Codec[JsccSideInfo]):
    """One stream at a time, on the scenario's device; any bits decode
    (``always_decodable``)."""

    always_decodable: ClassVar[bool] = True
    uses_model: ClassVar[bool] = True
    method: str = ""
    config: JsccConfig

    def __init__(self, config: JsccConfig):
        self.config = config
        self.device = "cpu"

    def bind_device(self, device: str) -> None:
        """Run the network on the scenario's device ("auto", "cpu", "cuda")."""
        self.device = device

    @cached_property
    def folder(self) -> Path:
        return model_dir(self.config.weights, self.method, self.config.eps)

    @cached_property
    def bits(self) -> int:
        return int(read_description(self.folder)["shape"]["bits"])

    @cached_property
    def model(self) -> JsccModel:
        from noisylink.codecs.devices import resolve_torch_device

        return load_model(self.folder).to(resolve_torch_device(self.device))

    def _on_device(self, array: np.ndarray) -> torch.Tensor:
        import torch

        return torch.from_numpy(array).to(next(self.model.parameters()).device)

    def encode(self, image: ImageArray) -> Encoded[JsccSideInfo]:
        import torch

        image = as_hwc(image)
        if image.shape != (SIDE, SIDE, 1):
            raise LinkError(
                f"{self.config.name} codes 28x28 gray images, got {image.shape[1]}x"
                f"{image.shape[0]}x{image.shape[2]} (set images: {{size: 28, color: gray}})",
                stage="encode",
            )
        pixels = self._on_device(image.reshape(1, -1).astype(np.float32) / 255.0)
        with torch.no_grad():
            probability = torch.sigmoid(self.model.logits(pixels))[0].cpu()
        if self.config.sampling == "mode":
            bits = (probability > 0.5).numpy()
        else:
            seed = (self.config.seed << 32) ^ zlib.crc32(image.tobytes())
            uniform = np.random.default_rng(seed).random(probability.shape[0])
            bits = uniform < probability.numpy()
        side_info = JsccSideInfo(SIDE, SIDE, 1, model_dir_name(self.method, self.config.eps),
                                 self.bits)
        return Encoded(np.packbits(bits.astype(np.uint8)).tobytes(), self.bits, side_info)

    def decode(self, payload: bytes, n_bits: int, side_info: JsccSideInfo) -> ImageArray:
        import torch

        bits = np.unpackbits(np.frombuffer(payload, dtype=np.uint8))[: self.bits]
        code = np.zeros(self.bits, dtype=np.float32)
        code[: len(bits)] = bits
        with torch.no_grad():
            pixels = self.model.decode(self._on_device(code)[None])[0].cpu().numpy()
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
