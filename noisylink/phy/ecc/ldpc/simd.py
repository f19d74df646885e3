"""Layered normalised min-sum for quasi-cyclic LDPC codes in 16-bit fixed point, many frames
per SIMD instruction (numba): the fast CPU decoder behind ``precision: int16``.

LLRs: ``[B, n]`` float (each value is cleaned as it is read, as ``clean_llr`` would),
positive means 0; out: ``BPResult`` (uint8 words ``[B, n]``, or only the bits at
``positions``, ``ok`` ``[B]``, iterations ``[B]`` int32). Never raises on channel errors;
bad arguments raise ``ValueError``.

The rule is ``bp.py``'s layered min-sum (block row by block row; per check ``t = L_v - c2v``,
``c2v = scale * prod sign * min |t|`` over the other edges, ``L_v = t + c2v``; the syndrome
of ``L_v < 0`` is tested after every full pass and a word stops once it is zero; a word
whose channel decisions already form a codeword takes 0 iterations; ``ok`` means a zero
syndrome), in int16 instead of float64: LLRs are rounded to multiples of ``1 / LLR_STEPS``
and saturate at ``+-32767 / LLR_STEPS`` (512), every sum saturates there too, and the
scaled minimum is rounded down. Min-sum is blind to a common scale of its inputs, so this
costs only the rounding and the ceiling: the frame error rate stays that of the float64
decoder (``tests/phy/test_ldpc_decoders.py`` compares them over thousands of words), though
single borderline words can decide differently. A word with more erased bits (LLR 0 or NaN)
than ``max_erasures`` is returned as its channel decisions, not ``ok``, without decoding.

Layout (the inter-frame SIMD of Le Gal & Jego, SiPS 2017, and AFF3CT): a task decodes
``lanes`` frames in lock step, the frame innermost in every array, so the message of row
``r`` of a ``Z x Z`` block is ``lanes`` consecutive int16. A block row of the QC code (a
layer: ``Z`` checks sharing no bit) is processed as a whole: the bits of a block with
shift ``s`` are the rows of its column block rotated by ``s``, two contiguous runs of
``(Z - s) * lanes`` and ``s * lanes`` values, so every inner loop is a long unit-stride loop
that LLVM vectorises across frames and rows (16 values per AVX2 instruction). Per check only
``min1`` and ``min2`` are kept (the sign parity rides in ``min2``'s sign bit); the second
pass recomputes ``t`` and finds the minimum's edge by ``|t| == min1``. A lane whose frame
stops emits it and takes the task's next frame at once (its old messages masked to 0 during
the new frame's first pass), so no lane idles while frames remain. Tasks (ranges of frames)
run in parallel with ``prange``.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numba
import numpy as np
from numpy.typing import NDArray

from noisylink.phy.ecc.base import clean_value
from noisylink.phy.ecc.ldpc.bp import BPResult
from noisylink.phy.ecc.ldpc.graph import Int32s

LANES = 32  # frames per task at most
TASKS_PER_THREAD = 1  # frame ranges per numba thread
LLR_STEPS = 64  # fixed-point steps per unit of LLR
TOP = 32767  # the largest magnitude of any value (symmetric, so |x| never overflows)

Shorts = NDArray[np.int16]
Ints = NDArray[np.int32]


class QCLayout(NamedTuple):
    """A QC parity-check matrix: ``Z x Z`` blocks; block ``b`` (row-major over the nonzero
    blocks of the prototype) sits in block column ``block_col[b]`` and is the identity
    shifted right by ``block_shift[b]`` (row ``r`` checks bit ``col * Z + (r + s) % Z``);
    block row ``l`` holds the blocks ``layer_ptr[l] : layer_ptr[l + 1]``."""

    z: int
    n: int
    layer_ptr: Int32s
    block_col: Int32s
    block_shift: Int32s


def qc_layout(prototype: NDArray[np.integer], z: int) -> QCLayout:
    """The layout of a prototype matrix ``[rows, cols]`` (a shift, or -1 for a zero block)
    lifted by ``z``."""
    proto = np.asarray(prototype)
    rows, cols = np.nonzero(proto >= 0)  # row-major
    layer_ptr = np.zeros(proto.shape[0] + 1, dtype=np.int32)
    np.cumsum(np.bincount(rows, minlength=proto.shape[0]), out=layer_ptr[1:])
    return QCLayout(
        z=int(z),
        n=int(proto.shape[1] * z),
        layer_ptr=layer_ptr,
        block_col=cols.astype(np.int32),
        block_shift=(proto[rows, cols] % z).astype(np.int32),
    )


class _Rule(NamedTuple):
    scale: int  # the normalisation in units of 2**-16: message = (min * scale) >> 16
    max_iter: int
    max_erasures: int


def decode_simd(
    layout: QCLayout,
    llr: NDArray[np.floating],
    iterations: int,
    scale: float,
    max_erasures: int | None = None,
    positions: NDArray[np.integer] | None = None,
) -> BPResult:
    """Decode ``llr`` (``[B, n]``, or anything reshaping to it) with at most ``iterations``
    layered iterations per word; ``scale`` in (0, 1) normalises min-sum; ``max_erasures``
    defaults to ``n`` (no word is refused). ``positions`` (default: all ``n``) picks the bits
    that ``words`` (``[B, len(positions)]``) holds, e.g. the information bits. Bad arguments
    raise ``ValueError``."""
    if not 0.0 < scale < 1.0:
        raise ValueError(f"scale must lie in (0, 1), not {scale}")
    if iterations < 0:
        raise ValueError("iterations must be >= 0")
    rows = np.ascontiguousarray(llr)
    if rows.dtype not in (np.float32, np.float64):
        rows = rows.astype(np.float64)
    if rows.size % layout.n:
        raise ValueError(f"{rows.size} LLRs are not a whole number of {layout.n}-bit words")
    rows = rows.reshape(-1, layout.n)
    picked = np.arange(layout.n) if positions is None else np.asarray(positions)
    if picked.ndim != 1 or np.any((picked < 0) | (picked >= layout.n)):
        raise ValueError(f"positions must be bit indices in [0, {layout.n})")
    out = BPResult(
        np.zeros((rows.shape[0], picked.size), dtype=np.uint8),
        np.zeros(rows.shape[0], dtype=np.bool_),
        np.zeros(rows.shape[0], dtype=np.int32),
    )
    if rows.shape[0] == 0:
        return out
    tasks = min(TASKS_PER_THREAD * numba.get_num_threads(), rows.shape[0])
    bounds = np.linspace(0, rows.shape[0], tasks + 1).astype(np.int64)
    lanes = min(LANES, -(-rows.shape[0] // tasks))
    erasures = layout.n if max_erasures is None else int(max_erasures)
    rule = _Rule(min(round(scale * 65536), 65535), int(iterations), erasures)
    _kernel(rows, bounds, layout, rule, picked.astype(np.int64), out, lanes)
    return out


# --- one layer, the syndrome ---------------------------------------------------------------
# Each inner loop is a helper over ``count`` values of a few arrays from given (unsigned)
# offsets: unsigned indices need no negative-index fix-up, no array views are made (each
# would cost two atomic reference-count updates) and a loop touching few arrays needs few
# run-time overlap checks, without which LLVM would not vectorise it. Values are loaded
# before any choice among them (a choice between two loads would become a gather), and every
# int16 result is cast back at once (numba widens integer arithmetic to int64; the casts let
# LLVM narrow it again, to saturating 16-bit instructions).

_SIGN = np.int16(-32768)  # the sign bit
_MAGNITUDE = np.int16(32767)  # the other bits
_LOW = np.int16(-TOP)
_NONE = np.int16(0)
_U = np.uint64  # offsets and indices


class _Work(NamedTuple):
    """One task's arrays; ``[.., Z * lanes]`` runs are row-major (row, lane)."""

    post: Shorts  # [n * lanes] posteriors L_v
    c2v: Shorts  # [blocks * Z * lanes] check-to-bit messages
    keep: Shorts  # [Z * lanes] 0 in lanes on their first pass (old messages ignored), else -1
    min1: Shorts  # [Z * lanes] per check: the smallest |t|
    min2: Shorts  # [Z * lanes] per check: the second smallest |t|, and in the sign bit the
    # parity of the negative t
    odd: Shorts  # [Z * lanes] syndrome: one layer's check parities, in the sign bit
    fail: Shorts  # [Z * lanes] syndrome: negative where some check was odd


