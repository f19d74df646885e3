"""Layers of the hyperprior transforms: GDN (Ballé et al. 2016) and its inverse.

GDN normalises each channel by a learned combination of the squared channels,
y_i = x_i / sqrt(β_i + Σ_j γ_ij x_j²); the inverse (IGDN) multiplies instead. β and γ are kept
non-negative by a square reparametrisation with a small floor, as in Ballé's code.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional

_PEDESTAL = 2.0**-36  # keeps the reparametrised values away from zero's flat gradient


class NonNegative(nn.Module):
    """A parameter stored as sqrt(value + pedestal), read back squared and bounded below."""

    def __init__(self, value: torch.Tensor, minimum: float = 0.0):
        super().__init__()
        self.bound = (minimum + _PEDESTAL) ** 0.5
        self.raw = nn.Parameter(torch.sqrt(torch.clamp(value + _PEDESTAL, min=_PEDESTAL)))

    def forward(self) -> torch.Tensor:
        return torch.clamp(self.raw, min=self.bound) ** 2 - _PEDESTAL


class Gdn(nn.Module):
    """Generalised divisive normalisation over the channels of ``[B, C, H, W]``; IGDN with
    ``inverse``."""

    def __init__(self, channels: int, inverse: bool = False,
                 beta_min: float = 1e-6, gamma_init: float = 0.1):
        super().__init__()
        self.inverse = inverse
        self.beta = NonNegative(torch.ones(channels), minimum=beta_min)
        self.gamma = NonNegative(gamma_init * torch.eye(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        channels = x.shape[1]
        weight = self.gamma().reshape(channels, channels, 1, 1)
        norm = functional.conv2d(x * x, weight, self.beta())
        norm = torch.sqrt(norm)
        return x * norm if self.inverse else x / norm
