"""Batched belief propagation on the CPU (numba): the rules of ``bp.py``, many words at once.

LLRs: float64 ``[B, n]``, finite (``clean_llr``), positive means 0; out: ``BPResult`` (uint8
words ``[B, n]``, ``ok`` ``[B]``, iterations ``[B]`` int32), bit-identical to ``torch.py``.

Each task decodes a range of words through up to ``LANES`` lock-step slots, the slot innermost
in every array (so each loop over slots is one SIMD instruction stream). A slot whose word
converges (or runs out of iterations) emits it and takes the next word of the range, so
early stopping is per word and no slot idles while words remain; the new word's first pass
reads its slot's old messages as 0 (``fresh``) instead of zeroing that strided column. Tasks
run in parallel with ``prange``. The kernels take the graph's arrays, the rule and the
outputs as three small named tuples (``_Graph``, ``_Rule``, ``BPResult``), and a task's slot
arrays as one (``_Slots``); numba compiles named tuples of arrays as plain structs.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numba
import numpy as np
from numpy.typing import NDArray

from noisylink.phy.ecc.ldpc.bp import (
    INV_LN2,
    LN2_HI,
    LN2_LO,
    SQRT2,
    TANH_ARG_LIMIT,
    TANH_CLIP,
    BPResult,
)
from noisylink.phy.ecc.ldpc.graph import Int32s, LDPCGraph

TASKS_PER_THREAD = 1  # word ranges per numba thread
LANES = 32  # slots per task at most; passed at run time (a constant trip count of the slot
# loops makes LLVM unroll them instead of vectorising)

_MANTISSA = 0x000FFFFFFFFFFFFF
_ONE_BITS = 0x3FF0000000000000  # exponent field of 1.0

Floats = NDArray[np.float64]


class _Graph(NamedTuple):
    """The edges of each check: ``edge_var[check_ptr[c] : check_ptr[c + 1]]``."""

    check_ptr: Int32s
    edge_var: Int32s


class _Rule(NamedTuple):
    """How every word is decoded (``bp.py``)."""

    min_sum: bool
    layered: bool
    scale: float
    max_iter: int


class _Slots(NamedTuple):
    """One task's working arrays, ``[..., lanes]`` (see the module docstring)."""

    channel: Floats  # [n, lanes] the slots' channel LLRs
    post: Floats  # [n, lanes] posteriors
    acc: Floats  # [n, lanes] flooding: sums of incoming messages
    bits: NDArray[np.uint8]  # [n, lanes] hard decisions
    c2v: Floats  # [E, lanes] check-to-variable messages
    extrinsic: Floats  # [width, lanes] one check's incoming messages
    t: Floats  # [width, lanes] its outgoing messages (sum-product: first the tanh)
    prefix: Floats  # [width, lanes] sum-product: exclude-one products
    work: Floats  # [2, lanes] running products, min-sum's two minima
    first: NDArray[np.int64]  # [lanes] min-sum: where the minimum is
    odd: NDArray[np.bool_]  # [lanes] min-sum: odd number of negative messages
    parity: NDArray[np.uint8]  # [lanes] one check's parity
    fail: NDArray[np.uint8]  # [lanes] some check is odd
    fresh: NDArray[np.bool_]  # [lanes] on its word's first pass: its old c2v count as 0


