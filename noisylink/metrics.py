"""Picture-quality metrics between a reference image and a received one.

All functions take ``uint8`` arrays ``[H, W, C]`` (C 1 or 3; ``[H, W]`` is read as gray) of
the same shape, treat 255 as the data range, and are pure (no state, no randomness).
"""

from __future__ import annotations

import math
from typing import Any

import numba
import numpy as np
from numpy.typing import NDArray

from noisylink.codecs.base import Image, as_hwc

#: PSNR reported for identical images (whose PSNR is infinite) and the cap for any image.
PSNR_MAX_DB = 100.0

#: SSIM's Gaussian window: sigma 1.5 px, truncated at 3.5 sigma, i.e. 11 x 11 pixels.
_SSIM_SIGMA = 1.5
_SSIM_WINDOW = 11
#: MS-SSIM's five scales halve the image four times; the 11-px window must still fit.
_MS_SSIM_MIN_SIDE = (_SSIM_WINDOW - 1) * 2**4 + 1  # 161


def _pair(reference: NDArray[Any], test: NDArray[Any]) -> tuple[Image, Image]:
    """Both images as uint8 [H, W, C], checked to have the same shape."""
    ref, out = as_hwc(reference), as_hwc(test)
    if ref.shape != out.shape:
        raise ValueError(f"images differ in shape: {ref.shape} vs {out.shape}")
    return ref, out


def psnr(reference: NDArray[Any], test: NDArray[Any]) -> float:
    """Peak signal-to-noise ratio in dB (peak 255), over all pixels and channels.

    Identical images have infinite PSNR; it is reported as ``PSNR_MAX_DB`` (100 dB), which
    also caps any other value so that the scale stays finite and monotone.
    """
    ref, out = _pair(reference, test)
    mse = float(np.mean((ref.astype(np.float64) - out.astype(np.float64)) ** 2))
    if mse == 0.0:
        return PSNR_MAX_DB
    return min(PSNR_MAX_DB, 10.0 * math.log10(255.0**2 / mse))


# --- SSIM and MS-SSIM --------------------------------------------------------------------
# Our own, in numba: scikit-image's SSIM and pytorch_msssim's MS-SSIM cost 0.1 s per 256-px
# colour image, most of a JPEG link's receive time. Both blur with the same 11-tap Gaussian;
# SSIM's mean over the interior of a reflect-padded map is the mean of the map of the
# "valid" blur, which is what MS-SSIM uses, so one pass over the full-size image serves both.
# tests/test_metrics.py holds both libraries as references; benchmarks/metrics_speed.py
# times them side by side.

_K1, _K2 = 0.01, 0.03
_C1, _C2 = (_K1 * 255.0) ** 2, (_K2 * 255.0) ** 2
_MS_SSIM_WEIGHTS = np.array([0.0448, 0.2856, 0.3001, 0.2363, 0.1333])


def _gaussian_window() -> NDArray[np.float64]:
    """The 11 normalised taps of a Gaussian with sigma 1.5 (scipy's and scikit-image's)."""
    offsets = np.arange(_SSIM_WINDOW, dtype=np.float64) - _SSIM_WINDOW // 2
    taps = np.exp(-0.5 * offsets**2 / _SSIM_SIGMA**2)
    return taps / taps.sum()


_WINDOW = _gaussian_window()


