"""MQTT run against the in-process run of the same scenario, measured side by side.

JPEG (q75) + RS(255,223) + QPSK on AWGN over the sample images (1024-byte frames). Prints
frames per second and images per second of both runs and their ratio, then where the MQTT
run's extra time goes: starting the broker, starting the three role processes (interpreter,
imports, plan), and the steady state (each frame published with QoS 1 twice, tx → channel →
rx, each waiting for its PUBACK, plus acks and heartbeats).
Run: python benchmarks/mqtt_throughput.py [--images 8 --trials 4 --broker auto|mosquitto|amqtt]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from noisylink.link.runner import run_scenario
from noisylink.results.file import read_rows
from noisylink.scenarios import parse_scenario
from noisylink.transport.brokers import start_broker
from noisylink.transport.mqtt import Broker
from noisylink.transport.multiprocess import run_over_mqtt


def scenario(images: int, trials: int, size: int) -> dict:
    return {
        "name": "mqtt-bench",
        "seed": 1,
        "images": {"source": "samples", "resize": size, "size": size, "limit": images},
        "codec": {"name": "jpeg", "quality": 75},
        "frames": {"payload_bytes": 1024},
        "ecc": {"name": "rs", "k": 223},
        "modulation": {"name": "qpsk"},
        "channel": {"name": "awgn", "esn0_db": [8.0, 10.0]},
        "trials": trials,
    }


def role_start_s(path: Path) -> float:
    """Time for a role process to start: interpreter, imports, scenario and plan."""
    code = ("import sys; from noisylink.transport import roles; "
            "from noisylink.scenarios import load_scenario; "
            "from noisylink.link.runner import build_plan; "
            f"build_plan(load_scenario({str(path)!r})[0])")
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--broker", default="auto", choices=["auto", "mosquitto", "amqtt"])
    args = parser.parse_args()
    data = scenario(args.images, args.trials, args.size)
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        path = work / "mqtt-bench.yaml"
        path.write_text(yaml.safe_dump(data))

        started = time.perf_counter()
        local = run_scenario(parse_scenario(data, "bench"), work / "in-process")
        in_process_s = time.perf_counter() - started
        rows = read_rows(local.results_path)
        frames = sum(int(row["frames"]) for row in rows)

        started = time.perf_counter()
        broker = start_broker(args.broker)  # type: ignore[arg-type]
        broker_s = time.perf_counter() - started
        try:
            started = time.perf_counter()
            run_over_mqtt(str(path), "mqtt-bench", work / "mqtt", Broker.from_url(broker.url))
            mqtt_s = time.perf_counter() - started
        finally:
            broker.close()
        assert len(read_rows(work / "mqtt" / "results.csv")) == len(rows)
        start_s = role_start_s(path)

    print(f"scenario: {len(rows)} images sent ({args.images} images x {args.trials} trials x "
          f"2 SNRs), {frames} frames, JPEG q75 + RS(255,223) + QPSK, {args.size} px")
    print(f"broker: {broker.kind}")
    print(f"{'run':<28}{'wall s':>9}{'frames/s':>11}{'images/s':>11}")
    print(f"{'in-process':<28}{in_process_s:>9.2f}{frames / in_process_s:>11.0f}"
          f"{len(rows) / in_process_s:>11.1f}")
    print(f"{'MQTT (3 processes)':<28}{mqtt_s:>9.2f}{frames / mqtt_s:>11.0f}"
          f"{len(rows) / mqtt_s:>11.1f}")
    steady = max(mqtt_s - start_s, 1e-9)
    print(f"{'MQTT without role start-up':<28}{steady:>9.2f}{frames / steady:>11.0f}"
          f"{len(rows) / steady:>11.1f}")
    print(f"ratio in-process / MQTT wall time: {mqtt_s / in_process_s:.2f} "
          f"(steady state {steady / in_process_s:.2f})")
    print(f"where the MQTT run's time goes: broker start {broker_s:.2f} s (not in the MQTT wall "
          f"time), role start-up {start_s:.2f} s (the three start in parallel), "
          f"steady state {steady:.2f} s")


if __name__ == "__main__":
    main()
