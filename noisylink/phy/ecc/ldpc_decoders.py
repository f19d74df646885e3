"""Batched belief-propagation (BP) decoders for binary LDPC codes, on numba (CPU) or torch.

A code is given once as its Tanner graph (``ldpc_graph(H)``): the edges are the ones of ``H``
in row-major order (check-major, variables ascending within a check, as commpy numbers them),
with CSR adjacency both ways and a split of the checks into *layers* (runs of consecutive
checks sharing no variable: the block rows of a QC code). LLRs follow the project's sign
(positive means bit 0). ``decode_batch`` turns ``[B, n]`` LLRs into ``[B, n]`` hard
decisions, one ``ok`` flag per word (the decisions satisfy every check) and the iterations
each word used.

Algorithms (``method`` x ``schedule``):

* ``flooding`` is commpy's ``bp_decode`` step by step: messages start at the channel LLRs;
  an iteration updates every check, then every posterior ``L_v = llr_v + sum c2v`` (summed
  from 0.0 in edge order, like ``np.bincount``), decides ``L_v < 0``, stops if the syndrome
  is zero, else sends ``v2c = L_v - c2v``. ``sum-product``: commpy's tanh rule, the
  exclude-one product of ``tanh(v2c / 2)`` from prefix and suffix products in commpy's
  order, clipped to ``+-(1 - 1e-12)`` (a message never exceeds ~28.3), then ``2 atanh``.
  ``min-sum``: ``scale * sign * min`` over the other edges, a zero counting as positive, with
  commpy's default ``scale`` 0.75 -- bit for bit commpy's arithmetic, hence its decisions.
  Sum-product evaluates ``tanh`` and ``atanh`` with our own vectorisable routines (below),
  within 5 ulp of libm; numpy's SIMD ``tanh`` (commpy's) is itself 1 ulp off libm's for a
  quarter of inputs, so only rare borderline words can decide differently from commpy.
* ``layered`` (check by check, in order) keeps one posterior per bit and refreshes it after
  every check: ``t = L_v - c2v_old``, ``c2v_new = rule(t of the other edges)``,
  ``L_v = t + c2v_new``; the syndrome is tested after each full pass. It converges in about
  half the iterations. Same rules; min-sum's default ``scale`` is 0.8 here (on the 802.11n
  rate-1/2 codes at 20 iterations it has 25-70 % fewer frame errors than 0.75 in the
  waterfall, and it is no worse at rate 5/6).

float64 throughout: flooding must repeat commpy's float64 arithmetic, and both backends must
agree bit for bit; float32 would only double the SIMD width.

Both schedules first test the channel decisions: a word that already satisfies ``H`` uses 0
iterations and is returned as is (commpy always runs one iteration).

Backends: ``numba`` (CPU: each task decodes a range of words through lock-step slots, see
below; tasks run in parallel with ``prange``) and ``torch`` (any device: the same operations
in the same order, vectorised over the batch with gathers over padded check and variable
grids; converged words leave the batch). On the same inputs both give bit-identical results.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

import numba
import numpy as np
import scipy.sparse
from llvmlite import ir as llvm_ir
from numba.extending import intrinsic
from numpy.typing import ArrayLike, NDArray

from noisylink.phy.ecc.base import cuda_available, torch_device

if TYPE_CHECKING:
    import torch

Method = Literal["sum-product", "min-sum"]
Schedule = Literal["flooding", "layered"]
Backend = Literal["auto", "numba", "torch"]

MIN_SUM_SCALE = 0.75  # commpy's normalisation, for flooding min-sum
LAYERED_MIN_SUM_SCALE = 0.8  # ours, for layered min-sum (see the module docstring)
TANH_CLIP = 1.0 - 1e-12  # commpy's clip of the exclude-one tanh product
LLR_LIMIT = 1e6  # inputs are clipped to +-LLR_LIMIT (NaN -> 0, an erasure)
TORCH_CHUNK_ELEMENTS = 1 << 24  # messages per padded check grid in one torch chunk

Int32s = NDArray[np.int32]


@dataclass(frozen=True, eq=False)
class LDPCGraph:
    """Tanner graph of a parity-check matrix ``H`` ``[m, n]`` as edge lists (see module doc).

    Edge ``e`` joins check ``edge_check[e]`` and variable ``edge_var[e]``; the edges of check
    ``c`` are ``check_ptr[c] : check_ptr[c + 1]``; those of variable ``v`` are
    ``var_edges[var_ptr[v] : var_ptr[v + 1]]`` (ascending). Layer ``l`` holds the checks
    ``layer_ptr[l] : layer_ptr[l + 1]``. Compared by identity (hashable, so device copies can
    be cached).
    """

    n: int
    m: int
    edge_check: Int32s
    edge_var: Int32s
    check_ptr: Int32s
    var_ptr: Int32s
    var_edges: Int32s
    layer_ptr: Int32s

    @property
    def n_edges(self) -> int:
        return int(self.edge_var.size)


def ldpc_graph(parity_check: ArrayLike | scipy.sparse.sparray | scipy.sparse.spmatrix) -> LDPCGraph:
    """Build the edge lists and layers of ``H`` (dense or scipy sparse, 0/1), once per code."""
    h = scipy.sparse.csr_array(parity_check).astype(np.int64)
    h.sum_duplicates()
    h.eliminate_zeros()
    h.sort_indices()
    h.data %= 2
    h.eliminate_zeros()
    m, n = h.shape
    check_ptr = h.indptr.astype(np.int32)
    edge_var = h.indices.astype(np.int32)
    edge_check = np.repeat(np.arange(m, dtype=np.int32), np.diff(h.indptr))
    order = np.argsort(edge_var, kind="stable")  # per variable, edges stay ascending
    var_ptr = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(np.bincount(edge_var, minlength=n), out=var_ptr[1:])
    return LDPCGraph(
        n=int(n),
        m=int(m),
        edge_check=edge_check,
        edge_var=edge_var,
        check_ptr=check_ptr,
        var_ptr=var_ptr,
        var_edges=order.astype(np.int32),
        layer_ptr=_layers(check_ptr, edge_var, n),
    )


def _layers(check_ptr: Int32s, edge_var: Int32s, n: int) -> Int32s:
    """Greedy split of the checks, in order, into runs that share no variable."""
    owner = np.full(n, -1, dtype=np.int64)  # layer that last touched each variable
    starts = [0]
    for c in range(check_ptr.size - 1):
        variables = edge_var[check_ptr[c] : check_ptr[c + 1]]
        if np.any(owner[variables] == len(starts) - 1):
            starts.append(c)
        owner[variables] = len(starts) - 1
    starts.append(check_ptr.size - 1)
    return np.asarray(starts, dtype=np.int32)


class BPResult(NamedTuple):
    """Hard decisions ``[B, n]`` uint8, ``ok`` ``[B]`` (syndrome zero), iterations ``[B]``."""

    words: NDArray[np.uint8]
    ok: NDArray[np.bool_]
    iterations: NDArray[np.int32]


def clean_llr(llr: ArrayLike, n: int) -> NDArray[np.float64]:
    """``[B, n]`` contiguous float64 LLRs: NaN -> 0 (erased), +-inf and beyond clipped."""
    rows = np.asarray(llr, dtype=np.float64).reshape(-1, n)
    rows = np.nan_to_num(rows, nan=0.0, posinf=LLR_LIMIT, neginf=-LLR_LIMIT)
    return np.ascontiguousarray(np.clip(rows, -LLR_LIMIT, LLR_LIMIT))


@functools.cache
def resolve_backend(backend: Backend) -> Literal["numba", "torch"]:
    """``auto`` -> ``torch`` when CUDA is available, else ``numba``."""
    if backend == "auto":
        return "torch" if cuda_available() else "numba"
    if backend not in ("numba", "torch"):
        raise ValueError(f"unknown backend {backend!r}")
    return backend


def decode_batch(
    graph: LDPCGraph,
    llr: ArrayLike,
    iterations: int,
    method: Method = "sum-product",
    schedule: Schedule = "flooding",
    backend: Backend = "numba",
    *,
    scale: float | None = None,
    device: str | torch.device | None = None,
) -> BPResult:
    """Decode ``llr`` (``[B, n]``, or anything reshaping to it) with at most ``iterations``
    BP iterations per word. ``scale`` normalises min-sum (default: 0.75 flooding, 0.8
    layered); ``device`` is torch's (default: CUDA if available, else CPU). Never raises on
    bad LLRs (they are cleaned first)."""
    if method not in ("sum-product", "min-sum"):
        raise ValueError(f"unknown method {method!r}")
    if schedule not in ("flooding", "layered"):
        raise ValueError(f"unknown schedule {schedule!r}")
    if iterations < 0:
        raise ValueError("iterations must be >= 0")
    scale = default_scale(schedule) if scale is None else scale
    rows = clean_llr(llr, graph.n)
    words = np.zeros(rows.shape, dtype=np.uint8)
    ok = np.zeros(rows.shape[0], dtype=np.bool_)
    used = np.zeros(rows.shape[0], dtype=np.int32)
    if rows.shape[0] == 0:
        return BPResult(words, ok, used)
    if resolve_backend(backend) == "torch":
        import torch

        target = torch.device(device) if device is not None else torch_device()
        result = decode_batch_torch(
            graph, torch.from_numpy(rows).to(target), iterations, method, schedule, scale=scale
        )
        return BPResult(*(tensor.cpu().numpy() for tensor in result))
    tasks = min(TASKS_PER_THREAD * numba.get_num_threads(), rows.shape[0])
    bounds = np.linspace(0, rows.shape[0], tasks + 1).astype(np.int64)
    lanes = min(LANES, -(-rows.shape[0] // tasks))
    _bp_kernel(
        rows,
        bounds,
        graph.check_ptr,
        graph.edge_var,
        method == "min-sum",
        schedule == "layered",
        float(scale),
        int(iterations),
        words,
        ok,
        used,
        lanes,
    )
    return BPResult(words, ok, used)


def default_scale(schedule: Schedule) -> float:
    """Min-sum normalisation: commpy's 0.75 for flooding, 0.8 for layered."""
    return LAYERED_MIN_SUM_SCALE if schedule == "layered" else MIN_SUM_SCALE


