"""Entropy coding of the hyperprior's latents with constriction's ANS coder.

One picture gives two streams of 32-bit words: the hyper-latent z (rounded, clamped to
±``Z_RADIUS``) under the factorised prior's per-channel table, then the latent as
round(y − μ) (clamped to ±``Y_RADIUS``) under a zero-mean quantised Gaussian whose scale is
the predicted one snapped up to the ``scale_table`` (64 log-spaced levels, as CompressAI's
tables). μ only shifts the decoded values, never the coding tables.

Encoder and decoder must build the same tables, so the entropy models (h_a, h_s and the
factorised prior) run one picture at a time (batch 1) on the CPU in float32 at both ends,
whatever batch the transforms use.

constriction's ANS decoder accepts any words: corrupted, truncated or random streams decode to
some symbols in range (measured: 300 fuzzed streams, never an error), which is what a
desynchronised decoder should do. Its one refusal, a stream ending in a zero word (which an
encoder never writes), is avoided by dropping trailing zero words (``noisylink.codecs.ans``).
CompressAI's rANS decoder was measured reading past its buffer on such input (a segfault on
100 KB of 0xFF bytes, run-to-run different values from 1–3 byte streams), so it is not used.
"""

from __future__ import annotations

import numpy as np
import torch
from numpy.typing import NDArray

from noisylink.codecs.ans import ans_decoder
from noisylink.codecs.learned.model import HyperpriorModel, scale_table

Z_RADIUS = 32
Y_RADIUS = 255

Words = NDArray[np.uint32]


def _z_probabilities(model: HyperpriorModel, z_shape: tuple[int, int, int]) -> NDArray[np.float64]:
    """Per-symbol probability rows for a ``[C, h, w]`` hyper-latent in C, h, w order."""
    table = model.prior.pmf_table(Z_RADIUS).numpy()
    _, height, width = z_shape
    return np.repeat(table, height * width, axis=0)


def _coding_scales(scales: torch.Tensor) -> NDArray[np.float64]:
    """The predicted scales snapped up to the scale table (float64, flattened)."""
    table = scale_table()
    index = torch.bucketize(scales.detach().to(torch.float64).flatten(), table)
    return table[index.clamp(max=len(table) - 1)].numpy()


@torch.no_grad()
def _means_scales(model: HyperpriorModel, z_hat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """h_s on the CPU, one picture, float32: identical at both ends."""
    hyper = model.h_s.to("cpu", torch.float32)
    means, scales = hyper(z_hat.to("cpu", torch.float32)[None]).chunk(2, dim=1)
    return means[0], scales[0]


@torch.no_grad()
def encode_latents(model: HyperpriorModel, y: torch.Tensor) -> tuple[Words, Words]:
    """The z and y word streams of one picture's latent ``[M, h, w]`` (from g_a)."""
    import constriction

    y = y.to("cpu", torch.float32)
    z = model.h_a.to("cpu", torch.float32)(y[None])[0]
    z_hat = torch.clamp(torch.round(z), -Z_RADIUS, Z_RADIUS)
    z_symbols = (z_hat + Z_RADIUS).to(torch.int32).flatten().numpy()
    z_coder = constriction.stream.stack.AnsCoder()
    z_coder.encode_reverse(z_symbols, constriction.stream.model.Categorical(perfect=False),
                           _z_probabilities(model, tuple(z_hat.shape)))
    means, scales = _means_scales(model, z_hat)
    y_symbols = torch.clamp(torch.round(y - means), -Y_RADIUS, Y_RADIUS)
    y_coder = constriction.stream.stack.AnsCoder()
    stds = _coding_scales(scales)
    y_coder.encode_reverse(y_symbols.to(torch.int32).flatten().numpy(),
                           constriction.stream.model.QuantizedGaussian(-Y_RADIUS, Y_RADIUS),
                           np.zeros_like(stds), stds)
    return z_coder.get_compressed(), y_coder.get_compressed()


@torch.no_grad()
def decode_latents(
    model: HyperpriorModel, z_words: Words, y_words: Words, latent_hw: tuple[int, int]
) -> torch.Tensor:
    """The latent ``[M, h, w]`` that the two word streams (possibly corrupted) decode to."""
    import constriction

    height, width = latent_hw
    z_shape = (model.shape.N, height // 4, width // 4)
    z_model = constriction.stream.model.Categorical(perfect=False)
    z_symbols = ans_decoder(z_words).decode(z_model, _z_probabilities(model, z_shape))
    z_hat = torch.from_numpy(z_symbols.astype(np.float32)).reshape(z_shape) - Z_RADIUS
    means, scales = _means_scales(model, z_hat)
    stds = _coding_scales(scales)
    y_model = constriction.stream.model.QuantizedGaussian(-Y_RADIUS, Y_RADIUS)
    y_symbols = ans_decoder(y_words).decode(y_model, np.zeros_like(stds), stds)
    return torch.from_numpy(y_symbols.astype(np.float32)).reshape(means.shape) + means
