"""Rate-distortion of the hyperprior's rate points against JPEG on the same pictures.

    python scripts/hyperprior_vs_jpeg.py [--models bundled|DIR] [--images DIR] [--size 128]
                                         [--json FILE]

Each picture is shaped as the ``seed-figure`` study shapes it (shorter side resized to
``--size``, then center-cropped to a square, RGB). Each hyperprior ``quality-K`` folder of
``--models`` and JPEG at qualities 1..95 encode every picture through the codecs' own
``encode``/``decode`` (the payload the link would send, headers included). Printed: per rate
point the mean bpp and mean PSNR, JPEG's PSNR at that bpp (its curve interpolated in
log-bpp) and the gap, then the BD-rate of the hyperprior against JPEG
(``noisylink.results.bdrate``). The default pictures are the McMaster evaluation images of
``../shared/data/eval/mcmaster``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from noisylink.codecs import CODECS
from noisylink.images import load_images
from noisylink.metrics import psnr
from noisylink.results.bdrate import bd_rate, psnr_gap
from noisylink.scenarios.schema import ImagesSpec

MCMASTER = Path(__file__).resolve().parents[2] / "shared" / "data" / "eval" / "mcmaster"
JPEG_QUALITIES = (1, 2, 3, 5, 10, 15, 20, 30, 40, 50, 60, 70, 80, 90, 95)


def curve_point(config: dict, pictures: list[np.ndarray]) -> tuple[float, float]:
    """(mean bpp, mean PSNR) of one codec setting over ``pictures``."""
    codec = CODECS.build(CODECS.config(config))
    rates, qualities = [], []
    for picture in pictures:
        encoded = codec.encode(picture)
        decoded = codec.decode(encoded.payload, encoded.n_bits, encoded.side_info)
        rates.append(encoded.n_bits / (picture.shape[0] * picture.shape[1]))
        qualities.append(psnr(picture, decoded))
    return float(np.mean(rates)), float(np.mean(qualities))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="bundled")
    parser.add_argument("--images", type=Path, default=MCMASTER)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    from noisylink.codecs.learned.weights import available_qualities

    spec = ImagesSpec(source="folder", path=args.images, resize=args.size, size=args.size,
                      color="rgb")
    pictures = [image.pixels for image in load_images(spec)]
    jpeg = [curve_point({"name": "jpeg", "quality": q}, pictures) for q in JPEG_QUALITIES]
    qualities = available_qualities(args.models)
    learned = [curve_point({"name": "hyperprior", "model": args.models, "quality": q}, pictures)
               for q in qualities]
    gaps = psnr_gap(learned, jpeg)
    print(f"{len(pictures)} pictures at {args.size}x{args.size}")
    print("| codec | bpp | PSNR dB | JPEG at that bpp | gap dB |")
    print("| --- | --- | --- | --- | --- |")
    for q, (bpp, quality), gap in zip(qualities, learned, gaps, strict=True):
        print(f"| hyperprior q{q} | {bpp:.3f} | {quality:.2f} | {quality - gap:.2f} | {gap:+.2f} |")
    for q, (bpp, quality) in zip(JPEG_QUALITIES, jpeg, strict=True):
        print(f"| JPEG q{q} | {bpp:.3f} | {quality:.2f} | | |")
    bd = bd_rate(learned, jpeg) if len(learned) >= 2 else float("nan")
    print(f"BD-rate of the hyperprior against JPEG: {100 * bd:+.1f} %")
    if args.json is not None:
        args.json.write_text(json.dumps({
            "pictures": len(pictures), "size": args.size,
            "hyperprior": [{"quality": q, "bpp": b, "psnr": p, "gap": g}
                           for q, (b, p), g in zip(qualities, learned, gaps, strict=True)],
            "jpeg": [{"quality": q, "bpp": b, "psnr": p}
                     for q, (b, p) in zip(JPEG_QUALITIES, jpeg, strict=True)],
            "bd_rate": bd}, indent=2) + "\n")


if __name__ == "__main__":
    main()
