"""Speed and memory of the diffusion codecs, measured side by side in one run.

For 128x128 images and K = 4096 (Turbo-DDCM, M = 10), prints:

- encode of one image over its irreducible cost (the same model evaluations plus generating
  each step's whole codebook once), target at most 1.3;
- encoding 8 images as one batch sharing each step's codebook, over encoding them one by one
  (throughput ratio), target at least 4 on CPU;
- decode over its irreducible cost (the model evaluations plus regenerating only the chunks
  holding the chosen atoms), target at most 1.3;
- decoding 8 corrupted copies of one stream (BSC at BER 1e-4, 1e-3, 1e-2) as one batch over
  8 sequential decodes (throughput ratio), target at least 1.5 on CPU;
- peak memory of encoding one 256x256 image with K = 16384 (in a fresh process), target under
  4 GB: the codebook is never held whole;
- ranking and unranking four index sets of the largest size (K = 65536, M = 100), target
  under 2 s in all (milliseconds in practice).

Run: python benchmarks/rcc_speed.py [--model bundled] [--steps 10]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from dataclasses import replace

import numpy as np
import torch

from noisylink.codecs import CODECS
from noisylink.codecs.diffusion.codebook import Codebook
from noisylink.images import load_images
from noisylink.scenarios.schema import ImagesSpec


def images(size: int, count: int) -> list[np.ndarray]:
    spec = ImagesSpec(source="samples", resize=size, size=size, color="rgb")
    found = [image.pixels for image in load_images(spec)]
    return [found[i % len(found)] for i in range(count)]


def best_of(repeats: int, fn) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def model_evaluations(codec, batch: int, size: int, steps: int) -> float:
    """Time of the sampler's model evaluations alone for a batch."""
    backbone = codec.backbone
    shape = backbone.sample_shape(size, size)
    x = torch.randn(batch, *shape)
    schedule = codec.schedule(replace(codec.side_info(size, size, 3), T=steps))

    def run() -> None:
        for t in schedule.timesteps:
            backbone.model_output(x, t)

    return best_of(2, run)


def codebook_generation(codebook: Codebook, steps: int) -> float:
    def run() -> None:
        for step in range(steps):
            for _ in codebook.blocks(step):
                pass

    return best_of(1, run)


def regeneration(codebook: Codebook, indices: np.ndarray) -> float:
    """Regenerating the chunks that hold the atoms of every step ([B, T, M] indices)."""
    def run() -> None:
        for step in range(indices.shape[1]):
            codebook.atoms(step, indices[:, step])

    return best_of(2, run)


def corrupt(payload: bytes, ber: float, rng: np.random.Generator) -> bytes:
    bits = np.unpackbits(np.frombuffer(payload, dtype=np.uint8))
    return np.packbits(bits ^ (rng.random(bits.size) < ber)).tobytes()


def ranking_round_trips() -> float:
    """Seconds to rank and unrank four index sets with K = 65536, M = 100."""
    from noisylink.codecs.diffusion.combinatorics import combination_rank, combination_unrank

    K, M = 65536, 100
    combos = [tuple(range(M)), tuple(range(K - M, K)), tuple(range(0, 655 * M, 655)),
              tuple(sorted({(i * 7919 + 13) % K for i in range(M)}))]

    def run() -> None:
        for combo in combos:
            combination_unrank(combination_rank(combo, K), K, M)

    return best_of(3, run)


def peak_memory_child(model: str, steps: int) -> None:
    codec = CODECS.build(CODECS.config(
        {"name": "turbo-ddcm", "model": model, "K": 16384, "M": 10, "T": steps, "batch": 1}
    ))
    codec.encode(images(256, 1)[0])
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"peak_gb": peak_kib * 1024 / 1e9}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="bundled")
    parser.add_argument("--steps", type=int, default=10, help="bit-carrying steps T")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--memory-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        peak_memory_child(args.model, 2)
        return

    K, M, T, size, batch = 4096, 10, args.steps, args.size, args.batch
    codec = CODECS.build(CODECS.config(
        {"name": "turbo-ddcm", "model": args.model, "K": K, "M": M, "T": T, "batch": batch}
    ))
    pictures = images(size, batch)
    codec.encode(pictures[0])  # load the model, warm up
    shape = codec.backbone.sample_shape(size, size)
    codebook = codec.codebook(codec.side_info(size, size, 3), shape)
    print(f"Turbo-DDCM K={K} M={M} T={T} at {size}x{size}, {torch.get_num_threads()} threads, "
          f"chunk {codebook.chunk_atoms} atoms, D={codebook.dim}")

    encode_one = best_of(1, lambda: codec.encode(pictures[0]))
    generate = codebook_generation(codebook, T)
    evals_one = model_evaluations(codec, 1, size, T)
    print(f"encode 1 image: {encode_one:.2f} s; model evaluations {evals_one:.2f} s + codebook "
          f"generation {generate:.2f} s; ratio {encode_one / (evals_one + generate):.2f} "
          f"(target <= 1.3)")

    sequential = sum(best_of(1, lambda p=p: codec.encode(p)) for p in pictures)
    batched = best_of(1, lambda: codec.encode_batch(pictures))
    print(f"encode {batch} images: one by one {sequential:.2f} s, as one batch {batched:.2f} s; "
          f"throughput ratio {sequential / batched:.2f} (target >= 4)")

    encoded = codec.encode(pictures[0])
    rng = np.random.default_rng(0)
    from noisylink.codecs.diffusion.bitstream import unpack_many

    for ber in (1e-4, 1e-3, 1e-2):
        copies = [corrupt(encoded.payload, ber, rng) for _ in range(batch)]
        streams = [(c, encoded.n_bits, encoded.side_info) for c in copies]
        if ber == 1e-3:
            decode_one = best_of(2, lambda s=streams[0]: codec.decode(*s))
            indices, _ = unpack_many("turbo", K, M, T, [copies[0]])
            regen_one = regeneration(codebook, indices)
            print(f"decode 1 stream: {decode_one:.2f} s; model evaluations {evals_one:.2f} s + "
                  f"regenerating its chunks {regen_one:.2f} s; ratio "
                  f"{decode_one / (evals_one + regen_one):.2f} (target <= 1.3)")
        sequential = sum(best_of(1, lambda s=s: codec.decode(*s)) for s in streams)
        batched = best_of(1, lambda s=streams: codec.decode_batch(s))
        print(f"decode {batch} corrupted copies (BER {ber:g}, {encoded.n_bits} bits): one by one "
              f"{sequential:.2f} s, as one batch {batched:.2f} s; throughput ratio "
              f"{sequential / batched:.2f} (target >= 1.5)")

    child = subprocess.run(
        [sys.executable, __file__, "--memory-child", "--model", args.model],
        capture_output=True, text=True, check=True,
    )
    peak = json.loads(child.stdout.strip().splitlines()[-1])["peak_gb"]
    print(f"peak memory encoding 256x256 with K=16384: {peak:.2f} GB (target < 4)")
    print(f"rank + unrank 4 sets, K=65536 M=100: {ranking_round_trips() * 1000:.1f} ms "
          f"(target < 2000)")


if __name__ == "__main__":
    main()
