"""Soft Viterbi decoding of zero-tail terminated blocks on the CPU, batched (numba).

LLRs: float64 ``[blocks, n * steps]``, finite (the ``Convolutional`` code cleans them first),
positive means 0; out: uint8 bits ``[blocks, steps - memory]``, commpy's ``viterbi_decode``
decisions (soft mode), ties included. Bad shapes raise ``ValueError``.

One path metric per state maximises the correlation ``sum_j (1 - 2 c_j) * LLR_j`` of the coded
bits ``c`` with the LLRs. commpy minimises ``sum_j (2 c_j - 1) * LLR_j``: every sum here is
exactly the negation of commpy's (same float64 operations in the same order, and IEEE rounding
is symmetric), so the comparisons, and thus the decisions, are identical. Ties (equal metrics)
go where commpy's ACS loop sends them: it visits source states in ascending order and replaces
the survivor only on a strictly better metric, so the branch from the *lower-numbered*
predecessor state wins. States not yet reachable from state 0 carry ``-inf`` (commpy skips
them; it marks them with a metric of 1e18, so agreement also needs path metrics below that,
which clipping the LLRs at ``LLR_LIMIT`` guarantees). Traceback starts in state 0 (zero-tail
termination) and the ``memory`` tail bits are dropped.

Blocks are decoded in lock-step groups of up to 64, SIMD across the group, groups in parallel
with ``prange``. ``torch.py`` mirrors this decoder on any torch device.
"""

from __future__ import annotations

import numba
import numpy as np
from numpy.typing import ArrayLike, NDArray

from noisylink.phy.ecc.convolutional.trellis import Int64s, TrellisTables

GROUP_DECISION_BYTES = 1 << 26  # bound on one numba task's survivors (unless 8 blocks need more)


