"""Batched encoder and soft Viterbi decoder for rate-1/n feed-forward convolutional codes.

Replaces commpy's one-block-at-a-time ``ConvolutionalEncoder`` / ``viterbi_decode`` for
zero-tail terminated blocks, with the same decisions. The code is given by trellis tables in
commpy's convention (``next_state[s, u]``, ``output_bits[s, u, j]``); ``shift_register_trellis``
builds them from a constraint length and generators, e.g. the K=7 (171, 133) code.

Decoding (all blocks at once) keeps one path metric per state and maximises the correlation
``sum_j (1 - 2 c_j) * LLR_j`` of the coded bits ``c`` with the LLRs (positive LLR means 0).
commpy minimises ``sum_j (2 c_j - 1) * LLR_j``: every sum here is exactly the negation of
commpy's (same float64 operations in the same order, and IEEE rounding is symmetric), so the
comparisons, and thus the decisions, are identical. Ties (equal metrics) go where commpy's
ACS loop sends them: it visits source states in ascending order and replaces the survivor only
on a strictly better metric, so the branch from the *lower-numbered* predecessor state wins.
States not yet reachable from state 0 carry ``-inf`` (commpy skips them; it marks them with a
metric of 1e18, so agreement also needs path metrics below that, which the ECC's LLR clipping
at 1e6 guarantees). Traceback starts in state 0 (zero-tail termination) and the ``memory``
tail bits are dropped.

Backends: ``viterbi_decode_numba`` (CPU: blocks decoded in lock-step groups of up to 64,
SIMD across the group, groups in parallel with ``prange``) and ``viterbi_decode_torch`` (any
torch device: add-compare-select vectorised over blocks and states, a few kernel launches per
time step, so it pays off only for large batches). LLRs must be finite; the ``Convolutional``
ECC clips them first.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numba
import numpy as np
from numpy.typing import ArrayLike, NDArray

if TYPE_CHECKING:
    import torch

GROUP_DECISION_BYTES = 1 << 26  # bound on one numba task's survivors (unless 8 blocks need more)
DECISION_BYTES = 1 << 30  # default bound on the torch decoder's survivor memory per chunk
TIME_CHUNK_ELEMENTS = 1 << 21  # bound on the torch decoder's precomputed branch metrics

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


@functools.cache
def k7_trellis() -> TrellisTables:
    """The K=7, (171, 133) octal, rate-1/2 code (NASA/CCSDS, 802.11)."""
    return shift_register_trellis(7, (0o171, 0o133))


# --- encoder --------------------------------------------------------------------------------


@numba.njit(cache=True, parallel=True)
def _encode_kernel(
    bits: NDArray[np.uint8],
    next_state: Int64s,
    output_bits: NDArray[np.uint8],
    memory: int,
    out: NDArray[np.uint8],
) -> None:
    n_blocks, k = bits.shape
    n_outputs = output_bits.shape[2]
    for b in numba.prange(n_blocks):
        state = 0
        for t in range(k + memory):
            u = np.int64(bits[b, t]) if t < k else 0
            for j in range(n_outputs):
                out[b, t * n_outputs + j] = output_bits[state, u, j]
            state = next_state[state, u]


def encode_blocks(tables: TrellisTables, bits: ArrayLike) -> NDArray[np.uint8]:
    """Encode each row of ``bits`` (``[blocks, k]``, 0/1) as a zero-tail terminated block:
    ``[blocks, n * (k + memory)]`` coded bits, the same as commpy's ``encode(terminate=True)``."""
    rows = np.ascontiguousarray(bits, dtype=np.uint8)
    if rows.ndim != 2:
        raise ValueError("bits must have shape [blocks, k]")
    if rows.size and rows.max() > 1:
        raise ValueError("bits must be 0/1")
    n_blocks, k = rows.shape
    out = np.empty((n_blocks, tables.n_outputs * (k + tables.memory)), dtype=np.uint8)
    if n_blocks:
        _encode_kernel(rows, tables.next_state, tables.output_bits, tables.memory, out)
    return out


# --- numba decoder --------------------------------------------------------------------------


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


# --- torch decoder --------------------------------------------------------------------------