@numba.njit(cache=True, inline="always", error_model="numpy")
def _sub(a: int, b: int) -> np.int16:
    """``a - b`` saturated to ``+-TOP``."""
    wide = np.int16(min(max(np.int64(a) - np.int64(b), -32768), 32767))
    return np.int16(max(wide, _LOW))


@numba.njit(cache=True, inline="always", error_model="numpy")
def _add(a: int, b: int) -> np.int16:
    """``a + b`` saturated to ``+-TOP``."""
    wide = np.int16(min(max(np.int64(a) + np.int64(b), -32768), 32767))
    return np.int16(max(wide, _LOW))


@numba.njit(cache=True, error_model="numpy")
def _into_check(
    w: _Work, bit: np.uint64, edge: np.uint64, row: np.uint64, count: np.uint64
) -> None:
    """The messages into ``count`` checks from row offset ``row`` (``post`` from offset
    ``bit``, ``c2v`` from ``edge``): ``t = L_v - c2v``, folded into ``min1`` and ``min2``."""
    post, c2v, keep, min1, min2 = w.post, w.c2v, w.keep, w.min1, w.min2
    for i in range(count):
        u = _U(i)
        t = _sub(post[bit + u], c2v[edge + u] & keep[row + u])
        a = np.int16(t if t >= 0 else -t)
        m1 = min1[row + u]
        q = min2[row + u]
        m2 = np.int16(min(np.int16(q & _MAGNITUDE), np.int16(max(m1, a))))
        min1[row + u] = np.int16(min(m1, a))
        flip = _SIGN if t < 0 else _NONE
        min2[row + u] = np.int16((m2 | (q & _SIGN)) ^ flip)