# --- shared numerics ------------------------------------------------------------------------
# tanh(x / 2) and 2 atanh(p) from +, *, /, floor, compares and exact power-of-2 scalings, so
# that they vectorise (libm's tanh/atanh are scalar calls, ~13 ns each; these take ~1 ns) and
# torch repeats them bit for bit. Both are within 5 ulp of libm (numpy's SIMD tanh, commpy's,
# is itself 1 ulp off libm's for a quarter of inputs). Powers of 2 come from the float's bits
# in numba (a bitcast) and from a table / ``frexp`` in torch: the same exact values.

INV_LN2 = 1.4426950408889634
LN2_HI = 6.93147180369123816490e-01  # ln 2 split so that k * LN2_HI is exact for k < 2**20
LN2_LO = 1.90821492927058770002e-10
SQRT2 = 1.4142135623730951
TANH_ARG_LIMIT = 40.0  # tanh(x / 2) rounds to exactly +-1 beyond this
POW2_NEG = np.ldexp(1.0, -np.arange(64))  # 2**-k, k = 0..63 (torch's table)
_MANTISSA = 0x000FFFFFFFFFFFFF
_ONE_BITS = 0x3FF0000000000000  # exponent field of 1.0


@intrinsic
def _as_float(typingctx: Any, bits: Any) -> Any:
    """The float64 with these int64 bits (LLVM bitcast; vectorises)."""

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        return builder.bitcast(args[0], llvm_ir.DoubleType())

    return numba.types.float64(numba.types.int64), codegen


