"""Picture-quality metrics: PSNR, SSIM, MS-SSIM."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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


# --- our SSIM and MS-SSIM against the libraries they replace ---------------------------------


def skimage_ssim(a: np.ndarray, b: np.ndarray) -> float:
    from skimage.metrics import structural_similarity

    return float(structural_similarity(a, b, gaussian_weights=True, sigma=1.5,
                                       use_sample_covariance=False, data_range=255,
                                       channel_axis=2))


def pytorch_ms_ssim(a: np.ndarray, b: np.ndarray) -> float:
    import torch
    from pytorch_msssim import ms_ssim as torch_ms_ssim

    def tensor(image: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(image.astype(np.float64)).permute(2, 0, 1).unsqueeze(0)

    return float(torch_ms_ssim(tensor(a), tensor(b), data_range=255, size_average=True,
                               win_size=11))


@given(height=st.integers(11, 70), width=st.integers(11, 70), channels=st.sampled_from([1, 3]),
       sigma=st.sampled_from([0.0, 3.0, 40.0]), seed=st.integers(0, 2**16))
@settings(max_examples=40)
def test_ssim_equals_scikit_image(height: int, width: int, channels: int, sigma: float,
                                  seed: int) -> None:
    a = textured(height, width, channels, seed)
    b = noisy(a, sigma, seed + 1)
    assert ssim(a, b) == pytest.approx(skimage_ssim(a, b), abs=1e-12)


@pytest.mark.parametrize(("height", "width", "channels"),
                         [(161, 161, 1), (163, 170, 3), (256, 255, 3)])
def test_ms_ssim_equals_pytorch_msssim(height: int, width: int, channels: int) -> None:
    """Odd sides included (MS-SSIM pads them with zeros before halving). pytorch_msssim
    builds its Gaussian window in float32 (ours is float64), so the two differ: below 1e-6
    on noisy pictures, and by up to 5e-6 where the structure is gone (a flat picture)."""
    a = textured(height, width, channels)
    for b, within in ((noisy(a, 4), 1e-6), (noisy(a, 35), 1e-6), (np.full_like(a, 128), 5e-6)):
        assert ms_ssim(a, b) == pytest.approx(pytorch_ms_ssim(a, b), abs=within)
        assert quality_metrics(a, b)["ssim"] == pytest.approx(skimage_ssim(a, b), abs=1e-12)


def test_the_ssim_kernel_equals_a_scipy_blur_where_the_window_fits() -> None:
    from scipy.ndimage import correlate1d

    from noisylink.metrics import _C1, _C2, _WINDOW, _ssim_and_cs

    rng = np.random.default_rng(5)
    x, y = rng.random((2, 40, 57)) * 255, rng.random((2, 40, 57)) * 255

    def blur(image: np.ndarray) -> np.ndarray:
        rows = correlate1d(image, _WINDOW, axis=-2, mode="constant")[:, 5:-5, :]
        return correlate1d(rows, _WINDOW, axis=-1, mode="constant")[:, :, 5:-5]

    mu_x, mu_y = blur(x), blur(y)
    sxx, syy = blur(x * x) - mu_x**2, blur(y * y) - mu_y**2
    sxy = blur(x * y) - mu_x * mu_y
    cs = (2 * sxy + _C2) / (sxx + syy + _C2)
    full = (2 * mu_x * mu_y + _C1) / (mu_x**2 + mu_y**2 + _C1) * cs
    got_ssim, got_cs = _ssim_and_cs(x, y)
    np.testing.assert_allclose(got_ssim, full.mean(axis=(1, 2)), rtol=0, atol=1e-12)
    np.testing.assert_allclose(got_cs, cs.mean(axis=(1, 2)), rtol=0, atol=1e-12)
