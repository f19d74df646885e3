"""The scenario file's schema: pydantic models that mirror the YAML.

Component settings (codec, ecc, interleaver, modulation, channel) stay plain mappings here,
``{name: ..., **settings}``, because any setting may be a list (the scenario is then a grid);
each expanded setting is validated by its component's own config model in ``grid.py``.

Every model here is a ``ConfigModel``: frozen, unknown keys rejected, and booleans refused
where numbers are expected. Image sides (``resize``, ``size``) are at most ``MAX_SIDE`` pixels.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import pydantic

from noisylink.registry import ConfigModel

Settings = dict[str, Any]

MAX_SIDE = 8192
"""Largest ``images.resize`` and ``images.size`` (pixels): 8192 x 8192 RGB is 200 MB as uint8,
and the diffusion codecs need far more per pixel (docs/codecs.md, "Diffusion codecs")."""


class _Strict(ConfigModel):
    """A section of the scenario file."""


class ImagesSpec(_Strict):
    """Where the images come from and how they are shaped before coding.

    ``resize`` scales the shorter side to that many pixels; ``size`` then center-crops to a
    ``size`` x ``size`` square (an image smaller than ``size`` is first scaled up).
    """

    source: Literal["samples", "digits", "folder"] = "samples"
    path: Path | None = None
    resize: int | None = pydantic.Field(default=None, ge=8, le=MAX_SIDE)
    size: int | None = pydantic.Field(default=None, ge=8, le=MAX_SIDE)
    limit: int | None = pydantic.Field(default=None, ge=1)
    color: Literal["keep", "rgb", "gray"] = "keep"

    @pydantic.model_validator(mode="after")
    def _folder_needs_path(self) -> ImagesSpec:
        if self.source == "folder" and self.path is None:
            raise ValueError("source 'folder' needs a 'path'")
        if self.source != "folder" and self.path is not None:
            raise ValueError("'path' is only for source 'folder'")
        return self


class FramesSpec(_Strict):
    """Packetization: chunk size, header delivery and what to do when a CRC fails."""

    payload_bytes: int = pydantic.Field(default=1024, ge=1, le=65535)
    header: Literal["ideal", "inband"] = "ideal"
    on_crc_fail: Literal["deliver", "drop"] = "deliver"


class Scenario(_Strict):
    """A whole scenario: the grid of cells it spans and how each is run."""

    name: str = pydantic.Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    description: str = ""
    seed: int = pydantic.Field(default=0, ge=0)
    images: ImagesSpec = ImagesSpec()
    codec: Settings | list[Settings]
    frames: FramesSpec = FramesSpec()
    ecc: Settings | list[Settings] = pydantic.Field(default_factory=lambda: {"name": "none"})
    interleaver: Settings = pydantic.Field(default_factory=lambda: {"name": "none"})
    modulation: Settings | list[Settings] | None = None
    channel: Settings
    trials: int = pydantic.Field(default=1, ge=1)
    device: Literal["auto", "cpu", "cuda"] = "auto"