@intrinsic
def _as_bits(typingctx: Any, value: Any) -> Any:
    """The int64 bits of a float64 (LLVM bitcast; vectorises)."""

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        return builder.bitcast(args[0], llvm_ir.IntType(64))

    return numba.types.int64(numba.types.float64), codegen


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


# --- numba ----------------------------------------------------------------------------------
# Each task decodes a range of words through up to LANES lock-step slots, the slot innermost
# in every array (so each loop over slots is one SIMD instruction stream). A slot whose word
# converges (or runs out of iterations) emits it and takes the next word of the range, so
# early stopping is per word and no slot idles while words remain.

TASKS_PER_THREAD = 1  # word ranges per numba thread
LANES = 32  # slots per task at most; passed at run time (a constant trip count of the slot
# loops makes LLVM unroll them instead of vectorising)

_NJIT = {"cache": True, "error_model": "numpy"}  # numpy model: no zero-division branches
_INLINE = {"cache": True, "error_model": "numpy", "inline": "always"}


@numba.njit(**_INLINE)
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


@numba.njit(**_INLINE)
def _check_min_sum(
    t: NDArray[np.float64],
    degree: int,
    scale: float,
    min1: NDArray[np.float64],
    min2: NDArray[np.float64],
    first: NDArray[np.int64],
    odd: NDArray[np.bool_],
) -> None:
    """In place, per slot: ``t[j]`` (messages into one check) -> ``scale * prod_{i != j}
    sign(t_i) * min_{i != j} |t_i|``, ``t_i >= 0`` counting as positive (commpy's rule);
    branch-free."""
    lanes = t.shape[1]
    for lane in range(lanes):
        min1[lane] = np.inf
        min2[lane] = np.inf
        first[lane] = -1
        odd[lane] = False
    for j in range(degree):
        for lane in range(lanes):
            x = t[j, lane]
            a = abs(x)
            lower = a < min1[lane]
            second = a if a < min2[lane] else min2[lane]
            min2[lane] = min1[lane] if lower else second
            first[lane] = j if lower else first[lane]
            min1[lane] = a if lower else min1[lane]
            odd[lane] = odd[lane] != (not x >= 0.0)
    for j in range(degree):
        for lane in range(lanes):
            flip = odd[lane] != (not t[j, lane] >= 0.0)
            magnitude = min2[lane] if j == first[lane] else min1[lane]
            t[j, lane] = (-scale if flip else scale) * magnitude


