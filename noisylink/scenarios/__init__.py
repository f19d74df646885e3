"""Scenarios: the schema, loading (files and built-ins) and grid expansion into cells."""

from noisylink.scenarios.grid import Cell, expand, stream_seed
from noisylink.scenarios.loading import builtin_names, load_scenario, parse_scenario
from noisylink.scenarios.schema import FramesSpec, ImagesSpec, Scenario

__all__ = [
    "Cell",
    "FramesSpec",
    "ImagesSpec",
    "Scenario",
    "builtin_names",
    "expand",
    "load_scenario",
    "parse_scenario",
    "stream_seed",
]