@numba.njit(cache=True, error_model="numpy")
def _out_of_check(
    w: _Work, bit: np.uint64, edge: np.uint64, row: np.uint64, count: np.uint64, scale: np.uint16
) -> None:
    """``t`` again (the same operations, so the same value: ``|t| == min1`` marks the edge
    holding the minimum, or one of equal minima, where ``min2 == min1``), the new message
    ``c2v = +-(scale * (min2 there, else min1)) >> 16`` and the posterior ``L_v = t + c2v``."""
    post, c2v, keep, min1, min2 = w.post, w.c2v, w.keep, w.min1, w.min2
    for i in range(count):
        u = _U(i)
        t = _sub(post[bit + u], c2v[edge + u] & keep[row + u])
        a = np.int16(t if t >= 0 else -t)
        m1 = min1[row + u]
        q = min2[row + u]
        m2 = np.int16(q & _MAGNITUDE)
        magnitude = m2 if a == m1 else m1
        magnitude = np.int16((np.uint32(np.uint16(magnitude)) * np.uint32(scale)) >> 16)
        negative = (t < 0) != (q < 0)
        message = np.int16(-magnitude) if negative else magnitude
        c2v[edge + u] = message
        post[bit + u] = _add(t, message)


@numba.njit(cache=True, error_model="numpy")
def _add_parity(w: _Work, bit: np.uint64, row: np.uint64, count: np.uint64) -> None:
    post, odd = w.post, w.odd
    for i in range(count):
        u = _U(i)
        odd[row + u] = np.int16(odd[row + u] ^ post[bit + u])


@numba.njit(cache=True, error_model="numpy")
def _layer(layout: QCLayout, layer: int, w: _Work, lanes: int, scale: np.uint16) -> None:
    """One layer of layered min-sum on every lane. Row ``r`` of a block with shift ``s``
    checks bit ``(r + s) % Z`` of its column block: rows ``0 .. Z-s-1`` bits ``s .. Z-1``,
    rows ``Z-s .. Z-1`` bits ``0 .. s-1``, two runs."""
    run = _U(layout.z * lanes)
    w.min1[:] = _MAGNITUDE
    w.min2[:] = _MAGNITUDE
    blocks = range(layout.layer_ptr[layer], layout.layer_ptr[layer + 1])
    for b in blocks:
        bit = _U(layout.block_col[b]) * run
        shift = _U(layout.block_shift[b]) * _U(lanes)
        edge = _U(b) * run
        _into_check(w, bit + shift, edge, _U(0), run - shift)
        _into_check(w, bit, edge + run - shift, run - shift, shift)
    for b in blocks:
        bit = _U(layout.block_col[b]) * run
        shift = _U(layout.block_shift[b]) * _U(lanes)
        edge = _U(b) * run
        _out_of_check(w, bit + shift, edge, _U(0), run - shift, scale)
        _out_of_check(w, bit, edge + run - shift, run - shift, shift, scale)