@numba.njit(cache=True)
def _ssim_and_cs(
    x: NDArray[np.float64], y: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:  # pragma: no cover (numba)
    """Per channel, the mean SSIM and the mean contrast-structure term of ``[C, H, W]``
    images (population covariance, data range 255), over the pixels where the window fits.

    The five blurred maps (x, y, x², y², xy) are made rows first, then columns, one output
    row at a time, and the two terms are summed as they are made (per row, then in all), so
    no full-size map is kept. The innermost loops run along contiguous memory."""
    channels, height, width = x.shape
    taps = _WINDOW.size
    out_h, out_w = height - taps + 1, width - taps + 1
    ssim_means, cs_means = np.zeros(channels), np.zeros(channels)
    rows = np.empty((5, out_h, width))
    line = np.empty((5, out_w))
    for c in range(channels):
        rows[:] = 0.0
        for i in range(out_h):
            for k in range(taps):
                weight = _WINDOW[k]
                for j in range(width):
                    a, b = x[c, i + k, j], y[c, i + k, j]
                    rows[0, i, j] += weight * a
                    rows[1, i, j] += weight * b
                    rows[2, i, j] += weight * (a * a)
                    rows[3, i, j] += weight * (b * b)
                    rows[4, i, j] += weight * (a * b)
        ssim_total, cs_total = 0.0, 0.0
        for i in range(out_h):
            line[:] = 0.0
            for k in range(taps):
                weight = _WINDOW[k]
                for q in range(5):
                    for j in range(out_w):
                        line[q, j] += weight * rows[q, i, j + k]
            ssim_row, cs_row = 0.0, 0.0
            for j in range(out_w):
                mu_x, mu_y = line[0, j], line[1, j]
                mu_xx, mu_yy, mu_xy = mu_x * mu_x, mu_y * mu_y, mu_x * mu_y
                cs = (2.0 * (line[4, j] - mu_xy) + _C2) / (
                    (line[2, j] - mu_xx) + (line[3, j] - mu_yy) + _C2)
                ssim_row += (2.0 * mu_xy + _C1) / (mu_xx + mu_yy + _C1) * cs
                cs_row += cs
            ssim_total += ssim_row
            cs_total += cs_row
        ssim_means[c] = ssim_total / (out_h * out_w)
        cs_means[c] = cs_total / (out_h * out_w)
    return ssim_means, cs_means


def _halve(image: NDArray[np.float64]) -> NDArray[np.float64]:
    """2 x 2 mean pooling as MS-SSIM defines it (``avg_pool2d`` with one zero of padding on
    both sides of an odd dimension, zeros counted)."""
    pad_h, pad_w = image.shape[1] % 2, image.shape[2] % 2
    padded = np.pad(image, ((0, 0), (pad_h, pad_h), (pad_w, pad_w)))
    height, width = (padded.shape[1] - 2) // 2 + 1, (padded.shape[2] - 2) // 2 + 1
    blocks = padded[:, : 2 * height, : 2 * width].reshape(-1, height, 2, width, 2)
    return blocks.mean(axis=(2, 4))


def _structural(ref: Image, out: Image, *, multiscale: bool) -> tuple[float, float]:
    """``(SSIM, MS-SSIM)`` of checked images; each ``nan`` where the image is too small (and
    MS-SSIM also when ``multiscale`` is false)."""
    if min(ref.shape[:2]) < _SSIM_WINDOW:
        return math.nan, math.nan
    x = np.ascontiguousarray(ref.transpose(2, 0, 1), dtype=np.float64)  # [C, H, W]
    y = np.ascontiguousarray(out.transpose(2, 0, 1), dtype=np.float64)
    first_ssim, first_cs = _ssim_and_cs(x, y)
    if not multiscale or min(ref.shape[:2]) < _MS_SSIM_MIN_SIDE:
        return float(first_ssim.mean()), math.nan
    terms = [np.maximum(first_cs, 0.0)]
    for level in range(1, len(_MS_SSIM_WEIGHTS)):
        x, y = _halve(x), _halve(y)
        level_ssim, level_cs = _ssim_and_cs(x, y)
        last = level == len(_MS_SSIM_WEIGHTS) - 1
        terms.append(np.maximum(level_ssim if last else level_cs, 0.0))
    per_channel = np.prod(np.stack(terms) ** _MS_SSIM_WEIGHTS[:, None], axis=0)
    return float(first_ssim.mean()), float(per_channel.mean())


def ssim(reference: NDArray[Any], test: NDArray[Any]) -> float:
    """Structural similarity (unitless, at most 1) averaged over channels.

    As Wang et al. (2004) and scikit-image's ``structural_similarity`` with
    ``gaussian_weights=True``: Gaussian window with sigma 1.5 (11 px), population covariance,
    data range 255, the mean over the pixels where the window fits. Returns ``nan`` when a
    side is shorter than the window.
    """
    ref, out = _pair(reference, test)
    return _structural(ref, out, multiscale=False)[0]


def ms_ssim(reference: NDArray[Any], test: NDArray[Any]) -> float:
    """Multi-scale SSIM (unitless, at most 1) over 5 scales, channels averaged.

    As ``pytorch_msssim.ms_ssim``: window 11 px, sigma 1.5, data range 255, the standard scale
    weights, 2 x 2 mean pooling between scales. Returns ``nan`` when the smaller side is under
    161 px (too small for 5 scales).
    """
    ref, out = _pair(reference, test)
    return _structural(ref, out, multiscale=True)[1]


def mse(reference: NDArray[Any], test: NDArray[Any]) -> float:
    """Mean squared error per pixel value, on the 0-255 scale.

    The JSCC papers' per-image L2 (pixels in [0, 1], summed) is ``mse * H * W * C / 255**2``.
    """
    ref, out = _pair(reference, test)
    return float(np.mean((ref.astype(np.float64) - out.astype(np.float64)) ** 2))


def quality_metrics(reference: NDArray[Any], test: NDArray[Any]) -> dict[str, float]:
    """All metrics for one received image: ``psnr`` (dB), ``ssim``, ``ms_ssim`` (unitless),
    ``mse`` (0-255 scale)."""
    ref, out = _pair(reference, test)
    structural, multiscale = _structural(ref, out, multiscale=True)
    return {
        "mse": mse(ref, out),
        "psnr": psnr(ref, out),
        "ssim": structural,
        "ms_ssim": multiscale,
    }