@numba.njit(**_INLINE)
def _flooding_pass(
    channel: NDArray[np.float64],
    check_ptr: Int32s,
    edge_var: Int32s,
    min_sum: bool,
    scale: float,
    state: tuple,
) -> None:
    """One flooding iteration on every slot: each check from ``v2c = post - c2v``, then the
    posteriors ``channel + sum c2v`` (summed from 0 in edge order) and hard decisions.
    Sum-product takes tanh while gathering and atanh while scattering (one pass each)."""
    c2v, post, acc, bits, t, prefix, work, first, odd = state
    lanes = post.shape[1]
    acc[:] = 0.0
    for c in range(check_ptr.size - 1):
        lo = check_ptr[c]
        degree = check_ptr[c + 1] - lo
        if min_sum:
            for j in range(degree):
                v = edge_var[lo + j]
                for lane in range(lanes):
                    t[j, lane] = post[v, lane] - c2v[lo + j, lane]
            _check_min_sum(t, degree, scale, work[0], work[1], first, odd)
            for j in range(degree):
                v = edge_var[lo + j]  # checks ascend, so each bit sums its edges in order
                for lane in range(lanes):
                    c2v[lo + j, lane] = t[j, lane]
                    acc[v, lane] += t[j, lane]
        else:
            for j in range(degree):
                v = edge_var[lo + j]
                for lane in range(lanes):
                    t[j, lane] = _tanh_half(post[v, lane] - c2v[lo + j, lane])
            _exclude_one_products(t, degree, prefix, work[0])
            for j in range(degree):
                v = edge_var[lo + j]
                for lane in range(lanes):
                    message = _atanh2(prefix[j, lane])
                    c2v[lo + j, lane] = message
                    acc[v, lane] += message
    for v in range(post.shape[0]):
        for lane in range(lanes):
            post[v, lane] = channel[v, lane] + acc[v, lane]
            bits[v, lane] = post[v, lane] < 0.0


@numba.njit(**_INLINE)
def _layered_pass(
    check_ptr: Int32s, edge_var: Int32s, min_sum: bool, scale: float, state: tuple
) -> None:
    """One layered iteration on every slot: check by check ``t = post - c2v``, new ``c2v``,
    ``post = t + c2v``; then the hard decisions."""
    c2v, post, extrinsic, bits, t, prefix, work, first, odd = state
    lanes = post.shape[1]
    for c in range(check_ptr.size - 1):
        lo = check_ptr[c]
        degree = check_ptr[c + 1] - lo
        if min_sum:
            for j in range(degree):
                v = edge_var[lo + j]
                for lane in range(lanes):
                    t[j, lane] = post[v, lane] - c2v[lo + j, lane]
                    extrinsic[j, lane] = t[j, lane]
            _check_min_sum(t, degree, scale, work[0], work[1], first, odd)
            for j in range(degree):
                v = edge_var[lo + j]
                for lane in range(lanes):
                    c2v[lo + j, lane] = t[j, lane]
                    post[v, lane] = extrinsic[j, lane] + t[j, lane]
        else:
            for j in range(degree):
                v = edge_var[lo + j]
                for lane in range(lanes):
                    x = post[v, lane] - c2v[lo + j, lane]
                    extrinsic[j, lane] = x
                    t[j, lane] = _tanh_half(x)
            _exclude_one_products(t, degree, prefix, work[0])
            for j in range(degree):
                v = edge_var[lo + j]
                for lane in range(lanes):
                    message = _atanh2(prefix[j, lane])
                    c2v[lo + j, lane] = message
                    post[v, lane] = extrinsic[j, lane] + message
    for v in range(post.shape[0]):
        for lane in range(lanes):
            bits[v, lane] = post[v, lane] < 0.0


