"""Picture-quality metrics between a reference image and a received one.

All functions take ``uint8`` arrays ``[H, W, C]`` (C 1 or 3; ``[H, W]`` is read as gray) of
the same shape, treat 255 as the data range, and are pure (no state, no randomness).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray
from skimage.metrics import structural_similarity

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


def ssim(reference: NDArray[Any], test: NDArray[Any]) -> float:
    """Structural similarity (unitless, at most 1) averaged over channels.

    scikit-image's ``structural_similarity`` with the settings of Wang et al. (2004): Gaussian
    window with sigma 1.5, population covariance, data range 255. Returns ``nan`` when a side
    is shorter than the 11-pixel window.
    """
    ref, out = _pair(reference, test)
    if min(ref.shape[:2]) < _SSIM_WINDOW:
        return math.nan
    value = structural_similarity(
        ref,
        out,
        gaussian_weights=True,
        sigma=_SSIM_SIGMA,
        use_sample_covariance=False,
        data_range=255,
        channel_axis=2,
    )
    return float(value)


def ms_ssim(reference: NDArray[Any], test: NDArray[Any]) -> float:
    """Multi-scale SSIM (unitless, at most 1) over 5 scales, by ``pytorch_msssim``.

    Window 11 px, sigma 1.5, data range 255, the standard scale weights; channels averaged.
    Returns ``nan`` when the smaller side is under 161 px (too small for 5 scales). torch is
    imported here, on first use, so that importing this module stays light.
    """
    ref, out = _pair(reference, test)
    if min(ref.shape[:2]) < _MS_SSIM_MIN_SIDE:
        return math.nan
    import torch
    from pytorch_msssim import ms_ssim as torch_ms_ssim

    def as_tensor(image: Image) -> torch.Tensor:
        return torch.from_numpy(image.astype(np.float64)).permute(2, 0, 1).unsqueeze(0)

    with torch.no_grad():
        value = torch_ms_ssim(
            as_tensor(ref), as_tensor(out), data_range=255, size_average=True, win_size=11
        )
    return float(value)


def mse(reference: NDArray[Any], test: NDArray[Any]) -> float:
    """Mean squared error per pixel value, on the 0-255 scale.

    The JSCC papers' per-image L2 (pixels in [0, 1], summed) is ``mse * H * W * C / 255**2``.
    """
    ref, out = _pair(reference, test)
    return float(np.mean((ref.astype(np.float64) - out.astype(np.float64)) ** 2))


def quality_metrics(reference: NDArray[Any], test: NDArray[Any]) -> dict[str, float]:
    """All metrics for one received image: ``psnr`` (dB), ``ssim``, ``ms_ssim`` (unitless),
    ``mse`` (0-255 scale)."""
    return {
        "mse": mse(reference, test),
        "psnr": psnr(reference, test),
        "ssim": ssim(reference, test),
        "ms_ssim": ms_ssim(reference, test),
    }
