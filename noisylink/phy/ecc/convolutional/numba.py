"""Soft Viterbi decoding of zero-tail terminated blocks on the CPU, batched (numba).

LLRs: float ``[blocks, n * steps]``, positive means 0, any values: each is cleaned as it is read
(``clean_value``'s rule: NaN -> 0, beyond +-``LLR_LIMIT`` -> +-``LLR_LIMIT``), so decoding
``llr`` is decoding ``clean_llr(llr)`` without that extra pass; out: uint8 bits
``[blocks, steps - memory]``, commpy's ``viterbi_decode`` decisions (soft mode), ties
included. Bad shapes raise ``ValueError``; channel values never do.

One path metric per state maximises the correlation ``sum_j (1 - 2 c_j) * LLR_j`` of the coded
bits ``c`` with the LLRs. commpy minimises ``sum_j (2 c_j - 1) * LLR_j``: every sum here is
exactly the negation of commpy's (same float64 operations in the same order, and IEEE rounding
is symmetric), so the comparisons, and thus the decisions, are identical. Ties (equal metrics)
go where commpy's ACS loop sends them: it visits source states in ascending order and replaces
the survivor only on a strictly better metric, so the branch from the *lower-numbered*
predecessor state wins. States not yet reachable from state 0 carry ``-inf`` (commpy skips
them; it marks them with a metric of 1e18, so agreement also needs path metrics below that,
which clipping the LLRs at ``LLR_LIMIT`` guarantees). Traceback starts in state 0 (zero-tail
termination) and the ``memory`` tail bits are dropped. Metrics stay float64 on purpose:
quantised (int16) or float32 metrics would round differently from commpy and change decisions.

Blocks are decoded in lock-step groups of ``LANES`` (8), groups in parallel with ``prange``.
Within a group every path metric is a lane vector, the 8 blocks' float64 metrics side by side
(``lanes.py``), so one add-compare-select serves 8 blocks in a few vector instructions. Codes
with complementary butterflies (``complementary_butterflies``: K=7 (171, 133) among them) do
the two states entered from one pair of states together, from one load of the pair and one
gain ``g`` (the four branches carry ``+-g``); other tables take a generic per-state loop. A
survivor is one bit per state, step and block: one byte per state and step holds the group's
8 decisions. Traceback runs from state 0 with the group's 8 blocks interleaved. ``torch.py``
mirrors this decoder (without the cleaning) on any torch device.
"""

from __future__ import annotations

import functools

import numba
import numpy as np
from numpy.typing import ArrayLike, NDArray

from noisylink.phy.ecc.convolutional.lanes import (
    LANES,
    acs_lanes,
    butterfly_lanes,
    load_llr_lanes,
    pattern_gains_lanes,
)
from noisylink.phy.ecc.convolutional.trellis import Int64s, TrellisTables


@numba.njit(cache=True)
def _decode_group(
    llr: NDArray[np.float64],
    first: int,
    n_outputs: int,
    memory: int,
    pred_state: Int64s,
    pred_input: Int64s,
    pred_pattern: Int64s,
    pattern_signs: NDArray[np.float64],
    butterfly: bool,
    out: NDArray[np.uint8],
) -> None:
    """ACS and traceback of the blocks ``first .. first + LANES - 1`` of ``llr`` (those that
    exist; the lanes past the last block repeat it and are dropped) into the same rows of
    ``out``. ``butterfly``: ``complementary_butterflies(tables)``."""
    n_blocks, row_length = llr.shape
    flat = llr.reshape(-1)
    n_steps = row_length // n_outputs
    n_states = pred_state.shape[0]
    half = n_states // 2
    n_patterns = pattern_signs.shape[0]
    rows = np.empty(LANES, dtype=np.int64)
    for lane in range(LANES):
        rows[lane] = min(first + lane, n_blocks - 1) * row_length
    # branch d into state ns, at 2 ns + d: the offsets of its source metric and of its gain
    source = (pred_state * LANES).ravel()
    branch_gain = (pred_pattern * LANES).ravel()
    metric = np.full(n_states * LANES, -np.inf)
    metric[:LANES] = 0.0  # every block starts in state 0
    fresh = np.empty(n_states * LANES)
    gain = np.empty(n_patterns * LANES)
    symbol = np.empty(n_outputs * LANES)
    decisions = np.empty(n_steps * n_states, dtype=np.uint8)  # [step, state], bit = lane
    for t in range(n_steps):
        for j in range(n_outputs):
            load_llr_lanes(symbol, j * LANES, flat, rows, t * n_outputs + j)
        pattern_gains_lanes(gain, symbol, pattern_signs)  # summed left to right, like commpy
        step = t * n_states
        if butterfly:  # states j and j + S/2 are both entered from 2j and 2j + 1
            for j in range(half):
                high = j + half
                butterfly_lanes(
                    metric, fresh, gain, decisions, source[2 * j], branch_gain[2 * j],
                    j * LANES, high * LANES, step + j, step + high,
                )  # fmt: skip
        else:
            for ns in range(n_states):
                acs_lanes(
                    metric, fresh, gain, decisions, source[2 * ns], source[2 * ns + 1],
                    branch_gain[2 * ns], branch_gain[2 * ns + 1], ns * LANES, step + ns,
                )  # fmt: skip
        metric, fresh = fresh, metric
    # traceback, unsigned indices (no wraparound checks): branch d into s at 2 s + d
    previous = pred_state.astype(np.uint64).ravel()
    input_bit = pred_input.astype(np.uint8).ravel()
    state = np.zeros(LANES, dtype=np.uint64)  # zero-tail termination: every block ends in 0
    bits = np.empty((n_steps - memory) * LANES, dtype=np.uint8)
    one = np.uint64(1)
    for t in range(n_steps - 1, -1, -1):  # lanes interleaved: independent chains overlap
        step = np.uint64(t * n_states)
        for lane in range(LANES):
            s = state[lane]
            branch = (s << one) | ((decisions[step + s] >> np.uint64(lane)) & one)
            if t < n_steps - memory:
                bits[t * LANES + lane] = input_bit[branch]
            state[lane] = previous[branch]
    for lane in range(min(LANES, n_blocks - first)):
        for t in range(n_steps - memory):
            out[first + lane, t] = bits[t * LANES + lane]