def decode_numba(
    graph: LDPCGraph,
    llr: Floats,
    iterations: int,
    min_sum: bool,
    layered: bool,
    scale: float,
) -> BPResult:
    """Decode ``llr`` (``[B, n]``, ``B >= 1``, C-contiguous, cleaned) with at most
    ``iterations`` iterations per word."""
    out = BPResult(
        np.zeros(llr.shape, dtype=np.uint8),
        np.zeros(llr.shape[0], dtype=np.bool_),
        np.zeros(llr.shape[0], dtype=np.int32),
    )
    tasks = min(TASKS_PER_THREAD * numba.get_num_threads(), llr.shape[0])
    bounds = np.linspace(0, llr.shape[0], tasks + 1).astype(np.int64)
    lanes = min(LANES, -(-llr.shape[0] // tasks))
    edges = _Graph(graph.check_ptr, graph.edge_var)
    rule = _Rule(bool(min_sum), bool(layered), float(scale), int(iterations))
    _bp_kernel(llr, bounds, edges, rule, out, lanes)
    return out


# --- numerics: tanh(x / 2) and 2 atanh(p) (see bp.py) ---------------------------------------


@numba.njit(cache=True, inline="always", error_model="numpy")
def _as_float(bits: int | np.int64) -> float:
    """The float64 with these int64 bits (a bitcast; vectorises)."""
    return float(np.int64(bits).view(np.float64))


@numba.njit(cache=True, inline="always", error_model="numpy")
def _as_bits(value: float) -> int:
    """The int64 bits of a float64 (a bitcast; vectorises)."""
    return int(np.float64(value).view(np.int64))


@numba.njit(cache=True, inline="always", error_model="numpy")
def _tanh_half(x: float) -> float:
    """``tanh(x / 2) = -u / (2 + u)`` with ``u = expm1(-|x|) = 2**-k expm1(-r) + 2**-k - 1``,
    ``r = |x| - k ln 2`` in ``[-ln2/2, ln2/2]`` (Cody-Waite), degree-13 Taylor for ``expm1``."""
    a = abs(x)
    a = a if a < TANH_ARG_LIMIT else TANH_ARG_LIMIT  # NaN -> the limit: k stays small
    k = math.floor(a * INV_LN2 + 0.5)
    z = (k * LN2_HI - a) + k * LN2_LO
    # Horner, written out: a loop here would stop the slot loops from vectorising
    p = 1.0 / 6227020800.0  # 1/13!
    p = p * z + 1.0 / 479001600.0
    p = p * z + 1.0 / 39916800.0
    p = p * z + 1.0 / 3628800.0
    p = p * z + 1.0 / 362880.0
    p = p * z + 1.0 / 40320.0
    p = p * z + 1.0 / 5040.0
    p = p * z + 1.0 / 720.0
    p = p * z + 1.0 / 120.0
    p = p * z + 1.0 / 24.0
    p = p * z + 1.0 / 6.0
    p = p * z + 0.5
    p = p * z + 1.0
    p = p * z
    s = _as_float((1023 - np.int64(k)) << 52)  # 2**-k
    u = s * p + (s - 1.0)
    return math.copysign(-u / (2.0 + u), x)


@numba.njit(cache=True, inline="always", error_model="numpy")
def _atanh2(p: float) -> float:
    """``2 atanh(p)`` after commpy's clip, with one division: ``log(q)`` for
    ``q = (1 + |p|) / (1 - |p|) = 2**k y``: ``1 - |p| = 2**-e m`` with ``m`` in ``[1, 2)``
    from its bits, then ``m`` doubled or halved so that ``y = (1 + |p|) / m`` lies in
    ``[1/sqrt2, sqrt2]``; ``log y = 2 atanh(s)``, ``s = (y - 1) / (y + 1)`` (just ``|p|``
    when ``k = 0``), a degree-19 odd series."""
    p = min(max(p, -TANH_CLIP), TANH_CLIP)
    a = abs(p)
    num = 1.0 + a  # in [1, 2)
    bits = _as_bits(1.0 - a)  # a normal number in [1e-12, 1]
    m = _as_float((bits & _MANTISSA) | _ONE_BITS)
    k = float(1023 - (bits >> 52))
    big = num > m * SQRT2
    m = m * 2.0 if big else m
    k += 1.0 if big else 0.0
    small = num * SQRT2 < m
    m = m * 0.5 if small else m
    k -= 1.0 if small else 0.0
    s = a if k == 0.0 else (num - m) / (num + m)
    s2 = s * s
    r = 2.0 / 19.0
    r = r * s2 + 2.0 / 17.0
    r = r * s2 + 2.0 / 15.0
    r = r * s2 + 2.0 / 13.0
    r = r * s2 + 2.0 / 11.0
    r = r * s2 + 2.0 / 9.0
    r = r * s2 + 2.0 / 7.0
    r = r * s2 + 2.0 / 5.0
    r = r * s2 + 2.0 / 3.0
    r = r * s2 + 2.0
    return math.copysign(k * LN2_HI + (s * r + k * LN2_LO), p)


# --- the check rules ----------------------------------------------------------------------


@numba.njit(cache=True, error_model="numpy", inline="always")
def _exclude_one_products(
    t: NDArray[np.float64],
    degree: int,
    prefix: NDArray[np.float64],
    product: NDArray[np.float64],
) -> None:
    """Per slot, from ``t[j] = tanh(v2c_j / 2)`` of one check: ``prefix[j] =
    prod_{i != j} t_i`` as commpy forms it (prefix product times suffix product)."""
    lanes = t.shape[1]
    for lane in range(lanes):
        product[lane] = 1.0
    for j in range(degree):
        row = t[j]
        before = prefix[j]
        for lane in range(lanes):
            before[lane] = product[lane]
            product[lane] *= row[lane]
    for lane in range(lanes):
        product[lane] = 1.0  # now the suffix product
    for j in range(degree - 1, -1, -1):
        row = t[j]
        before = prefix[j]
        for lane in range(lanes):
            before[lane] = before[lane] * product[lane]
            product[lane] *= row[lane]


@numba.njit(cache=True, error_model="numpy", inline="always")
def _check_min_sum(
    x: Floats,
    degree: int,
    scale: float,
    min1: Floats,
    min2: Floats,
    first: NDArray[np.int64],
    odd: NDArray[np.bool_],
    out: Floats,
) -> None:
    """Per slot: ``x[j]`` (messages into one check) -> ``out[j] = scale * prod_{i != j}
    sign(x_i) * min_{i != j} |x_i|``, ``x_i >= 0`` counting as positive (commpy's rule);
    branch-free."""
    lanes = x.shape[1]
    for lane in range(lanes):
        min1[lane] = np.inf
        min2[lane] = np.inf
        first[lane] = -1
        odd[lane] = False
    for j in range(degree):
        for lane in range(lanes):
            v = x[j, lane]
            a = abs(v)
            m1, m2, where = min1[lane], min2[lane], first[lane]
            lower = a < m1
            second = a if a < m2 else m2
            min2[lane] = m1 if lower else second
            first[lane] = j if lower else where
            min1[lane] = a if lower else m1
            odd[lane] = odd[lane] != (not v >= 0.0)
    for j in range(degree):
        for lane in range(lanes):
            flip = odd[lane] != (not x[j, lane] >= 0.0)
            m1, m2 = min1[lane], min2[lane]  # loaded before the choice (not a gather)
            magnitude = m2 if j == first[lane] else m1
            out[j, lane] = (-scale if flip else scale) * magnitude


# --- one iteration --------------------------------------------------------------------------
# Both schedules share it: check by check, the messages into the check (``post - c2v``), the
# rule (min-sum or sum-product) and the messages out of it (``c2v``); the schedule only picks
# where those go: layered refreshes ``post`` at once, flooding sums them into ``acc`` and forms
# the posteriors after the last check. (The arrays are unpacked once per iteration: a helper
# per check taking them as arguments would pay numba's reference counting on every call.)


@numba.njit(cache=True, error_model="numpy", inline="always")
def _iteration(graph: _Graph, rule: _Rule, s: _Slots) -> None:
    """One BP iteration on every slot, then the hard decisions ``bits = post < 0``."""
    check_ptr, edge_var = graph
    channel, post, acc, bits, c2v, fresh = s.channel, s.post, s.acc, s.bits, s.c2v, s.fresh
    extrinsic, t, prefix, work, first, odd = s.extrinsic, s.t, s.prefix, s.work, s.first, s.odd
    lanes = post.shape[1]
    if not rule.layered:
        acc[:] = 0.0
    for c in range(check_ptr.size - 1):
        lo = check_ptr[c]
        degree = check_ptr[c + 1] - lo
        # into the check: extrinsic[j] = post - c2v of edge j; out of it: t[j], by the rule
        if rule.min_sum:
            for j in range(degree):
                v = edge_var[lo + j]
                for lane in range(lanes):
                    old = c2v[lo + j, lane]
                    extrinsic[j, lane] = post[v, lane] - (0.0 if fresh[lane] else old)
            _check_min_sum(extrinsic, degree, rule.scale, work[0], work[1], first, odd, t)
        else:  # tanh while gathering, exclude-one products, 2 atanh
            for j in range(degree):
                v = edge_var[lo + j]
                for lane in range(lanes):
                    old = c2v[lo + j, lane]
                    x = post[v, lane] - (0.0 if fresh[lane] else old)
                    extrinsic[j, lane] = x
                    t[j, lane] = _tanh_half(x)
            _exclude_one_products(t, degree, prefix, work[0])
            for j in range(degree):
                for lane in range(lanes):
                    t[j, lane] = _atanh2(prefix[j, lane])
        if rule.layered:
            for j in range(degree):
                v = edge_var[lo + j]
                for lane in range(lanes):
                    c2v[lo + j, lane] = t[j, lane]
                    post[v, lane] = extrinsic[j, lane] + t[j, lane]
        else:
            for j in range(degree):
                v = edge_var[lo + j]  # checks ascend, so each bit sums its edges in order
                for lane in range(lanes):
                    c2v[lo + j, lane] = t[j, lane]
                    acc[v, lane] += t[j, lane]
    if rule.layered:
        for v in range(post.shape[0]):
            for lane in range(lanes):
                bits[v, lane] = post[v, lane] < 0.0
    else:
        for v in range(post.shape[0]):
            for lane in range(lanes):
                post[v, lane] = channel[v, lane] + acc[v, lane]
                bits[v, lane] = post[v, lane] < 0.0


# --- syndromes ------------------------------------------------------------------------------


@numba.njit(cache=True, error_model="numpy", inline="always")
def _failing_lanes(graph: _Graph, s: _Slots) -> None:
    """``fail[lane]`` = 1 where some check of that slot's hard decisions is odd."""
    check_ptr, edge_var = graph
    bits, parity, fail = s.bits, s.parity, s.fail
    lanes = bits.shape[1]
    fail[:] = 0
    for c in range(check_ptr.size - 1):
        parity[:] = 0
        for e in range(check_ptr[c], check_ptr[c + 1]):
            v = edge_var[e]
            for lane in range(lanes):
                parity[lane] ^= bits[v, lane]
        for lane in range(lanes):
            fail[lane] |= parity[lane]


@numba.njit(cache=True, error_model="numpy")
def _syndrome_ok(bits: NDArray[np.uint8], graph: _Graph) -> bool:
    """Whether every check of one word's hard decisions holds (stops at the first fail)."""
    check_ptr, edge_var = graph
    for c in range(check_ptr.size - 1):
        parity = 0
        for e in range(check_ptr[c], check_ptr[c + 1]):
            parity ^= bits[edge_var[e]]
        if parity:
            return False
    return True


# --- the slots ------------------------------------------------------------------------------


@numba.njit(cache=True, error_model="numpy")
def _next_word(llr: Floats, word: int, stop: int, graph: _Graph, rule: _Rule, out: BPResult) -> int:
    """From ``word`` on, settle words that need no BP (channel decisions already a codeword,
    or no iterations allowed); return the first word that needs BP, or ``stop``."""
    while word < stop:
        decided = out.words[word]
        for v in range(decided.size):
            decided[v] = llr[word, v] < 0.0
        good = _syndrome_ok(decided, graph)
        if not good and rule.max_iter > 0:
            return word
        out.ok[word] = good
        out.iterations[word] = 0
        word += 1
    return stop


@numba.njit(cache=True, error_model="numpy")
def _slots(n: int, n_edges: int, width: int, lanes: int) -> _Slots:
    return _Slots(
        np.zeros((n, lanes)),
        np.zeros((n, lanes)),
        np.zeros((n, lanes)),
        np.zeros((n, lanes), dtype=np.uint8),
        np.zeros((n_edges, lanes)),
        np.zeros((width, lanes)),
        np.zeros((width, lanes)),
        np.zeros((width, lanes)),
        np.zeros((2, lanes)),
        np.zeros(lanes, dtype=np.int64),
        np.zeros(lanes, dtype=np.bool_),
        np.zeros(lanes, dtype=np.uint8),
        np.zeros(lanes, dtype=np.uint8),
        np.zeros(lanes, dtype=np.bool_),
    )


@numba.njit(cache=True, error_model="numpy")
def _decode_range(
    llr: Floats, start: int, stop: int, graph: _Graph, rule: _Rule, out: BPResult, lanes: int
) -> None:
    """Decode words ``start:stop`` through ``lanes`` slots (see the module docstring)."""
    check_ptr = graph.check_ptr
    width = 1
    for c in range(check_ptr.size - 1):
        width = max(width, check_ptr[c + 1] - check_ptr[c])
    s = _slots(llr.shape[1], graph.edge_var.size, width, lanes)
    slot_word = np.full(lanes, -1, dtype=np.int64)
    slot_iter = np.zeros(lanes, dtype=np.int64)
    word = start
    busy = 0
    for lane in range(lanes):
        word = _next_word(llr, word, stop, graph, rule, out)
        if word == stop:
            break
        slot_word[lane] = word
        s.channel[:, lane] = llr[word]
        s.post[:, lane] = llr[word]
        busy += 1
        word += 1
    while busy:
        _iteration(graph, rule, s)
        s.fresh[:] = False
        _failing_lanes(graph, s)
        for lane in range(lanes):
            done_word = slot_word[lane]
            if done_word < 0:
                continue
            slot_iter[lane] += 1
            if s.fail[lane] and slot_iter[lane] < rule.max_iter:
                continue
            out.words[done_word] = s.bits[:, lane]
            out.ok[done_word] = not s.fail[lane]
            out.iterations[done_word] = slot_iter[lane]
            word = _next_word(llr, word, stop, graph, rule, out)
            slot_iter[lane] = 0
            s.fresh[lane] = True  # (zeroing its c2v column would cost ~E cache lines)
            if word == stop:
                slot_word[lane] = -1
                s.channel[:, lane] = 0.0
                s.post[:, lane] = 0.0
                busy -= 1
            else:
                slot_word[lane] = word
                s.channel[:, lane] = llr[word]
                s.post[:, lane] = llr[word]
                word += 1


@numba.njit(cache=True, parallel=True, error_model="numpy")
def _bp_kernel(
    llr: Floats, bounds: NDArray[np.int64], graph: _Graph, rule: _Rule, out: BPResult, lanes: int
) -> None:
    """Words ``bounds[i] : bounds[i + 1]`` form task ``i``; tasks run in parallel."""
    for task in numba.prange(bounds.size - 1):
        _decode_range(llr, bounds[task], bounds[task + 1], graph, rule, out, lanes)
