"""The mean-scale hyperprior (Ballé et al. 2018; Minnen et al. 2018, without the context model).

Transforms, for an RGB picture ``[B, 3, H, W]`` in [0, 1] with H and W multiples of 64:

- analysis g_a: 4 stride-2 5×5 convolutions (3 → N → N → N → M) with GDN between them;
- synthesis g_s: the mirror, transposed convolutions with inverse GDN;
- hyper-analysis h_a: M → N (3×3), then two stride-2 5×5 (leaky ReLU between);
- hyper-synthesis h_s: two stride-2 transposed 5×5 (N → M → 3M/2) and a 3×3 to 2M: the mean
  and scale of each latent element.

The latent y is coded as round(y − μ) under a zero-mean Gaussian of the predicted scale, the
hyper-latent z as round(z) under the factorised prior (``FactorizedPrior``). ``forward`` is the
training pass: additive uniform noise stands in for rounding in the rate, and the synthesis
sees the rounded latent (straight-through), as CompressAI's current recipe does.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from noisylink.codecs.learned.factorized import LIKELIHOOD_FLOOR, FactorizedPrior
from noisylink.codecs.learned.layers import Gdn

SCALE_MIN = 0.11
SCALE_MAX = 256.0
SCALE_LEVELS = 64
STRIDE = 64  # the transforms halve the size six times in all (4 in g_a, 2 in h_a)


@dataclass(frozen=True)
class HyperpriorShape:
    """Channel counts of one model; stored beside its weights."""

    N: int = 128
    M: int = 192

    def to_json(self) -> dict[str, int]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Any) -> HyperpriorShape:
        """A shape from a description file; ValueError (one line) for anything odd."""
        if not isinstance(data, dict) or set(data) != {"N", "M"}:
            raise ValueError("'shape' must hold exactly N, M")
        for name in ("N", "M"):
            value = data[name]
            if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 1024:
                raise ValueError(f"shape.{name} must be an integer in 1..1024, got {value!r}")
        return cls(**data)


def _conv(inputs: int, outputs: int, kernel: int = 5, stride: int = 2) -> nn.Conv2d:
    return nn.Conv2d(inputs, outputs, kernel, stride=stride, padding=kernel // 2)


def _deconv(inputs: int, outputs: int, kernel: int = 5, stride: int = 2) -> nn.ConvTranspose2d:
    return nn.ConvTranspose2d(inputs, outputs, kernel, stride=stride, padding=kernel // 2,
                              output_padding=stride - 1)


def scale_table() -> torch.Tensor:
    """The ``SCALE_LEVELS`` log-spaced scales coding uses, float64."""
    return torch.exp(torch.linspace(torch.log(torch.tensor(SCALE_MIN, dtype=torch.float64)),
                                    torch.log(torch.tensor(SCALE_MAX, dtype=torch.float64)),
                                    SCALE_LEVELS))


def gaussian_likelihood(values: torch.Tensor, scales: torch.Tensor) -> torch.Tensor:
    """Mass of [v − ½, v + ½] under N(0, scale²), from the upper tail side for precision."""
    scales = torch.clamp(scales, min=SCALE_MIN)
    values = torch.abs(values)
    normal = torch.distributions.Normal(0.0, 1.0)
    upper = normal.cdf((0.5 - values) / scales)
    lower = normal.cdf((-0.5 - values) / scales)
    return torch.clamp(upper - lower, min=LIKELIHOOD_FLOOR)


class HyperpriorModel(nn.Module):
    """The four transforms and the hyper-latent's prior."""

    def __init__(self, shape: HyperpriorShape = HyperpriorShape()):
        super().__init__()
        self.shape = shape
        n, m = shape.N, shape.M
        self.g_a = nn.Sequential(_conv(3, n), Gdn(n), _conv(n, n), Gdn(n), _conv(n, n), Gdn(n),
                                 _conv(n, m))
        self.g_s = nn.Sequential(_deconv(m, n), Gdn(n, inverse=True), _deconv(n, n),
                                 Gdn(n, inverse=True), _deconv(n, n), Gdn(n, inverse=True),
                                 _deconv(n, 3))
        self.h_a = nn.Sequential(_conv(m, n, 3, 1), nn.LeakyReLU(), _conv(n, n), nn.LeakyReLU(),
                                 _conv(n, n))
        self.h_s = nn.Sequential(_deconv(n, m), nn.LeakyReLU(), _deconv(m, m * 3 // 2),
                                 nn.LeakyReLU(), _conv(m * 3 // 2, 2 * m, 3, 1))
        self.prior = FactorizedPrior(n)

    def mean_scale(self, z_hat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The latent's predicted mean and scale from the (rounded) hyper-latent."""
        means, scales = self.h_s(z_hat).chunk(2, dim=1)
        return means, scales

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Training pass: the reconstruction and the likelihoods of y and z (for the rate)."""
        y = self.g_a(x)
        z = self.h_a(y)
        z_noisy = z + torch.empty_like(z).uniform_(-0.5, 0.5)
        z_likelihood = self.prior.likelihood(z_noisy)
        z_hat = z + (torch.round(z) - z).detach()
        means, scales = self.mean_scale(z_hat)
        y_noisy = y + torch.empty_like(y).uniform_(-0.5, 0.5)
        y_likelihood = gaussian_likelihood(y_noisy - means, scales)
        y_hat = means + (torch.round(y - means) - (y - means)).detach() + (y - means)
        return {"x_hat": self.g_s(y_hat), "y_likelihood": y_likelihood,
                "z_likelihood": z_likelihood}
