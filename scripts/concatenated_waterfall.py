"""Decoded BER against Eb/N0 on BPSK/AWGN: the CCSDS concatenated code next to its parts.

Codes (all through ``ECC.encode`` / ``ECC.decode``, the fast numba paths on the CPU):

- ``ccsds``: ``concatenated`` RS(255,223), depth I=5, K=7 (171,133) conv rate 1/2, one
  terminated conv block per 10200-bit frame (rate 0.437);
- ``conv``: the K=7 rate-1/2 code alone, 2048-bit blocks (rate 0.498);
- ``ldpc``: 802.11n LDPC n=1944 rate 1/2, layered min-sum, 20 iterations, ``precision:
  int16`` (rate 0.5);
- with ``--erasures``: ``concatenated`` RS(255,223), I=5 over that LDPC, with and without
  marking the bytes of failed LDPC words as erasures for the RS decoder.

Eb is energy per information bit: the noise is set from each code's own rate, LLRs are the
exact ``2y / sigma^2``. Each point runs batches until ``--min-errors`` bit errors in at least
``--min-blocks`` failed blocks are seen, or ``--max-bits`` information bits; a code stops at the
first point with no errors in ``--max-bits`` (its BER is below ``3 / bits``, the 95 % bound,
from there on). Prints one table row per point: information bits simulated, bit errors, blocks
with an error, BER, and the 95 % upper bound when no error was seen. Errors of a concatenated
code come in bursts (a failed RS word), so the failed-block count is what sets the interval.

Run: python scripts/concatenated_waterfall.py [--ebn0 1.5 1.75 ...] [--max-bits 1e8]
(about 2 min on 2 cores; 5 min with ``--erasures``; figures in docs/measured.md).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from noisylink.phy.ecc import ECCS
from noisylink.phy.ecc.base import ECC

LDPC_INT16 = {
    "name": "ldpc", "n": 1944, "rate": "1/2", "iterations": 20, "method": "min-sum",
    "schedule": "layered", "precision": "int16",
}
CODES: dict[str, dict[str, Any]] = {
    "ccsds": {"name": "concatenated", "outer": {"name": "rs", "k": 223}, "depth": 5,
              "inner": {"name": "conv", "rate": "1/2"}},
    "conv": {"name": "conv", "block_bits": 2048},
    "ldpc": LDPC_INT16,
}
ERASURE_CODES: dict[str, dict[str, Any]] = {
    "rs+ldpc erasures": {"name": "concatenated", "depth": 5, "inner": LDPC_INT16},
    "rs+ldpc no erasures": {"name": "concatenated", "depth": 5, "inner": LDPC_INT16},
}
BATCH_INFO_BITS = 2_000_000


@dataclass
class Point:
    bits: int = 0
    bit_errors: int = 0
    blocks: int = 0
    failed_blocks: int = 0
    seconds: float = 0.0

    @property
    def ber(self) -> float:
        return self.bit_errors / max(self.bits, 1)


def measure(
    code: ECC, ebn0_db: float, args: argparse.Namespace, rng: np.random.Generator
) -> Point:
    """Batches of random blocks through BPSK/AWGN at ``ebn0_db`` until the stopping rule."""
    sigma = np.sqrt(1.0 / (2.0 * code.rate * 10.0 ** (ebn0_db / 10.0)))
    blocks_per_batch = max(1, BATCH_INFO_BITS // code.k)
    point = Point()
    started = time.perf_counter()
    while point.bits < args.max_bits and not (
        point.bit_errors >= args.min_errors and point.failed_blocks >= args.min_blocks
    ):
        info = rng.integers(0, 2, blocks_per_batch * code.k, dtype=np.uint8)
        coded = code.encode(info)
        noise = rng.standard_normal(coded.size, dtype=np.float32)
        llr = (2.0 / sigma**2) * ((1.0 - 2.0 * coded) + sigma * noise)
        decoded, _ = code.decode(llr)
        wrong = (decoded != info).reshape(blocks_per_batch, code.k)
        point.bits += info.size
        point.bit_errors += int(wrong.sum())
        point.blocks += blocks_per_batch
        point.failed_blocks += int(wrong.any(axis=1).sum())
    point.seconds = time.perf_counter() - started
    return point


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ebn0", type=float, nargs="+",
                        default=[1.5, 1.75, 2.0, 2.25, 2.5, 2.75, 3.0])
    parser.add_argument("--max-bits", type=float, default=1e8)
    parser.add_argument("--min-errors", type=int, default=1000)
    parser.add_argument("--min-blocks", type=int, default=30)
    parser.add_argument("--codes", nargs="+", default=list(CODES), choices=list(CODES))
    parser.add_argument("--erasures", action="store_true",
                        help="also RS+LDPC with and without erasure marking")
    parser.add_argument("--seed", type=int, default=15)
    args = parser.parse_args()
    args.max_bits = int(args.max_bits)
    settings = {name: CODES[name] for name in args.codes}
    if args.erasures:
        settings.update(ERASURE_CODES)
    print(f"{'code':<22} {'Eb/N0':>5} {'info bits':>11} {'bit err':>9} {'blocks':>8} "
          f"{'failed':>7} {'BER':>9} {'95% upper':>9} {'s':>6}")
    for name, config in settings.items():
        code = ECCS.build(ECCS.config(config))
        if name.endswith("no erasures"):
            code.marks_erasures = False  # type: ignore[attr-defined]
        code.decode(np.zeros(code.n))  # compile first
        rng = np.random.default_rng(args.seed)
        for ebn0 in args.ebn0:
            point = measure(code, ebn0, args, rng)
            upper = f"{3.0 / point.bits:9.1e}" if point.bit_errors == 0 else ""
            print(f"{name:<22} {ebn0:5.2f} {point.bits:11.3e} {point.bit_errors:9d} "
                  f"{point.blocks:8d} {point.failed_blocks:7d} {point.ber:9.2e} {upper:>9} "
                  f"{point.seconds:6.1f}", flush=True)
            if point.bit_errors == 0:
                break
        print(f"{name}: rate {code.rate:.4f}, k {code.k}, n {code.n}", flush=True)


if __name__ == "__main__":
    main()
