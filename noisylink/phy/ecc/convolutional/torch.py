"""Soft Viterbi decoding of zero-tail terminated blocks on any torch device, batched.

The numba decoder (``numba.py``, whose docstring states the rule) on torch: the same float64
operations in the same order, so the same decisions, commpy's. LLRs: ``[blocks, n * steps]``
finite (the ``Convolutional`` code cleans them first), positive means 0; out: uint8 bits
``[blocks, steps - memory]``. Add-compare-select is vectorised over blocks and states, a few
kernel launches per time step, so it pays off only for large batches. Bad shapes raise
``ValueError``. Imported only when the torch backend is chosen.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
from numpy.typing import NDArray

from noisylink.phy.ecc.backends import torch_device
from noisylink.phy.ecc.convolutional.trellis import TrellisTables

DECISION_BYTES = 1 << 30  # default bound on the torch decoder's survivor memory per chunk
TIME_CHUNK_ELEMENTS = 1 << 21  # bound on the torch decoder's precomputed branch metrics


def viterbi_decode_on_device(tables: TrellisTables, llr: NDArray[np.float64]) -> NDArray[np.uint8]:
    """``viterbi_decode_torch`` on ``torch_device()`` for numpy LLRs, bits back as numpy."""
    rows = torch.from_numpy(llr).to(torch_device())
    return viterbi_decode_torch(tables, rows).cpu().numpy()


@functools.lru_cache(maxsize=8)
def _device_tables(
    tables: TrellisTables, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(pred_state flat, pred_input flat, branch patterns flat, pattern signs) on ``device``."""

    def put(array: NDArray[np.generic]) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(array)).to(device)

    return (
        put(tables.pred_state.reshape(-1)),
        put(tables.pred_input.reshape(-1).astype(np.uint8)),
        put(tables.pred_pattern.reshape(-1)),
        put(tables.pattern_signs),
    )


# the same decisions as viterbi_decode_numba (numba.py), checked against commpy by the tests
def viterbi_decode_torch(
    tables: TrellisTables, llr: torch.Tensor, *, decision_bytes: int = DECISION_BYTES
) -> torch.Tensor:
    """Decode zero-tail terminated blocks with torch on ``llr``'s device: ``[blocks, n * steps]``
    finite LLRs in, ``[blocks, steps - memory]`` uint8 bits out, the numba decoder's decisions.

    Metrics are float64 (needed for commpy's exact decisions). Survivors take one byte per
    state and step; blocks are decoded in chunks holding at most ``decision_bytes`` of them.
    """
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


# one chunk of blocks: add-compare-select and traceback with commpy's tie rule
def _decode_chunk_torch(tables: TrellisTables, llr: torch.Tensor) -> torch.Tensor:
    """ACS over ``llr`` (``[blocks, steps, n]`` float64), then traceback from state 0.

    Per step: one add, one compare (written straight into the survivor array) and one select;
    per-step views come from ``unbind`` to keep Python overhead per step small. States are laid
    out ``[hi, j]`` with ``ns = hi * S/2 + j``, so that in the shift-register (butterfly) case
    both branches into ``ns`` start from the adjacent pair ``2 j, 2 j + 1`` of the old metrics.
    """
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
