"""Trellis tables of rate-1/n feed-forward convolutional codes, in commpy's convention.

``next_state[s, u]`` and ``output_bits[s, u, j]`` (uint8 0/1) describe the code;
``shift_register_trellis`` builds them from a constraint length and octal generators, e.g. the
K=7 (171, 133) code. ``TrellisTables`` adds the decoders' view: the two branches into each
state, listed in the order in which commpy's add-compare-select visits them (so that ties go
where commpy sends them), and the sign pattern of every output word. Bad tables raise
``ValueError``; nothing here depends on a decoder backend.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

Int64s = NDArray[np.int64]


@dataclass(frozen=True, eq=False)
class TrellisTables:
    """A rate-1/n feed-forward trellis, with its incoming branches in commpy's tie order.

    ``pred_state[ns, d]``, ``pred_input[ns, d]`` and ``pred_pattern[ns, d]`` describe the two
    branches into state ``ns``: source state, input bit and output pattern (the output bits
    as a number, first bit most significant). ``d = 0`` is the branch commpy keeps on a tie.
    ``pattern_signs[p, j]`` is ``+1`` where bit ``j`` of pattern ``p`` is 0, else ``-1``.
    Compared by identity (hashable, so device copies can be cached).
    """

    n_states: int
    n_outputs: int
    memory: int
    next_state: Int64s  # [S, 2]
    output_bits: NDArray[np.uint8]  # [S, 2, n]
    pred_state: Int64s  # [S, 2]
    pred_input: Int64s  # [S, 2]
    pred_pattern: Int64s  # [S, 2]
    pattern_signs: NDArray[np.float64]  # [2**n, n]

    @functools.cached_property
    def butterfly(self) -> bool:
        """True for the shift-register layout: state ``ns`` is entered from ``2 ns mod S`` and
        ``2 ns mod S + 1`` with input bit ``ns >> (memory - 1)``. The decoders then use
        arithmetic instead of table look-ups (and pair up the states sharing predecessors)."""
        ns = np.arange(self.n_states)[:, None]
        return bool(
            np.array_equal(self.pred_state, (2 * ns + np.arange(2)) % self.n_states)
            and np.array_equal(self.pred_input, np.repeat(ns >> (self.memory - 1), 2, axis=1))
        )


def trellis_tables(next_state: ArrayLike, output_bits: ArrayLike) -> TrellisTables:
    """Validate trellis tables (``[S, 2]`` and ``[S, 2, n]``) and derive the decoder's view."""
    nxt = np.asarray(next_state, dtype=np.int64)
    out = np.asarray(output_bits)
    n_states = nxt.shape[0] if nxt.ndim == 2 else 0
    memory = n_states.bit_length() - 1
    if nxt.shape != (n_states, 2) or n_states < 2 or n_states != 1 << memory:
        raise ValueError("next_state must have shape [S, 2] with S a power of two >= 2")
    if out.ndim != 3 or out.shape[:2] != (n_states, 2) or not 1 <= out.shape[2] <= 16:
        raise ValueError("output_bits must have shape [S, 2, n] with 1 <= n <= 16")
    if nxt.min() < 0 or nxt.max() >= n_states or not np.isin(out, (0, 1)).all():
        raise ValueError("next_state must hold states and output_bits must hold 0/1")
    n_outputs = out.shape[2]
    weights = 1 << np.arange(n_outputs - 1, -1, -1)
    pattern = (out.astype(np.int64) * weights).sum(axis=2)  # [S, 2]
    incoming: list[list[tuple[int, int]]] = [[] for _ in range(n_states)]
    for s in range(n_states):  # ascending (state, input): commpy's visiting order
        for u in range(2):
            incoming[int(nxt[s, u])].append((s, u))
    if any(len(branches) != 2 for branches in incoming):
        raise ValueError("every state needs exactly two incoming branches (feed-forward code)")
    pred = np.array(incoming, dtype=np.int64)  # [S, 2, (state, input)]
    patterns = np.arange(1 << n_outputs)[:, None]
    signs = 1.0 - 2.0 * ((patterns >> (n_outputs - 1 - np.arange(n_outputs))) & 1)
    return TrellisTables(
        n_states=n_states,
        n_outputs=n_outputs,
        memory=memory,
        next_state=nxt,
        output_bits=out.astype(np.uint8),
        pred_state=pred[:, :, 0].copy(),
        pred_input=pred[:, :, 1].copy(),
        pred_pattern=pattern[pred[:, :, 0], pred[:, :, 1]],
        pattern_signs=signs.astype(np.float64),
    )


def shift_register_trellis(constraint_length: int, generators: Sequence[int]) -> TrellisTables:
    """Tables of the rate-1/n code with these generators, in commpy's ``Trellis`` convention.

    State bit ``memory - 1`` holds the newest input bit, bit 0 the oldest; a generator's most
    significant bit (``1 << (constraint_length - 1)``) taps the current input bit.
    """
    memory = constraint_length - 1
    if memory < 1 or not generators or any(not 0 < g < 1 << constraint_length for g in generators):
        raise ValueError("need constraint_length >= 2 and generators in [1, 2**constraint_length)")
    states = np.arange(1 << memory)[:, None]
    inputs = np.arange(2)[None, :]
    window = (inputs << memory) | states  # [S, 2]: current input above the memory bits
    parities = [np.bitwise_count(window & g) & 1 for g in generators]
    output_bits = np.stack(parities, axis=2).astype(np.uint8)
    next_state = (inputs << (memory - 1)) | (states >> 1)
    return trellis_tables(next_state, output_bits)
