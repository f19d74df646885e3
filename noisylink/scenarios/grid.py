"""Grid expansion: a scenario with list-valued settings becomes a list of cells.

A cell is one combination of codec settings, ECC, interleaver, modulation and channel point.
Its ``key`` is a canonical JSON of all its settings: the cell's identity, independent of the
order in which the scenario lists things, and the source of its random streams.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from noisylink.codecs import CODECS
from noisylink.errors import ScenarioError
from noisylink.phy.channels import CHANNELS, ChannelConfig, channel_class
from noisylink.phy.ecc import ECCS
from noisylink.phy.interleaver import INTERLEAVERS
from noisylink.phy.modulation import MODULATIONS
from noisylink.registry import ComponentConfig, Registry
from noisylink.scenarios.schema import Scenario, Settings


@dataclass(frozen=True)
class Cell:
    """One point of the grid, with validated component configs."""

    codec: ComponentConfig
    ecc: ComponentConfig
    interleaver: ComponentConfig
    modulation: ComponentConfig | None
    channel: ChannelConfig
    channel_param: str
    channel_value: float

    @property
    def key(self) -> str:
        parts = {
            "codec": self.codec.model_dump(mode="json"),
            "ecc": self.ecc.model_dump(mode="json"),
            "interleaver": self.interleaver.model_dump(mode="json"),
            "modulation": self.modulation.model_dump(mode="json") if self.modulation else None,
            "channel": self.channel.model_dump(mode="json"),
        }
        return json.dumps(parts, sort_keys=True, separators=(",", ":"))

    @property
    def id(self) -> str:
        """A short stable id of the cell's settings (12 hex digits of the key's SHA-256)."""
        return hashlib.sha256(self.key.encode()).hexdigest()[:12]

    @property
    def label(self) -> str:
        modulation = self.modulation.label() if self.modulation else "-"
        return " | ".join(
            (self.codec.label(), self.ecc.label(), modulation, self.channel.label())
        )


def stream_seed(seed: int, cell: Cell, image_index: int, trial: int) -> np.random.SeedSequence:
    """The random stream of one (cell, image, trial): keyed, so independent of run order."""
    digest = hashlib.sha256(cell.key.encode()).digest()
    words = tuple(int.from_bytes(digest[i : i + 4], "big") for i in range(0, 16, 4))
    return np.random.SeedSequence(entropy=seed, spawn_key=(*words, image_index, trial))


def expand_settings(
    settings: Mapping[str, Any], registry: Registry[Any] | None = None
) -> list[Settings]:
    """Every combination of a mapping's list-valued entries (lists vary, the rest stay).

    A setting whose value is itself a list (``list_settings`` of the component's config, e.g.
    ``unequal``'s ``classes`` and ``split``) varies only over a list of lists."""
    keys = list(settings)
    takes_lists = _list_settings(settings, registry)
    choices = [
        (v if _is_list_of_lists(v) else [v]) if k in takes_lists
        else (v if isinstance(v, list) else [v])
        for k, v in settings.items()
    ]
    for key, values in zip(keys, choices, strict=True):
        if not values:
            raise ScenarioError("an empty list gives no cells", field=key)
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*choices)]


def _is_list_of_lists(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, list) for v in value)


def _list_settings(settings: Mapping[str, Any], registry: Registry[Any] | None) -> frozenset[str]:
    name = settings.get("name")
    if registry is None or not isinstance(name, str) or name not in registry.names():
        return frozenset()
    return registry.entry(name).config_model.list_settings


def _configs(
    registry: Registry[Any], settings: Settings | list[Settings], field: str
) -> list[ComponentConfig]:
    entries = settings if isinstance(settings, list) else [settings]
    if not entries:
        raise ScenarioError("an empty list gives no cells", field=field)
    configs = []
    for position, entry in enumerate(entries):
        where = f"{field}[{position}]" if isinstance(settings, list) else field
        if not isinstance(entry, Mapping):
            raise ScenarioError("needs a mapping with a 'name'", field=where)
        try:
            expanded = expand_settings(entry, registry)
        except ScenarioError as exc:
            raise ScenarioError(exc.message, field=f"{where}.{exc.field}") from None
        configs.extend(registry.config(combo, field=where) for combo in expanded)
    return configs


def _channel_points(settings: Settings) -> list[tuple[ChannelConfig, str, float]]:
    configs = _configs(CHANNELS, settings, "channel")
    swept = [key for key, value in settings.items() if isinstance(value, list)]
    points = []
    for config in configs:
        assert isinstance(config, ChannelConfig)
        candidates = [p for p in config.sweep_params if p in swept] + [
            p for p in config.sweep_params if getattr(config, p, None) is not None
        ]
        param = candidates[0] if candidates else ""
        value = float(getattr(config, param)) if param else float("nan")
        points.append((config, param, value))
    return points


def expand(scenario: Scenario) -> list[Cell]:
    """All cells of a scenario, codec outermost (so encodes are shared across a codec's cells)."""
    codecs = _configs(CODECS, scenario.codec, "codec")
    eccs = _configs(ECCS, scenario.ecc, "ecc")
    interleavers = _configs(INTERLEAVERS, scenario.interleaver, "interleaver")
    if len(interleavers) != 1:
        raise ScenarioError("takes one setting, not a list", field="interleaver")
    points = _channel_points(scenario.channel)
    channel_kind = channel_class(points[0][0].name).kind
    if channel_kind == "symbols" and scenario.modulation is None:
        raise ScenarioError(
            f"channel {points[0][0].name!r} carries symbols: add a modulation "
            f"({', '.join(MODULATIONS.names())})",
            field="modulation",
        )
    if channel_kind == "bits" and scenario.modulation is not None:
        raise ScenarioError(
            f"channel {points[0][0].name!r} carries bits: remove the modulation",
            field="modulation",
        )
    modulations: list[ComponentConfig | None] = (
        _configs(MODULATIONS, scenario.modulation, "modulation")
        if scenario.modulation is not None
        else [None]
    )
    cells = [
        Cell(codec, ecc, interleavers[0], modulation, channel, param, value)
        for codec, ecc, modulation, (channel, param, value) in itertools.product(
            codecs, eccs, modulations, points
        )
    ]
    keys = [cell.key for cell in cells]
    if len(set(keys)) != len(keys):
        raise ScenarioError("the grid lists the same cell twice")
    return cells
