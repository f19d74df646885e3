"""Information throughput of our batched FEC decoders against the reference decoders.

Same code, iterations and inputs for each pair, measured in one run, printed as
``NAME: ours X Mbit/s, reference Y Mbit/s, ratio R``:

- LDPC 802.11n n=1944 rate 1/2, 20 iterations, BPSK on AWGN at Eb/N0 2.5 dB (mostly decodes):
  our numba decoders against commpy's belief propagation, and against the ``ldpc`` package
  (C++ BP) where it is installed;
- RS(255,223) with exactly 8 byte errors per codeword: ours against commpy;
- K=7 (171,133) soft Viterbi, 2048-bit blocks at Eb/N0 3 dB: ours against commpy.

Throughput counts decoded information bits per second of wall time, LLR interface included.
Run: python benchmarks/fec_speed.py [--blocks N] [--reference-blocks N]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np

from noisylink.phy.ecc import ECCS

RNG_SEED = 5


def awgn_llr(coded: np.ndarray, ebn0_db: float, rate: float, rng: np.random.Generator):
    """BPSK over AWGN at Eb/N0 (energy per information bit): channel LLRs, our sign."""
    esn0 = 10 ** (ebn0_db / 10) * rate
    sigma = np.sqrt(1 / (2 * esn0))
    symbols = 1.0 - 2.0 * coded
    received = symbols + sigma * rng.standard_normal(coded.size)
    return 2 * received / sigma**2


def throughput(decode: Callable[[], object], info_bits: int, repeats: int = 2) -> float:
    """Best-of-``repeats`` Mbit/s of information."""
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        decode()
        best = min(best, time.perf_counter() - started)
    return info_bits / best / 1e6


def build(settings: dict):
    return ECCS.build(ECCS.config(settings))


def report(name: str, ours: float, reference: float, reference_name: str = "reference") -> None:
    print(f"{name}: ours {ours:.2f} Mbit/s, {reference_name} {reference:.3f} Mbit/s, "
          f"ratio {ours / reference:.1f}", flush=True)


def ldpc_rows(blocks: int, reference_blocks: int, rng: np.random.Generator) -> None:
    base = {"name": "ldpc", "n": 1944, "rate": "1/2", "iterations": 20}
    reference = build({**base, "backend": "reference"})
    info = rng.integers(0, 2, blocks * reference.k).astype(np.uint8)
    llr = awgn_llr(reference.encode(info), 2.5, reference.rate, rng)
    few = llr[: reference_blocks * reference.n]
    package = ldpc_package()
    for method in ("sum-product", "min-sum"):
        ref = build({**base, "method": method, "backend": "reference"})
        ref_rate = throughput(lambda r=ref: r.decode(few), reference_blocks * ref.k, repeats=1)
        for schedule in ("flooding", "layered"):
            ours = build({**base, "method": method, "backend": "numba", "schedule": schedule})
            ours.decode(llr[: ours.n])  # compile
            _, ok = ours.decode(llr)
            rate = throughput(lambda o=ours: o.decode(llr), blocks * ours.k)
            same = throughput(lambda o=ours: o.decode(few), reference_blocks * ours.k, 5)
            label = f"LDPC 1944 r1/2 20 it {method} {schedule}"
            report(f"{label} (FER {1 - ok.mean():.3f}, {blocks} blocks)", rate, ref_rate)
            report(f"{label} (the reference's {reference_blocks} blocks)", same, ref_rate)
            if package is not None and schedule == "flooding":
                package_rate = package(ref, llr, method)
                report(f"{label} vs the ldpc package", rate, package_rate, "ldpc package")
    if package is None:
        print("LDPC: the `ldpc` package (C++ BP) is not installed: second reference skipped")


def ldpc_package():
    """A throughput function for the ``ldpc`` package's C++ BP, or None if it is missing."""
    try:
        from ldpc import BpDecoder
    except ImportError:
        return None

    def measure(code, llr: np.ndarray, method: str) -> float:
        tables = code._tables.code  # commpy's lifted code: the same H as ours
        words = llr.reshape(-1, code.n)
        decoder = BpDecoder(
            tables.H, error_channel=np.full(code.n, 0.1), max_iter=code.config.iterations,
            bp_method="product_sum" if method == "sum-product" else "minimum_sum",
            ms_scaling_factor=0.75, schedule="parallel", input_vector_type="received_vector",
        )
        hard = (words < 0).astype(np.uint8)
        flip = 1 / (1 + np.exp(np.abs(words)))

        def run() -> None:
            for b in range(words.shape[0]):
                decoder.update_channel_probs(flip[b])
                decoder.decode(hard[b])

        return throughput(run, words.shape[0] * code.k)

    return measure


def rs_rows(blocks: int, reference_blocks: int, rng: np.random.Generator) -> None:
    reference = build({"name": "rs", "k": 223, "backend": "reference"})
    ours = build({"name": "rs", "k": 223, "backend": "numba"})
    info = rng.integers(0, 2, blocks * reference.k).astype(np.uint8)
    coded = reference.encode(info).reshape(blocks, 255, 8)
    for b in range(blocks):  # exactly 8 byte errors per codeword
        positions = rng.choice(255, 8, replace=False)
        coded[b, positions] ^= rng.integers(0, 2, (8, 8)).astype(np.uint8) | (
            np.arange(8) == rng.integers(0, 8)
        ).astype(np.uint8)  # every chosen byte really changes
    llr = np.where(coded.reshape(-1) == 0, 4.0, -4.0)
    ours.decode(llr[: 255 * 8])  # compile
    few = llr[: reference_blocks * 255 * 8]
    ref_rate = throughput(lambda: reference.decode(few), reference_blocks * reference.k, 1)
    bits, ok = ours.decode(llr)
    assert ok.all() and np.array_equal(bits, info), "RS: not every codeword was corrected"
    rate = throughput(lambda: ours.decode(llr), blocks * ours.k)
    report("RS(255,223) 8 byte errors/codeword", rate, ref_rate)


def viterbi_rows(blocks: int, reference_blocks: int, rng: np.random.Generator) -> None:
    reference = build({"name": "conv", "block_bits": 2048, "backend": "reference"})
    ours = build({"name": "conv", "block_bits": 2048, "backend": "numba"})
    info = rng.integers(0, 2, blocks * reference.k).astype(np.uint8)
    llr = awgn_llr(ours.encode(info), 3.0, ours.rate, rng)
    ours.decode(llr[: ours.n])  # compile
    few = llr[: reference_blocks * reference.n]
    ref_rate = throughput(lambda: reference.decode(few), reference_blocks * reference.k, 1)
    rate = throughput(lambda: ours.decode(llr), blocks * ours.k)
    report("Viterbi K=7 soft, 2048-bit blocks, 3 dB", rate, ref_rate)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=400, help="blocks for our decoders")
    parser.add_argument("--reference-blocks", type=int, default=20,
                        help="blocks for the (slow) reference decoders")
    args = parser.parse_args()
    rng = np.random.default_rng(RNG_SEED)
    ldpc_rows(args.blocks, args.reference_blocks, rng)
    rs_rows(args.blocks, args.reference_blocks, rng)
    viterbi_rows(args.blocks // 4, args.reference_blocks // 2, rng)


if __name__ == "__main__":
    main()
