"""Loading scenarios from files or by built-in name, with one-line errors."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import pydantic
import yaml

from noisylink.errors import ScenarioError
from noisylink.registry import scenario_error_from
from noisylink.scenarios.grid import expand
from noisylink.scenarios.schema import Scenario

BUILTIN_PACKAGE = "noisylink.scenarios.builtin"


def builtin_names() -> list[str]:
    """Names of the scenarios that ship with noisylink."""
    folder = resources.files(BUILTIN_PACKAGE)
    names = (p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml"))
    return sorted(names)


def _builtin_text(name: str) -> str:
    return resources.files(BUILTIN_PACKAGE).joinpath(f"{name}.yaml").read_text()


def parse_scenario(data: Any, source: str) -> Scenario:
    """Validate already-parsed YAML data, grid included; errors name ``source`` and the field."""
    if not isinstance(data, dict):
        raise ScenarioError("a scenario must be a YAML mapping", source=source)
    try:
        scenario = Scenario.model_validate(data)
    except pydantic.ValidationError as exc:
        error = scenario_error_from(exc)
        raise ScenarioError(error.message, source=source, field=error.field) from None
    try:
        expand(scenario)
    except ScenarioError as exc:
        raise ScenarioError(exc.message, source=source, field=exc.field) from None
    return scenario


def read_yaml(text: str, source: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else None
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ScenarioError(f"invalid YAML: {problem}", source=source, field=where) from None


def read_yaml_file(path: Path, what: str) -> Any:
    """The parsed YAML of a file, with one-line errors naming it (``what``: for the message)."""
    if not path.is_file():
        raise ScenarioError(f"no such {what} file", source=str(path))
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"cannot read: {exc}", source=str(path)) from None
    return read_yaml(text, str(path))


def load_scenario(ref: str | Path) -> tuple[Scenario, str]:
    """A scenario from a file path or a built-in name, with the source it came from."""
    path = Path(ref)
    if path.suffix in (".yaml", ".yml") or path.exists():
        return parse_scenario(read_yaml_file(path, "scenario"), str(path)), str(path)
    name = str(ref)
    if name in builtin_names():
        source = f"built-in {name}"
        return parse_scenario(read_yaml(_builtin_text(name), source), source), source
    raise ScenarioError(
        f"no scenario file or built-in named {name!r}; built-ins: {', '.join(builtin_names())}"
    )
