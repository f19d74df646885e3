"""How much each bit-carrying step of the RCC codecs matters: PSNR lost per flipped bit, by step.

For each method (Robust Turbo-DDCM, Turbo-DDCM; ``--methods``), each picture is encoded once
with the bundled prior (K = 4096, M = 20, T = 10 by default). Then, one step at a time, a
stream is decoded with ``--flips`` of that step's bits flipped (positions drawn with a fixed
seed, ``--trials`` draws per picture), and its PSNR against the original is compared with the
clean decode's. The table gives, per step, the mean PSNR loss per flipped bit and its standard
error over pictures x trials; the last line ranks the steps. This is the measurement behind
the codecs' importance order (``Codec.importance``) for unequal error protection.

Run: python scripts/rcc_step_sensitivity.py [--images DIR] [--limit 4] [--size 128]
     [--trials 4] [--flips 1] [--methods robust-turbo-ddcm,turbo-ddcm] [--group 1]
DDCM (100 steps of 12 bits at its defaults): --methods ddcm --T 100 --group 10.
Without ``--images`` it uses ../shared/data/eval/mcmaster when present, else the samples.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np

from noisylink.codecs import CODECS
from noisylink.codecs.diffusion.bitstream import bits_per_step
from noisylink.images import load_images
from noisylink.metrics import quality_metrics
from noisylink.phy.bits import bits_to_bytes, bytes_to_bits
from noisylink.scenarios.schema import ImagesSpec

MCMASTER = Path(__file__).resolve().parents[2] / "shared/data/eval/mcmaster"
METHOD = {"robust-turbo-ddcm": "robust", "turbo-ddcm": "turbo", "ddcm": "ddcm"}


def pictures(folder: str | None, limit: int, size: int) -> list[np.ndarray]:
    if folder is None and MCMASTER.is_dir():
        folder = str(MCMASTER)
    spec: dict[str, object] = {"resize": size, "size": size, "limit": limit, "color": "rgb"}
    spec |= {"source": "folder", "path": folder} if folder else {"source": "samples"}
    return [image.pixels for image in load_images(ImagesSpec.model_validate(spec))]


def psnr(reference: np.ndarray, picture: np.ndarray) -> float:
    return float(quality_metrics(reference, picture)["psnr"])


def profile(name: str, images: list[np.ndarray], K: int, M: int, T: int, trials: int,
            flips: int, seed: int, group: int = 1) -> np.ndarray:
    """PSNR loss per flipped bit, ``[ceil(T / group), len(images) * trials]``: per group of
    ``group`` consecutive steps, the flips drawn among all the group's bits."""
    settings: dict[str, object] = {"name": name, "model": "bundled", "K": K, "T": T}
    if name != "ddcm":
        settings["M"] = M
    codec = CODECS.build(CODECS.config(settings))
    encoded = codec.encode_batch(images)
    clean = codec.decode_batch([(e.payload, e.n_bits, e.side_info) for e in encoded])
    clean_psnr = [psnr(image, picture) for image, picture in zip(images, clean, strict=True)]
    step_bits = bits_per_step(METHOD[name], K, 1 if name == "ddcm" else M)  # type: ignore[arg-type]
    rng = np.random.default_rng(seed)
    groups = -(-T // group)
    losses = np.zeros((groups, len(images) * trials))
    for step in range(groups):
        first, last = step * group, min(T, (step + 1) * group)
        streams, owners = [], []
        for i, item in enumerate(encoded):
            for _ in range(trials):
                bits = bytes_to_bits(item.payload).copy()
                span = (last - first) * step_bits
                where = first * step_bits + rng.choice(span, size=flips, replace=False)
                bits[where] ^= 1
                streams.append((bits_to_bytes(bits), item.n_bits, item.side_info))
                owners.append(i)
        decoded = codec.decode_batch(streams)
        losses[step] = [(clean_psnr[i] - psnr(images[i], picture)) / flips
                        for i, picture in zip(owners, decoded, strict=True)]
        print(f"  {name} steps {first + 1}-{last} of {T}: {losses[step].mean():.3f} dB per "
              "flipped bit", flush=True)
    return losses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images")
    parser.add_argument("--limit", type=int, default=4)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--flips", type=int, default=1)
    parser.add_argument("--K", type=int, default=4096)
    parser.add_argument("--M", type=int, default=20)
    parser.add_argument("--T", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--group", type=int, default=1,
                        help="steps per row of the profile (e.g. 10 for DDCM's 100 steps)")
    parser.add_argument("--methods", default="robust-turbo-ddcm,turbo-ddcm")
    args = parser.parse_args()
    images = pictures(args.images, args.limit, args.size)
    print(f"{len(images)} pictures of {args.size} px, K={args.K} M={args.M} T={args.T}, "
          f"{args.trials} trials x {args.flips} flipped bit(s) per step and picture")
    for name in args.methods.split(","):
        losses = profile(name, images, args.K, args.M, args.T, args.trials, args.flips,
                         args.seed, args.group)
        print(f"\n{name}: PSNR loss per flipped bit, by step (mean ± standard error)")
        print(f"| steps (groups of {args.group}) | loss dB per bit | ± |")
        print("| --- | --- | --- |")
        for step, row in enumerate(losses):
            error = row.std(ddof=1) / math.sqrt(row.size) if row.size > 1 else float("nan")
            first = step * args.group + 1
            last = min(args.T, first + args.group - 1)
            steps = str(first) if first == last else f"{first}-{last}"
            print(f"| {steps} | {row.mean():.3f} | {error:.3f} |")
        ranking = np.argsort(-losses.mean(axis=1), kind="stable") + 1
        print(f"{name}: steps from most to least sensitive: {', '.join(map(str, ranking))}\n")


if __name__ == "__main__":
    main()