@numba.njit(cache=True, parallel=True)
def _viterbi_kernel(
    llr: NDArray[np.float64],
    n_outputs: int,
    memory: int,
    pred_state: Int64s,
    pred_input: Int64s,
    pred_pattern: Int64s,
    pattern_signs: NDArray[np.float64],
    width: int,
    butterfly: bool,
    out: NDArray[np.uint8],
) -> None:
    """ACS + traceback for groups of ``width`` blocks (a multiple of 8), one group per task.

    Each group's arrays are ``[..., lane]`` with the block (lane) innermost, so that the ACS
    loop over lanes compiles to SIMD; its indices are unsigned, which spares numba's negative-
    index wraparound and lets LLVM see contiguous accesses. With ``butterfly`` tables and at
    most 64 states, each pair of states sharing predecessors is done together (half the metric
    loads, one decision-word update). Padding lanes decode zeros.
    """
    n_blocks = llr.shape[0]
    n_steps = llr.shape[1] // n_outputs
    n_states = pred_state.shape[0]
    n_patterns = pattern_signs.shape[0]
    n_words = (n_states + 63) // 64
    half = n_states // 2
    butterfly = butterfly and n_states <= 64
    lanes = np.uint64(width)
    one = np.uint64(1)
    for group in numba.prange((n_blocks + width - 1) // width):
        first = group * width
        used = min(width, n_blocks - first)
        metric = np.full(n_states * width, -np.inf)
        metric[:width] = 0.0
        fresh = np.empty(n_states * width)
        gain = np.zeros(n_patterns * width)
        symbol = np.zeros(n_outputs * width)
        decisions = np.zeros(n_steps * n_words * width, dtype=np.uint64)
        for t in range(n_steps):
            for lane in range(used):
                for j in range(n_outputs):
                    symbol[j * width + lane] = llr[first + lane, t * n_outputs + j]
            for p in range(n_patterns):  # sum left to right, like commpy
                g = np.uint64(p) * lanes
                for lane in range(lanes):
                    gain[g + lane] = pattern_signs[p, 0] * symbol[lane]
                for j in range(1, n_outputs):
                    x = np.uint64(j) * lanes
                    for lane in range(lanes):
                        gain[g + lane] += pattern_signs[p, j] * symbol[x + lane]
            if butterfly:  # S <= 64: states j and j + S/2 share predecessors 2j, 2j + 1
                w = np.uint64(t) * lanes
                for j in range(half):
                    a = np.uint64(2 * j) * lanes
                    lo = np.uint64(j) * lanes
                    hi = np.uint64(j + half) * lanes
                    ga = np.uint64(pred_pattern[j, 0]) * lanes
                    gb = np.uint64(pred_pattern[j, 1]) * lanes
                    ha = np.uint64(pred_pattern[j + half, 0]) * lanes
                    hb = np.uint64(pred_pattern[j + half, 1]) * lanes
                    shift_lo = np.uint64(j)
                    shift_hi = np.uint64(j + half)
                    for lane in range(lanes):
                        even = metric[a + lane]
                        odd = metric[a + lanes + lane]
                        keep = even + gain[ga + lane]
                        other = odd + gain[gb + lane]
                        take_lo = other > keep
                        fresh[lo + lane] = other if take_lo else keep
                        keep = even + gain[ha + lane]
                        other = odd + gain[hb + lane]
                        take_hi = other > keep
                        fresh[hi + lane] = other if take_hi else keep
                        decisions[w + lane] |= (np.uint64(take_lo) << shift_lo) | (
                            np.uint64(take_hi) << shift_hi
                        )
            else:
                for ns in range(n_states):
                    a = np.uint64(pred_state[ns, 0]) * lanes
                    b = np.uint64(pred_state[ns, 1]) * lanes
                    ga = np.uint64(pred_pattern[ns, 0]) * lanes
                    gb = np.uint64(pred_pattern[ns, 1]) * lanes
                    o = np.uint64(ns) * lanes
                    w = np.uint64(t * n_words + (ns >> 6)) * lanes
                    shift = np.uint64(ns & 63)
                    for lane in range(lanes):
                        keep = metric[a + lane] + gain[ga + lane]
                        other = metric[b + lane] + gain[gb + lane]
                        take = other > keep
                        fresh[o + lane] = other if take else keep
                        decisions[w + lane] |= np.uint64(take) << shift
            metric, fresh = fresh, metric
        if butterfly:  # one word per step: traceback vectorised across lanes, then transposed
            top = np.uint64(memory - 1)
            mask = np.uint64(n_states - 1)
            lane_state = np.zeros(width, dtype=np.uint64)
            lane_bits = np.empty(n_steps * width, dtype=np.uint8)
            for t in range(n_steps - 1, -1, -1):
                w = np.uint64(t) * lanes
                for lane in range(lanes):
                    s = lane_state[lane]
                    lane_bits[w + lane] = np.uint8(s >> top)
                    lane_state[lane] = ((s << one) & mask) | ((decisions[w + lane] >> s) & one)
            for lane in range(used):
                for t in range(n_steps - memory):
                    out[first + lane, t] = lane_bits[t * width + lane]
        else:
            state = np.zeros(used, dtype=np.int64)
            for t in range(n_steps - 1, -1, -1):  # lanes interleaved: independent chains overlap
                for lane in range(used):
                    s = state[lane]
                    word = decisions[(t * n_words + (s >> 6)) * width + lane]
                    d = np.int64((word >> np.uint64(s & 63)) & one)
                    if t < n_steps - memory:
                        out[first + lane, t] = pred_input[s, d]
                    state[lane] = pred_state[s, d]


def _group_width(n_blocks: int, survivor_bytes_per_block: int) -> int:
    """Blocks per numba task, a multiple of 8: up to 64 (long SIMD loops), fewer when that
    would leave threads idle or a task's survivors would pass ``GROUP_DECISION_BYTES``."""
    per_thread = -(-n_blocks // max(1, numba.get_num_threads()))
    by_memory = GROUP_DECISION_BYTES // max(1, survivor_bytes_per_block)
    return max(8, min(64, -(-per_thread // 8) * 8, by_memory // 8 * 8))


def _llr_blocks(tables: TrellisTables, llr: ArrayLike) -> NDArray[np.float64]:
    rows = np.ascontiguousarray(llr, dtype=np.float64)
    if rows.ndim != 2 or rows.shape[1] % tables.n_outputs:
        raise ValueError(f"llr must have shape [blocks, {tables.n_outputs} * steps]")
    if rows.shape[1] // tables.n_outputs < tables.memory:
        raise ValueError("a terminated block has at least `memory` steps")
    return rows


def viterbi_decode_numba(tables: TrellisTables, llr: ArrayLike) -> NDArray[np.uint8]:
    """Decode zero-tail terminated blocks (``llr``: ``[blocks, n * steps]``, finite, positive
    means 0) on the CPU: ``[blocks, steps - memory]`` bits, commpy's decisions."""
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
            tables.pattern_signs,
            _group_width(rows.shape[0], steps * 8 * -(-tables.n_states // 64)),
            tables.butterfly,
            out,
        )
    return out