@numba.njit(**_INLINE)
def _failing_lanes(
    bits: NDArray[np.uint8],
    check_ptr: Int32s,
    edge_var: Int32s,
    parity: NDArray[np.uint8],
    fail: NDArray[np.uint8],
) -> None:
    """``fail[lane]`` = 1 where some check of that slot's hard decisions is odd."""
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


@numba.njit(**_NJIT)
def _syndrome_ok(bits: NDArray[np.uint8], check_ptr: Int32s, edge_var: Int32s) -> bool:
    """Whether every check of one word's hard decisions holds (stops at the first fail)."""
    for c in range(check_ptr.size - 1):
        parity = 0
        for e in range(check_ptr[c], check_ptr[c + 1]):
            parity ^= bits[edge_var[e]]
        if parity:
            return False
    return True


@numba.njit(**_NJIT)
def _next_word(
    llr: NDArray[np.float64],
    word: int,
    stop: int,
    check_ptr: Int32s,
    edge_var: Int32s,
    max_iter: int,
    words: NDArray[np.uint8],
    ok: NDArray[np.bool_],
    used: NDArray[np.int32],
) -> int:
    """From ``word`` on, settle words that need no BP (channel decisions already a codeword,
    or no iterations allowed); return the first word that needs BP, or ``stop``."""
    while word < stop:
        out = words[word]
        for v in range(out.size):
            out[v] = llr[word, v] < 0.0
        good = _syndrome_ok(out, check_ptr, edge_var)
        if not good and max_iter > 0:
            return word
        ok[word] = good
        used[word] = 0
        word += 1
    return stop


@numba.njit(**_NJIT)
def _decode_range(
    llr: NDArray[np.float64],
    start: int,
    stop: int,
    check_ptr: Int32s,
    edge_var: Int32s,
    min_sum: bool,
    layered: bool,
    scale: float,
    max_iter: int,
    words: NDArray[np.uint8],
    ok: NDArray[np.bool_],
    used: NDArray[np.int32],
    lanes: int,
) -> None:
    """Decode words ``start:stop`` through ``lanes`` slots (see the section comment)."""
    n = llr.shape[1]
    width = 1
    for c in range(check_ptr.size - 1):
        width = max(width, check_ptr[c + 1] - check_ptr[c])
    channel = np.zeros((n, lanes))
    post = np.zeros((n, lanes))
    acc = np.zeros((n, lanes))  # flooding: sums of incoming messages
    bits = np.zeros((n, lanes), dtype=np.uint8)
    c2v = np.zeros((edge_var.size, lanes))
    t = np.zeros((width, lanes))
    prefix = np.zeros((width, lanes))
    extrinsic = np.zeros((width, lanes))
    work = np.zeros((2, lanes))
    first = np.zeros(lanes, dtype=np.int64)
    odd = np.zeros(lanes, dtype=np.bool_)
    parity = np.zeros(lanes, dtype=np.uint8)
    fail = np.zeros(lanes, dtype=np.uint8)
    slot_word = np.full(lanes, -1, dtype=np.int64)
    slot_iter = np.zeros(lanes, dtype=np.int64)
    word = start
    busy = 0
    for lane in range(lanes):
        word = _next_word(llr, word, stop, check_ptr, edge_var, max_iter, words, ok, used)
        if word == stop:
            break
        slot_word[lane] = word
        channel[:, lane] = llr[word]
        post[:, lane] = llr[word]
        busy += 1
        word += 1
    while busy:
        if layered:
            state = (c2v, post, extrinsic, bits, t, prefix, work, first, odd)
            _layered_pass(check_ptr, edge_var, min_sum, scale, state)
        else:
            state = (c2v, post, acc, bits, t, prefix, work, first, odd)
            _flooding_pass(channel, check_ptr, edge_var, min_sum, scale, state)
        _failing_lanes(bits, check_ptr, edge_var, parity, fail)
        for lane in range(lanes):
            done_word = slot_word[lane]
            if done_word < 0:
                continue
            slot_iter[lane] += 1
            if fail[lane] and slot_iter[lane] < max_iter:
                continue
            words[done_word] = bits[:, lane]
            ok[done_word] = not fail[lane]
            used[done_word] = slot_iter[lane]
            word = _next_word(llr, word, stop, check_ptr, edge_var, max_iter, words, ok, used)
            slot_iter[lane] = 0
            c2v[:, lane] = 0.0
            if word == stop:
                slot_word[lane] = -1
                channel[:, lane] = 0.0
                post[:, lane] = 0.0
                busy -= 1
            else:
                slot_word[lane] = word
                channel[:, lane] = llr[word]
                post[:, lane] = llr[word]
                word += 1


