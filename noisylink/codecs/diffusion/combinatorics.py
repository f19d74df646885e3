"""Ranking M-subsets of range(K) in lexicographic order, for Turbo-DDCM's index sets.

Turbo-DDCM sends each step's sorted set of M atom indices as one integer: its rank in the order
of ``itertools.combinations(range(K), M)``. Ranks are exact Python ints (C(65536, 100) has about
1100 bits). The decoder must accept any bits, so unranking reduces an out-of-range rank modulo
C(K, M) instead of raising.

Both directions use the combinatorial number system on the mirrored set d_i = K - 1 - c_i:
lexicographic order on c is reversed colexicographic order on d, so
``rank(c) = C(K, M) - 1 - sum_i C(K - 1 - c_i, M - i)``. Unranking inverts this greedily with a
binary search per position, O(M log K) calls to ``math.comb``.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence


def _check_sizes(K: int, M: int) -> None:
    """Raise ValueError unless 1 <= M <= K."""
    if M < 1:
        raise ValueError(f"M must be at least 1, got {M}")
    if M > K:
        raise ValueError(f"M must be at most K, got M={M}, K={K}")


def combination_rank(indices: Sequence[int], K: int) -> int:
    """Rank of a strictly increasing M-subset of range(K) in lexicographic order.

    Raises ValueError for an empty, unsorted, duplicated or out-of-range set.
    """
    values = [operator.index(v) for v in indices]
    M = len(values)
    _check_sizes(K, M)
    previous = -1
    for value in values:
        if value <= previous:
            raise ValueError(f"indices must be strictly increasing, got {values}")
        previous = value
    if values[0] < 0 or values[-1] >= K:
        raise ValueError(f"indices must lie in [0, {K}), got {values}")
    colex = sum(math.comb(K - 1 - value, M - i) for i, value in enumerate(values))
    return math.comb(K, M) - 1 - colex


def combination_unrank(rank: int, K: int, M: int) -> tuple[int, ...]:
    """The M-subset of range(K) (sorted) whose lexicographic rank is ``rank mod C(K, M)``.

    Never raises for any integer rank (bit flips can produce any value); raises ValueError only
    for invalid sizes (M < 1 or M > K).
    """
    _check_sizes(K, M)
    total = math.comb(K, M)
    remaining = total - 1 - (operator.index(rank) % total)
    result: list[int] = []
    upper = K - 1  # largest mirrored value d still allowed
    for i in range(M):
        j = M - i
        # Largest d in [j - 1, upper] with C(d, j) <= remaining; C(j - 1, j) = 0 always fits.
        lo, hi = j - 1, upper
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if math.comb(mid, j) <= remaining:
                lo = mid
            else:
                hi = mid - 1
        remaining -= math.comb(lo, j)
        result.append(K - 1 - lo)
        upper = lo - 1
    return tuple(result)


def rank_bits(K: int, M: int) -> int:
    """Bits needed for a rank: ceil(log2 C(K, M)), exactly, and 0 when C(K, M) == 1."""
    _check_sizes(K, M)
    return (math.comb(K, M) - 1).bit_length()
