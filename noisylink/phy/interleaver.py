"""Interleavers: spread a channel's error bursts across the stream before ECC decoding.

``block`` (``{name: block, depth: 16}``) writes a chunk of ``n`` values row-wise into a matrix
of ``depth`` rows and ``ceil(n / depth)`` columns (zero-padded to fill it) and reads it out
column-wise, using commpy's ``BlockInterleaver``. A channel burst of up to ``depth`` values
lands as isolated errors about ``n / depth`` apart after deinterleaving; a burst of
``depth * L`` lands as ``depth`` runs of ``L``. ``none`` passes values through.

API: ``padded_length(n)``; ``interleave(x [n]) -> [padded_length(n)]`` (padding is zeros of
``x``'s dtype, counted as bandwidth by the caller); ``deinterleave(y [padded_length(n)], n) ->
[n]``. Works for ``uint8`` bits and float LLRs alike.
"""

from __future__ import annotations

from typing import Literal, Protocol

import numpy as np
import pydantic
from commpy import BlockInterleaver as CommpyBlockInterleaver
from numpy.typing import ArrayLike, NDArray

from noisylink.registry import ComponentConfig, Registry


class Interleaver(Protocol):
    """A permutation of a chunk, padded to the interleaver's shape (see module docstring)."""

    config: ComponentConfig

    def padded_length(self, n: int) -> int: ...

    def interleave(self, x: ArrayLike) -> NDArray: ...

    def deinterleave(self, y: ArrayLike, n: int) -> NDArray: ...


INTERLEAVERS: Registry[Interleaver] = Registry("interleaver")


class BlockConfig(ComponentConfig):
    """``{name: block, depth: 16}``: depth is the number of rows."""

    name: Literal["block"] = "block"
    depth: pydantic.PositiveInt = 16


class NoneConfig(ComponentConfig):
    """``{name: none}``."""

    name: Literal["none"] = "none"


@INTERLEAVERS.register("block", BlockConfig)
class BlockInterleaver:
    """Row-in, column-out block interleaver over one chunk (``depth`` rows)."""

    def __init__(self, config: BlockConfig):
        self.config = config
        self.depth = config.depth

    def padded_length(self, n: int) -> int:
        """``n`` rounded up to a multiple of ``depth``."""
        return -(-n // self.depth) * self.depth

    def interleave(self, x: ArrayLike) -> NDArray:
        """``[padded_length(n)]`` values of ``x``'s dtype, read column-wise."""
        x = _one_dimensional(x)
        padded = np.zeros(self.padded_length(x.size), dtype=x.dtype)
        padded[: x.size] = x
        return self._commpy(padded.size).interleave(padded)

    def deinterleave(self, y: ArrayLike, n: int) -> NDArray:
        """The first ``n`` values of the inverse permutation of ``y [padded_length(n)]``."""
        y = _one_dimensional(y)
        _check_length(y, self.padded_length(n), n)
        return self._commpy(y.size).deinterleave(y)[:n]

    def _commpy(self, size: int) -> CommpyBlockInterleaver:
        return CommpyBlockInterleaver(self.depth, size // self.depth)


@INTERLEAVERS.register("none", NoneConfig)
class NoInterleaver:
    """The identity: no padding, values unchanged (copies)."""

    def __init__(self, config: NoneConfig):
        self.config = config

    def padded_length(self, n: int) -> int:
        return n

    def interleave(self, x: ArrayLike) -> NDArray:
        return _one_dimensional(x).copy()

    def deinterleave(self, y: ArrayLike, n: int) -> NDArray:
        y = _one_dimensional(y)
        _check_length(y, n, n)
        return y.copy()


def _one_dimensional(x: ArrayLike) -> NDArray:
    x = np.asarray(x)
    if x.ndim != 1:
        raise ValueError(f"interleaver input must be one-dimensional, got shape {x.shape}")
    return x


def _check_length(y: NDArray, expected: int, n: int) -> None:
    if y.size != expected:
        raise ValueError(f"deinterleave of {n} values needs {expected} inputs, got {y.size}")
