"""DDCM, Turbo-DDCM and Robust Turbo-DDCM: image codecs that send a diffusion sampler's choices.

Encoder and decoder share a diffusion model, a seed and a schedule (side info,
``DiffusionSideInfo``). At each of the ``T`` bit-carrying steps the encoder projects the
residual ``x0 - x̂0`` onto that step's codebook and sends which atoms it picked
(``noisylink.codecs.diffusion.bitstream`` has the layouts); the decoder replays the sampler
with them. Any bits decode to a picture: out-of-range fields wrap, missing bits read as zeros,
duplicate atoms add.

Images are encoded in batches that share each step's codebook (``encode_batch``), and many
corrupted copies of one stream decode as one model batch (``decode_batch``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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
    Stream,
    as_hwc,
    json_choice,
    json_int,
    json_text,
)
from noisylink.codecs.base import Image as ImageArray
from noisylink.codecs.diffusion.bitstream import (
    METHODS,
    Method,
    bits_per_step,
    pack,
    unpack_many,
)
from noisylink.errors import LinkError
from noisylink.registry import ComponentConfig

if TYPE_CHECKING:  # torch and the numerics load on first encode/decode, not at start-up
    import torch

    from noisylink.codecs.diffusion.backbone import Backbone
    from noisylink.codecs.diffusion.codebook import Codebook
    from noisylink.codecs.diffusion.sampler import Schedule

__all__ = [
    "DdcmCodec",
    "DiffusionConfig",
    "DiffusionSideInfo",
    "RobustTurboDdcmCodec",
    "TurboDdcmCodec",
]

MAX_K = 65536
MAX_M = 100
MAX_STEPS = 1000  # T and N each
MAX_CHUNK_ATOMS = 4096
DEFAULT_M = 20  # with T = 10: 1 dB less clean PSNR than M=10, T=20 at the same bits, 2x fewer
# model calls, and a third of the loss at BER 1e-3 (docs/measured.md)


@dataclass(frozen=True)
class DiffusionSideInfo(SideInfo):
    """The picture's shape and everything both ends must share: the method, the model, the
    codebook size ``K``, ``M`` atoms per step, ``T`` bit-carrying and ``N`` deterministic
    steps, the seed and the atoms per codebook chunk."""

    method: Method
    model: str
    K: int
    M: int
    T: int
    N: int
    seed: int
    chunk_atoms: int

    @classmethod
    def fields_from_json(cls, data: Mapping[str, object]) -> dict[str, Any]:
        return {
            **super().fields_from_json(data),
            "method": json_choice(data, "method", METHODS),
            "model": json_text(data, "model"),
            "K": json_int(data, "K", 2, MAX_K),
            "M": json_int(data, "M", 1, MAX_M),
            "T": json_int(data, "T", 1, MAX_STEPS),
            "N": json_int(data, "N", 0, MAX_STEPS),
            "seed": json_int(data, "seed", 0, None),
            "chunk_atoms": json_int(data, "chunk_atoms", 1, MAX_CHUNK_ATOMS),
        }


class DiffusionConfig(ComponentConfig):
    """Settings shared by the three codecs (all are side info the receiver knows).

    Rate: give ``M`` (atoms per step; Turbo/Robust) and ``T`` (bit-carrying steps), or a
    ``bpp`` budget from which the largest fitting ``M`` (Turbo/Robust, for the given ``T``)
    or ``T`` (DDCM) is chosen.
    """

    model: str = pydantic.Field("bundled", description="'bundled', a local folder or a hub id")
    K: int = pydantic.Field(4096, ge=2, le=MAX_K, description="codebook size per step")
    M: int | None = pydantic.Field(None, ge=1, le=MAX_M, description="atoms per step")
    T: int | None = pydantic.Field(None, ge=1, le=MAX_STEPS, description="bit-carrying steps")
    N: int = pydantic.Field(0, ge=0, le=MAX_STEPS, description="deterministic steps after them")
    seed: int = pydantic.Field(0, ge=0)
    bpp: float | None = pydantic.Field(None, gt=0, le=64, allow_inf_nan=False)
    chunk_atoms: int = pydantic.Field(
        8, ge=1, le=MAX_CHUNK_ATOMS, description="atoms per codebook chunk"
    )
    batch: int = pydantic.Field(8, ge=1, description="images per encode/decode model batch")
    dtype: Literal["float32", "float16", "bfloat16"] = "float32"

    def params(self) -> dict[str, Any]:
        """Settings other than the name, leaving out unset rate fields."""
        return {key: value for key, value in super().params().items() if value is not None}

    def label(self) -> str:
        """Short label: the settings that differ from their defaults, e.g. ``ddcm(K=4096,T=30)``."""
        changed = self.model_dump(exclude={"name"}, exclude_defaults=True, mode="json")
        inner = ",".join(f"{key}={value}" for key, value in changed.items())
        return f"{self.name}({inner})" if inner else self.name


class DdcmConfig(DiffusionConfig):
    """DDCM: one atom per step; ``T`` steps (default 100) or a ``bpp`` budget."""

    @pydantic.model_validator(mode="after")
    def _rate(self) -> Self:
        if self.M not in (None, 1):
            raise PydanticCustomError("ddcm_m", "DDCM sends one atom per step: leave M out")
        if self.T is not None and self.bpp is not None:
            raise PydanticCustomError("t_xor_bpp", "set either 'T' or 'bpp', not both")
        return self


class TurboConfig(DiffusionConfig):
    """Turbo/Robust: ``M`` atoms per step (default 20) or a ``bpp`` budget; ``T`` default 10."""

    @pydantic.model_validator(mode="after")
    def _rate(self) -> Self:
        if self.M is not None and self.bpp is not None:
            raise PydanticCustomError("m_xor_bpp", "set either 'M' or 'bpp', not both")
        if self.M is not None and self.M > self.K:
            raise PydanticCustomError("m_le_k", "M must not exceed K")
        return self


_TURBO_KNOBS = (RateKnob("M", 1, MAX_M), RateKnob("T", 1, MAX_STEPS))


class _DiffusionCodec(Codec[DiffusionSideInfo]):
    """Shared machinery; subclasses set the method. Any bits decode (``always_decodable``);
    encoding and decoding go through the model ``batch`` images at a time."""

    always_decodable: ClassVar[bool] = True
    batches: ClassVar[bool] = True
    uses_model: ClassVar[bool] = True
    method: ClassVar[Method]
    default_steps: ClassVar[int]
    config: DiffusionConfig

    def __init__(self, config: DiffusionConfig):
        self.config = config
        self.device = "auto"

    def bind_device(self, device: str) -> None:
        """Run the model on the scenario's device ("auto", "cpu", "cuda")."""
        self.device = device

    @property
    def batch_size(self) -> int:
        return self.config.batch

    @classmethod
    def rate_range(cls, knob: RateKnob, config: ComponentConfig) -> tuple[float, float]:
        """``M`` is at most the codebook size ``K``."""
        if knob.field == "M" and isinstance(config, DiffusionConfig):
            return knob.low, min(knob.high, config.K)
        return knob.low, knob.high

    @cached_property
    def backbone(self) -> Backbone:
        import torch

        from noisylink.codecs.devices import resolve_torch_device
        from noisylink.codecs.diffusion.backbone import load_backbone

        dtype = getattr(torch, self.config.dtype)
        return load_backbone(self.config.model, resolve_torch_device(self.device), dtype)

    # --- rate -------------------------------------------------------------------------------

    def rate(self, height: int, width: int) -> tuple[int, int]:
        """(M, T) for an image of this size: as configured, or fitted to the bpp budget."""
        config = self.config
        budget = None if config.bpp is None else config.bpp * height * width
        if self.method == "ddcm":
            if budget is None:
                return 1, config.T or self.default_steps
            T = int(budget // bits_per_step("ddcm", config.K, 1))
            if T < 1:
                raise self._budget_error(height, width, bits_per_step("ddcm", config.K, 1))
            return 1, min(T, MAX_STEPS)
        T = config.T or self.default_steps
        if budget is None:
            return config.M or DEFAULT_M, T
        fitting = [
            m for m in range(1, min(MAX_M, config.K) + 1)
            if T * bits_per_step(self.method, config.K, m) <= budget
        ]
        if not fitting:
            raise self._budget_error(height, width, T * bits_per_step(self.method, config.K, 1))
        return max(fitting), T

    def payload_bytes(self, height: int, width: int, channels: int) -> int:
        """Every stream of this setting has ``T`` steps of the method's bits, whatever the
        picture (``pack`` pads the last byte)."""
        M, T = self.rate(height, width)
        return -(-T * bits_per_step(self.method, self.config.K, M) // 8)

    def _budget_error(self, height: int, width: int, smallest_bits: int) -> LinkError:
        return LinkError(
            f"{self.config.name} cannot meet bpp={self.config.bpp} on a {width}x{height} image "
            f"with K={self.config.K}: its smallest stream is {smallest_bits} bits "
            f"({smallest_bits / (height * width):.4f} bpp)",
            stage="encode",
        )

    def side_info(self, height: int, width: int, channels: int) -> DiffusionSideInfo:
        M, T = self.rate(height, width)
        config = self.config
        return DiffusionSideInfo(
            height, width, channels, method=self.method, model=config.model, K=config.K, M=M,
            T=T, N=config.N, seed=config.seed, chunk_atoms=config.chunk_atoms,
        )

    # --- encode -----------------------------------------------------------------------------

    def encode(self, image: ImageArray) -> Encoded[DiffusionSideInfo]:
        return self.encode_batch([image])[0]

    def encode_batch(self, images: Sequence[ImageArray]) -> list[Encoded[DiffusionSideInfo]]:
        """Encode several images; those of one size share each step's codebook."""
        encoded, _ = self.encode_with_reconstructions(images)
        return encoded

    def encode_with_reconstructions(
        self, images: Sequence[ImageArray]
    ) -> tuple[list[Encoded[DiffusionSideInfo]], list[ImageArray]]:
        """The streams and the pictures the decoder will show when no bit is corrupted."""
        images = [as_hwc(image) for image in images]
        results: list[tuple[Encoded[DiffusionSideInfo], ImageArray] | None] = [None] * len(images)
        by_shape: dict[tuple[int, ...], list[int]] = {}
        for index, image in enumerate(images):
            by_shape.setdefault(image.shape, []).append(index)
        for shape, members in by_shape.items():
            info = self.side_info(*shape)
            for start in range(0, len(members), self.config.batch):
                group = members[start : start + self.config.batch]
                streams, pictures = self._encode_group([images[i] for i in group], info)
                for index, payload, picture in zip(group, streams, pictures, strict=True):
                    n_bits = info.T * bits_per_step(self.method, info.K, info.M)
                    results[index] = (Encoded(payload, n_bits, info), picture)
        return [r[0] for r in results], [r[1] for r in results]  # type: ignore[index]

    def _encode_group(
        self, images: Sequence[ImageArray], info: DiffusionSideInfo
    ) -> tuple[list[bytes], list[ImageArray]]:
        from noisylink.codecs.diffusion.codebook import best_atom, best_atoms
        from noisylink.codecs.diffusion.sampler import images_to_batch, run_sampler

        backbone = self.backbone
        height, width, M, T = info.height, info.width, info.M, info.T
        shape = backbone.sample_shape(height, width)
        target = backbone.to_sample(images_to_batch(images).to(backbone.device))
        codebook = self.codebook(info, shape)
        chosen_index = np.zeros((len(images), T, M), dtype=np.int64)
        chosen_sign = np.ones((len(images), T, M), dtype=np.int8)

        def choose_noise(step: int, x0_hat: torch.Tensor) -> torch.Tensor:
            residual = (target - x0_hat).flatten(1).float().cpu()
            if self.method == "ddcm":
                index, sign = best_atom(codebook, step, residual), np.ones((len(images), 1))
            else:
                index, sign = best_atoms(codebook, step, residual, M)
            chosen_index[:, step], chosen_sign[:, step] = index, sign
            return self._noise(codebook, step, index, chosen_sign[:, step])

        final = run_sampler(backbone, self.schedule(info), info.seed, len(images), shape,
                            choose_noise, self.call_batch)
        payloads = [
            pack(self.method, self.config.K, chosen_index[b], chosen_sign[b])
            for b in range(len(images))
        ]
        return payloads, self._pictures(final, info.channels)

    # --- decode -----------------------------------------------------------------------------

    def decode(self, payload: bytes, n_bits: int, side_info: DiffusionSideInfo) -> ImageArray:
        return self.decode_batch([(payload, n_bits, side_info)])[0]

    def decode_batch(self, streams: Sequence[Stream[DiffusionSideInfo]]) -> list[ImageArray]:
        """Decode many (possibly corrupted) streams; those with the same side info go through
        the model together, ``batch`` at a time. Never raises on corrupted bits."""
        pictures: list[ImageArray | None] = [None] * len(streams)
        groups: dict[DiffusionSideInfo, list[int]] = {}
        for index, (_, _, info) in enumerate(streams):
            groups.setdefault(info, []).append(index)
        for members in groups.values():
            info = streams[members[0]][2]
            for start in range(0, len(members), self.config.batch):
                group = members[start : start + self.config.batch]
                decoded = self._decode_group([streams[i][0] for i in group], info)
                for index, picture in zip(group, decoded, strict=True):
                    pictures[index] = picture
        return pictures  # type: ignore[return-value]

    def _decode_group(
        self, payloads: Sequence[bytes], info: DiffusionSideInfo
    ) -> list[ImageArray]:
        from noisylink.codecs.diffusion.sampler import run_sampler, shared_prefixes

        backbone = self.backbone
        K, M, T, seed = info.K, info.M, info.T, info.seed
        shape = backbone.sample_shape(info.height, info.width)
        codebook = self.codebook(info, shape)
        indices, signs = unpack_many(self.method, K, M, T, payloads)

        def choose_noise(step: int, x0_hat: torch.Tensor) -> torch.Tensor:
            return self._noise(codebook, step, indices[:, step], signs[:, step])

        schedule = self.schedule(info)
        choices = np.concatenate([indices, signs.astype(np.int64)], axis=2)
        same_as = shared_prefixes(choices, schedule.model_evaluations)
        final = run_sampler(backbone, schedule, seed, len(payloads), shape, choose_noise,
                            self.call_batch, same_as)
        return self._pictures(final, info.channels)

    # --- shared -----------------------------------------------------------------------------

    @property
    def call_batch(self) -> int:
        """Samples per model call, the same at both ends: one on a CPU (where batching buys
        nothing), ``batch`` on a GPU (the last call padded)."""
        return 1 if self.backbone.device.type == "cpu" else self.config.batch

    def _pictures(self, final: torch.Tensor, channels: int) -> list[ImageArray]:
        from noisylink.codecs.diffusion.sampler import batch_to_images, in_fixed_batches

        decoded = in_fixed_batches(self.backbone.from_sample, final, self.call_batch)
        return batch_to_images(decoded, channels)

    def codebook(self, info: DiffusionSideInfo, shape: tuple[int, int, int]) -> Codebook:
        """The codebooks a stream with this side info uses (the same at both ends)."""
        from noisylink.codecs.diffusion.codebook import Codebook

        return Codebook(info.seed, info.K, int(np.prod(shape)), info.chunk_atoms)

    def schedule(self, info: DiffusionSideInfo) -> Schedule:
        """The sampler's timesteps for a stream with this side info."""
        from noisylink.codecs.diffusion.sampler import Schedule

        return Schedule.linspace(self.backbone.train_timesteps, info.T, info.N)

    def _noise(
        self, codebook: Codebook, step: int, index: np.ndarray, sign: np.ndarray
    ) -> torch.Tensor:
        from noisylink.codecs.diffusion.codebook import combine_atoms

        atoms = codebook.atoms(step, index)  # [B, M, D]
        return combine_atoms(atoms, np.asarray(sign), rescale=self.method != "ddcm")


@CODECS.register("ddcm", DdcmConfig)
class DdcmCodec(_DiffusionCodec):
    """DDCM: at each step the single atom best aligned with the residual."""

    method = "ddcm"
    default_steps = 100
    rate_knobs = (RateKnob("T", 1, MAX_STEPS),)


@CODECS.register("turbo-ddcm", TurboConfig)
class TurboDdcmCodec(_DiffusionCodec):
    """Turbo-DDCM: M signed atoms per step, their set sent as one combinatorial rank."""

    method = "turbo"
    default_steps = 10
    rate_knobs = _TURBO_KNOBS


@CODECS.register("robust-turbo-ddcm", TurboConfig)
class RobustTurboDdcmCodec(_DiffusionCodec):
    """Robust Turbo-DDCM: the same choice, each atom index and sign sent on its own."""

    method = "robust"
    default_steps = 10
    rate_knobs = _TURBO_KNOBS
