"""Link throughput: the asyncio pipeline against the same work done in a plain loop.

JPEG (q75) + RS(255,223) + block interleaver + QPSK on AWGN (Es/N0 8 dB) over the built-in
sample images. Prints images per second of both, the share of time in each stage (from the
plain loop), and the pipeline's own cost (event loop, queues, thread hand-offs) as the extra
CPU time and wall time it needs over the plain loop. Run: python benchmarks/link_throughput.py

OpenMP's wait policy is set to passive (unless ``OMP_WAIT_POLICY`` says otherwise) before numba
starts its threads: with the default active wait, numba's parallel kernels spin on a machine
with more runnable threads than cores, and a frame's RS decoding took 0.1 to 40 ms by luck
(4.7 s of CPU for the plain loop against 1.2 s passive, at load 7 on 2 cores), a cost of the
kernels that lands at random on either side of the comparison.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "passive")  # read when numba first starts its threads

import argparse
import asyncio
import time
from collections import defaultdict

from noisylink.codecs.base import Encoded
from noisylink.link.frames import packetize
from noisylink.link.messages import FrameOnAir, StreamStart
from noisylink.link.plan import LinkPlan
from noisylink.link.reception import StreamReception
from noisylink.link.roles import pass_through_channel, run_in_process
from noisylink.link.runner import build_plan
from noisylink.scenarios import parse_scenario


def make_plan(images: int, trials: int, size: int) -> LinkPlan:
    scenario = parse_scenario(
        {
            "name": "bench",
            "seed": 1,
            "images": {"source": "samples", "resize": size, "size": size, "limit": images},
            "codec": {"name": "jpeg", "quality": 75},
            "frames": {"payload_bytes": 1024},
            "ecc": {"name": "rs", "k": 223},
            "interleaver": {"name": "block", "depth": 16},
            "modulation": {"name": "qpsk"},
            "channel": {"name": "awgn", "esn0_db": 8.0},
            "trials": trials,
        },
        "benchmark",
    )
    return build_plan(scenario)


def plain_loop(plan: LinkPlan) -> dict[str, float]:
    """The pipeline's work, stage by stage, in one thread, timed per stage."""
    spent: dict[str, float] = defaultdict(float)
    encodes: dict[int, tuple[Encoded, float]] = {}

    def timed(stage: str, fn, *args):
        started = time.perf_counter()
        result = fn(*args)
        spent[stage] += time.perf_counter() - started
        return result

    for stream in plan.streams():
        chain = plan.chain(stream.cell)
        if stream.image not in encodes:
            encodes[stream.image] = (
                timed("codec encode", chain.codec.encode, plan.images[stream.image].pixels), 0.0
            )
        encoded = encodes[stream.image][0]
        frames = timed("framing", packetize, encoded.payload, 1024, stream.wire_id)
        on_air = timed("tx phy (CRC, RS, interleave, QPSK)",
                       lambda c=chain, f=frames: [c.encode_frame(x) for x in f])
        start = StreamStart(stream, encoded.n_bits, encoded.side_info, len(frames), 0.0,
                            encoded.payload)
        reception = StreamReception(start, chain)
        instance, rng = chain.new_channel(), plan.channel_rng(stream)
        for frame, (data, _layout) in zip(frames, on_air, strict=True):
            sent = FrameOnAir(stream, frame.header.seq, frame.header, data)
            received = timed("channel (AWGN + raw BER count)", pass_through_channel, chain,
                             instance, rng, sent)
            timed("rx phy (demap, deinterleave, RS decode, CRC)", reception.receive, received)
        source = plan.images[stream.image]
        row, _image = timed("rx image (JPEG decode + metrics)", reception.finish, source.pixels,
                            source.name)
        spent["  of which JPEG decode"] += row["decode_s"]
    image_stage = spent["rx image (JPEG decode + metrics)"]
    spent["  of which metrics (PSNR, SSIM, MS-SSIM, MSE)"] = (
        image_stage - spent["  of which JPEG decode"])
    return dict(spent)


def pipeline(plan: LinkPlan) -> int:
    rows = []
    asyncio.run(run_in_process(plan, lambda stream, row, image: rows.append(row)))
    return len(rows)


def measure(fn, plan: LinkPlan) -> tuple[float, float, object]:
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn(plan)
    return time.perf_counter() - wall, time.process_time() - cpu, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    plan = make_plan(args.images, args.trials, args.size)
    n_streams = plan.n_streams
    pipeline(make_plan(1, 1, 64))  # warm-up: imports, thread pool
    best_plain, best_pipe = None, None
    for _ in range(args.repeats):  # interleaved, best of N, so both see the same machine load
        plain = measure(plain_loop, make_plan(args.images, args.trials, args.size))
        piped = measure(pipeline, make_plan(args.images, args.trials, args.size))
        best_plain = plain if best_plain is None or plain[0] < best_plain[0] else best_plain
        best_pipe = piped if best_pipe is None or piped[0] < best_pipe[0] else best_pipe
    assert best_plain is not None and best_pipe is not None
    plain_wall, plain_cpu, spent = best_plain
    pipe_wall, pipe_cpu, rows = best_pipe
    assert rows == n_streams

    print(f"streams: {n_streams} ({args.images} images {args.size}x{args.size} x {args.trials} "
          f"trials), JPEG q75 + RS(255,223) + block(16) + QPSK + AWGN 8 dB, "
          f"OMP_WAIT_POLICY={os.environ['OMP_WAIT_POLICY']}, best of {args.repeats}, "
          f"load {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (wall figures need a quiet "
          f"machine; the CPU ones less so)")
    print(f"plain loop: {n_streams / plain_wall:.1f} images/s (wall {plain_wall:.2f} s, "
          f"cpu {plain_cpu:.2f} s)")
    print(f"pipeline:   {n_streams / pipe_wall:.1f} images/s (wall {pipe_wall:.2f} s, "
          f"cpu {pipe_cpu:.2f} s)")
    print("share of the plain loop's wall time per stage:")
    for stage, seconds in spent.items():
        print(f"  {stage:48s} {seconds:7.3f} s  {seconds / plain_wall:6.1%}")
    print(f"pipeline wall / plain wall: {pipe_wall / plain_wall:.3f}")
    print(f"pipeline own cost, CPU: {(pipe_cpu - plain_cpu) / pipe_cpu:+.1%} of the pipeline's "
          f"CPU time (target <= 10%)")
    print(f"pipeline own cost, wall: {(pipe_wall - plain_wall) / pipe_wall:+.1%} of the "
          f"pipeline's wall time (negative: stages overlap on several cores)")
    print(f"pipeline overhead: {100 * (pipe_wall - plain_wall) / pipe_wall:.1f} % of wall time")


if __name__ == "__main__":
    main()
