"""Loading design files from a path or by built-in name, with one-line errors."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import pydantic

from noisylink.design.schema import Design
from noisylink.errors import ScenarioError
from noisylink.registry import scenario_error_from
from noisylink.scenarios.loading import read_yaml, read_yaml_file

BUILTIN_DESIGNS = "noisylink.design.builtin"


def builtin_design_names() -> list[str]:
    """Names of the designs that ship with noisylink."""
    folder = resources.files(BUILTIN_DESIGNS)
    return sorted(p.name.removesuffix(".yaml") for p in folder.iterdir()
                  if p.name.endswith(".yaml"))


def parse_design(data: Any, source: str) -> Design:
    """Validate parsed YAML as a design; errors name ``source`` and the field."""
    if not isinstance(data, dict):
        raise ScenarioError("a design must be a YAML mapping", source=source)
    try:
        return Design.model_validate(data)
    except pydantic.ValidationError as exc:
        error = scenario_error_from(exc)
        raise ScenarioError(error.message, source=source, field=error.field) from None


def load_design(ref: str | Path) -> tuple[Design, str]:
    """A design from a file path or a built-in name, with the source it came from."""
    path = Path(ref)
    if path.suffix in (".yaml", ".yml") or path.exists():
        return parse_design(read_yaml_file(path, "design"), str(path)), str(path)
    name = str(ref)
    if name in builtin_design_names():
        source = f"built-in design {name}"
        text = resources.files(BUILTIN_DESIGNS).joinpath(f"{name}.yaml").read_text()
        return parse_design(read_yaml(text, source), source), source
    raise ScenarioError(f"no design file or built-in named {name!r}; built-ins: "
                        f"{', '.join(builtin_design_names())}")
