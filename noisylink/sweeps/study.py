"""Studies: several scenarios swept together, or one scenario file with lists (a grid).

A study file is YAML with ``scenarios`` (built-in names, paths relative to the study file,
or inline scenario mappings) and optional ``scale`` settings applied to every scenario, so one
setting takes a study from this machine's minutes to a larger image set (``folder``: other
pictures, e.g. your own, in place of each scenario's)::

    name: my-study
    description: shown by `noisylink sweep --help`... and in the manifest
    scale: {images: 4, size: 128, trials: 2, folder: my/pictures}
    scenarios: [rcc-vs-jpeg, my/other.yaml, {name: inline, codec: ..., channel: ...}]

Top-level keys starting with ``x-`` are ignored: a place for YAML anchors (``&common``) that
the scenarios merge (``<<: *common``).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import pydantic

from noisylink.errors import ScenarioError
from noisylink.registry import ConfigModel, scenario_error_from
from noisylink.scenarios.loading import (
    load_scenario,
    parse_scenario,
    read_yaml,
    read_yaml_file,
)
from noisylink.scenarios.schema import MAX_SIDE, Scenario

BUILTIN_STUDIES = "noisylink.sweeps.builtin"


class Scale(ConfigModel):
    """Overrides applied to every scenario of a study (unset = the scenario's own)."""

    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)

    images: int | None = pydantic.Field(None, ge=1, description="images per scenario (limit)")
    size: int | None = pydantic.Field(None, ge=8, le=MAX_SIDE,
                                      description="center-crop side in pixels")
    trials: int | None = pydantic.Field(None, ge=1)
    folder: Path | None = pydantic.Field(
        None, description="run on the pictures of this folder instead of the scenario's")

    def merged(self, other: Scale) -> Scale:
        """``other``'s settings where given, else these."""
        mine, theirs = self.model_dump(exclude_none=True), other.model_dump(exclude_none=True)
        return Scale(**{**mine, **theirs})

    def apply(self, scenario: Scenario) -> Scenario:
        images = scenario.images
        changes: dict[str, Any] = {}
        if self.images is not None:
            changes["limit"] = self.images
        if self.size is not None:
            changes["size"] = self.size
            if images.resize is not None:
                changes["resize"] = self.size
        if self.folder is not None:
            changes["source"] = "folder"
            changes["path"] = self.folder
        updated = scenario.model_copy(update={"images": images.model_copy(update=changes)})
        if self.trials is not None:
            updated = updated.model_copy(update={"trials": self.trials})
        return updated


class StudyFile(ConfigModel):
    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)

    name: str = pydantic.Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    description: str = ""
    scale: Scale = Scale()
    scenarios: list[str | dict[str, Any]] = pydantic.Field(min_length=1)

    @pydantic.model_validator(mode="before")
    @classmethod
    def _drop_extensions(cls, data: Any) -> Any:
        """Top-level ``x-`` keys hold YAML anchors for the scenarios to share; not settings."""
        if isinstance(data, dict):
            return {key: value for key, value in data.items() if not str(key).startswith("x-")}
        return data


@dataclass(frozen=True)
class Study:
    name: str
    description: str
    source: str
    scenarios: list[Scenario]


def builtin_study_names() -> list[str]:
    folder = resources.files(BUILTIN_STUDIES)
    return sorted(p.name.removesuffix(".yaml") for p in folder.iterdir()
                  if p.name.endswith(".yaml"))


def _study_from_data(data: dict[str, Any], source: str, base: Path | None,
                     scale: Scale) -> Study:
    try:
        study = StudyFile.model_validate(data)
    except pydantic.ValidationError as exc:
        error = scenario_error_from(exc)
        raise ScenarioError(error.message, source=source, field=error.field) from None
    effective = study.scale.merged(scale)
    scenarios: list[Scenario] = []
    for index, entry in enumerate(study.scenarios):
        if isinstance(entry, dict):
            scenario = parse_scenario(entry, f"{source} (scenarios[{index}])")
        else:
            path = Path(entry)
            if base is not None and not path.is_absolute() and (base / path).exists():
                path = base / path
            scenario, _ = load_scenario(path if path.exists() else entry)
        scenarios.append(effective.apply(scenario))
    names = [s.name for s in scenarios]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ScenarioError(f"scenario names must differ within a study: {duplicates}",
                            source=source, field="scenarios")
    return Study(study.name, study.description, source, scenarios)


def load_study(ref: str, scale: Scale | None = None) -> Study:
    """A study file, a built-in study, or a scenario (file or built-in) as a one-scenario study."""
    scale = scale or Scale()
    path = Path(ref)
    if path.suffix in (".yaml", ".yml") or path.exists():
        data = read_yaml_file(path, "study or scenario")
        if isinstance(data, dict) and "scenarios" in data:
            return _study_from_data(data, str(path), path.parent, scale)
        scenario = parse_scenario(data, str(path))  # read once, not again by load_scenario
        return Study(scenario.name, scenario.description, str(path), [scale.apply(scenario)])
    if ref in builtin_study_names():
        text = resources.files(BUILTIN_STUDIES).joinpath(f"{ref}.yaml").read_text()
        source = f"built-in study {ref}"
        return _study_from_data(read_yaml(text, source), source, None, scale)
    scenario, source = load_scenario(ref)  # a built-in scenario, or its one-line error
    return Study(scenario.name, scenario.description, source, [scale.apply(scenario)])
