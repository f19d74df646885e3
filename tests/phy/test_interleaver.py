"""Interleavers: round trips, padding, the row-in/column-out permutation and burst spreading."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from noisylink.errors import ScenarioError
from noisylink.phy.interleaver import INTERLEAVERS, BlockConfig, BlockInterleaver, NoneConfig


def build(settings_: dict):
    return INTERLEAVERS.build(INTERLEAVERS.config(settings_))


def test_registry_and_defaults() -> None:
    assert INTERLEAVERS.names() == ["block", "none"]
    assert INTERLEAVERS.config({"name": "block"}) == BlockConfig(depth=16)
    assert INTERLEAVERS.config({"name": "none"}) == NoneConfig()
    with pytest.raises(ScenarioError, match=r"interleaver\.depth"):
        INTERLEAVERS.config({"name": "block", "depth": 0})
    with pytest.raises(ScenarioError, match="unknown setting"):
        INTERLEAVERS.config({"name": "none", "depth": 4})


@pytest.mark.parametrize(("n", "padded"), [(0, 0), (1, 16), (15, 16), (16, 16), (17, 32)])
def test_block_padded_length(n: int, padded: int) -> None:
    assert build({"name": "block"}).padded_length(n) == padded


def test_block_permutation_is_row_in_column_out() -> None:
    interleaver = BlockInterleaver(BlockConfig(depth=4))
    out = interleaver.interleave(np.arange(10, dtype=np.int64))
    # 4 rows x 3 columns, written row-wise (zero-padded), read column-wise.
    matrix = np.array([[0, 1, 2], [3, 4, 5], [6, 7, 8], [9, 0, 0]])
    np.testing.assert_array_equal(out, matrix.T.reshape(-1))


@pytest.mark.parametrize("dtype", [np.uint8, np.float64])
def test_padding_is_zeros_of_input_dtype(dtype: type) -> None:
    interleaver = build({"name": "block", "depth": 8})
    out = interleaver.interleave(np.ones(13, dtype=dtype))
    assert out.dtype == dtype
    assert out.size == 16
    assert out.sum() == 13


@settings(max_examples=200, deadline=None)
@given(
    depth=st.integers(1, 40),
    values=st.lists(st.floats(allow_nan=False, width=64), max_size=300),
)
def test_block_round_trip_floats(depth: int, values: list[float]) -> None:
    interleaver = BlockInterleaver(BlockConfig(depth=depth))
    x = np.array(values, dtype=np.float64)
    y = interleaver.interleave(x)
    assert y.size == interleaver.padded_length(x.size)
    np.testing.assert_array_equal(interleaver.deinterleave(y, x.size), x)


@pytest.mark.parametrize("name", ["block", "none"])
@pytest.mark.parametrize("n", [0, 1, 15, 16, 17, 1000])
def test_round_trip_bits(name: str, n: int) -> None:
    interleaver = build({"name": name})
    bits = np.random.default_rng(n).integers(0, 2, n, dtype=np.uint8)
    y = interleaver.interleave(bits)
    back = interleaver.deinterleave(y, n)
    assert back.dtype == np.uint8
    np.testing.assert_array_equal(back, bits)


def test_none_is_identity() -> None:
    interleaver = build({"name": "none"})
    x = np.linspace(-1, 1, 7)
    assert interleaver.padded_length(7) == 7
    np.testing.assert_array_equal(interleaver.interleave(x), x)


def test_deinterleave_checks_length() -> None:
    with pytest.raises(ValueError, match="needs 32 inputs"):
        build({"name": "block"}).deinterleave(np.zeros(30), 20)


def error_runs(errors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start positions and lengths of the runs of ``True``."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], errors.astype(np.int8), [0]])))
    return edges[::2], edges[1::2] - edges[::2]


@pytest.mark.parametrize("offset", [0, 5, 123])
def test_burst_up_to_depth_lands_as_isolated_errors(offset: int) -> None:
    depth, cols = 16, 200
    n = depth * cols
    interleaver = build({"name": "block", "depth": depth})
    channel_errors = np.zeros(n, dtype=bool)
    channel_errors[offset : offset + depth] = True
    errors = interleaver.deinterleave(channel_errors, n)
    positions = np.flatnonzero(errors)
    assert positions.size == depth
    # One error per row, at least cols - 1 apart.
    assert np.diff(positions).min() >= cols - 1


@pytest.mark.parametrize(("burst_rows", "offset"), [(1, 0), (4, 7), (9, 100)])
def test_burst_of_depth_times_l_lands_as_depth_runs_of_l(burst_rows: int, offset: int) -> None:
    depth, cols = 16, 200
    n = depth * cols
    interleaver = build({"name": "block", "depth": depth})
    channel_errors = np.zeros(n, dtype=bool)
    channel_errors[offset : offset + depth * burst_rows] = True
    starts, lengths = error_runs(interleaver.deinterleave(channel_errors, n))
    assert starts.size == depth
    assert (lengths == burst_rows).all()
    assert np.diff(starts).min() >= cols - 1
