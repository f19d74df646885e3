"""One registry per component kind (codec, ECC, modulation, channel, interleaver).

Each entry pairs a canonical name with a frozen pydantic config model (its settings, unknown
keys rejected) and the class built from it. A duplicate name is an error; an unknown name is an
error that lists the valid ones.

Every config model (components here, the scenario file's sections in ``scenarios/schema.py``)
derives from ``ConfigModel``: frozen, unknown keys rejected, and a boolean never accepted where
a number is expected (pydantic would read ``quality: true`` as 1). YAML integers still fill
float settings (``ber: 0``, ``esn0_db: 4``).
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

import pydantic
from pydantic_core import PydanticCustomError

from noisylink.errors import ScenarioError, UnknownComponent

T = TypeVar("T")
C = TypeVar("C", bound=type)


def _leaf_types(annotation: Any) -> set[Any]:
    """The plain types an annotation admits, through ``Optional``/unions and ``Annotated``."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _leaf_types(typing.get_args(annotation)[0])
    if origin is typing.Union or origin is types.UnionType:
        return set().union(*(_leaf_types(arg) for arg in typing.get_args(annotation)))
    return {annotation}


def takes_number_not_bool(annotation: Any) -> bool:
    """Whether a field of this type expects an int or float and does not admit a bool."""
    leaves = _leaf_types(annotation)
    if bool in leaves:
        return False
    return any(
        isinstance(leaf, type) and issubclass(leaf, (int, float)) for leaf in leaves
    )


class ConfigModel(pydantic.BaseModel):
    """Frozen settings, unknown keys rejected, booleans refused where numbers are expected."""

    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)

    @pydantic.field_validator("*", mode="before")
    @classmethod
    def _no_bool_for_number(cls, value: Any, info: pydantic.ValidationInfo) -> Any:
        field = cls.model_fields.get(info.field_name or "")
        if isinstance(value, bool) and field is not None and takes_number_not_bool(
            field.annotation
        ):
            raise PydanticCustomError(
                "bool_not_number", "expected a number, got a boolean ({value})",
                {"value": str(value).lower()},
            )
        return value


class ComponentConfig(ConfigModel):
    """Base of every component's settings: frozen, unknown keys rejected, no bool numbers."""

    name: str
    #: settings whose value is a list (a scenario sweeps them with a list of lists)
    list_settings: ClassVar[frozenset[str]] = frozenset()

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