@functools.lru_cache(maxsize=8)
def _device_tables(
    tables: TrellisTables, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(pred_state flat, pred_input flat, branch patterns flat, pattern signs) on ``device``."""
    import torch

    def put(array: NDArray[np.generic]) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(array)).to(device)

    return (
        put(tables.pred_state.reshape(-1)),
        put(tables.pred_input.reshape(-1).astype(np.uint8)),
        put(tables.pred_pattern.reshape(-1)),
        put(tables.pattern_signs),
    )


def viterbi_decode_torch(
    tables: TrellisTables, llr: torch.Tensor, *, decision_bytes: int = DECISION_BYTES
) -> torch.Tensor:
    """Decode zero-tail terminated blocks with torch on ``llr``'s device: ``[blocks, n * steps]``
    finite LLRs in, ``[blocks, steps - memory]`` uint8 bits out, the numba decoder's decisions.

    Metrics are float64 (needed for commpy's exact decisions). Survivors take one byte per
    state and step; blocks are decoded in chunks holding at most ``decision_bytes`` of them.
    """
    import torch

    n_outputs = tables.n_outputs
    if llr.ndim != 2 or llr.shape[1] % n_outputs:
        raise ValueError(f"llr must have shape [blocks, {n_outputs} * steps]")
    steps = llr.shape[1] // n_outputs
    if steps < tables.memory:
        raise ValueError("a terminated block has at least `memory` steps")
    out = torch.zeros((llr.shape[0], steps - tables.memory), dtype=torch.uint8, device=llr.device)
    chunk = max(1, decision_bytes // max(1, steps * tables.n_states))
    with torch.no_grad():
        for first in range(0, llr.shape[0], chunk):
            rows = llr[first : first + chunk].to(torch.float64).reshape(-1, steps, n_outputs)
            out[first : first + chunk] = _decode_chunk_torch(tables, rows)
    return out


def _decode_chunk_torch(tables: TrellisTables, llr: torch.Tensor) -> torch.Tensor:
    """ACS over ``llr`` (``[blocks, steps, n]`` float64), then traceback from state 0.

    Per step: one add, one compare (written straight into the survivor array) and one select;
    per-step views come from ``unbind`` to keep Python overhead per step small. States are laid
    out ``[hi, j]`` with ``ns = hi * S/2 + j``, so that in the shift-register (butterfly) case
    both branches into ``ns`` start from the adjacent pair ``2 j, 2 j + 1`` of the old metrics.
    """
    import torch

    pred_state, pred_input, branch_pattern, signs = _device_tables(tables, llr.device)
    n_blocks, steps, n_outputs = llr.shape
    n_states = tables.n_states
    half = n_states // 2
    shape = (n_blocks, 2, half, 2)  # [block, hi, j, d]
    gather = None if tables.butterfly else pred_state
    metric = torch.full((n_blocks, n_states), -torch.inf, dtype=torch.float64, device=llr.device)
    metric[:, 0] = 0.0
    decisions = torch.empty((steps, n_blocks, 2, half), dtype=torch.bool, device=llr.device)
    step_decisions = decisions.unbind(0)
    time_chunk = max(1, TIME_CHUNK_ELEMENTS // max(1, n_blocks * 2 * n_states))
    by_time = llr.transpose(0, 1)  # [steps, blocks, n]
    for t0 in range(0, steps, time_chunk):
        x = by_time[t0 : t0 + time_chunk]
        gain = x[..., None, 0] * signs[:, 0]  # [time, blocks, patterns], summed like commpy
        for j in range(1, n_outputs):
            gain = gain + x[..., None, j] * signs[:, j]
        branch = gain[..., branch_pattern].view(-1, *shape)  # branch (ns, d) at 2 ns + d
        steps_here = branch.shape[0]
        for take, step_branch in zip(
            step_decisions[t0 : t0 + steps_here], branch.unbind(0), strict=True
        ):
            if gather is None:
                source = metric.view(n_blocks, 1, half, 2)
            else:
                source = torch.index_select(metric.view(n_blocks, n_states), 1, gather).view(shape)
            cand = torch.add(source, step_branch)
            keep, other = cand.select(-1, 0), cand.select(-1, 1)
            torch.gt(other, keep, out=take)
            metric = torch.where(take, other, keep)
    branches = torch.empty((steps, n_blocks, 1), dtype=torch.int64, device=llr.device)
    state = torch.zeros((n_blocks, 1), dtype=torch.int64, device=llr.device)
    by_step = zip(
        decisions.view(steps, n_blocks, n_states).unbind(0), branches.unbind(0), strict=True
    )
    for taken, branch_taken in reversed(list(by_step)):  # branch into `state`: 2 state + d
        torch.add(taken.gather(1, state), state, alpha=2, out=branch_taken)
        state = torch.take(pred_state, branch_taken)
    return torch.take(pred_input, branches[: steps - tables.memory, :, 0].T)
