"""The NECST/IABF network: an MLP encoder to m Bernoulli bits and an MLP decoder back to pixels.

Sizes follow the spec (MNIST, 28x28 gray in [0, 1]): encoder 784 -> 500 -> m logits (no bias on
the last layer), decoder m -> 500 -> 500 -> 784 -> sigmoid, leaky ReLU 0.2 between layers.

A shape read from a file goes through ``JsccShape.from_json``: positive integers, and at most
``MAX_PARAMETERS`` parameters in all, so a description declaring absurd sizes is refused before
anything is allocated. ``tensor_shapes`` lists a shape's tensors without allocating them.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
from torch import nn

LEAK = 0.2
MAX_PARAMETERS = 16_000_000
"""Largest model accepted from a file (64 MB in float32; the trained ones have 1.14 million)."""


@dataclass(frozen=True)
class JsccShape:
    """Layer sizes of one model; stored beside its weights."""

    pixels: int = 784
    bits: int = 100
    hidden: int = 500

    def to_json(self) -> dict[str, int]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Any) -> JsccShape:
        """A shape from a description file; ValueError (one line) for anything odd or too big."""
        names = [field.name for field in fields(cls)]
        if not isinstance(data, dict) or set(data) != set(names):
            raise ValueError(f"'shape' must hold exactly {', '.join(names)}")
        for name in names:
            value = data[name]
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"shape.{name} must be a positive integer, got {value!r}")
        shape = cls(**data)
        if shape.parameter_count() > MAX_PARAMETERS:
            raise ValueError(
                f"shape {data} means {shape.parameter_count()} parameters, more than "
                f"{MAX_PARAMETERS}"
            )
        return shape

    def parameter_count(self) -> int:
        """Parameters of a ``JsccModel`` of this shape (weights and biases of its layers)."""
        return sum(math.prod(shape) for shape in tensor_shapes(self).values())


class JsccModel(nn.Module):
    """Encoder logits for the bits, and a decoder from (noisy) bits to pixel means."""

    def __init__(self, shape: JsccShape = JsccShape()):
        super().__init__()
        self.shape = shape
        self.encoder = nn.Sequential(
            nn.Linear(shape.pixels, shape.hidden), nn.LeakyReLU(LEAK),
            nn.Linear(shape.hidden, shape.bits, bias=False),
        )
        self.decoder = nn.Sequential(
            nn.Linear(shape.bits, shape.hidden), nn.LeakyReLU(LEAK),
            nn.Linear(shape.hidden, shape.hidden), nn.LeakyReLU(LEAK),
            nn.Linear(shape.hidden, shape.pixels),
        )

    def logits(self, pixels: torch.Tensor) -> torch.Tensor:
        """Bit logits ℓ for images ``[B, pixels]`` in [0, 1]."""
        return self.encoder(pixels)

    def decode_logits(self, bits: torch.Tensor) -> torch.Tensor:
        """Pixel logits for codes ``[..., bits]`` (0/1 floats)."""
        return self.decoder(bits)

    def decode(self, bits: torch.Tensor) -> torch.Tensor:
        """Pixel means in [0, 1] for codes ``[..., bits]``."""
        return torch.sigmoid(self.decoder(bits))


def tensor_shapes(shape: JsccShape) -> dict[str, tuple[int, ...]]:
    """Name and shape of each tensor of a model of this shape (built on torch's meta device,
    which allocates no memory)."""
    with torch.device("meta"):
        model = JsccModel(shape)
    return {name: tuple(tensor.shape) for name, tensor in model.state_dict().items()}


def code_probability(logits: torch.Tensor, eps: float) -> torch.Tensor:
    """P(received bit = 1) with the BSC folded in: σ(ℓ)(1 − 2ε) + ε."""
    return torch.sigmoid(logits) * (1.0 - 2.0 * eps) + eps


def sample_bsc(bits: torch.Tensor, eps: float, generator: torch.Generator | None = None
               ) -> torch.Tensor:
    """Flip each bit independently with probability ``eps``."""
    flips = torch.rand(bits.shape, generator=generator, device=bits.device) < eps
    return torch.where(flips, 1.0 - bits, bits)
