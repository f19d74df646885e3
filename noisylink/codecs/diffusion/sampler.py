"""The reverse diffusion sampler the diffusion codecs steer, shared by encoder and decoder.

The schedule has ``T + N + 1`` timesteps evenly spaced over the training range (diffusers'
``"linspace"`` spacing), from the noisiest down to 0. The first ``T`` transitions are ancestral
(η = 1) and inject a codebook noise chosen by the encoder: they carry the bits. The next ``N``
are deterministic DDIM (η = 0). The last timestep returns the model's x̂0.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from numpy.typing import NDArray

from noisylink.codecs.diffusion.backbone import Backbone
from noisylink.codecs.diffusion.codebook import start_noise

# Given the step index, x̂0 and the flattened sample dimension, return the noise to inject
# ([B, D] on the CPU), or None for a deterministic step.
NoiseChoice = Callable[[int, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Schedule:
    """Timesteps of one sampler run, noisiest first; the first ``bit_steps`` carry bits."""

    timesteps: tuple[int, ...]
    bit_steps: int

    @classmethod
    def linspace(cls, train_timesteps: int, T: int, N: int) -> Schedule:
        points = np.linspace(0, train_timesteps - 1, T + N + 1).round().astype(int)[::-1]
        return cls(tuple(int(t) for t in points), T)

    @property
    def model_evaluations(self) -> int:
        return len(self.timesteps)


def in_fixed_batches(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, size: int):
    """``fn`` applied to ``x`` in calls of exactly ``size`` samples (the last padded).

    Float kernels (GEMM, group norm) pick different blockings for different batch sizes, so a
    sample's output would otherwise depend on how many samples share the call. Encoder and
    decoder batch differently (all images vs the trials of one stream); fixed-size calls keep
    the decoder's picture bit-exact to the encoder's reconstruction.
    """
    outputs = []
    for start in range(0, x.shape[0], size):
        part = x[start : start + size]
        count = part.shape[0]
        if count < size:
            part = torch.cat([part, part[-1:].expand(size - count, *part.shape[1:])])
        outputs.append(fn(part)[:count])
    return torch.cat(outputs)


def predict_x0(
    backbone: Backbone, x_t: torch.Tensor, t: int, call_batch: int = 1
) -> tuple[torch.Tensor, torch.Tensor]:
    """The model's (x̂0, ε̂) at timestep ``t``, evaluated ``call_batch`` samples per call; in
    pixel space x̂0 is clamped to [-1, 1] and ε̂ recomputed from it."""
    output = in_fixed_batches(lambda part: backbone.model_output(part, t), x_t, call_batch)
    alpha = float(backbone.alphas_cumprod[t])
    a, s = alpha**0.5, (1 - alpha) ** 0.5
    if backbone.prediction_type == "v_prediction":
        x0 = a * x_t - s * output
        eps = a * output + s * x_t
    else:
        x0 = (x_t - s * output) / a
        eps = output
    if backbone.clamp_x0:
        x0 = x0.clamp(-1.0, 1.0)
        eps = (x_t - a * x0) / s
    return x0, eps


def reverse_step(
    x0: torch.Tensor, eps: torch.Tensor, alpha: float, alpha_next: float, z: torch.Tensor | None
) -> torch.Tensor:
    """One move from ``t`` to ``t'``: ancestral with the given noise, or DDIM when ``z`` is None."""
    variance = 0.0 if z is None else (1 - alpha_next) / (1 - alpha) * (1 - alpha / alpha_next)
    direction = max(0.0, 1 - alpha_next - variance) ** 0.5
    x_next = alpha_next**0.5 * x0 + direction * eps
    if z is not None:
        x_next = x_next + variance**0.5 * z.reshape(x0.shape).to(x0.device, x0.dtype)
    return x_next


def run_sampler(
    backbone: Backbone,
    schedule: Schedule,
    seed: int,
    batch: int,
    sample_shape: tuple[int, int, int],
    choose_noise: NoiseChoice,
    call_batch: int = 1,
    same_as: Sequence[np.ndarray] | None = None,
) -> torch.Tensor:
    """Run the sampler for a batch; ``choose_noise(step, x0_hat)`` supplies each bit step's
    noise. Returns the final x̂0 in sample space.

    ``same_as[i]`` (one per timestep, optional) maps each row to a row whose sample is known
    to be identical at evaluation ``i`` (same choices so far): the model then runs on those
    representatives only. Copies of one stream share their trajectory up to their first
    corrupted step, so a sweep's trials cost little more than the clean decode.
    """
    x = start_noise(seed, sample_shape).to(backbone.device).expand(batch, *sample_shape)
    alphas = backbone.alphas_cumprod
    timesteps = schedule.timesteps

    def predict(index: int, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        t = timesteps[index]
        if same_as is None:
            return predict_x0(backbone, x, t, call_batch)
        representatives, rows = np.unique(same_as[index], return_inverse=True)
        pick = torch.from_numpy(representatives).to(x.device)
        x0, eps = predict_x0(backbone, x[pick], t, call_batch)
        expand = torch.from_numpy(rows).to(x0.device)
        return x0[expand], eps[expand]

    for step, t in enumerate(timesteps[:-1]):
        x0, eps = predict(step, x)
        z = choose_noise(step, x0) if step < schedule.bit_steps else None
        x = reverse_step(x0, eps, float(alphas[t]), float(alphas[timesteps[step + 1]]), z)
    x0, _ = predict(len(timesteps) - 1, x)
    return x0


def shared_prefixes(choices: np.ndarray, evaluations: int) -> list[np.ndarray]:
    """For ``run_sampler``'s ``same_as``: per model evaluation, each row's first row with the
    same choices before it. ``choices`` is ``[B, T, ...]``; evaluation ``i`` follows the
    choices of steps ``< i`` (all ``T`` of them from evaluation ``T`` on)."""
    flat = choices.reshape(choices.shape[0], choices.shape[1], -1)
    result = []
    for index in range(evaluations):
        prefix = flat[:, : min(index, flat.shape[1])].reshape(flat.shape[0], -1)
        _, first, rows = np.unique(prefix, axis=0, return_index=True, return_inverse=True)
        result.append(first[rows.reshape(-1)])
    return result


def images_to_batch(images: Sequence[NDArray[np.uint8]]) -> torch.Tensor:
    """uint8 HWC images (gray or RGB) as a float batch in [-1, 1], RGB, NCHW."""
    array = np.stack([np.repeat(i, 3, axis=2) if i.shape[2] == 1 else i for i in images])
    return torch.from_numpy(array).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)


def batch_to_images(samples: torch.Tensor, channels: int) -> list[NDArray[np.uint8]]:
    """A float batch in [-1, 1] back to uint8 HWC images with the given channel count."""
    pixels = samples.float().cpu().clamp(-1, 1).add(1).mul(127.5).round()
    if channels == 1:
        pixels = pixels.mean(dim=1, keepdim=True).round()
    array = pixels.to(torch.uint8).permute(0, 2, 3, 1).numpy()
    return [np.ascontiguousarray(a) for a in array]
