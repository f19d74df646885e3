"""The design file's schema: what a link designer fixes and what may vary.

A design names the images, the channel points to design for (one channel setting given as a
list), a bandwidth budget in channel bits per pixel, the objective, and the candidates: codecs
(rate left free, or fixed), ECCs and modulations. ``noisylink design`` finds each candidate
codec's rate for the budget and races the combinations at each channel point.

A codec candidate is a codec's settings (lists expand into several candidates, as in a
scenario) plus two design-only keys: ``knob``, the rate setting to turn (default: the codec's
first, see ``Codec.rate_knobs``), and ``knob_range: [low, high]`` to narrow its search.
"""

from __future__ import annotations

from typing import Any, Literal, Self

import pydantic
from pydantic_core import PydanticCustomError

from noisylink.registry import ConfigModel
from noisylink.scenarios.schema import FramesSpec, ImagesSpec, Settings

DESIGN_KEYS = ("knob", "knob_range")
"""Keys of a codec candidate that the design reads and the codec never sees."""


class BudgetSpec(ConfigModel):
    """Channel bits per pixel, ECC parity, frame overhead and padding included: the mean over
    the images, or (``per_image``) the most any image may take."""

    bpp_channel: float = pydantic.Field(gt=0, le=1000, allow_inf_nan=False)
    per_image: bool = False


class ObjectiveSpec(ConfigModel):
    """What "best" means: the ``statistic`` of ``metric`` over all images and trials at a
    channel point, among configurations whose corruption rate (streams not decoded) is at
    most ``max_corruption``."""

    metric: Literal["psnr", "ssim", "ms_ssim"] = "psnr"
    statistic: Literal["mean", "p10"] = "mean"
    max_corruption: float = pydantic.Field(default=0.01, ge=0, le=1)


class TrialsSpec(ConfigModel):
    """Trials per image: every configuration starts with ``min``; racing doubles them, up to
    ``max``, for those still in contention."""

    min: int = pydantic.Field(default=2, ge=1)
    max: int = pydantic.Field(default=16, ge=1)

    @pydantic.model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.min > self.max:
            raise PydanticCustomError("trials_order", "min ({low}) is more than max ({high})",
                                      {"low": self.min, "high": self.max})
        return self


class CandidatesSpec(ConfigModel):
    """What may vary: every codec with every ECC and every modulation."""

    codec: list[Settings] = pydantic.Field(min_length=1)
    ecc: list[Settings] = pydantic.Field(
        default_factory=lambda: [{"name": "none"}], min_length=1
    )
    modulation: list[Settings] | None = pydantic.Field(default=None, min_length=1)
    interleaver: Settings = pydantic.Field(default_factory=lambda: {"name": "none"})


class Design(ConfigModel):
    """A whole design file."""

    name: str = pydantic.Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    description: str = ""
    seed: int = pydantic.Field(default=0, ge=0)
    images: ImagesSpec = ImagesSpec()
    channel: Settings
    budget: BudgetSpec
    objective: ObjectiveSpec = ObjectiveSpec()
    candidates: CandidatesSpec
    frames: FramesSpec = FramesSpec()
    trials: TrialsSpec = TrialsSpec()
    device: Literal["auto", "cpu", "cuda"] = "auto"

    @pydantic.field_validator("channel")
    @classmethod
    def _one_list(cls, channel: Settings) -> Settings:
        lists = [key for key, value in channel.items() if isinstance(value, list)]
        if len(lists) > 1:
            raise PydanticCustomError(
                "one_list", "only one setting may be a list (the channel points); {lists} are "
                "lists", {"lists": " and ".join(lists)})
        return channel

    def scenario_data(self, codec: Settings, ecc: Settings,
                      modulation: Settings | None) -> dict[str, Any]:
        """The scenario (as data) that runs one configuration at every channel point, up to
        ``trials.max``: the rows the design evaluates are rows of these scenarios."""
        data: dict[str, Any] = {
            "name": self.name,
            "description": self.description,
            "seed": self.seed,
            "images": self.images.model_dump(mode="json", exclude_none=True),
            "codec": codec,
            "frames": self.frames.model_dump(mode="json"),
            "ecc": ecc,
            "interleaver": self.candidates.interleaver,
            "channel": self.channel,
            "trials": self.trials.max,
            "device": self.device,
        }
        if modulation is not None:
            data["modulation"] = modulation
        return data
