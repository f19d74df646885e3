"""Speed of the entropy-coded codecs (``hyperprior``, ``diffc``), measured side by side in one run.

For 128x128 and 256x256 RGB pictures, prints encode and decode pictures per second of one
model (random weights of the default shape unless ``--model`` names a folder of ``quality-K``
models: speed does not depend much on training), and the share of each spent in entropy
coding: ``coding.encode_latents``/``decode_latents``, i.e. the hyper-transforms that predict
the scales, the tables and constriction's ANS coder, against g_a/g_s and the rest.

For DiffC on the bundled prior (a 128x128 McMaster-like test picture, ``--diffc-steps``
transitions, ``--diffc-stop`` coded, ``chunk_bits`` 10), prints the encode time per coded step
over its irreducible cost: one model evaluation plus generating and scoring 2^chunk_bits
candidates for each chunk of that step (one ``torch.randn`` and one matrix product per chunk,
nothing else), target at most 1.3.

Every hyperprior figure is the median of ``--repeats`` runs after one warm-up, on ``--threads``
CPU threads. The ``ratio`` of a hyperprior line is entropy coding's share of that operation's
time.

Run: python benchmarks/learned_speed.py [--model FOLDER --quality 1] [--repeats 5] [--threads 1]
     [--diffc-steps 50 --diffc-stop 20] [--skip-diffc]
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
    parser.add_argument("--diffc-steps", type=int, default=50)
    parser.add_argument("--diffc-stop", type=int, default=20)
    parser.add_argument("--skip-diffc", action="store_true")
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

    if not args.skip_diffc:
        diffc_speed(args.diffc_steps, args.diffc_stop)


def diffc_speed(steps: int, stop: int) -> None:
    """Encode time per coded step against model evaluation + candidates, one run."""
    import torch

    from noisylink.codecs import CODECS
    from noisylink.codecs.diffusion import pfr
    from noisylink.codecs.diffusion.diffc import STOP_FIELD, SymbolReader
    from noisylink.codecs.diffusion.sampler import predict_x0

    codec = CODECS.build(CODECS.config({"name": "diffc", "steps": steps, "stop": stop,
                                        "chunk_bits": 10}))
    y, x = np.mgrid[0:128, 0:128]
    image = np.stack([x * 2, y * 2, (x + y) % 256], axis=-1).astype(np.uint8)
    codec.encode(image[:64, :64])  # warm-up (model load)
    started = time.perf_counter()
    encoded = codec.encode(image)
    encode_s = time.perf_counter() - started
    (coded,) = STOP_FIELD.unpack_from(encoded.payload)
    reader = SymbolReader(np.frombuffer(encoded.payload[2:] + b"\0" * (-(len(encoded.payload)
                                         - 2) % 4), dtype="<u4").astype(np.uint32))
    backbone = codec.backbone
    shape = backbone.sample_shape(128, 128)
    dims = int(np.prod(shape))
    x_t = torch.randn(1, *shape)
    model_s = median_seconds(lambda: predict_x0(backbone, x_t, 500), 3)
    candidates_s = 0.0
    for step in range(coded):
        plan = pfr.plan_chunks(reader.kl_code(), dims, 10, 0, step)
        reader.indices(pfr.zipf_probabilities(plan.candidates, plan.kl_nats), len(plan.dims))
        started = time.perf_counter()
        for chunk_dims in plan.dims:
            generator = torch.Generator().manual_seed(step)
            block = torch.randn((plan.candidates, chunk_dims), generator=generator)
            block @ torch.ones(chunk_dims)
        candidates_s += time.perf_counter() - started
    irreducible_s = coded * model_s + candidates_s
    print(f"diffc 128x128, {coded} coded steps of {steps}, chunk_bits 10: encode "
          f"{encode_s:.1f} s ({encode_s / coded:.2f} s per coded step, "
          f"{encoded.n_bits / 128**2:.3f} bpp); irreducible {irreducible_s / coded:.2f} s per "
          f"step (model {model_s:.2f} s + candidates {candidates_s / coded:.2f} s), ratio "
          f"{encode_s / irreducible_s:.2f}")


if __name__ == "__main__":
    main()
