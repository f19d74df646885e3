"""The IABF paper's Table 1 metric for trained models, beside the paper's numbers."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from noisylink.codecs.jscc.weights import (
    BUNDLED_EPS,
    METHODS,
    load_model,
    model_dir,
    read_description,
)

# Song et al., AAAI 2020, Table 1: MNIST, 100 bits, mean per-image squared error, train ε = test ε
PAPER_L2: dict[tuple[str, float], float] = {
    ("necst", 0.1): 14.439, ("necst", 0.2): 22.556, ("necst", 0.3): 34.377, ("necst", 0.4): 48.291,
    ("iabf", 0.1): 13.251, ("iabf", 0.2): 22.026, ("iabf", 0.3): 33.176, ("iabf", 0.4): 46.555,
}
TOLERANCE = 0.10


@dataclass(frozen=True)
class JsccScore:
    method: str
    eps: float
    l2: float
    train_minutes: float | None = None  # until the kept (best-validation) epoch
    epoch: int | None = None

    @property
    def paper(self) -> float | None:
        return PAPER_L2.get((self.method, self.eps))

    @property
    def relative_gap(self) -> float | None:
        """(ours − paper) / paper."""
        return None if self.paper is None else (self.l2 - self.paper) / self.paper


def evaluate_models(
    weights_root: str | Path, test_pixels: NDArray[np.float32], seed: int = 0,
    methods: tuple[str, ...] = METHODS, eps_values: tuple[float, ...] = BUNDLED_EPS,
) -> list[JsccScore]:
    """Score every (method, ε) model under ``weights_root`` at its own ε."""
    from noisylink.codecs.jscc.training import l2_distortion

    scores = []
    for method in methods:
        for eps in eps_values:
            folder = model_dir(weights_root, method, eps)
            facts = read_description(folder)
            l2 = l2_distortion(load_model(folder), test_pixels, eps, seed)
            seconds = facts.get("train_seconds")
            scores.append(JsccScore(method, eps, l2, None if seconds is None else seconds / 60,
                                    facts.get("epoch")))
    return scores


def iabf_at_or_below_necst(scores: list[JsccScore]) -> dict[float, bool]:
    """For each ε with both models scored: is IABF's L2 at or below NECST's?"""
    by_key = {(s.method, s.eps): s.l2 for s in scores}
    return {
        eps: by_key[("iabf", eps)] <= by_key[("necst", eps)]
        for (method, eps) in by_key if method == "iabf" and ("necst", eps) in by_key
    }
