"""The NECST/IABF network: an MLP encoder to m Bernoulli bits and an MLP decoder back to pixels.

Sizes follow the spec (MNIST, 28x28 gray in [0, 1]): encoder 784 -> 500 -> m logits (no bias on
the last layer), decoder m -> 500 -> 500 -> 784 -> sigmoid, leaky ReLU 0.2 between layers.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

LEAK = 0.2


@dataclass(frozen=True)
class JsccShape:
    """Layer sizes of one model; stored beside its weights."""

    pixels: int = 784
    bits: int = 100
    hidden: int = 500

    def to_json(self) -> dict[str, int]:
        return asdict(self)


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


def code_probability(logits: torch.Tensor, eps: float) -> torch.Tensor:
    """P(received bit = 1) with the BSC folded in: σ(ℓ)(1 − 2ε) + ε."""
    return torch.sigmoid(logits) * (1.0 - 2.0 * eps) + eps


def sample_bsc(bits: torch.Tensor, eps: float, generator: torch.Generator | None = None
               ) -> torch.Tensor:
    """Flip each bit independently with probability ``eps``."""
    flips = torch.rand(bits.shape, generator=generator, device=bits.device) < eps
    return torch.where(flips, 1.0 - bits, bits)
