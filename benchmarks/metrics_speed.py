"""Picture metrics: ours (numpy + one numba blur) against scikit-image's SSIM and
pytorch_msssim's MS-SSIM, side by side in one run, with the largest differences seen.

    python benchmarks/metrics_speed.py [--repeats N]

Prints one line per image size: ``metrics SIZE: ours X ms, libraries Y ms, ratio R`` (PSNR,
SSIM, MS-SSIM and MSE of one image pair; the libraries' line runs skimage + pytorch_msssim
for the two structural metrics and ours for PSNR/MSE), then the differences.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from pytorch_msssim import ms_ssim as torch_ms_ssim
from skimage.metrics import structural_similarity

from noisylink.metrics import mse, psnr, quality_metrics


def libraries(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    ssim = structural_similarity(a, b, gaussian_weights=True, sigma=1.5,
                                 use_sample_covariance=False, data_range=255, channel_axis=2)
    psnr(a, b), mse(a, b)
    if min(a.shape[:2]) < 161:
        return float(ssim), float("nan")

    def tensor(image: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(image.astype(np.float64)).permute(2, 0, 1).unsqueeze(0)

    with torch.no_grad():
        ms = torch_ms_ssim(tensor(a), tensor(b), data_range=255, size_average=True, win_size=11)
    return float(ssim), float(ms)


def best_ms(function, repeats: int) -> float:  # type: ignore[no-untyped-def]
    """Best of ``repeats`` timings in ms (the least disturbed by other work)."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return 1000 * min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    worst_ssim = worst_ms = 0.0
    for side in (64, 256, 512):
        a = rng.integers(0, 256, (side, side, 3), dtype=np.uint8)
        b = np.clip(a.astype(int) + rng.integers(-25, 25, a.shape), 0, 255).astype(np.uint8)
        quality_metrics(a, b)  # compile the blur once
        ours = best_ms(lambda a=a, b=b: quality_metrics(a, b), args.repeats)
        theirs = best_ms(lambda a=a, b=b: libraries(a, b), args.repeats)
        print(f"metrics {side}x{side}x3: ours {ours:.1f} ms, libraries {theirs:.1f} ms, "
              f"ratio {theirs / ours:.2f}")
        got, want = quality_metrics(a, b), libraries(a, b)
        worst_ssim = max(worst_ssim, abs(got["ssim"] - want[0]))
        if side >= 161:
            worst_ms = max(worst_ms, abs(got["ms_ssim"] - want[1]))
    print(f"largest difference: SSIM {worst_ssim:.1e}, MS-SSIM {worst_ms:.1e}")


if __name__ == "__main__":
    main()
