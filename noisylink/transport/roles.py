"""The transmitter, channel and receiver as separate processes joined by MQTT.

Each role builds the same plan from the same scenario (so they agree on cells, images and
random streams) and runs the same coroutine as in one process (``noisylink.link.roles``),
with MQTT links (``noisylink.transport.mqtt``) as its inbox and outbox. The roles check that
they share the scenario and its images (a fingerprint in every heartbeat), and each reader
admits only messages that fit the plan (``admission``).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from noisylink.link import roles
from noisylink.link.messages import StreamId
from noisylink.link.plan import LinkPlan
from noisylink.link.runner import RunOutcome, build_plan, run_scenario
from noisylink.results.row import format_value
from noisylink.scenarios.schema import Scenario
from noisylink.transport.admission import StreamLedger
from noisylink.transport.mqtt import Admit, Broker, Endpoint, RunIdentity


@dataclass(frozen=True)
class RunAccess:
    """How a role finds its run on the broker: the run id, the token when it is known
    beforehand (None: the receiver makes it, the others join), and the shared key."""

    run_id: str
    token: bytes | None = None
    key: bytes | None = field(default=None, repr=False)
    timeout: float = 60.0


def fingerprint(plan: LinkPlan) -> str:
    """What every role of a run must agree on: the scenario's settings and its images."""
    digest = hashlib.sha256(plan.scenario.model_dump_json().encode())
    for image in plan.images:
        digest.update(image.name.encode() + b"\0" + str(image.pixels.shape).encode())
        digest.update(np.ascontiguousarray(image.pixels).tobytes())
    return digest.hexdigest()[:16]


def _endpoint(broker: Broker, access: RunAccess, plan: LinkPlan, role: str,
              **links: Any) -> Endpoint:
    identity = RunIdentity(access.run_id, role, fingerprint(plan), access.token, access.key)

    def admit(link: str) -> Admit:
        return StreamLedger(plan, link).admit

    return Endpoint(broker, identity, timeout=access.timeout, admit=admit, **links)


async def run_transmitter(scenario: Scenario, broker: Broker, access: RunAccess) -> None:
    plan = build_plan(scenario)
    endpoint = _endpoint(broker, access, plan, "transmitter", writes=("tx",),
                         peers=("channel",))

    async def body(ep: Endpoint) -> None:
        await roles.transmitter(plan, ep.writers["tx"])

    await endpoint.run(body)


async def run_channel(scenario: Scenario, broker: Broker, access: RunAccess) -> None:
    plan = build_plan(scenario)
    endpoint = _endpoint(broker, access, plan, "channel", reads=("tx",), writes=("rx",),
                         peers=("transmitter", "receiver"))

    async def body(ep: Endpoint) -> None:
        await roles.channel(plan, ep.readers["tx"], ep.writers["rx"])

    await endpoint.run(body)


def run_receiver(scenario: Scenario, broker: Broker, access: RunAccess, out_dir: Path,
                 source: str = "") -> RunOutcome:
    """Receive, decode and write ``results.csv`` as ``noisylink run`` does; each row is also
    published on the run's results topic. The manifest records the run's token and how many
    messages were dropped, per reason."""

    async def link(plan: LinkPlan, on_row: roles.RowSink) -> Mapping[str, Any]:
        endpoint = _endpoint(broker, access, plan, "receiver", reads=("rx",),
                             peers=("channel",))
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

        try:
            await endpoint.run(body)
        finally:
            facts["mqtt"] = {
                "run_id": access.run_id,
                "token": endpoint.token.hex() if endpoint.token else None,
                "signed": access.key is not None,
                "dropped": endpoint.rejections.as_dict(),
            }
        return facts

    facts: dict[str, Any] = {}
    return run_scenario(scenario, out_dir, source=source, link=link)