@numba.njit(cache=True, parallel=True)
def _viterbi_kernel(
    llr: NDArray[np.float64],
    n_outputs: int,
    memory: int,
    pred_state: Int64s,
    pred_input: Int64s,
    pred_pattern: Int64s,
    pattern_signs: NDArray[np.float64],
    butterfly: bool,
    out: NDArray[np.uint8],
) -> None:
    """``_decode_group`` for every group of ``LANES`` blocks, groups in parallel."""
    for group in numba.prange((llr.shape[0] + LANES - 1) // LANES):
        _decode_group(
            llr, group * LANES, n_outputs, memory, pred_state, pred_input, pred_pattern,
            pattern_signs, butterfly, out,
        )  # fmt: skip


@functools.cache  # tables compare by identity and live long (``k7_trellis`` is cached)
def complementary_butterflies(tables: TrellisTables) -> bool:
    """True for shift-register (butterfly) tables whose two branches into a state, and two
    branches out of a state, carry complementary output patterns (every generator taps both the
    newest and the oldest bit, as (171, 133) does). A pattern's complement has exactly the
    negated gain (each product and the sum negate exactly: IEEE rounding is symmetric; only
    the sign of an exactly-zero gain can differ, which no comparison sees), so a butterfly's
    four branches carry ``+-g`` for one ``g`` (``butterfly_lanes``)."""
    if not tables.butterfly:
        return False
    half = tables.n_states // 2
    into_low, into_high = tables.pred_pattern[:half], tables.pred_pattern[half:]
    full = (1 << tables.n_outputs) - 1
    return bool(
        np.array_equal(into_low[:, 1], full - into_low[:, 0])
        and np.array_equal(into_high[:, 0], full - into_low[:, 0])
        and np.array_equal(into_high[:, 1], into_low[:, 0])
    )


def _llr_blocks(tables: TrellisTables, llr: ArrayLike) -> NDArray[np.float64]:
    rows = np.ascontiguousarray(llr, dtype=np.float64)
    if rows.ndim != 2 or rows.shape[1] % tables.n_outputs:
        raise ValueError(f"llr must have shape [blocks, {tables.n_outputs} * steps]")
    if rows.shape[1] // tables.n_outputs < tables.memory:
        raise ValueError("a terminated block has at least `memory` steps")
    return rows


def viterbi_decode_numba(tables: TrellisTables, llr: ArrayLike) -> NDArray[np.uint8]:
    """Decode zero-tail terminated blocks (``llr``: ``[blocks, n * steps]``, positive means 0,
    cleaned as read) on the CPU: ``[blocks, steps - memory]`` bits, commpy's decisions."""
    rows = _llr_blocks(tables, llr)
    steps = rows.shape[1] // tables.n_outputs
    out = np.zeros((rows.shape[0], steps - tables.memory), dtype=np.uint8)
    if rows.shape[0]:
        _viterbi_kernel(
            rows,
            tables.n_outputs,
            tables.memory,
            tables.pred_state,
            tables.pred_input,
            tables.pred_pattern,
            np.ascontiguousarray(tables.pattern_signs),
            complementary_butterflies(tables),
            out,
        )
    return out
