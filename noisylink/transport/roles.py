"""The transmitter, channel and receiver as separate processes joined by MQTT.

Each role builds the same plan from the same scenario (so they agree on cells, images and
random streams) and runs the same coroutine as in one process (``noisylink.link.roles``),
with MQTT links (``noisylink.transport.mqtt``) as its inbox and outbox.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import numpy as np

from noisylink.link import roles
from noisylink.link.messages import StreamId
from noisylink.link.plan import LinkPlan
from noisylink.link.results import format_value
from noisylink.link.runner import RunOutcome, build_plan, run_scenario
from noisylink.scenarios.schema import Scenario
from noisylink.transport.mqtt import Broker, Endpoint


async def run_transmitter(scenario: Scenario, broker: Broker, run_id: str,
                          timeout: float) -> None:
    plan = build_plan(scenario)
    endpoint = Endpoint(broker, run_id, "transmitter", writes=("tx",), peers=("channel",),
                        timeout=timeout)

    async def body(ep: Endpoint) -> None:
        await roles.transmitter(plan, ep.writers["tx"])

    await endpoint.run(body)


async def run_channel(scenario: Scenario, broker: Broker, run_id: str, timeout: float) -> None:
    plan = build_plan(scenario)
    endpoint = Endpoint(broker, run_id, "channel", reads=("tx",), writes=("rx",),
                        peers=("transmitter", "receiver"), timeout=timeout)

    async def body(ep: Endpoint) -> None:
        await roles.channel(plan, ep.readers["tx"], ep.writers["rx"])

    await endpoint.run(body)


def run_receiver(scenario: Scenario, broker: Broker, run_id: str, out_dir: Path,
                 timeout: float, source: str = "") -> RunOutcome:
    """Receive, decode and write ``results.csv`` as ``noisylink run`` does; each row is also
    published on the run's results topic."""

    async def link(plan: LinkPlan, on_row: roles.RowSink) -> None:
        endpoint = Endpoint(broker, run_id, "receiver", reads=("rx",), peers=("channel",),
                            timeout=timeout)
        published: set[asyncio.Task[None]] = set()

        def on_row_and_publish(stream: StreamId, row: dict[str, Any], image: np.ndarray) -> None:
            on_row(stream, row, image)
            body = json.dumps({"cell": stream.cell, "image": stream.image,
                               "trial": stream.trial,
                               **{k: format_value(v) for k, v in row.items()}}).encode()
            task = asyncio.ensure_future(endpoint.publish(endpoint.topics.results, body))
            published.add(task)
            task.add_done_callback(published.discard)

        async def body(ep: Endpoint) -> None:
            await roles.receiver(plan, ep.readers["rx"], on_row_and_publish)
            await asyncio.gather(*published)

        await endpoint.run(body)

    return run_scenario(scenario, out_dir, source=source, link=link)
