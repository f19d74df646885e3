"""MQTT run against the in-process run of the same scenario, measured side by side.

JPEG (q75) + RS(255,223) + QPSK on AWGN over the sample images (1024-byte frames, or
``--payload-bytes``). Two measures, both from one run of this script:

- **Whole run** (``--trials``, default 4). ``noisylink run --transport mqtt`` as a user runs
  it (``run_over_mqtt``: the three role processes start at once) against ``run_scenario`` in
  this process: wall time, frames per second, images per second. Role start-up (interpreter,
  imports, plan, first calls of the numba kernels, three processes sharing the cores)
  dominates a run this small.
- **Steady state** (``--steady-trials``, default 64): the link's throughput once every stage
  runs, start-up and first-call warm-up excluded on both sides. Over MQTT the receiver and the
  channel are started first, the transmitter only once both are heard (their heartbeats on
  the status topic), and the rows are timed as they arrive on the results topic; in process
  the rows are timed as they are written. The rate is taken over the second half of the rows
  (rows N/2 to N): by then every process has warmed up and the burst of frames that queued
  while the receiver warmed up is drained, so the figure is the rate of the slowest stage
  with all stages running. Each pair (in process, then MQTT) is measured ``--repeats``
  times; the line

      steady-state throughput ratio MQTT / in-process: R

  gives the best MQTT rate over the best in-process rate (images per second; the best of
  several runs is the one least slowed by whatever else the machine runs), and the next line
  the ratio within each pair and their median.

Run: python benchmarks/mqtt_throughput.py [--images 8 --trials 4 --steady-trials 64
     --repeats 5 --payload-bytes 1024 --broker auto|mosquitto|amqtt]
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

from noisylink.link.messages import StreamId
from noisylink.link.plan import LinkPlan
from noisylink.link.roles import run_in_process
from noisylink.link.runner import run_scenario
from noisylink.results.file import read_rows
from noisylink.scenarios import parse_scenario
from noisylink.transport.brokers import LocalBroker, start_broker
from noisylink.transport.mqtt import Broker, Topics
from noisylink.transport.multiprocess import run_over_mqtt
from noisylink.transport.session import KEY_ENV, Rejected, Seal, new_token

READY_TIMEOUT_S = 300.0  # a role process on a loaded machine may take long to start


def scenario(images: int, trials: int, size: int, payload_bytes: int = 1024) -> dict[str, Any]:
    return {
        "name": "mqtt-bench",
        "seed": 1,
        "images": {"source": "samples", "resize": size, "size": size, "limit": images},
        "codec": {"name": "jpeg", "quality": 75},
        "frames": {"payload_bytes": payload_bytes},
        "ecc": {"name": "rs", "k": 223},
        "modulation": {"name": "qpsk"},
        "channel": {"name": "awgn", "esn0_db": [8.0, 10.0]},
        "trials": trials,
    }


def second_half_rate(times: list[float]) -> float:
    """Rows per second over the second half of the rows (their arrival times, sorted)."""
    half = len(times) // 2
    return (len(times) - half) / (times[-1] - times[half - 1])


def in_process(data: dict[str, Any], out: Path) -> tuple[float, list[float], int]:
    """(wall s of the whole run, the times the rows were written, frames)."""
    times: list[float] = []

    async def timed_link(plan: LinkPlan, on_row: Callable[..., None]) -> None:
        def on_row_timed(stream: StreamId, row: dict[str, Any], image: Any) -> None:
            on_row(stream, row, image)
            times.append(time.perf_counter())

        await run_in_process(plan, on_row_timed)

    started = time.perf_counter()
    outcome = run_scenario(parse_scenario(data, "bench"), out, link=timed_link)
    wall = time.perf_counter() - started
    frames = sum(int(row["frames"]) for row in read_rows(outcome.results_path))
    return wall, times, frames


class Listener:
    """Arrival times of the run's heartbeats (per role) and result rows, read from the
    broker with the run's key and token."""

    def __init__(self, broker: LocalBroker, run_id: str, token: bytes, key: bytes):
        import paho.mqtt.client as mqtt

        self.topics = Topics(run_id)
        self.token = token
        self.seal = Seal(key)
        self.first_heard: dict[str, float] = {}
        self.rows: list[float] = []
        self.changed = threading.Condition()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        self.client.on_message = self._on_message
        self.client.connect(broker.host, broker.port)
        self.client.subscribe(self.topics.status("+"), qos=0)
        self.client.subscribe(self.topics.results, qos=1)
        self.client.loop_start()

    def _on_message(self, _client: object, _userdata: object, message: Any) -> None:
        now = time.perf_counter()
        try:
            token, _body = self.seal.open(message.topic, bytes(message.payload))
        except Rejected:
            return
        if token != self.token:
            return
        with self.changed:
            if message.topic == self.topics.results:
                self.rows.append(now)
            else:
                self.first_heard.setdefault(message.topic.rsplit("/", 1)[-1], now)
            self.changed.notify_all()

    def wait(self, done: Callable[[], bool], processes: Mapping[str, subprocess.Popen[bytes]],
             what: str) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        with self.changed:
            while not done():
                for role, process in processes.items():
                    if process.poll() not in (None, 0):
                        raise RuntimeError(f"{role} exited with {process.returncode}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"timed out waiting for {what}")
                self.changed.wait(0.2)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def mqtt_rows(path: Path, out: Path, broker: LocalBroker, n_rows: int) -> list[float]:
    """The times the rows arrive on the results topic, the receiver and the channel started
    (and heard) before the transmitter."""
    run_id = f"mqtt-bench-{uuid.uuid4().hex[:8]}"
    token, key = new_token(), secrets.token_bytes(32)
    env = dict(os.environ, **{KEY_ENV: key.hex()})
    common = [str(path), "--broker", broker.url, "--run-id", run_id, "--run-token", token.hex()]
    listener = Listener(broker, run_id, token, key.hex().encode())
    processes: dict[str, subprocess.Popen[bytes]] = {}

    def start(role: str, *extra: str) -> None:
        processes[role] = subprocess.Popen(
            [sys.executable, "-m", "noisylink", role, *common, *extra], env=env,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    try:
        start("rx", "--out", str(out), "--force")
        start("channel")
        listener.wait(lambda: {"receiver", "channel"} <= listener.first_heard.keys(),
                      processes, "the receiver and channel")
        start("tx")
        listener.wait(lambda: "transmitter" in listener.first_heard, processes,
                      "the transmitter")
        listener.wait(lambda: len(listener.rows) >= n_rows, processes, "the last row")
        for role, process in processes.items():
            _, stderr = process.communicate(timeout=READY_TIMEOUT_S)
            if process.returncode != 0:
                raise RuntimeError(f"{role} exited with {process.returncode}: "
                                   f"{stderr.decode(errors='replace')[-2000:]}")
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.kill()
                process.wait()
        listener.close()
    if len(read_rows(out / "results.csv")) != n_rows:
        raise RuntimeError("the MQTT run's results.csv does not have every row")
    return sorted(listener.rows)[:n_rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--trials", type=int, default=4, help="trials of the whole run")
    parser.add_argument("--steady-trials", type=int, default=64,
                        help="trials of the steady-state runs")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--payload-bytes", type=int, default=1024, help="bytes per frame")
    parser.add_argument("--repeats", type=int, default=5,
                        help="steady-state pairs (in process, MQTT) to measure")
    parser.add_argument("--broker", default="auto", choices=["auto", "mosquitto", "amqtt"])
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    whole, steady = (scenario(args.images, trials, args.size, args.payload_bytes)
                     for trials in (args.trials, args.steady_trials))
    pairs: list[tuple[float, float]] = []
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        paths = {"whole": work / "whole.yaml", "steady": work / "steady.yaml"}
        paths["whole"].write_text(yaml.safe_dump(whole))
        paths["steady"].write_text(yaml.safe_dump(steady))

        in_process_s, _, frames = in_process(whole, work / "in-process")
        rows = len(read_rows(work / "in-process" / "results.csv"))
        started = time.perf_counter()
        broker = start_broker(args.broker)  # type: ignore[arg-type]
        broker_s = time.perf_counter() - started
        try:
            started = time.perf_counter()
            run_over_mqtt(str(paths["whole"]), "mqtt-bench", work / "mqtt",
                          Broker.from_url(broker.url))
            mqtt_s = time.perf_counter() - started
            assert len(read_rows(work / "mqtt" / "results.csv")) == rows
            for repeat in range(args.repeats):
                _, local, steady_frames = in_process(steady, work / f"in-process-{repeat}")
                remote = mqtt_rows(paths["steady"], work / f"mqtt-{repeat}", broker,
                                   len(local))
                pairs.append((second_half_rate(local), second_half_rate(remote)))
        finally:
            broker.close()
    steady_rows = args.images * args.steady_trials * 2

    print(f"whole run: {rows} images sent ({args.images} images x {args.trials} trials x "
          f"2 SNRs), {frames} frames of {args.payload_bytes} bytes, JPEG q75 + RS(255,223) + "
          f"QPSK, {args.size} px")
    print(f"broker: {broker.kind} (started in {broker_s:.2f} s, not counted)")
    print(f"{'run':<34}{'wall s':>9}{'frames/s':>11}{'images/s':>11}")
    print(f"{'in-process':<34}{in_process_s:>9.2f}{frames / in_process_s:>11.0f}"
          f"{rows / in_process_s:>11.1f}")
    print(f"{'MQTT (3 processes)':<34}{mqtt_s:>9.2f}{frames / mqtt_s:>11.0f}"
          f"{rows / mqtt_s:>11.1f}")
    print(f"whole-run wall time ratio MQTT / in-process: {mqtt_s / in_process_s:.2f} "
          f"(role start-up included)")
    print(f"steady state: {steady_rows} images ({args.steady_trials} trials), {steady_frames} "
          f"frames; images/s over the second half of the rows")
    print(f"{'pair':<10}{'in-process':>12}{'MQTT':>10}{'ratio':>8}")
    for repeat, (local_rate, remote_rate) in enumerate(pairs):
        print(f"{repeat + 1:<10}{local_rate:>12.1f}{remote_rate:>10.1f}"
              f"{remote_rate / local_rate:>8.2f}")
    best = max(remote for _, remote in pairs) / max(local for local, _ in pairs)
    ratios = [remote_rate / local_rate for local_rate, remote_rate in pairs]
    print(f"steady-state throughput ratio MQTT / in-process: {best:.2f}")
    print(f"steady-state ratios within the {len(ratios)} pairs: "
          f"{', '.join(f'{ratio:.2f}' for ratio in ratios)} (median "
          f"{statistics.median(ratios):.2f}, spread {max(ratios) - min(ratios):.2f})")


if __name__ == "__main__":
    main()
