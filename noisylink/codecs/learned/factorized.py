"""The factorised density of the hyper-latent z (Ballé et al. 2018, appendix 6.1).

Each channel has its own cumulative c(x), a small monotone network (1 → 3 → 3 → 3 → 1 with
non-negative weights and tanh "kinks"), so P(z = k) = c(k + ½) − c(k − ½) for integer k. For
coding, ``pmf_table`` evaluates it on the integers of ``[-radius, radius]`` per channel, in
float64 on the CPU, so the encoder and decoder always build the same table.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional

FILTERS = (3, 3, 3)
INIT_SCALE = 10.0
LIKELIHOOD_FLOOR = 1e-9


class FactorizedPrior(nn.Module):
    """Per-channel learned density of integer-valued (or noisy) ``[B, C, H, W]`` tensors."""

    def __init__(self, channels: int):
        super().__init__()
        self.channels = channels
        sizes = (1, *FILTERS, 1)
        scale = INIT_SCALE ** (1 / (len(sizes) - 1))
        self.matrices = nn.ParameterList()
        self.biases = nn.ParameterList()
        self.factors = nn.ParameterList()
        for k in range(len(sizes) - 1):
            init = math.log(math.expm1(1 / scale / sizes[k + 1]))
            self.matrices.append(nn.Parameter(torch.full((channels, sizes[k + 1], sizes[k]), init)))
            self.biases.append(nn.Parameter(torch.rand(channels, sizes[k + 1], 1) - 0.5))
            if k < len(sizes) - 2:
                self.factors.append(nn.Parameter(torch.zeros(channels, sizes[k + 1], 1)))

    def logits_cumulative(self, values: torch.Tensor) -> torch.Tensor:
        """Logit of c(x) for ``values`` of shape ``[C, 1, n]`` (one row of points per channel),
        computed in the dtype and on the device of ``values``."""
        x = values

        def cast(parameter: torch.Tensor) -> torch.Tensor:
            return parameter.to(device=x.device, dtype=x.dtype)

        for k, (matrix, bias) in enumerate(zip(self.matrices, self.biases, strict=True)):
            x = torch.matmul(functional.softplus(cast(matrix)), x) + cast(bias)
            if k < len(self.factors):
                x = x + torch.tanh(cast(self.factors[k])) * torch.tanh(x)
        return x

    def likelihood(self, z: torch.Tensor) -> torch.Tensor:
        """P of each element of ``z`` ``[B, C, H, W]`` as the mass of [z − ½, z + ½]."""
        batch, channels, height, width = z.shape
        points = z.permute(1, 0, 2, 3).reshape(channels, 1, -1)
        lower = self.logits_cumulative(points - 0.5)
        upper = self.logits_cumulative(points + 0.5)
        sign = -torch.sign(lower + upper).detach()  # evaluate in the tail with more precision
        mass = torch.abs(torch.sigmoid(sign * upper) - torch.sigmoid(sign * lower))
        mass = mass.reshape(channels, batch, height, width).permute(1, 0, 2, 3)
        return torch.clamp(mass, min=LIKELIHOOD_FLOOR)

    @torch.no_grad()
    def pmf_table(self, radius: int) -> torch.Tensor:
        """``[C, 2·radius + 1]`` float64 probabilities of the integers −radius … radius, each
        at least ``LIKELIHOOD_FLOOR`` and every row summing to 1."""
        support = torch.arange(-radius, radius + 1, dtype=torch.float64)
        points = support.expand(self.channels, 1, -1)
        lower = self.logits_cumulative(points - 0.5)
        upper = self.logits_cumulative(points + 0.5)
        sign = -torch.sign(lower + upper)
        mass = torch.abs(torch.sigmoid(sign * upper) - torch.sigmoid(sign * lower))[:, 0, :]
        mass = torch.clamp(mass, min=LIKELIHOOD_FLOOR)
        return mass / mass.sum(-1, keepdim=True)
