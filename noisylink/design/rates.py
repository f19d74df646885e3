"""Fitting each candidate codec's rate to the design's budget, by bisection on encodes alone.

A configuration is one (codec, ECC, modulation) of the candidates. Its channel bits for an
image follow from the codec's payload size through the link's framing, ECC, interleaver and
modulation padding (``LinkChain.stream_channel_bits``), exactly as a run counts them; no
channel is needed. The codec's rate knob (``Codec.rate_knobs``) is set to the highest value
whose channel bits fit the budget: bisection over the knob's grid (whole steps, or
``resolution`` for a float knob), assuming more bits at a higher value, and every value it
settles on was checked to fit. Payload sizes are cached per codec setting, so ECCs and
modulations that land on the same value share the encodes; codecs whose setting alone fixes
the size (``Codec.payload_bytes``) are never encoded.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from noisylink.codecs import CODECS, RateKnob, codec_class
from noisylink.design.schema import Design
from noisylink.errors import NoisylinkError, ScenarioError
from noisylink.images import SourceImage
from noisylink.link.chain import LinkChain
from noisylink.phy.ecc import ECCS
from noisylink.phy.modulation import MODULATIONS
from noisylink.registry import ComponentConfig, Registry
from noisylink.scenarios.grid import expand, expand_settings
from noisylink.scenarios.loading import parse_scenario
from noisylink.scenarios.schema import Scenario, Settings


@dataclass(frozen=True)
class CodecCandidate:
    """One codec entry of the design, lists expanded: its settings and how its rate is set."""

    settings: Settings  # without the design-only keys
    knob: RateKnob | None  # None: the rate is fixed by the settings
    low: float = math.nan
    high: float = math.nan
    field: str = ""  # where it is in the design file, for messages


@dataclass(frozen=True)
class Configuration:
    """A candidate combination with its codec's rate fitted to the budget."""

    codec: Settings
    ecc: Settings
    modulation: Settings | None
    knob: str  # the rate setting that was turned ("" for a fixed rate)
    knob_value: float | None
    bpp_channel: float  # the mean over the images
    scenario: Scenario

    @property
    def short_label(self) -> str:
        """``codec | ecc | modulation`` with only the settings the design gave (for people)."""
        parts = [self.codec, self.ecc] + ([self.modulation] if self.modulation else [])
        return " | ".join(_short(settings) for settings in parts)

    @property
    def label(self) -> str:
        """``codec | ecc | modulation``, as the results label them."""
        cell = expand(self.scenario)[0]
        modulation = cell.modulation.label() if cell.modulation else "-"
        return " | ".join((cell.codec.label(), cell.ecc.label(), modulation))


@dataclass(frozen=True)
class Rejection:
    """A combination that cannot meet the budget (or cannot encode these images), and why."""

    label: str
    reason: str


def codec_candidates(design: Design) -> list[CodecCandidate]:
    """The codec entries of a design, lists expanded and knobs checked."""
    candidates = []
    for position, entry in enumerate(design.candidates.codec):
        field = f"candidates.codec[{position}]"
        settings = dict(entry)
        knob_name = settings.pop("knob", None)
        knob_range = settings.pop("knob_range", None)
        if "name" not in settings:
            raise ScenarioError("needs a mapping with a 'name'", field=field)
        try:
            expanded = expand_settings(settings, CODECS)
        except ScenarioError as exc:
            raise ScenarioError(exc.message, field=f"{field}.{exc.field}") from None
        for combo in expanded:
            candidates.append(_candidate(combo, knob_name, knob_range, field))
    return candidates


def _candidate(settings: Settings, knob_name: object, knob_range: object,
               field: str) -> CodecCandidate:
    config = CODECS.config(settings, field=field)  # the name and the fixed settings valid
    knobs = codec_class(config.name).rate_knobs
    names = ", ".join(knob.field for knob in knobs) or "none"
    if knob_name is not None:
        match = [knob for knob in knobs if knob.field == knob_name]
        if not match:
            raise ScenarioError(f"unknown knob {knob_name!r} for {config.name}; its rate "
                                f"knobs: {names}", field=f"{field}.knob")
        knob: RateKnob | None = match[0]
    else:
        knob = knobs[0] if knobs else None
    fixed = knob is None or knob.field in settings or "bpp" in settings
    if fixed and (knob_name is not None or knob_range is not None):
        raise ScenarioError(f"the rate of this {config.name} candidate is fixed by its "
                            "settings; leave out knob and knob_range", field=field)
    if fixed or knob is None:
        return CodecCandidate(settings, None, field=field)
    probe = CODECS.config({**settings, knob.field: _on_grid(knob, knob.low)}, field=field)
    low, high = codec_class(config.name).rate_range(knob, probe)
    if knob_range is not None:
        low, high = _narrowed(knob_range, low, high, knob, f"{field}.knob_range")
    return CodecCandidate(settings, knob, low, high, field)


