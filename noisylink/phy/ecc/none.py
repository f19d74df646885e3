"""The identity code: no protection, for the uncoded baseline of every study.

Blocks are 8 bits (one byte) so that byte payloads need no padding; ``ok`` is always True
because nothing can be checked. Decoding is the hard decision on the cleaned LLRs
(``clean_llr``; positive means 0, an erasure decides 0); it never raises on channel errors.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import NDArray

from noisylink.phy.ecc.base import (
    ECCS,
    Bits,
    LLRs,
    block_coded_bits,
    clean_llr,
    hard_decision,
    pad_to_blocks,
)
from noisylink.registry import ComponentConfig


class NoECCConfig(ComponentConfig):
    """``{name: none}``: no settings."""

    name: Literal["none"] = "none"


@ECCS.register("none", NoECCConfig)
class NoECC:
    """Identity code with ``k = n = 8``."""

    def __init__(self, config: NoECCConfig):
        self.config = config
        self.k = 8
        self.n = 8

    @property
    def rate(self) -> float:
        return 1.0

    def coded_bits(self, n_info_bits: int) -> int:
        return block_coded_bits(n_info_bits, self.k, self.n)

    def encode(self, bits: Bits) -> Bits:
        return pad_to_blocks(np.asarray(bits, dtype=np.uint8), self.k).reshape(-1)

    def decode(self, llr: LLRs) -> tuple[Bits, NDArray[np.bool_]]:
        rows = clean_llr(llr).reshape(-1, self.n)
        return hard_decision(rows).reshape(-1), np.ones(rows.shape[0], dtype=bool)
