"""Deterministic Gaussian codebooks, generated in chunks and never held whole.

At sampler step ``i`` the codebook is ``K`` atoms ``z_k ~ N(0, I)`` of dimension ``D``. Atoms come
in chunks of ``chunk_atoms``; each chunk is drawn from its own ``torch.Generator`` seeded from
``(seed, step, chunk)``, on the CPU in float32, so encoder and decoder get the same numbers on
any machine and a decoder regenerates only the chunks that hold the atoms it needs.

Searching a codebook (the encoder) streams it in blocks of whole chunks, at most
``PROJECTION_BLOCK_BYTES`` and ``PROJECTION_BLOCK_ATOMS`` (but at least one chunk): a search
holds 128 MiB of atoms or one chunk, whichever is more, at any ``K`` (at 512 x 512, 40 atoms:
126 MB, not the 1.6 GB of the 512-atom blocks before, and less than the model's own activations
there). Inner products are matrix-matrix products of at least 2 x 2 (a single residual or atom
is padded with a copy): MKL's matrix-vector kernel sums in an order that depends on the number
of atoms and threads, by far more than its matrix-matrix kernel, whose results for a pair stay
within a few float32 ulps whatever the block or batch (bit for bit on this project's
development machines, not on every CPU). So the atoms a search chooses do not depend on the
block size or on the images encoded with it, but on a near-tie (tested; payloads pinned).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

MASK64 = (1 << 64) - 1
PROJECTION_BLOCK_BYTES = 128 * 2**20  # float32 atoms generated and projected at once ...
PROJECTION_BLOCK_ATOMS = 512  # ... and at most this many atoms (small images)


def splitmix64(value: int) -> int:
    """A 64-bit mixing function: nearby inputs give unrelated outputs."""
    value = (value + 0x9E3779B97F4A7C15) & MASK64
    value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & MASK64
    return value ^ (value >> 31)


def derived_seed(seed: int, step: int, chunk: int) -> int:
    """The seed of one chunk of one step's codebook (``step = -1`` seeds the start noise)."""
    value = splitmix64(seed & MASK64)
    value = splitmix64(value ^ ((step + 1) & MASK64))
    return splitmix64(value ^ (chunk & MASK64)) >> 1  # torch seeds must fit in int64


def start_noise(seed: int, shape: tuple[int, ...]) -> torch.Tensor:
    """The shared ``x_T`` (CPU float32), the same at both ends."""
    generator = torch.Generator().manual_seed(derived_seed(seed, -1, 0))
    return torch.randn(shape, generator=generator, dtype=torch.float32)


