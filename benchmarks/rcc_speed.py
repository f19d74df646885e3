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
- peak memory and time of one Robust Turbo-DDCM encode (K = 16384, M = 20) at 512x512 and
  128x128, this code against the previous codebook search (blocks of 512 atoms, 1.6 GB at
  512x512; a single residual projected by a matrix-vector product), each in fresh processes;
  at 512x512 the previous search peaked at 2.35 GB, target at most 1.5 GB, no slower;
- ranking and unranking four index sets of the largest size (K = 65536, M = 100), target
  under 2 s in all (milliseconds in practice).

Peak memory is the peak resident set size of a fresh child process (Python, torch and the
model included), read by the child itself with ``getrusage(RUSAGE_SELF).ru_maxrss`` after its
encode; GB are 1e9 bytes.

Run: python benchmarks/rcc_speed.py [--model bundled] [--steps 10]
     python benchmarks/rcc_speed.py --memory-only [--memory-steps 1]   # only the 512/128 rows
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
from noisylink.codecs.diffusion import codebook as codebook_module
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


def previous_best_atoms(
    codebook: Codebook, step: int, residuals: torch.Tensor, M: int
) -> tuple[np.ndarray, np.ndarray]:
    """The codebook search before the memory work (commit cd9ef3a), for comparison: blocks of
    512 atoms, ``residuals @ block.T`` as it comes."""
    batch, block_atoms = residuals.shape[0], 512
    per_block = max(1, block_atoms // codebook.chunk_atoms)
    buffer = torch.empty(per_block * codebook.chunk_atoms, codebook.dim, dtype=torch.float32)
    keep_value = torch.empty(batch, 0)
    keep_index = torch.empty(batch, 0, dtype=torch.int64)
    for first_chunk in range(0, codebook.n_chunks, per_block):
        last_chunk = min(codebook.n_chunks, first_chunk + per_block)
        start = first_chunk * codebook.chunk_atoms
        for chunk in range(first_chunk, last_chunk):
            lo, hi = codebook.chunk_range(chunk)
            codebook.fill_chunk(step, chunk, buffer[lo - start : hi - start])
        block = buffer[: codebook.chunk_range(last_chunk - 1)[1] - start]
        scores = residuals @ block.T
        index = torch.arange(start, start + block.shape[0]).expand(batch, -1)
        values = torch.cat([keep_value, scores], dim=1)
        indices = torch.cat([keep_index, index], dim=1)
        top = values.abs().topk(min(M, values.shape[1]), dim=1).indices
        keep_value = values.gather(1, top)
        keep_index = indices.gather(1, top)
    order = keep_index.argsort(dim=1)
    index = keep_index.gather(1, order).numpy()
    signs = torch.where(keep_value.gather(1, order) >= 0, 1, -1).to(torch.int8).numpy()
    return index, signs


def robust_encode_child(model: str, size: int, steps: int, previous: bool) -> None:
    """One Robust Turbo-DDCM encode (K = 16384, M = 20) in this fresh process: prints its peak
    RSS, its time (after a small warm-up encode that loads the model) and the payload."""
    if previous:
        codebook_module.best_atoms = previous_best_atoms  # type: ignore[assignment]
    settings = {"name": "robust-turbo-ddcm", "model": model, "M": 20, "T": steps, "batch": 1}
    CODECS.build(CODECS.config({**settings, "K": 64})).encode(images(64, 1)[0])  # warm-up
    codec = CODECS.build(CODECS.config({**settings, "K": 16384}))
    picture = images(size, 1)[0]
    started, cpu_started = time.perf_counter(), time.process_time()
    encoded = codec.encode(picture)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"peak_gb": peak_kib * 1024 / 1e9, "seconds": seconds, "cpu": cpu,
                      "payload": encoded.payload.hex()}))


def robust_encode_in_child(model: str, size: int, steps: int, previous: bool) -> dict:
    command = [sys.executable, __file__, "--robust-child", str(size), "--model", model,
               "--memory-steps", str(steps)] + (["--previous"] if previous else [])
    child = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(child.stdout.strip().splitlines()[-1])


def robust_memory_rows(model: str, steps: int, repeats: int) -> None:
    """Peak RSS and encode time, previous search against this one, at 512 and 128 pixels: each
    in ``repeats`` fresh processes per side, alternating (this, previous, previous, this, ...);
    the best time of each side (wall and CPU), the largest peak."""
    for size in (512, 128):
        runs: dict[bool, list[dict]] = {False: [], True: []}
        for repeat in range(repeats):
            for previous in (False, True) if repeat % 2 == 0 else (True, False):
                runs[previous].append(robust_encode_in_child(model, size, steps, previous))
        this, before = runs[False], runs[True]
        payloads = {run["payload"] for run in this + before}
        same = "same payload" if len(payloads) == 1 else "PAYLOAD DIFFERS"
        peak, peak_before = max(r["peak_gb"] for r in this), max(r["peak_gb"] for r in before)
        wall, wall_before = min(r["seconds"] for r in this), min(r["seconds"] for r in before)
        cpu, cpu_before = min(r["cpu"] for r in this), min(r["cpu"] for r in before)
        spread = [max(r["seconds"] for r in side) / min(r["seconds"] for r in side)
                  for side in (before, this)]
        print(f"robust-turbo-ddcm encode {size}x{size} K=16384 M=20 T={steps}, {repeats} fresh "
              f"processes each: previous search {peak_before:.2f} GB, {wall_before:.1f} s "
              f"(CPU {cpu_before:.1f} s); this one {peak:.2f} GB, {wall:.1f} s (CPU {cpu:.1f} s); "
              f"time ratio previous / this {wall_before / wall:.2f} (CPU {cpu_before / cpu:.2f}); "
              f"slowest / fastest run {spread[0]:.2f} and {spread[1]:.2f}; {same}")
        if size == 512:
            print(f"peak memory robust-turbo-ddcm 512 K=16384: {peak:.2f} GB "
                  f"(target <= 1.5; previous search {peak_before:.2f} GB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="bundled")
    parser.add_argument("--steps", type=int, default=10, help="bit-carrying steps T")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--memory-only", action="store_true",
                        help="only the Robust Turbo-DDCM memory rows (512 and 128 pixels)")
    parser.add_argument("--memory-steps", type=int, default=1,
                        help="bit-carrying steps T of the memory rows' encodes")
    parser.add_argument("--memory-repeats", type=int, default=2,
                        help="fresh processes per side and size in the memory rows")
    parser.add_argument("--memory-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--robust-child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--previous", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        peak_memory_child(args.model, 2)
        return
    if args.robust_child is not None:
        robust_encode_child(args.model, args.robust_child, args.memory_steps, args.previous)
        return
    if args.memory_only:
        robust_memory_rows(args.model, args.memory_steps, args.memory_repeats)
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
    robust_memory_rows(args.model, args.memory_steps, args.memory_repeats)
    print(f"rank + unrank 4 sets, K=65536 M=100: {ranking_round_trips() * 1000:.1f} ms "
          f"(target < 2000)")


if __name__ == "__main__":
    main()
