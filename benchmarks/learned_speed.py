"""Speed of the learned entropy-coded codec (``hyperprior``), measured side by side in one run.

For 128x128 and 256x256 RGB pictures, prints encode and decode pictures per second of one
model (random weights of the default shape unless ``--model`` names a folder of ``quality-K``
models: speed does not depend much on training), and the share of each spent in entropy
coding: ``coding.encode_latents``/``decode_latents``, i.e. the hyper-transforms that predict
the scales, the tables and constriction's ANS coder, against g_a/g_s and the rest.

Every figure is the median of ``--repeats`` runs after one warm-up, on ``--threads`` CPU threads.
The ``ratio`` of a line is entropy coding's share of that operation's time.

Run: python benchmarks/learned_speed.py [--model FOLDER --quality 1] [--repeats 5] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np


def median_seconds(function: Callable[[], object], repeats: int) -> float:
    function()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a folder of quality-K models (default: random weights)")
    parser.add_argument("--quality", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    import torch

    from noisylink.codecs import CODECS
    from noisylink.codecs.learned.coding import decode_latents, encode_latents
    from noisylink.codecs.learned.model import HyperpriorModel
    from noisylink.codecs.learned.training import export_model

    torch.set_num_threads(args.threads)
    model_folder = args.model
    if model_folder is None:
        model_folder = tempfile.mkdtemp(prefix="noisylink-bench-hyperprior-")
        torch.manual_seed(0)
        export_model(HyperpriorModel(), Path(model_folder) / f"quality-{args.quality}", {})
    codec = CODECS.build(CODECS.config({"name": "hyperprior", "model": model_folder,
                                        "quality": args.quality}))
    rng = np.random.default_rng(0)
    print(f"hyperprior, shape {codec.model.shape}, {args.threads} thread(s), "
          f"median of {args.repeats}")
    for side in (128, 256):
        image = rng.integers(0, 256, (side, side, 3), dtype=np.uint8)
        encoded = codec.encode(image)
        with torch.no_grad():
            y = codec.model.g_a(codec._pixels(image))[0]
        z_words, y_words = encode_latents(codec.model, y)
        latent_hw = tuple(y.shape[-2:])
        encode_s = median_seconds(lambda image=image: codec.encode(image), args.repeats)
        decode_s = median_seconds(lambda encoded=encoded: codec.decode(
            encoded.payload, encoded.n_bits, encoded.side_info), args.repeats)
        entropy_encode_s = median_seconds(lambda y=y: encode_latents(codec.model, y), args.repeats)
        entropy_decode_s = median_seconds(
            lambda z=z_words, w=y_words, hw=latent_hw: decode_latents(codec.model, z, w, hw),
            args.repeats)
        print(f"{side}x{side} encode: {1 / encode_s:.2f} pictures/s, entropy coding "
              f"{entropy_encode_s * 1000:.1f} of {encode_s * 1000:.1f} ms, "
              f"ratio {entropy_encode_s / encode_s:.2f}")
        print(f"{side}x{side} decode: {1 / decode_s:.2f} pictures/s, entropy coding "
              f"{entropy_decode_s * 1000:.1f} of {decode_s * 1000:.1f} ms, "
              f"ratio {entropy_decode_s / decode_s:.2f}")


if __name__ == "__main__":
    main()