@dataclass(frozen=True)
class Codebook:
    """The codebooks of one codec setting: ``K`` atoms of dimension ``dim`` per step."""

    seed: int
    K: int
    dim: int
    chunk_atoms: int = 8

    @property
    def n_chunks(self) -> int:
        return -(-self.K // self.chunk_atoms)

    def chunk_range(self, chunk: int) -> tuple[int, int]:
        start = chunk * self.chunk_atoms
        return start, min(self.K, start + self.chunk_atoms)

    def fill_chunk(self, step: int, chunk: int, out: torch.Tensor) -> None:
        """Write chunk ``chunk`` of step ``step`` into ``out`` ([atoms, dim] float32, CPU)."""
        generator = torch.Generator().manual_seed(derived_seed(self.seed, step, chunk))
        torch.randn(out.shape, generator=generator, dtype=torch.float32, out=out)

    def chunk(self, step: int, chunk: int) -> torch.Tensor:
        start, stop = self.chunk_range(chunk)
        out = torch.empty(stop - start, self.dim, dtype=torch.float32)
        self.fill_chunk(step, chunk, out)
        return out

    def block_atoms(self) -> int:
        """Atoms per search block: as many whole chunks as fit ``PROJECTION_BLOCK_BYTES`` and
        ``PROJECTION_BLOCK_ATOMS``, and at least one."""
        atoms = min(PROJECTION_BLOCK_ATOMS, PROJECTION_BLOCK_BYTES // (4 * self.dim))
        return min(self.K, max(1, atoms // self.chunk_atoms) * self.chunk_atoms)

    def blocks(
        self, step: int, block_atoms: int | None = None
    ) -> Iterator[tuple[int, torch.Tensor]]:
        """Yield ``(first_atom, atoms)`` blocks covering the whole codebook of a step, in one
        reused buffer (a block is valid until the next is drawn). ``block_atoms`` (default
        ``block_atoms()``) is rounded down to whole chunks, at least one."""
        if block_atoms is None:
            block_atoms = self.block_atoms()
        per_block = max(1, block_atoms // self.chunk_atoms)
        buffer = torch.empty(min(self.K, per_block * self.chunk_atoms), self.dim,
                             dtype=torch.float32)
        for first_chunk in range(0, self.n_chunks, per_block):
            last_chunk = min(self.n_chunks, first_chunk + per_block)
            start = first_chunk * self.chunk_atoms
            for chunk in range(first_chunk, last_chunk):
                lo, hi = self.chunk_range(chunk)
                self.fill_chunk(step, chunk, buffer[lo - start : hi - start])
            stop = self.chunk_range(last_chunk - 1)[1]
            yield start, buffer[: stop - start]

    def atoms(self, step: int, indices: np.ndarray) -> torch.Tensor:
        """The atoms at ``indices`` (any shape), as ``[*indices.shape, dim]``; regenerates only
        the chunks that hold them."""
        flat = np.asarray(indices, dtype=np.int64).reshape(-1)
        out = torch.empty(flat.size, self.dim, dtype=torch.float32)
        chunks = flat // self.chunk_atoms
        for chunk in np.unique(chunks):
            rows = np.flatnonzero(chunks == chunk)
            block = self.chunk(step, int(chunk))
            offsets = torch.from_numpy(flat[rows] - chunk * self.chunk_atoms)
            out[torch.from_numpy(rows)] = block[offsets]
        return out.reshape(*np.shape(indices), self.dim)


def at_least_two_rows(matrix: torch.Tensor) -> torch.Tensor:
    """``matrix`` [n, D], with its row repeated when ``n == 1`` (see ``inner_products``)."""
    return matrix.expand(2, -1).contiguous() if matrix.shape[0] == 1 else matrix


def inner_products(rows: torch.Tensor, block: torch.Tensor, batch: int) -> torch.Tensor:
    """``<r_b, z_k>`` as ``[batch, n]`` for the first ``batch`` of ``rows`` (already padded by
    ``at_least_two_rows``) and the atoms of ``block`` [n, D].

    Always a matrix-matrix product of at least 2 x 2: with one residual MKL runs a
    matrix-vector kernel whose summation order changes with the number of atoms (split across
    threads over D below about 200 atoms on 2 threads, over the atoms above), so the search
    would depend on the block size. The matrix-matrix kernel gave every (residual, atom) pair
    the same bits whatever the block, batch or thread count on the development machines, and
    differed by a few ulps on another CPU: choices differ only on a near-tie.
    """
    return (rows @ at_least_two_rows(block).T)[:batch, : block.shape[0]]


def best_atom(codebook: Codebook, step: int, residuals: torch.Tensor) -> np.ndarray:
    """DDCM: per residual row, the index of the atom with the largest inner product."""
    batch = residuals.shape[0]
    rows = at_least_two_rows(residuals)
    best_value = torch.full((batch,), -torch.inf)
    best_index = torch.zeros(batch, dtype=torch.int64)
    for start, block in codebook.blocks(step):
        scores = inner_products(rows, block, batch)  # [B, n]
        value, index = scores.max(dim=1)
        better = value > best_value
        best_value = torch.where(better, value, best_value)
        best_index = torch.where(better, index + start, best_index)
    return best_index.numpy()[:, None]


def best_atoms(
    codebook: Codebook, step: int, residuals: torch.Tensor, M: int
) -> tuple[np.ndarray, np.ndarray]:
    """Turbo-DDCM: per residual row, the ``M`` atoms with the largest ``|<z_k, r>|`` (indices
    ascending) and the signs of their inner products (+1 / -1)."""
    batch = residuals.shape[0]
    rows = at_least_two_rows(residuals)
    keep_value = torch.empty(batch, 0)
    keep_index = torch.empty(batch, 0, dtype=torch.int64)
    for start, block in codebook.blocks(step):
        scores = inner_products(rows, block, batch)
        index = torch.arange(start, start + block.shape[0]).expand(batch, -1)
        values = torch.cat([keep_value, scores], dim=1)
        indices = torch.cat([keep_index, index], dim=1)
        top = values.abs().topk(min(M, values.shape[1]), dim=1).indices
        keep_value = values.gather(1, top)
        keep_index = indices.gather(1, top)
    order = keep_index.argsort(dim=1)
    index = keep_index.gather(1, order).numpy()
    signs = torch.where(keep_value.gather(1, order) >= 0, 1, -1).to(torch.int8).numpy()
    return index, signs


def combine_atoms(atoms: torch.Tensor, signs: np.ndarray, rescale: bool) -> torch.Tensor:
    """The noise a step injects: the signed sum of its atoms ``[B, M, D] -> [B, D]``; Turbo
    rescales it to unit standard deviation (duplicate indices simply add)."""
    z = (atoms * torch.from_numpy(signs.astype(np.float32))[..., None]).sum(dim=1)
    if not rescale:
        return z
    std = z.std(dim=1, keepdim=True)
    return torch.where(std > 0, z / std.clamp_min(1e-12), torch.zeros_like(z))
