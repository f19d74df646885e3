"""Checking weight and checkpoint files before trusting them: they may be truncated, malformed,
of another model, or planted.

- ``read_safetensors_header`` parses only a safetensors file's header (the first 8 bytes give
  its length, little-endian; then a JSON object of ``name: {dtype, shape, data_offsets}``) and
  checks it against the file: a bounded header, known dtypes, and byte ranges that match each
  shape, lie inside the file and cover it exactly. Nothing is allocated for the tensors.
- ``check_tensors`` compares those entries with what a model expects (names, shapes, dtypes).
- ``load_safetensors`` reads a safetensors file's tensors, only once both checks accept it.
- ``load_torch_checkpoint`` reads a ``torch.save`` file with ``weights_only=True``: tensors and
  plain data (dicts, lists, numbers, strings) only, so a pickled object in it runs nothing.

Each raises ``ValueError`` with a one-line reason (without the path: callers name the file).
Torch and safetensors are imported only by the two loaders.
"""

from __future__ import annotations

import json
import math
import pickle
import zipfile
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MAX_HEADER_BYTES = 16 << 20
"""Largest safetensors header read (a Stable Diffusion UNet's is about 100 kB)."""

DTYPE_BYTES = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E4M3": 1, "F8_E5M2": 1,
    "U16": 2, "I16": 2, "F16": 2, "BF16": 2,
    "U32": 4, "I32": 4, "F32": 4,
    "U64": 8, "I64": 8, "F64": 8,
}
FLOAT_DTYPES = frozenset({"F16", "BF16", "F32", "F64"})


@dataclass(frozen=True)
class TensorEntry:
    """One tensor as a safetensors header declares it."""

    dtype: str
    shape: tuple[int, ...]
    begin: int
    end: int

    @property
    def numel(self) -> int:
        return math.prod(self.shape)


def _entry(name: str, value: Any) -> TensorEntry:
    if not isinstance(value, Mapping):
        raise ValueError(f"header entry {name!r} is not an object")
    dtype, shape, offsets = value.get("dtype"), value.get("shape"), value.get("data_offsets")
    if dtype not in DTYPE_BYTES:
        raise ValueError(f"tensor {name!r} has unknown dtype {dtype!r}")
    if not isinstance(shape, list) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
    ):
        raise ValueError(f"tensor {name!r} has an invalid shape {shape!r}")
    if not (
        isinstance(offsets, list) and len(offsets) == 2
        and all(isinstance(o, int) and not isinstance(o, bool) for o in offsets)
    ):
        raise ValueError(f"tensor {name!r} has invalid data_offsets {offsets!r}")
    begin, end = offsets
    entry = TensorEntry(dtype, tuple(shape), begin, end)
    if not 0 <= begin <= end or end - begin != entry.numel * DTYPE_BYTES[dtype]:
        raise ValueError(
            f"tensor {name!r} declares shape {list(shape)} of {dtype} but bytes {begin}..{end}"
        )
    return entry


def read_safetensors_header(path: Path) -> dict[str, TensorEntry]:
    """The tensors a safetensors file declares, checked against the file's size."""
    try:
        size = path.stat().st_size
        with path.open("rb") as file:
            prefix = file.read(8)
            if len(prefix) < 8:
                raise ValueError(f"file too short for safetensors ({size} bytes)")
            header_bytes = int.from_bytes(prefix, "little")
            if header_bytes > MAX_HEADER_BYTES:
                raise ValueError(
                    f"header declares {header_bytes} bytes, more than {MAX_HEADER_BYTES}"
                )
            if 8 + header_bytes > size:
                raise ValueError(f"truncated: header of {header_bytes} bytes, file of {size}")
            text = file.read(header_bytes)
    except OSError as exc:
        raise ValueError(exc.strerror or str(exc)) from None
    try:
        header = json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ValueError("header is not valid JSON") from None
    if not isinstance(header, dict):
        raise ValueError("header is not a JSON object")
    entries = {
        name: _entry(name, value) for name, value in header.items() if name != "__metadata__"
    }
    data_bytes = size - 8 - header_bytes
    spans = sorted((entry.begin, entry.end, name) for name, entry in entries.items())
    covered = 0
    for begin, end, name in spans:
        if begin != covered:
            raise ValueError(f"tensor {name!r} does not start where the previous one ends")
        covered = end
    if covered != data_bytes:
        state = "truncated" if covered > data_bytes else "has trailing bytes"
        raise ValueError(
            f"{state}: the header declares {covered} bytes of tensors, the file holds "
            f"{data_bytes}"
        )
    return entries


def check_tensors(
    entries: Mapping[str, TensorEntry],
    expected: Mapping[str, tuple[int, ...]],
    dtypes: Collection[str] = FLOAT_DTYPES,
) -> None:
    """Exactly the expected tensor names, each with its expected shape and an allowed dtype."""
    missing = sorted(set(expected) - set(entries))
    if missing:
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        raise ValueError(f"missing tensors {', '.join(missing[:3])}{more}")
    unexpected = sorted(set(entries) - set(expected))
    if unexpected:
        more = f" and {len(unexpected) - 3} more" if len(unexpected) > 3 else ""
        raise ValueError(f"unexpected tensors {', '.join(unexpected[:3])}{more}")
    for name, shape in expected.items():
        entry = entries[name]
        if entry.shape != tuple(shape):
            raise ValueError(
                f"tensor {name!r} has shape {list(entry.shape)}, the model expects {list(shape)}"
            )
        if entry.dtype not in dtypes:
            raise ValueError(f"tensor {name!r} has dtype {entry.dtype}, not a float type")


def load_safetensors(path: Path, expected: Mapping[str, tuple[int, ...]]) -> dict[str, Any]:
    """The tensors of a safetensors file, on the CPU, once ``read_safetensors_header`` and
    ``check_tensors`` accept it (else their ``ValueError``); ``OSError`` (one line) when the
    file cannot be read."""
    check_tensors(read_safetensors_header(path), expected)
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except (RuntimeError, SafetensorError) as exc:
        raise OSError(str(exc).splitlines()[0]) from None


def _unpickling_reason(exc: BaseException) -> str:
    """The informative line of torch's weights-only refusal (it spans many lines)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    for line in lines:
        if "Unsupported" in line or "WeightsUnpickler error" in line:
            return line
    return lines[0] if lines else type(exc).__name__


def load_torch_checkpoint(path: Path) -> Any:
    """A ``torch.save`` file's content, loaded with ``weights_only=True`` onto the CPU."""
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise ValueError(
            "refused: it holds objects other than tensors and plain data, which could run "
            f"code ({_unpickling_reason(exc)})"
        ) from None
    except (OSError, RuntimeError, EOFError, ValueError, zipfile.BadZipFile) as exc:
        raise ValueError(f"unreadable checkpoint ({_unpickling_reason(exc)})") from None
