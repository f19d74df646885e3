"""Repetition code: each bit sent ``n`` times in a row (the simplest code, a baseline).

Soft decoding adds the copies' cleaned LLRs (``clean_llr``; positive means 0), the
maximum-likelihood rule on a memoryless channel; a tie decides 0. It never raises on channel
errors. The code cannot tell when it failed, so ``ok`` is always True.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pydantic
from numpy.typing import NDArray

from noisylink.phy.ecc.base import ECCS, Bits, LLRs, block_coded_bits, clean_llr, hard_decision
from noisylink.registry import ComponentConfig


class RepetitionConfig(ComponentConfig):
    """``{name: repetition, n: 3}``: ``n`` copies of every bit (odd ``n`` avoids ties)."""

    name: Literal["repetition"] = "repetition"
    n: int = pydantic.Field(3, ge=2, le=1024)


@ECCS.register("repetition", RepetitionConfig)
class RepetitionCode:
    """Rate ``1/n`` repetition code, ``k = 1``."""

    def __init__(self, config: RepetitionConfig):
        self.config = config
        self.k = 1
        self.n = config.n

    @property
    def rate(self) -> float:
        return 1.0 / self.n

    def coded_bits(self, n_info_bits: int) -> int:
        return block_coded_bits(n_info_bits, self.k, self.n)

    def encode(self, bits: Bits) -> Bits:
        bits = np.asarray(bits, dtype=np.uint8).reshape(-1)
        if bits.size == 0:
            bits = np.zeros(1, dtype=np.uint8)  # one (padding) block, as pad_to_blocks would
        return np.repeat(bits, self.n)

    def decode(self, llr: LLRs) -> tuple[Bits, NDArray[np.bool_]]:
        # clean (clipped) before summing, so that infinities cannot meet as inf - inf
        total = clean_llr(llr).reshape(-1, self.n).sum(axis=1)
        return hard_decision(total), np.ones(total.size, dtype=bool)
