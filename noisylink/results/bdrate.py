"""Bjøntegaard delta rate: how much more (or, negative, less) rate a codec needs than a
reference for the same quality, averaged over the qualities both curves reach.

Each curve is (bpp, PSNR) points. As in VCEG-M33, log-rate is fitted as a cubic polynomial of
PSNR for each curve (a lower degree when a curve has fewer than four points) and the two fits
are integrated over the overlapping PSNR interval; the mean log-rate difference d gives
``BD-rate = exp(d) - 1`` (−0.2 is 20 % fewer bits than the reference). ``psnr_gap`` is the
pointwise reading: each point's PSNR minus the reference's at the same bpp, the reference
interpolated linearly in log-bpp (``nan`` outside its range).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

Curve = Sequence[tuple[float, float]]  # (bpp, PSNR dB) points


def _sorted(curve: Curve, what: str) -> tuple[np.ndarray, np.ndarray]:
    points = np.asarray(curve, dtype=np.float64).reshape(-1, 2)
    if len(points) < 2:
        raise ValueError(f"{what}: a curve needs at least 2 points, got {len(points)}")
    if np.any(points[:, 0] <= 0) or not np.all(np.isfinite(points)):
        raise ValueError(f"{what}: rates must be positive and every value finite")
    order = np.argsort(points[:, 1])
    return points[order, 0], points[order, 1]


def bd_rate(test: Curve, reference: Curve) -> float:
    """BD-rate of ``test`` against ``reference`` (fraction; ``nan`` if the PSNR ranges do not
    overlap)."""
    rate_t, psnr_t = _sorted(test, "test")
    rate_r, psnr_r = _sorted(reference, "reference")
    low, high = max(psnr_t[0], psnr_r[0]), min(psnr_t[-1], psnr_r[-1])
    if not high > low:
        return float("nan")
    mean_log = []
    for rate, psnr in ((rate_t, psnr_t), (rate_r, psnr_r)):
        fit = np.polyfit(psnr, np.log(rate), min(3, len(psnr) - 1))
        antiderivative = np.polyint(fit)
        mean_log.append((np.polyval(antiderivative, high) - np.polyval(antiderivative, low))
                        / (high - low))
    return float(np.expm1(mean_log[0] - mean_log[1]))


def psnr_gap(test: Curve, reference: Curve) -> list[float]:
    """For each point of ``test``, its PSNR minus the reference's at the same bpp."""
    ref = np.asarray(reference, dtype=np.float64).reshape(-1, 2)
    ref = ref[np.argsort(ref[:, 0])]
    log_rate = np.log(ref[:, 0])
    gaps = []
    for bpp, psnr in test:
        x = np.log(bpp)
        inside = log_rate[0] <= x <= log_rate[-1]
        gaps.append(psnr - float(np.interp(x, log_rate, ref[:, 1])) if inside else float("nan"))
    return gaps
