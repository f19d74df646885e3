"""Batched belief propagation on any torch device: ``numba.py``'s decoder, vectorised.

The rules of ``bp.py``, the same float64 operations in the same order as ``numba.py`` (so
bit-identical results), vectorised over the batch with gathers over padded check and
variable grids; converged words leave the batch. LLRs: ``[B, n]`` finite (``clean_llr``),
positive means 0; float32 also runs (its decisions may differ from numba's). Imported only
when the torch backend is chosen.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch
from numpy.typing import NDArray

from noisylink.phy.ecc.backends import torch_device
from noisylink.phy.ecc.ldpc.bp import (
    INV_LN2,
    LN2_HI,
    LN2_LO,
    SQRT2,
    TANH_ARG_LIMIT,
    TANH_CLIP,
    BPResult,
    Method,
    Schedule,
    default_scale,
)
from noisylink.phy.ecc.ldpc.graph import LDPCGraph

TORCH_CHUNK_ELEMENTS = 1 << 24  # messages per padded check grid in one torch chunk
POW2_NEG = np.ldexp(1.0, -np.arange(64))  # 2**-k, k = 0..63 (numba takes it from the bits)


def decode_on_device(
    graph: LDPCGraph,
    llr: NDArray[np.float64],
    iterations: int,
    method: Method,
    schedule: Schedule,
    scale: float,
    device: str | torch.device | None = None,
) -> BPResult:
    """``decode_batch_torch`` on ``device`` (default ``torch_device()``) for numpy LLRs
    ``[B, n]``, the results back as numpy."""
    target = torch.device(device) if device is not None else torch_device()
    result = decode_batch_torch(
        graph, torch.from_numpy(llr).to(target), iterations, method, schedule, scale=scale
    )
    return BPResult(*(tensor.cpu().numpy() for tensor in result))


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


# mirrors decode_numba (numba.py)
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


# mirrors _decode_range (numba.py), all words of a chunk in step
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


# mirrors _failing_lanes (numba.py)
def _syndrome_ok_torch(tg: _TorchGraph, bits: torch.Tensor) -> torch.Tensor:
    padded = torch.nn.functional.pad(bits.to(torch.int32), (0, 1))  # slot n: 0
    return ~(padded[:, tg.check_vars].sum(-1) % 2).bool().any(-1)


# mirrors the rule step of _iteration (numba.py): _check_min_sum, _exclude_one_products
def _check_rows_torch(
    t: torch.Tensor, mask: torch.Tensor, min_sum: bool, scale: float
) -> torch.Tensor:
    """Check rule for every (word, check) row of ``t`` ``[B, rows, width]`` (padding masked)."""
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
    return torch.from_numpy(POW2_NEG).to(device=device, dtype=dtype)


# mirrors _tanh_half (numba.py)
def _tanh_half_torch(x: torch.Tensor) -> torch.Tensor:
    """``_tanh_half`` elementwise, the same operations in the same order."""
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


# mirrors _atanh2 (numba.py)
def _atanh2_torch(p: torch.Tensor) -> torch.Tensor:
    """``_atanh2`` elementwise, the same operations in the same order (``frexp`` for the
    bits)."""
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


# mirrors _iteration (numba.py), flooding
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


# mirrors _iteration (numba.py), layered
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