def _narrowed(value: object, low: float, high: float, knob: RateKnob,
              field: str) -> tuple[float, float]:
    if (not isinstance(value, list) or len(value) != 2
            or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)):
        raise ScenarioError("must be [low, high], two numbers", field=field)
    start, stop = float(value[0]), float(value[1])
    if not low <= start <= stop <= high:
        raise ScenarioError(f"must lie within {knob.field}'s range [{_text(low)}, "
                            f"{_text(high)}], low first", field=field)
    return start, stop


def _on_grid(knob: RateKnob, value: float) -> int | float:
    return round(value) if knob.integer else round(value, 6)


def _text(value: float) -> str:
    return f"{value:g}"


class PayloadSizes:
    """Payload bytes of each image under a codec setting, found once per setting."""

    def __init__(self, images: Sequence[SourceImage]):
        self.images = list(images)
        self._sizes: dict[str, list[int]] = {}
        self.encodes = 0  # images encoded to learn a size

    def of(self, config: ComponentConfig) -> list[int]:
        key = config.model_dump_json()
        if key not in self._sizes:
            codec = CODECS.build(config)
            known = [codec.payload_bytes(*image.pixels.shape) for image in self.images]
            sizes = [size for size in known if size is not None]
            if len(sizes) < len(known):
                encoded = codec.encode_batch([image.pixels for image in self.images])
                self.encodes += len(self.images)
                sizes = [len(item.payload) for item in encoded]
            self._sizes[key] = sizes
        return self._sizes[key]


class Fitter:
    """Channel bits per pixel of configurations, and the rates that fit the budget."""

    def __init__(self, design: Design, images: Sequence[SourceImage], source: str):
        self.design = design
        self.source = source
        self.images = list(images)
        self.sizes = PayloadSizes(images)
        self.pixels = np.array([im.pixels.shape[0] * im.pixels.shape[1] for im in images])

    def scenario(self, codec: Settings, ecc: Settings, modulation: Settings | None) -> Scenario:
        data = self.design.scenario_data(codec, ecc, modulation)
        try:
            return parse_scenario(data, self.source)
        except ScenarioError as exc:  # name the design's field, not the scenario's
            field = exc.field or ""
            if field.split(".")[0] in ("codec", "ecc", "modulation", "interleaver"):
                field = f"candidates.{field}"
            raise ScenarioError(exc.message, source=exc.source, field=field or None) from None

    def bpp(self, chain: LinkChain, config: ComponentConfig) -> np.ndarray:
        """Channel bits per pixel of each image under codec ``config`` on ``chain``."""
        bits = [chain.stream_channel_bits(size) for size in self.sizes.of(config)]
        per_pixel: np.ndarray = np.asarray(bits, dtype=float) / self.pixels
        return per_pixel

    def fits(self, bpp: np.ndarray) -> bool:
        budget = self.design.budget
        spent = bpp.max() if budget.per_image else bpp.mean()
        return bool(spent <= budget.bpp_channel * (1 + 1e-12))

    def fit(self, candidate: CodecCandidate, ecc: Settings,
            modulation: Settings | None) -> Configuration | Rejection:
        """The configuration at the highest fitting rate, or why none fits."""
        base = self.scenario(_with(candidate, candidate.low), ecc, modulation)
        cell = expand(base)[0]
        chain = LinkChain(cell, base.frames, base.device)
        label = " | ".join((cell.codec.label() if candidate.knob is None else cell.codec.name,
                            cell.ecc.label(), cell.modulation.label() if cell.modulation else "-"))

        def bpp_at(value: float) -> np.ndarray:
            config = CODECS.config(_with(candidate, value), field=candidate.field)
            return self.bpp(chain, config)

        try:
            if candidate.knob is None:
                spent = self.bpp(chain, cell.codec)
                if not self.fits(spent):
                    return Rejection(label, f"needs {self._spent(spent):.4g} bpp_channel")
                return self._configuration(candidate, None, spent, ecc, modulation, base)
            knob = candidate.knob
            steps = round((candidate.high - candidate.low) / knob.resolution)

            def value_of(step: int) -> int | float:
                return _on_grid(knob, candidate.low + step * knob.resolution)

            lowest = bpp_at(value_of(0))
            if not self.fits(lowest):
                return Rejection(label, f"needs {self._spent(lowest):.4g} bpp_channel even at "
                                        f"{knob.field}={_text(value_of(0))}")
            good, bad, best = 0, steps + 1, lowest
            top = bpp_at(value_of(steps))
            if self.fits(top):
                good, best = steps, top
            while bad - good > 1:
                middle = (good + bad) // 2
                spent = bpp_at(value_of(middle))
                if self.fits(spent):
                    good, best = middle, spent
                else:
                    bad = middle
            value = value_of(good)
            return self._configuration(candidate, value, best, ecc, modulation,
                                       self.scenario(_with(candidate, value), ecc, modulation))
        except (NoisylinkError, ValueError) as exc:
            return Rejection(label, f"cannot encode these images: {_first_line(exc)}")

    def _spent(self, bpp: np.ndarray) -> float:
        return float(bpp.max() if self.design.budget.per_image else bpp.mean())

    @staticmethod
    def _configuration(candidate: CodecCandidate, value: float | None, bpp: np.ndarray,
                       ecc: Settings, modulation: Settings | None,
                       scenario: Scenario) -> Configuration:
        knob = candidate.knob.field if candidate.knob is not None else ""
        codec = _with(candidate, value) if value is not None else dict(candidate.settings)
        return Configuration(codec, ecc, modulation, knob, value, float(bpp.mean()), scenario)


