"""Output folders: made ready before a command computes anything, or one line saying why not.

``prepare_out_dir(path, what)`` creates the folder (and its parents) and proves it writable with
a probe file that it removes again. A path that is a file, that lies under a file, or that
cannot be created or written raises ``NoisylinkError`` with one line naming the path and
``what`` it is for, so a command fails at the start, not after an hour of work and with a
traceback. ``check_out_dir`` makes the same checks without creating a missing folder.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from noisylink.errors import NoisylinkError


def _file_above(path: Path) -> Path | None:
    """The nearest ancestor of ``path`` that exists and is not a folder, if any."""
    for parent in path.parents:
        if parent.exists():
            return None if parent.is_dir() else parent
    return None


def prepare_out_dir(path: Path, what: str = "output folder") -> Path:
    """Create ``path`` as a writable folder and return it; else raise a one-line error."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise NoisylinkError(f"{path}: the {what} is a file, not a folder")
    blocker = _file_above(path)
    if blocker is not None:
        raise NoisylinkError(f"{path}: the {what} lies under {blocker}, which is a file")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise NoisylinkError(
            f"{path}: cannot create the {what} ({exc.strerror or exc})"
        ) from None
    _probe_write(path, f"{path}: the {what} is not writable")
    return path


def check_out_dir(path: Path, what: str = "output folder") -> Path:
    """Like ``prepare_out_dir``, but a folder that does not exist yet is not made: its nearest
    existing parent must be a folder this process can write into (for commands that check
    their other inputs later and should leave nothing behind when those are wrong)."""
    path = Path(path)
    if path.exists():
        return prepare_out_dir(path, what)
    blocker = _file_above(path)
    if blocker is not None:
        raise NoisylinkError(f"{path}: the {what} lies under {blocker}, which is a file")
    parent = next(p for p in path.parents if p.exists())
    _probe_write(parent, f"{path}: cannot create the {what}")
    return path


def _probe_write(folder: Path, failure: str) -> None:
    """Write and remove a probe file in ``folder``; ``failure`` (and the reason) if that fails."""
    try:
        handle, probe = tempfile.mkstemp(prefix=".noisylink-probe-", dir=folder)
    except OSError as exc:
        raise NoisylinkError(f"{failure} ({exc.strerror or exc})") from None
    os.close(handle)
    os.unlink(probe)


def prepare_out_file(path: Path, what: str = "output file") -> Path:
    """Make ``path``'s folder ready (see ``prepare_out_dir``) for a file that is not a folder."""
    path = Path(path)
    if path.is_dir():
        raise NoisylinkError(f"{path}: the {what} is a folder, not a file")
    prepare_out_dir(path.parent, f"folder of the {what}")
    if path.exists() and not os.access(path, os.W_OK):
        raise NoisylinkError(f"{path}: the {what} is not writable")
    return path
