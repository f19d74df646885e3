"""One registry per component kind (codec, ECC, modulation, channel, interleaver).

Each entry pairs a canonical name with a frozen pydantic config model (its settings, unknown
keys rejected) and the class built from it. A duplicate name is an error; an unknown name is an
error that lists the valid ones.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import pydantic

from noisylink.errors import ScenarioError, UnknownComponent

T = TypeVar("T")
C = TypeVar("C", bound=type)


class ComponentConfig(pydantic.BaseModel):
    """Base of every component's settings: frozen, unknown keys rejected."""

    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)

    name: str

    def params(self) -> dict[str, Any]:
        """Settings other than the name, as plain data (for results and labels)."""
        return self.model_dump(exclude={"name"}, mode="json")

    def label(self) -> str:
        """Short human label, e.g. ``rs(k=223)``."""
        params = self.params()
        if not params:
            return self.name
        inner = ",".join(f"{key}={value}" for key, value in params.items())
        return f"{self.name}({inner})"


@dataclass(frozen=True)
class Entry(Generic[T]):
    name: str
    config_model: type[ComponentConfig]
    factory: Callable[[Any], T]


class Registry(Generic[T]):
    """Maps canonical names to (config model, class) for one kind of component."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, Entry[T]] = {}

    def register(self, name: str, config_model: type[ComponentConfig]) -> Callable[[C], C]:
        """Class decorator: ``@ECCS.register("rs", RSConfig)``; the class takes the config."""

        def decorate(cls: C) -> C:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = Entry(name, config_model, cls)
            return cls

        return decorate

    def names(self) -> list[str]:
        return sorted(self._entries)

    def entry(self, name: object, *, field: str | None = None) -> Entry[T]:
        if not isinstance(name, str) or name not in self._entries:
            raise UnknownComponent(self.kind, name, self.names(), field=field)
        return self._entries[name]

    def config(self, settings: Mapping[str, Any], *, field: str | None = None) -> ComponentConfig:
        """Validate a settings mapping (``{"name": ..., **params}``) into its config model."""
        field = field or self.kind
        if not isinstance(settings, Mapping) or "name" not in settings:
            raise ScenarioError("needs a mapping with a 'name'", field=field)
        entry = self.entry(settings["name"], field=f"{field}.name")
        try:
            return entry.config_model.model_validate(dict(settings))
        except pydantic.ValidationError as exc:
            raise scenario_error_from(exc, field) from None

    def build(self, config: ComponentConfig) -> T:
        """Build the component a validated config describes."""
        return self._entries[config.name].factory(config)


def scenario_error_from(exc: pydantic.ValidationError, prefix: str | None = None) -> ScenarioError:
    """The first validation problem as one ScenarioError naming the field."""
    first = exc.errors()[0]
    path = ".".join(str(part) for part in first["loc"])
    field = ".".join(part for part in (prefix, path) if part) or None
    message = first["msg"]
    if first["type"] == "extra_forbidden":
        message = "unknown setting"
    return ScenarioError(message, field=field)