@numba.njit(cache=True, error_model="numpy")
def _syndrome(layout: QCLayout, w: _Work, lanes: int, failed: NDArray[np.bool_]) -> None:
    """``failed[lane]``: some check of ``post < 0`` (the sign bits) is odd in that lane."""
    run = _U(layout.z * lanes)
    odd, fail = w.odd, w.fail
    fail[:] = 0
    for layer in range(layout.layer_ptr.size - 1):
        odd[:] = 0
        for b in range(layout.layer_ptr[layer], layout.layer_ptr[layer + 1]):
            bit = _U(layout.block_col[b]) * run
            shift = _U(layout.block_shift[b]) * _U(lanes)
            _add_parity(w, bit + shift, _U(0), run - shift)
            _add_parity(w, bit, run - shift, shift)
        for i in range(run):
            fail[i] = np.int16(fail[i] | odd[i])
    failed[:] = False
    for r in range(layout.z):
        for lane in range(lanes):
            failed[lane] |= fail[_U(r * lanes + lane)] < 0


# --- the frames -----------------------------------------------------------------------------


@numba.njit(cache=True, error_model="numpy")
def _stage(row: NDArray[np.floating], staged: Shorts) -> int:
    """Clean and quantise a word's LLRs into ``staged``; return its number of erased bits."""
    erased = 0
    for v in range(row.size):
        x = clean_value(row[v])
        erased += x == 0.0
        q = math.floor(x * LLR_STEPS + 0.5)
        staged[v] = np.int16(min(max(q, -TOP), TOP))
    return erased


@numba.njit(cache=True, error_model="numpy")
def _is_codeword(row: NDArray[np.floating], layout: QCLayout) -> bool:
    """Whether the channel decisions ``row < 0`` (NaN deciding 0, as cleaned) satisfy every
    check; stops at the first odd one."""
    z = layout.z
    for layer in range(layout.layer_ptr.size - 1):
        for r in range(z):
            parity = False
            for b in range(layout.layer_ptr[layer], layout.layer_ptr[layer + 1]):
                bit = layout.block_col[b] * z + (r + layout.block_shift[b]) % z
                parity ^= row[bit] < 0.0
            if parity:
                return False
    return True


@numba.njit(cache=True, error_model="numpy")
def _next_word(
    llr: NDArray[np.floating],
    word: int,
    stop: int,
    layout: QCLayout,
    rule: _Rule,
    staged: Shorts,
    positions: NDArray[np.int64],
    out: BPResult,
) -> int:
    """The first word from ``word`` on that needs BP, quantised into ``staged`` (or
    ``stop``); the words before it are settled with 0 iterations as their channel decisions:
    those forming a codeword (``ok``), those with too many erasures (not ``ok``), and all of
    them when no iterations are allowed."""
    while word < stop:
        row = llr[word]
        refused = _stage(row, staged) > rule.max_erasures
        good = not refused and _is_codeword(row, layout)
        if not good and not refused and rule.max_iter > 0:
            return word
        for j in range(positions.size):
            out.words[word, j] = row[positions[j]] < 0.0
        out.ok[word] = good
        out.iterations[word] = 0
        word += 1
    return stop


@numba.njit(cache=True, error_model="numpy")
def _emit(
    post: Shorts,
    lanes: int,
    which: Ints,
    words: Ints,
    count: int,
    positions: NDArray[np.int64],
    out: BPResult,
) -> None:
    """``out.words[words[f]] = post < 0`` at ``positions`` of lane ``which[f]``,
    ``f < count``: one pass over the bits, so that the lanes that stop together share each
    cache line's visit."""
    for j in range(positions.size):
        v = positions[j]
        for f in range(count):
            out.words[_U(words[f]), _U(j)] = post[_U(v * lanes + which[f])] < 0