@numba.njit(cache=True, parallel=True, error_model="numpy")
def _bp_kernel(
    llr: NDArray[np.float64],
    bounds: NDArray[np.int64],
    check_ptr: Int32s,
    edge_var: Int32s,
    min_sum: bool,
    layered: bool,
    scale: float,
    max_iter: int,
    words: NDArray[np.uint8],
    ok: NDArray[np.bool_],
    used: NDArray[np.int32],
    lanes: int,
) -> None:
    """Words ``bounds[i] : bounds[i + 1]`` form task ``i``; tasks run in parallel."""
    for task in numba.prange(bounds.size - 1):
        _decode_range(
            llr,
            bounds[task],
            bounds[task + 1],
            check_ptr,
            edge_var,
            min_sum,
            layered,
            scale,
            max_iter,
            words,
            ok,
            used,
            lanes,
        )


# --- torch ----------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class _TorchGraph:
    """Padded grids on one device: row ``c`` of ``check_edges`` / ``check_vars`` lists check
    ``c``'s edges / variables (padding: ``E`` / ``n``, masked by ``check_mask``);
    ``grid_pos[e]`` is edge ``e``'s place in the flattened grid; ``var_edges`` ``[n, dv]``
    lists each variable's edges ascending (padding ``E``)."""

    check_edges: torch.Tensor
    check_vars: torch.Tensor
    check_mask: torch.Tensor
    grid_pos: torch.Tensor
    var_edges: torch.Tensor
    layers: tuple[tuple[int, int, int, int], ...]  # (first check, end check, first edge, end)


@functools.lru_cache(maxsize=16)
def _torch_graph(graph: LDPCGraph, device: torch.device) -> _TorchGraph:
    import torch

    degrees = np.diff(graph.check_ptr)
    width = max(1, int(degrees.max(initial=0)))
    slot = np.arange(graph.n_edges) - graph.check_ptr[graph.edge_check]
    grid_pos = graph.edge_check.astype(np.int64) * width + slot
    check_edges = np.full(graph.m * width, graph.n_edges, dtype=np.int64)
    check_edges[grid_pos] = np.arange(graph.n_edges)
    check_vars = np.full(graph.m * width, graph.n, dtype=np.int64)
    check_vars[grid_pos] = graph.edge_var
    var_degrees = np.diff(graph.var_ptr)
    var_width = max(1, int(var_degrees.max(initial=0)))
    var_edges = np.full((graph.n, var_width), graph.n_edges, dtype=np.int64)
    var_of = np.repeat(np.arange(graph.n), var_degrees)
    var_edges[var_of, np.arange(graph.n_edges) - graph.var_ptr[var_of]] = graph.var_edges

    def put(array: NDArray[np.generic]) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(array)).to(device)

    ptr = graph.check_ptr
    layers = tuple(
        (int(a), int(b), int(ptr[a]), int(ptr[b]))
        for a, b in zip(graph.layer_ptr[:-1], graph.layer_ptr[1:], strict=True)
    )
    return _TorchGraph(
        check_edges=put(check_edges.reshape(graph.m, width)),
        check_vars=put(check_vars.reshape(graph.m, width)),
        check_mask=put((check_edges < graph.n_edges).reshape(graph.m, width)),
        grid_pos=put(grid_pos),
        var_edges=put(var_edges),
        layers=layers,
    )


