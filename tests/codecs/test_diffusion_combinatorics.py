"""Lexicographic ranking of index sets (Turbo-DDCM): exactness, inverse, corruption (speed:
``benchmarks/rcc_speed.py``)."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from noisylink.codecs.diffusion.combinatorics import combination_rank, combination_unrank, rank_bits

# The spec's worked example: K = 8, M = 3, each single-bit flip of rank 0.
WORKED_FLIPS = {
    1: (0, 1, 3),
    2: (0, 1, 4),
    4: (0, 1, 6),
    8: (0, 2, 5),
    16: (0, 4, 6),
    32: (1, 4, 7),
}


def test_worked_example() -> None:
    assert math.comb(8, 3) == 56
    assert rank_bits(8, 3) == 6
    assert combination_unrank(0, 8, 3) == (0, 1, 2)
    assert combination_rank((0, 1, 2), 8) == 0
    for rank, expected in WORKED_FLIPS.items():
        assert combination_unrank(rank, 8, 3) == expected
        assert combination_rank(expected, 8) == rank


@pytest.mark.parametrize(("K", "M"), [(10, 4), (8, 3), (7, 1), (6, 6), (9, 8), (12, 5)])
def test_matches_itertools_exhaustively(K: int, M: int) -> None:
    combos = list(itertools.combinations(range(K), M))
    assert len(combos) == math.comb(K, M)
    for rank, combo in enumerate(combos):
        assert combination_rank(combo, K) == rank
        assert combination_unrank(rank, K, M) == combo


@settings(max_examples=200, deadline=None)
@given(st.sets(st.integers(0, 16383), min_size=30, max_size=30))
def test_round_trip_property_k16384_m30(chosen: set[int]) -> None:
    combo = tuple(sorted(chosen))
    rank = combination_rank(combo, 16384)
    assert 0 <= rank < math.comb(16384, 30)
    assert combination_unrank(rank, 16384, 30) == combo


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=math.comb(16384, 30) - 1))
def test_unrank_then_rank_property(rank: int) -> None:
    combo = combination_unrank(rank, 16384, 30)
    assert len(combo) == 30
    assert all(a < b for a, b in itertools.pairwise(combo))
    assert combo[0] >= 0 and combo[-1] < 16384
    assert combination_rank(combo, 16384) == rank


@settings(max_examples=100, deadline=None)
@given(st.integers())
def test_unrank_reduces_out_of_range_modulo(rank: int) -> None:
    total = math.comb(10, 4)
    assert combination_unrank(rank, 10, 4) == combination_unrank(rank % total, 10, 4)


def test_unrank_out_of_range_examples() -> None:
    total = math.comb(8, 3)
    assert combination_unrank(total, 8, 3) == (0, 1, 2)
    assert combination_unrank(-1, 8, 3) == (5, 6, 7)
    assert combination_unrank(2**6 - 1, 8, 3) == combination_unrank(63 - total, 8, 3)
    assert combination_unrank(10**400, 8, 3) == combination_unrank(10**400 % total, 8, 3)


def test_largest_sets_round_trip_from_first_to_last_rank() -> None:
    K, M = 65536, 100
    combos = [
        tuple(range(M)),
        tuple(range(K - M, K)),
        tuple(range(0, 655 * M, 655)),
        tuple(sorted({(i * 7919 + 13) % K for i in range(M)})),
    ]
    for combo in combos:
        assert len(combo) == M
        rank = combination_rank(combo, K)
        assert combination_unrank(rank, K, M) == combo
    assert combination_rank(combos[0], K) == 0
    assert combination_rank(combos[1], K) == math.comb(K, M) - 1
    assert rank_bits(K, M) == (math.comb(K, M) - 1).bit_length()


@pytest.mark.parametrize(("K", "M"), [(8, 3), (4096, 10), (16384, 30), (65536, 100), (5, 5)])
def test_rank_bits_is_exact_ceil_log2(K: int, M: int) -> None:
    total = math.comb(K, M)
    bits = rank_bits(K, M)
    assert 2**bits >= total
    if total > 1:
        assert 2 ** (bits - 1) < total
    else:
        assert bits == 0


@pytest.mark.parametrize(
    "indices",
    [(), (2, 1, 3), (1, 1, 3), (-1, 2, 3), (0, 1, 8), (0, 1, 2, 3, 4, 5, 6, 7, 8)],
)
def test_rank_rejects_invalid_sets(indices: tuple[int, ...]) -> None:
    with pytest.raises(ValueError):
        combination_rank(indices, 8)


@pytest.mark.parametrize(("K", "M"), [(8, 0), (8, 9), (3, -1)])
def test_unrank_rejects_invalid_sizes(K: int, M: int) -> None:
    with pytest.raises(ValueError):
        combination_unrank(0, K, M)


def test_public_helpers_are_exported_from_the_package() -> None:
    from noisylink.codecs import diffusion

    assert diffusion.combination_rank((0, 1, 2), 8) == 0
    assert diffusion.combination_unrank(32, 8, 3) == (1, 4, 7)
    assert diffusion.combination_unrank(56 + 1, 8, 3) == (0, 1, 3)  # out of range: modulo C(8, 3)