@numba.njit(cache=True, error_model="numpy")
def _load(post: Shorts, keep: Shorts, lanes: int, which: Ints, staged: Shorts, count: int) -> None:
    """Lane ``which[f]`` takes word ``staged[f]``, ``f < count``, its old messages masked for
    one pass; one pass over the bits, as in ``_emit``."""
    for v in range(staged.shape[1]):
        for f in range(count):
            post[_U(v * lanes + which[f])] = staged[_U(f), _U(v)]
    for r in range(keep.size // lanes):
        for f in range(count):
            keep[_U(r * lanes + which[f])] = 0


@numba.njit(cache=True, error_model="numpy")
def _decode_range(
    llr: NDArray[np.floating],
    start: int,
    stop: int,
    layout: QCLayout,
    rule: _Rule,
    positions: NDArray[np.int64],
    out: BPResult,
    lanes: int,
) -> None:
    """Decode words ``start:stop`` through ``lanes`` lanes (see the module docstring)."""
    n = layout.n
    run = layout.z * lanes
    w = _Work(
        np.zeros(n * lanes, dtype=np.int16),
        np.zeros(layout.block_col.size * run, dtype=np.int16),
        np.full(run, -1, dtype=np.int16),
        np.zeros(run, dtype=np.int16),
        np.zeros(run, dtype=np.int16),
        np.zeros(run, dtype=np.int16),
        np.zeros(run, dtype=np.int16),
    )
    staged = np.zeros((lanes, n), dtype=np.int16)  # the words about to enter lanes
    scale = np.uint16(rule.scale)
    lane_word = np.full(lanes, -1, dtype=np.int32)  # -1: the lane is idle
    lane_iter = np.zeros(lanes, dtype=np.int64)
    failed = np.zeros(lanes, dtype=np.bool_)
    stopping = np.zeros(lanes, dtype=np.int32)  # lanes whose word stops this pass
    stopped = np.zeros(lanes, dtype=np.int32)  # and those words
    entering = np.zeros(lanes, dtype=np.int32)  # lanes that take a new word
    word = start
    count = 0
    for lane in range(lanes):
        word = _next_word(llr, word, stop, layout, rule, staged[count], positions, out)
        if word == stop:
            break
        lane_word[lane] = word
        entering[count] = lane
        count += 1
        word += 1
    _load(w.post, w.keep, lanes, entering, staged, count)
    busy = count
    while busy:
        for layer in range(layout.layer_ptr.size - 1):
            _layer(layout, layer, w, lanes, scale)
        w.keep[:] = -1
        _syndrome(layout, w, lanes, failed)
        count = 0
        for lane in range(lanes):
            done = lane_word[lane]
            if done < 0:
                continue
            lane_iter[lane] += 1
            if failed[lane] and lane_iter[lane] < rule.max_iter:
                continue
            out.ok[done] = not failed[lane]
            out.iterations[done] = lane_iter[lane]
            lane_iter[lane] = 0
            stopping[count] = lane
            stopped[count] = done
            count += 1
        if count == 0:
            continue
        _emit(w.post, lanes, stopping, stopped, count, positions, out)
        loads = 0
        for f in range(count):
            lane = stopping[f]
            word = _next_word(llr, word, stop, layout, rule, staged[loads], positions, out)
            if word < stop:
                lane_word[lane] = word
                entering[loads] = lane
                loads += 1
                word += 1
            else:
                lane_word[lane] = -1
                busy -= 1
        _load(w.post, w.keep, lanes, entering, staged, loads)


@numba.njit(cache=True, parallel=True, error_model="numpy")
def _kernel(
    llr: NDArray[np.floating],
    bounds: NDArray[np.int64],
    layout: QCLayout,
    rule: _Rule,
    positions: NDArray[np.int64],
    out: BPResult,
    lanes: int,
) -> None:
    """Words ``bounds[i] : bounds[i + 1]`` form task ``i``; tasks run in parallel."""
    for task in numba.prange(bounds.size - 1):
        _decode_range(llr, bounds[task], bounds[task + 1], layout, rule, positions, out, lanes)
