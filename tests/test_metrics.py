"""Picture-quality metrics: PSNR, SSIM, MS-SSIM."""

from __future__ import annotations

import math

import numpy as np
import pytest

from noisylink.metrics import PSNR_MAX_DB, ms_ssim, psnr, quality_metrics, ssim


def textured(height: int, width: int, channels: int = 3, seed: int = 0) -> np.ndarray:
    """Smooth structure plus fine texture, so SSIM has something to measure."""
    y, x = np.mgrid[0:height, 0:width]
    base = 128 + 60 * np.sin(x / 9.0) * np.cos(y / 13.0)
    texture = np.random.default_rng(seed).normal(0, 20, (height, width, channels))
    return np.clip(base[:, :, None] + texture, 0, 255).astype(np.uint8)


def noisy(image: np.ndarray, sigma: float, seed: int = 1) -> np.ndarray:
    noise = np.random.default_rng(seed).normal(0, sigma, image.shape)
    return np.clip(image + noise, 0, 255).astype(np.uint8)


def test_psnr_of_known_mse() -> None:
    reference = np.full((16, 16, 3), 100, dtype=np.uint8)
    test = reference.copy()
    test[:, :8] += 10  # half the values off by 10: MSE = 50
    assert psnr(reference, test) == pytest.approx(10 * math.log10(255**2 / 50))


def test_psnr_is_symmetric_and_accepts_gray() -> None:
    a = textured(32, 32, 1)
    b = noisy(a, 5)
    assert psnr(a, b) == psnr(b, a)
    assert psnr(a[:, :, 0], b[:, :, 0]) == psnr(a, b)


def test_psnr_identical_is_capped() -> None:
    image = textured(32, 32)
    assert psnr(image, image) == PSNR_MAX_DB == 100.0


def test_psnr_rejects_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match="differ in shape"):
        psnr(np.zeros((8, 8, 3), np.uint8), np.zeros((8, 9, 3), np.uint8))


@pytest.mark.parametrize("channels", [1, 3])
def test_ssim_identical_is_one_and_drops_with_noise(channels: int) -> None:
    image = textured(64, 64, channels)
    assert ssim(image, image) == pytest.approx(1.0)
    light, heavy = ssim(image, noisy(image, 5)), ssim(image, noisy(image, 30))
    assert 1.0 > light > heavy > 0.0


def test_ssim_nan_below_window() -> None:
    image = textured(8, 8)
    assert math.isnan(ssim(image, image))


def test_ms_ssim_nan_for_small_images() -> None:
    image = textured(160, 300)
    assert math.isnan(ms_ssim(image, image))


@pytest.mark.parametrize("channels", [1, pytest.param(3, marks=pytest.mark.slow)])
def test_ms_ssim_identical_and_noisy(channels: int) -> None:
    image = textured(192, 192, channels)
    assert ms_ssim(image, image) == pytest.approx(1.0, abs=1e-6)
    assert ms_ssim(image, noisy(image, 30)) < ms_ssim(image, noisy(image, 5)) < 1.0


def test_quality_metrics_keys() -> None:
    image = textured(64, 64)
    result = quality_metrics(image, noisy(image, 10))
    assert set(result) == {"psnr", "ssim", "ms_ssim", "mse"}
    assert all(isinstance(value, float) for value in result.values())
    assert math.isnan(result["ms_ssim"])
    assert result["psnr"] == psnr(image, noisy(image, 10))
    assert result["psnr"] == pytest.approx(10 * math.log10(255**2 / result["mse"]))
