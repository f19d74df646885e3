"""Reverse channel coding of one Gaussian step by the Poisson functional representation, in chunks.

The encoder wants the decoder to hold a sample of q = N(Δ, I) (a diffusion step's target,
standardised so that the model's prediction p is N(0, I)); both share candidates c_i ~ N(0, I)
and arrival times T_1 < T_2 < … (cumulated Exp(1) draws). The Poisson functional
representation sends i* = argmin_i T_i / w_i with w_i = q(c_i)/p(c_i) = exp(Δ·c_i − |Δ|²/2);
c_{i*} is then (for unbounded candidates exactly) a sample of q, and log i* costs about
KL(q‖p) bits. A step's KL is split over chunks of dimensions (a shared random partition) of at
most ``chunk_bits`` bits each, with 2^chunk_bits candidates per chunk (truncation: i* is the
best of those). Each index is entropy coded with a truncated Zipf model whose exponent follows
the chunk's KL (``zipf_probabilities``).

Shared randomness is keyed, never sequential: the candidates of block ``b`` of chunk ``j`` of
step ``k`` come from a ``torch.Generator`` seeded by ``(seed, k, j, b)``, drawn on the CPU in
float32, so the decoder regenerates only the block that holds i*. The encoder streams the
candidates in blocks, so a chunk never holds more than ``BLOCK`` × its dimensions floats.

Pure functions of their arguments; the decoder side never raises on a corrupted index (any
index below the chunk's candidate count is valid).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from numpy.typing import NDArray

from noisylink.codecs.diffusion.codebook import MASK64, splitmix64

BLOCK = 256  # candidates generated together
PADDING_BITS = 2.0  # head-room of each chunk's candidate count over its share of the KL
KL_LEVELS_PER_OCTAVE = 8  # the step's KL travels as one byte q: KL ≈ 2^(q/8) − 1 bits
MAX_KL_CODE = 255


def key_seed(*key: int) -> int:
    """A torch seed for one keyed draw (a mix of all the key's integers)."""
    value = 0
    for part in key:
        value = splitmix64(value ^ (part & MASK64))
    return value >> 1


@dataclass(frozen=True)
class ChunkPlan:
    """How one step's dimensions are split: chunk ``j`` holds ``dims[j]`` dimensions (the
    positions ``order[offsets[j]:offsets[j+1]]``) and carries about ``kl_nats`` nats."""

    order: torch.Tensor  # a permutation of the step's dimensions
    dims: tuple[int, ...]
    kl_nats: float  # per chunk
    candidates: int  # per chunk: 2^chunk_bits

    @property
    def offsets(self) -> list[int]:
        return [0, *np.cumsum(self.dims).tolist()]


def quantise_kl(kl_nats: float) -> int:
    """The step's KL as the byte both ends plan with: q = ⌈8·log2(1 + KL in bits)⌉, clipped
    to 255 (so the planned KL is never below the true one, and at most 9 % above)."""
    kl_bits = max(kl_nats, 0.0) / math.log(2)
    return min(math.ceil(KL_LEVELS_PER_OCTAVE * math.log2(1.0 + kl_bits)), MAX_KL_CODE)


def planned_kl_bits(kl_code: int) -> float:
    """The KL in bits that a transmitted byte stands for."""
    return 2.0 ** (kl_code / KL_LEVELS_PER_OCTAVE) - 1.0


def plan_chunks(kl_code: int, dimensions: int, chunk_bits: int, seed: int, step: int
                ) -> ChunkPlan:
    """The chunking both ends derive from the transmitted KL byte: as few chunks as keep each
    one's share of the KL at most ``chunk_bits − PADDING_BITS`` bits, never more chunks than
    dimensions."""
    kl_bits = planned_kl_bits(kl_code)
    per_chunk = max(chunk_bits - PADDING_BITS, 1.0)
    count = int(min(max(1, math.ceil(kl_bits / per_chunk)), dimensions))
    base, extra = divmod(dimensions, count)
    dims = tuple(base + (1 if j < extra else 0) for j in range(count))
    generator = torch.Generator().manual_seed(key_seed(seed, step, -1))
    order = torch.randperm(dimensions, generator=generator)
    return ChunkPlan(order, dims, kl_bits * math.log(2) / count, 1 << chunk_bits)


def candidate_block(seed: int, step: int, chunk: int, block: int, dims: int) -> torch.Tensor:
    """Candidates ``block·BLOCK … block·BLOCK + BLOCK − 1`` of a chunk, ``[BLOCK, dims]``."""
    generator = torch.Generator().manual_seed(key_seed(seed, step, chunk, block))
    return torch.randn((BLOCK, dims), generator=generator, dtype=torch.float32)


def log_arrival_times(seed: int, step: int, chunk: int, count: int) -> torch.Tensor:
    """log T_i for i < count, T the cumulated Exp(1) draws shared by both ends (float64)."""
    generator = torch.Generator().manual_seed(key_seed(seed, step, chunk, -2))
    gaps = torch.empty(count, dtype=torch.float64).exponential_(1.0, generator=generator)
    return torch.log(torch.cumsum(gaps, 0))


def select_index(delta: torch.Tensor, seed: int, step: int, chunk: int, count: int) -> int:
    """The encoder's i* for one chunk: argmin over the first ``count`` candidates of
    log T_i − Δ·c_i (the |Δ|²/2 of log w_i is the same for all)."""
    delta = delta.to(torch.float32)
    log_times = log_arrival_times(seed, step, chunk, count)
    best_score, best_index = math.inf, 0
    for block in range(-(-count // BLOCK)):
        candidates = candidate_block(seed, step, chunk, block, delta.numel())
        start = block * BLOCK
        stop = min(start + BLOCK, count)
        gains = candidates[: stop - start] @ delta
        scores = log_times[start:stop] - gains.double()
        index = int(torch.argmin(scores))
        if float(scores[index]) < best_score:
            best_score, best_index = float(scores[index]), start + index
    return best_index


def chosen_candidate(index: int, seed: int, step: int, chunk: int, dims: int) -> torch.Tensor:
    """Candidate ``index`` of a chunk (what the decoder regenerates)."""
    block, row = divmod(index, BLOCK)
    return candidate_block(seed, step, chunk, block, dims)[row]


def zipf_probabilities(count: int, kl_nats: float) -> NDArray[np.float64]:
    """P(i) ∝ (i + 1)^−s for i < count, s = 1 + 1/(KL + 1) (KL in nats): the shape of the
    index distribution of the Poisson functional representation (Li & El Gamal, 2018)."""
    exponent = 1.0 + 1.0 / (max(kl_nats, 0.0) + 1.0)
    ranks = np.arange(1, count + 1, dtype=np.float64)
    weights = ranks ** (-exponent)
    return weights / weights.sum()
