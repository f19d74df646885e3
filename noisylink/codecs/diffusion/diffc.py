"""``diffc``: DiffC (Theis et al. 2022; Vonderfecht & Liu, ICLR 2025) on a diffusers prior.

Both ends share the model, a seed and a schedule of ``steps + 1`` timesteps (as the other
diffusion codecs: diffusers' "linspace" spacing, noisiest first) and start from the same
x_T. At each coded step the model gives p(x_s | x_t) = N(μ_p, σ²I); the encoder, which knows
x_0, also has q(x_s | x_t, x_0) = N(μ_q, σ²I) (the DDPM posterior between the two timesteps,
the same σ). It sends a sample of q by reverse channel coding (``pfr``): the standardised
difference Δ = (μ_q − μ_p)/σ is coded in chunks of at most ``chunk_bits`` bits, and both ends
move to x_s = μ_p + σ·c with c the chosen candidates. After ``stop`` coded steps the decoder
finishes with deterministic DDIM steps (the probability-flow ODE) down to t = 0.

Payload: the number of coded steps (16 bits), then one ANS stream (constriction) holding, per
step, the step's KL on a log scale (one uniform byte, ``pfr.quantise_kl``) and each chunk's
index under a truncated Zipf model. The rate is set by ``stop`` (coded steps) or by a ``bpp``
budget, at which the encoder stops before the step that would exceed it.

One arithmetic-coded stream has no resynchronisation point: a flipped bit changes every symbol
after it, and a wrong index changes every later step's prediction. Any bits still decode to a
picture (``always_decodable``): the step count is clipped to the schedule, every KL byte is
valid (it only sets the chunking) and every index is below the candidate count.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Self

import numpy as np
import pydantic
from pydantic_core import PydanticCustomError

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
from noisylink.registry import ComponentConfig

if TYPE_CHECKING:
    import torch

    from noisylink.codecs.diffusion.backbone import Backbone
    from noisylink.codecs.diffusion.sampler import Schedule

__all__ = ["DiffcCodec", "DiffcConfig", "DiffcSideInfo"]

MAX_STEPS = 1000
MAX_CHUNK_BITS = 16
STOP_FIELD = struct.Struct("<H")


@dataclass(frozen=True)
class DiffcSideInfo(SideInfo):
    """The picture's shape and what both ends share: the model, the schedule length, the chunk
    size in bits and the seed."""

    model: str
    steps: int
    chunk_bits: int
    seed: int

    @classmethod
    def fields_from_json(cls, data: Mapping[str, object]) -> dict[str, Any]:
        return {
            **super().fields_from_json(data),
            "model": json_text(data, "model"),
            "steps": json_int(data, "steps", 1, MAX_STEPS),
            "chunk_bits": json_int(data, "chunk_bits", 1, MAX_CHUNK_BITS),
            "seed": json_int(data, "seed", 0, None),
        }


class DiffcConfig(ComponentConfig):
    """The prior, the schedule (``steps`` transitions), and the rate: ``stop`` coded steps or a
    ``bpp`` budget (give one)."""

    model: str = pydantic.Field("bundled", description="'bundled', a local folder or a hub id")
    steps: int = pydantic.Field(50, ge=1, le=MAX_STEPS, description="transitions from x_T to 0")
    stop: int | None = pydantic.Field(None, ge=0, le=MAX_STEPS, description="coded steps")
    bpp: float | None = pydantic.Field(None, gt=0, le=64, allow_inf_nan=False)
    chunk_bits: int = pydantic.Field(10, ge=1, le=MAX_CHUNK_BITS)
    seed: int = pydantic.Field(0, ge=0)
    dtype: Literal["float32"] = "float32"

    @pydantic.model_validator(mode="after")
    def _rate(self) -> Self:
        if (self.stop is None) == (self.bpp is None):
            raise PydanticCustomError("diffc_rate", "give exactly one of 'stop' and 'bpp'")
        if self.stop is not None and self.stop > self.steps:
            raise PydanticCustomError("diffc_stop", "'stop' must be at most 'steps'")
        return self

    def params(self) -> dict[str, Any]:
        return {key: value for key, value in super().params().items() if value is not None}


@CODECS.register("diffc", DiffcConfig)
class DiffcCodec(Codec[DiffcSideInfo]):
    """DiffC: one picture at a time; any bits decode."""

    always_decodable: ClassVar[bool] = True
    uses_model: ClassVar[bool] = True
    rate_knobs: ClassVar[tuple[RateKnob, ...]] = (
        RateKnob("stop", 0, MAX_STEPS), RateKnob("bpp", 0.01, 8.0, integer=False,
                                                 resolution=0.01),
    )
    config: DiffcConfig

    def __init__(self, config: DiffcConfig):
        self.config = config
        self.device = "auto"

    def bind_device(self, device: str) -> None:
        """Run the model on the scenario's device ("auto", "cpu", "cuda")."""
        self.device = device

    @classmethod
    def rate_range(cls, knob: RateKnob, config: ComponentConfig) -> tuple[float, float]:
        """At most ``steps`` coded steps."""
        if knob.field == "stop" and isinstance(config, DiffcConfig):
            return knob.low, min(knob.high, config.steps)
        return knob.low, knob.high

    @cached_property
    def backbone(self) -> Backbone:
        from noisylink.codecs.devices import resolve_torch_device
        from noisylink.codecs.diffusion.backbone import load_backbone

        return load_backbone(self.config.model, resolve_torch_device(self.device))

    def schedule(self, info: DiffcSideInfo) -> Schedule:
        from noisylink.codecs.diffusion.sampler import Schedule

        return Schedule.linspace(self.backbone.train_timesteps, info.steps, 0)

    # --- encoding ---------------------------------------------------------------------------
    def encode(self, image: ImageArray) -> Encoded[DiffcSideInfo]:
        return self._encode(image)[0]

    def encode_with_reconstruction(self, image: ImageArray
                                   ) -> tuple[Encoded[DiffcSideInfo], ImageArray]:
        """The encoding and the picture a decoder of the clean stream shows (the encoder
        finishes its own trajectory)."""
        encoded, trajectory, coded = self._encode(image)
        return encoded, self._picture(trajectory.finish(coded), encoded.side_info.channels)

    def _encode(self, image: ImageArray) -> tuple[Encoded[DiffcSideInfo], _Trajectory, int]:
        from noisylink.codecs.diffusion.sampler import images_to_batch

        image = as_hwc(image)
        height, width, channels = image.shape
        info = DiffcSideInfo(height, width, channels, self.config.model, self.config.steps,
                             self.config.chunk_bits, self.config.seed)
        backbone = self.backbone
        target = backbone.to_sample(images_to_batch([image]).to(backbone.device))[0]
        budget = None if self.config.bpp is None else self.config.bpp * height * width
        stop = self.config.stop if self.config.stop is not None else info.steps
        symbols = _StepSymbols()
        trajectory = _Trajectory(self, info, backbone.sample_shape(height, width))
        header_bits = 8 * STOP_FIELD.size
        coded = 0
        while coded < stop:
            step = trajectory.step_symbols(coded, target)
            if budget is not None and header_bits + symbols.bits + step.bits > budget:
                break
            trajectory.advance(coded, step.noise)
            symbols.extend(step)
            coded += 1
        payload = STOP_FIELD.pack(coded) + symbols.encode().tobytes()
        return Encoded(payload, 8 * len(payload), info), trajectory, coded

    # --- decoding ---------------------------------------------------------------------------
    def decode(self, payload: bytes, n_bits: int, side_info: DiffcSideInfo) -> ImageArray:
        data = bytes(payload[: -(-n_bits // 8)]) if n_bits >= 0 else bytes(payload)
        data = data + b"\0" * max(0, STOP_FIELD.size - len(data))
        (coded,) = STOP_FIELD.unpack_from(data)
        coded = min(coded, side_info.steps)
        body = data[STOP_FIELD.size:]
        body = body + b"\0" * (-len(body) % 4)
        reader = SymbolReader(np.frombuffer(body, dtype="<u4").astype(np.uint32))
        trajectory = _Trajectory(self, side_info,
                                 self.backbone.sample_shape(side_info.height, side_info.width))
        for step in range(coded):
            trajectory.advance(step, trajectory.decoded_noise(step, reader))
        return self._picture(trajectory.finish(coded), side_info.channels)

    def _picture(self, final: torch.Tensor, channels: int) -> ImageArray:
        from noisylink.codecs.diffusion.sampler import batch_to_images

        return batch_to_images(self.backbone.from_sample(final[None]), channels)[0]


@dataclass
class _Step:
    """One coded step: its KL byte, each chunk's index, their Zipf table, the noise."""

    kl_code: int
    indices: list[int]
    probabilities: np.ndarray
    noise: torch.Tensor

    @property
    def bits(self) -> float:
        return 8 + float(-np.log2(self.probabilities[self.indices]).sum())


class _StepSymbols:
    """The symbols of the coded steps so far, in order, and their cost in bits."""

    def __init__(self) -> None:
        self.steps: list[_Step] = []
        self.bits = 0.0

    def extend(self, step: _Step) -> None:
        self.steps.append(step)
        self.bits += step.bits

    def encode(self) -> np.ndarray:
        import constriction

        coder = constriction.stream.stack.AnsCoder()
        uniform = constriction.stream.model.Uniform(256)
        for step in reversed(self.steps):  # a stack: the decoder pops the first step first
            if step.indices:
                zipf = constriction.stream.model.Categorical(step.probabilities, perfect=False)
                coder.encode_reverse(np.array(step.indices, dtype=np.int32), zipf)
            coder.encode_reverse(np.array([step.kl_code], dtype=np.int32), uniform)
        return coder.get_compressed()


class SymbolReader:
    """Pops the symbols of one stream in order; any words give valid symbols."""

    def __init__(self, words: np.ndarray):
        import constriction

        from noisylink.codecs.ans import ans_decoder

        self.coder = ans_decoder(words)
        self.uniform = constriction.stream.model.Uniform(256)

    def kl_code(self) -> int:
        return int(self.coder.decode(self.uniform, 1)[0])

    def indices(self, probabilities: np.ndarray, count: int) -> np.ndarray:
        import constriction

        zipf = constriction.stream.model.Categorical(probabilities, perfect=False)
        return self.coder.decode(zipf, count)


class _Trajectory:
    """x_t along the schedule, the same at both ends given the same chosen noise."""

    def __init__(self, codec: DiffcCodec, info: DiffcSideInfo, shape: tuple[int, int, int]):
        from noisylink.codecs.diffusion.codebook import start_noise

        self.backbone = codec.backbone
        self.info = info
        self.timesteps = codec.schedule(info).timesteps
        self.x = start_noise(info.seed, shape).to(self.backbone.device)
        self._prediction: tuple[int, torch.Tensor, torch.Tensor] | None = None

    def _alphas(self, step: int) -> tuple[float, float]:
        alphas = self.backbone.alphas_cumprod
        return float(alphas[self.timesteps[step]]), float(alphas[self.timesteps[step + 1]])

    def _predict(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        from noisylink.codecs.diffusion.sampler import predict_x0

        if self._prediction is None or self._prediction[0] != step:
            x0, eps = predict_x0(self.backbone, self.x[None], self.timesteps[step])
            self._prediction = (step, x0[0], eps[0])
        return self._prediction[1], self._prediction[2]

    def _mean_and_sigma(self, step: int, x0: torch.Tensor, eps: torch.Tensor
                        ) -> tuple[torch.Tensor, float]:
        import torch

        from noisylink.codecs.diffusion.sampler import reverse_step

        alpha, alpha_next = self._alphas(step)
        variance = (1 - alpha_next) / (1 - alpha) * (1 - alpha / alpha_next)
        mean = reverse_step(x0, eps, alpha, alpha_next, torch.zeros_like(x0))
        return mean, math.sqrt(variance)

    def step_symbols(self, step: int, target: torch.Tensor) -> _Step:
        """The encoder's symbols and noise for ``step`` (x_0 = ``target``)."""
        import torch

        from noisylink.codecs.diffusion import pfr

        x0_hat, eps_hat = self._predict(step)
        mean_p, sigma = self._mean_and_sigma(step, x0_hat, eps_hat)
        alpha, _ = self._alphas(step)
        eps_q = (self.x - math.sqrt(alpha) * target) / math.sqrt(1 - alpha)
        mean_q, _ = self._mean_and_sigma(step, target, eps_q)
        delta = ((mean_q - mean_p) / sigma).flatten().cpu().float()
        kl_code = pfr.quantise_kl(float(delta.double().square().sum()) / 2)
        plan = pfr.plan_chunks(kl_code, delta.numel(), self.info.chunk_bits, self.info.seed,
                               step)
        noise = torch.zeros_like(delta)
        indices = []
        offsets = plan.offsets
        probability = pfr.zipf_probabilities(plan.candidates, plan.kl_nats)
        for chunk in range(len(plan.dims)):
            positions = plan.order[offsets[chunk] : offsets[chunk + 1]]
            index = pfr.select_index(delta[positions], self.info.seed, step, chunk,
                                     plan.candidates)
            noise[positions] = pfr.chosen_candidate(index, self.info.seed, step, chunk,
                                                    len(positions))
            indices.append(index)
        return _Step(kl_code, indices, probability, noise)

    def decoded_noise(self, step: int, reader: SymbolReader) -> torch.Tensor:
        """The decoder's noise for ``step``, from the stream."""
        import torch

        from noisylink.codecs.diffusion import pfr

        dimensions = int(np.prod(self.x.shape))
        plan = pfr.plan_chunks(reader.kl_code(), dimensions, self.info.chunk_bits,
                               self.info.seed, step)
        probability = pfr.zipf_probabilities(plan.candidates, plan.kl_nats)
        indices = reader.indices(probability, len(plan.dims))
        noise = torch.zeros(dimensions, dtype=torch.float32)
        offsets = plan.offsets
        for chunk, index in enumerate(indices):
            positions = plan.order[offsets[chunk] : offsets[chunk + 1]]
            noise[positions] = pfr.chosen_candidate(int(index), self.info.seed, step, chunk,
                                                    len(positions))
        return noise

    def advance(self, step: int, noise: torch.Tensor) -> None:
        """x_s = μ_p + σ·noise."""
        x0_hat, eps_hat = self._predict(step)
        mean_p, sigma = self._mean_and_sigma(step, x0_hat, eps_hat)
        self.x = mean_p + sigma * noise.reshape(self.x.shape).to(mean_p.device, mean_p.dtype)

    def finish(self, coded: int) -> torch.Tensor:
        """Deterministic DDIM steps from the last coded step to t = 0; the final x̂0."""
        from noisylink.codecs.diffusion.sampler import reverse_step

        for step in range(coded, len(self.timesteps) - 1):
            x0_hat, eps_hat = self._predict(step)
            alpha, alpha_next = self._alphas(step)
            self.x = reverse_step(x0_hat, eps_hat, alpha, alpha_next, None)
        x0_hat, _ = self._predict(len(self.timesteps) - 1)
        return x0_hat
