"""The Tanner graph of a binary parity-check matrix, as the batched BP decoders walk it.

``ldpc_graph(H)`` (dense or scipy sparse, 0/1, ``[m, n]``) lists the edges of ``H`` in
row-major order (check-major, variables ascending within a check, as commpy numbers them),
with CSR adjacency both ways (int32) and a split of the checks into *layers*: runs of
consecutive checks sharing no variable (the block rows of a QC code). Built once per code.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse
from numpy.typing import ArrayLike, NDArray

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
