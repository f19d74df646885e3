"""``manifest.json`` (a run) and ``sweep.json`` (a sweep): what made the results, written
when the work starts and again when it ends.

Written whole to a temporary file and renamed into place, so a reader (or a crash) never
sees half a manifest.
"""

from __future__ import annotations

import datetime as dt
import json
import platform
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

VERSIONED = ("noisylink", "numpy", "scipy", "commpy", "pillow", "pillow-heif", "scikit-image",
             "torch")


def versions() -> dict[str, str]:
    """Versions of the things that shape results."""
    found = {"python": platform.python_version()}
    for package in VERSIONED:
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return found


def utc_now() -> str:
    """The time as manifests record it: UTC, to the second."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def write_manifest(path: Path, manifest: Mapping[str, Any]) -> None:
    """Write ``manifest`` as indented JSON with sorted keys, atomically."""
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(json.dumps(manifest, indent=2, sort_keys=True, default=str) + "\n")
    temporary.replace(path)
