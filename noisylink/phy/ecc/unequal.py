"""Protection of a payload: one code for all of it, or unequal protection by importance.

``{name: unequal, classes: [ECC, ECC, ...], split: [f1, f2, ...]}``: of a payload's bytes,
taken in the codec's importance order (``Codec.importance``), the first fraction ``f1`` is
protected by the first class's code, the next ``f2`` by the second, the rest by the last. Class
``c`` ends at byte ``round(n_bytes * (f1 + ... + fc))``, a function of the payload size alone,
so a receiver knows the classes out of band as it knows the payload size. Each class is cut
into its own frames (its own ECC blocks); frames are numbered through the classes in order.

Any other ``ecc`` setting is one class: ``Protection`` with one code and no split, which is
what every link had before unequal protection. ``unequal`` is registered in ``ECCS`` so that
scenarios validate and list it like any code, but it is not an ``ECC`` (it has no ``k`` or
``n`` of its own): build it with ``protection_of``, never ``ECCS.build``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

import pydantic
from pydantic_core import PydanticCustomError

from noisylink.errors import ScenarioError
from noisylink.phy.ecc.base import ECC, ECCS
from noisylink.registry import ComponentConfig

MAX_CLASSES = 8


class UnequalConfig(ComponentConfig):
    """``{name: unequal, classes: [...], split: [...]}``: ``len(split) == len(classes) - 1``,
    each fraction in (0, 1), their sum below 1."""

    list_settings: ClassVar[frozenset[str]] = frozenset({"classes", "split"})

    name: Literal["unequal"] = "unequal"
    classes: tuple[pydantic.SerializeAsAny[ComponentConfig], ...]
    split: tuple[float, ...]

    @pydantic.field_validator("classes", mode="before")
    @classmethod
    def _codes(cls, value: Any) -> Any:
        if not isinstance(value, list | tuple) or not 2 <= len(value) <= MAX_CLASSES:
            raise PydanticCustomError(
                "classes", "needs a list of 2 to {most} codes", {"most": MAX_CLASSES})
        codes = []
        for i, settings in enumerate(value):
            if isinstance(settings, ComponentConfig):
                codes.append(settings)
                continue
            if isinstance(settings, Mapping) and settings.get("name") == "unequal":
                raise PydanticCustomError("nested", "class {i}: unequal inside unequal",
                                          {"i": i})
            try:
                codes.append(ECCS.config(settings, field=f"classes.{i}"))
            except ScenarioError as exc:
                raise PydanticCustomError("class", "{problem}", {"problem": str(exc)}) from None
        return tuple(codes)

    @pydantic.field_validator("split", mode="after")
    @classmethod
    def _fractions(cls, value: tuple[float, ...], info: pydantic.ValidationInfo
                   ) -> tuple[float, ...]:
        classes = info.data.get("classes")
        if classes is not None and len(value) != len(classes) - 1:
            raise PydanticCustomError(
                "split", "needs {want} fractions for {n} classes (the last takes the rest), "
                         "not {got}",
                {"want": len(classes) - 1, "n": len(classes), "got": len(value)})
        if any(not (0.0 < f < 1.0) or not math.isfinite(f) for f in value):
            raise PydanticCustomError("split", "each fraction must lie in (0, 1)")
        if sum(value) >= 1.0:
            raise PydanticCustomError("split", "the fractions must sum to less than 1, "
                                               "leaving a share for the last class")
        return value

    def label(self) -> str:
        """E.g. ``unequal(rs(k=191)@0.2,rs(k=239))``: each class with its share."""
        parts = [f"{code.label()}@{share:g}" for code, share in zip(self.classes, self.split,
                                                                   strict=False)]
        return f"unequal({','.join([*parts, self.classes[-1].label()])})"


class Protection:
    """The codes protecting a payload, in importance order, and the split between them."""

    def __init__(self, codes: tuple[ECC, ...], split: tuple[float, ...] = ()):
        if len(split) != len(codes) - 1:
            raise ValueError("one fraction per boundary between codes")
        self.codes = codes
        self.split = split

    @property
    def unequal(self) -> bool:
        return len(self.codes) > 1

    @property
    def shares(self) -> tuple[float, ...]:
        """Each class's nominal fraction of the payload (the last takes the rest)."""
        return (*self.split, 1.0 - sum(self.split))

    @property
    def rate(self) -> float:
        """The nominal code rate: information over coded bits when the payload splits exactly
        by ``shares`` (what a channel's Eb/N0 is measured against)."""
        return 1.0 / sum(share / code.rate for share, code in zip(self.shares, self.codes,
                                                                 strict=True))

    def class_bytes(self, n_bytes: int) -> list[int]:
        """Bytes of each class for a payload of ``n_bytes`` (importance order)."""
        ends, total = [], 0.0
        for share in self.split:
            total += share
            ends.append(round(n_bytes * total))
        bounds = [0, *ends, n_bytes]
        return [bounds[i + 1] - bounds[i] for i in range(len(self.codes))]


@ECCS.register("unequal", UnequalConfig)
class UnequalProtection(Protection):
    """``Protection`` built from an ``unequal`` setting."""

    def __init__(self, config: UnequalConfig):
        super().__init__(tuple(ECCS.build(code) for code in config.classes), config.split)
        self.config = config


def protection_of(config: ComponentConfig) -> Protection:
    """The protection an ``ecc`` setting describes."""
    if isinstance(config, UnequalConfig):
        return UnequalProtection(config)
    return Protection((ECCS.build(config),))