def _with(candidate: CodecCandidate, value: float | None) -> Settings:
    if candidate.knob is None or value is None:
        return dict(candidate.settings)
    return {**candidate.settings, candidate.knob.field: _on_grid(candidate.knob, value)}


def _short(settings: Settings) -> str:
    inner = ",".join(f"{key}={value}" for key, value in settings.items() if key != "name")
    return f"{settings['name']}({inner})" if inner else str(settings["name"])


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def fit_configurations(design: Design, images: Sequence[SourceImage], source: str
                       ) -> tuple[list[Configuration], list[Rejection], int]:
    """Every (codec, ECC, modulation) of the candidates at its fitted rate, the combinations
    that cannot meet the budget, and how many image encodes the fitting took."""
    candidates = codec_candidates(design)
    eccs = _expanded(design.candidates.ecc, "candidates.ecc", ECCS)
    modulations: list[Settings | None] = (
        list(_expanded(design.candidates.modulation, "candidates.modulation", MODULATIONS))
        if design.candidates.modulation is not None else [None]
    )
    fitter = Fitter(design, images, source)
    fitted: list[Configuration] = []
    rejected: list[Rejection] = []
    for candidate in candidates:
        for ecc in eccs:
            for modulation in modulations:
                outcome = fitter.fit(candidate, ecc, modulation)
                if isinstance(outcome, Configuration):
                    fitted.append(outcome)
                else:
                    rejected.append(outcome)
    keys = [json.dumps([c.codec, c.ecc, c.modulation], sort_keys=True) for c in fitted]
    if len(set(keys)) != len(keys):
        raise ScenarioError("the candidates list the same combination twice", field="candidates")
    return fitted, rejected, fitter.sizes.encodes


def _expanded(entries: list[Settings], field: str, registry: Registry[Any]) -> list[Settings]:
    """Each entry's settings with its lists expanded, each combination validated."""
    out = []
    for position, entry in enumerate(entries):
        where = f"{field}[{position}]"
        if not isinstance(entry, dict) or "name" not in entry:
            raise ScenarioError("needs a mapping with a 'name'", field=where)
        try:
            combos = expand_settings(entry, registry)
        except ScenarioError as exc:
            raise ScenarioError(exc.message, field=f"{where}.{exc.field}") from None
        for combo in combos:
            registry.config(combo, field=where)
        out.extend(combos)
    return out