def decode_batch_torch(
    graph: LDPCGraph,
    llr: torch.Tensor,
    iterations: int,
    method: Method = "sum-product",
    schedule: Schedule = "flooding",
    *,
    scale: float | None = None,
    chunk_elements: int = TORCH_CHUNK_ELEMENTS,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``decode_batch`` on ``llr``'s device (``[B, n]`` finite LLRs, float64 for decisions
    identical to numba's; float32 also runs). Returns (words uint8, ok bool, iterations int32)
    tensors on that device. Words go in chunks whose padded check grids hold at most
    ``chunk_elements`` messages (bounding the memory of the temporaries)."""
    import torch

    scale = default_scale(schedule) if scale is None else scale
    cells = graph.m * max(1, int(np.diff(graph.check_ptr).max(initial=0)))
    chunk = max(1, chunk_elements // max(1, cells))
    device = llr.device
    words = torch.zeros((llr.shape[0], graph.n), dtype=torch.uint8, device=device)
    ok = torch.zeros(llr.shape[0], dtype=torch.bool, device=device)
    used = torch.full((llr.shape[0],), iterations, dtype=torch.int32, device=device)
    with torch.no_grad():
        for start in range(0, llr.shape[0], chunk):
            part = slice(start, start + chunk)
            views = (words[part], ok[part], used[part])
            _decode_chunk_torch(
                graph, llr[part], iterations, method == "min-sum", schedule, scale, views
            )
    return words, ok, used


def _decode_chunk_torch(
    graph: LDPCGraph,
    llr: torch.Tensor,
    iterations: int,
    min_sum: bool,
    schedule: Schedule,
    scale: float,
    out: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
) -> None:
    """Decode ``llr`` into the views ``out`` (words, ok, iterations); a word leaves the
    working batch as soon as its syndrome is zero."""
    import torch

    tg = _torch_graph(graph, llr.device)
    words, ok, used = out
    n = graph.n
    index = torch.arange(llr.shape[0], device=llr.device)
    channel = llr
    post = torch.nn.functional.pad(llr, (0, 1))  # slot n: padding, 0
    c2v = llr.new_zeros((llr.shape[0], graph.n_edges + 1))  # slot E: padding, 0
    for iteration in range(iterations + 1):
        if iteration:
            if schedule == "layered":
                _layered_pass_torch(tg, post, c2v, min_sum, scale)
            else:
                _flooding_pass_torch(tg, channel, post, c2v, min_sum, scale)
        bits = post[:, :n] < 0
        done = _syndrome_ok_torch(tg, bits)
        last = iteration == iterations
        finished = torch.ones_like(done) if last else done
        if bool(finished.any()):
            rows = index[finished]
            words[rows] = bits[finished].to(torch.uint8)
            ok[rows] = done[finished]
            used[rows] = iteration
            keep = ~finished
            index, channel, post, c2v = index[keep], channel[keep], post[keep], c2v[keep]
            if index.numel() == 0:
                break


def _syndrome_ok_torch(tg: _TorchGraph, bits: torch.Tensor) -> torch.Tensor:
    import torch

    padded = torch.nn.functional.pad(bits.to(torch.int32), (0, 1))  # slot n: 0
    return ~(padded[:, tg.check_vars].sum(-1) % 2).bool().any(-1)


def _check_rows_torch(
    t: torch.Tensor, mask: torch.Tensor, min_sum: bool, scale: float
) -> torch.Tensor:
    """Check rule for every (word, check) row of ``t`` ``[B, rows, width]`` (padding masked)."""
    import torch

    width = t.shape[-1]
    if min_sum:
        magnitude = torch.where(mask, t.abs(), torch.inf)
        negative = ~(t >= 0) & mask
        if width == 1:
            magnitude = torch.nn.functional.pad(magnitude, (0, 1), value=torch.inf)
        lowest, where = torch.topk(magnitude, 2, dim=-1, largest=False)
        slots = torch.arange(width, device=t.device)
        excl_min = torch.where(slots == where[..., :1], lowest[..., 1:2], lowest[..., :1])
        flip = (negative.sum(-1, keepdim=True) % 2).bool() != negative
        scaled = scale * excl_min  # = numba's (+-scale) * min up to the sign, which is exact
        return torch.where(flip, -scaled, scaled)
    th = torch.where(mask, _tanh_half_torch(t), 1.0)
    prefix = torch.empty_like(th)
    product = torch.ones_like(th[..., 0])
    for j in range(width):
        prefix[..., j] = product
        product = product * th[..., j]
    suffix = torch.ones_like(product)
    for j in range(width - 1, -1, -1):
        prefix[..., j] = prefix[..., j] * suffix
        suffix = suffix * th[..., j]
    return _atanh2_torch(prefix)


@functools.lru_cache(maxsize=16)
def _pow2_neg(device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    import torch

    return torch.from_numpy(POW2_NEG).to(device=device, dtype=dtype)


def _tanh_half_torch(x: torch.Tensor) -> torch.Tensor:
    """``_tanh_half`` elementwise, the same operations in the same order."""
    import torch

    a = x.abs()
    a = torch.where(a < TANH_ARG_LIMIT, a, TANH_ARG_LIMIT)
    k = torch.floor(a * INV_LN2 + 0.5)
    z = (k * LN2_HI - a) + k * LN2_LO
    p = torch.full_like(z, 1.0 / 6227020800.0)
    for c in _EXPM1_TAIL:
        p = p * z + c
    p = p * z
    s = _pow2_neg(x.device, x.dtype)[k.long()]
    u = s * p + (s - 1.0)
    return torch.copysign(-u / (2.0 + u), x)


def _atanh2_torch(p: torch.Tensor) -> torch.Tensor:
    """``_atanh2`` elementwise, the same operations in the same order (``frexp`` for the
    bits)."""
    import torch

    p = p.clamp(-TANH_CLIP, TANH_CLIP)
    a = p.abs()
    num = 1.0 + a
    mantissa, exponent = torch.frexp(1.0 - a)  # mantissa in [0.5, 1)
    m = mantissa * 2.0
    k = (1 - exponent).to(p.dtype)
    big = num > m * SQRT2
    m = torch.where(big, m * 2.0, m)
    k = k + torch.where(big, 1.0, 0.0)
    small = num * SQRT2 < m
    m = torch.where(small, m * 0.5, m)
    k = k - torch.where(small, 1.0, 0.0)
    s = torch.where(k == 0.0, a, (num - m) / (num + m))
    s2 = s * s
    r = torch.full_like(s, 2.0 / 19.0)
    for c in _ATANH_TAIL:
        r = r * s2 + c
    return torch.copysign(k * LN2_HI + (s * r + k * LN2_LO), p)


# the Horner constants of _tanh_half and _atanh2 after the first, as there
_EXPM1_TAIL = (
    1.0 / 479001600.0,
    1.0 / 39916800.0,
    1.0 / 3628800.0,
    1.0 / 362880.0,
    1.0 / 40320.0,
    1.0 / 5040.0,
    1.0 / 720.0,
    1.0 / 120.0,
    1.0 / 24.0,
    1.0 / 6.0,
    0.5,
    1.0,
)
_ATANH_TAIL = tuple(2.0 / d for d in (17.0, 15.0, 13.0, 11.0, 9.0, 7.0, 5.0, 3.0, 1.0))


def _flooding_pass_torch(
    tg: _TorchGraph,
    channel: torch.Tensor,
    post: torch.Tensor,
    c2v: torch.Tensor,
    min_sum: bool,
    scale: float,
) -> None:
    """In place on ``post`` ``[B, n+1]`` and ``c2v`` ``[B, E+1]``: one flooding iteration."""
    v2c = post[:, tg.check_vars] - c2v[:, tg.check_edges]
    message = _check_rows_torch(v2c, tg.check_mask, min_sum, scale)
    c2v[:, :-1] = message.reshape(message.shape[0], -1)[:, tg.grid_pos]
    incoming = c2v[:, tg.var_edges]  # [B, n, dv], padding reads slot E = 0
    acc = incoming[..., 0]
    for j in range(1, incoming.shape[-1]):
        acc = acc + incoming[..., j]  # edge order, like numba and np.bincount
    post[:, :-1] = channel + acc


def _layered_pass_torch(
    tg: _TorchGraph, post: torch.Tensor, c2v: torch.Tensor, min_sum: bool, scale: float
) -> None:
    """In place: one layered iteration, one layer (checks sharing no bit) at a time."""
    for first, end, edge_lo, edge_hi in tg.layers:
        variables = tg.check_vars[first:end]
        mask = tg.check_mask[first:end]
        t = post[:, variables] - c2v[:, tg.check_edges[first:end]]
        message = _check_rows_torch(t, mask, min_sum, scale)
        flat = slice(first * mask.shape[1], end * mask.shape[1])
        pos = tg.grid_pos[edge_lo:edge_hi] - flat.start
        batch = t.shape[0]
        c2v[:, edge_lo:edge_hi] = message.reshape(batch, -1)[:, pos]
        updated = (t + message).reshape(batch, -1)[:, pos]
        post[:, variables.reshape(-1)[pos]] = updated
