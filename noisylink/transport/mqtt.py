"""The link's roles joined by an MQTT broker, with no message lost, duplicated or reordered.

Topics, per run id ``R`` (one run's three roles share it):

| topic | from → to | payload | QoS |
| --- | --- | --- | --- |
| ``noisylink/R/frames/tx`` | transmitter → channel | link messages (``wire``) | 1 |
| ``noisylink/R/frames/rx`` | channel → receiver | link messages (``wire``) | 1 |
| ``noisylink/R/acks/tx``, ``.../acks/rx`` | reader → writer of that link | JSON ack | 1 |
| ``noisylink/R/status/ROLE`` | each role → all | JSON ``{"role", "state", "t"}`` every second | 0 |
| ``noisylink/R/results`` | receiver → anyone | one JSON row per finished stream | 1 |

QoS 1 alone gives at-least-once delivery only while the broker is up. On top of it each link
numbers its messages: the reader delivers them in order, drops duplicates and acknowledges what
it has consumed (``next``) and received (``have``); the writer keeps what is not yet
acknowledged, so the window also gives backpressure. After a reconnection, or when the reader
has received nothing new for a while, the writer sends again what the reader has not got. A
broker restart (even one that forgets every session) therefore loses nothing.

Each role also publishes a heartbeat; a role that hears nothing from a peer it waits on for
``timeout`` seconds stops with a message naming that peer.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import os
import ssl
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from noisylink.errors import LinkError, NoisylinkError
from noisylink.link.messages import Finished, Message
from noisylink.transport import wire

QOS = 1
# paho's own socket errors would reach stderr through logging's last resort; the endpoint
# reports what matters itself (reconnects are silent, failures are one line).
PAHO_LOG = logging.getLogger("noisylink.mqtt.paho")
PAHO_LOG.setLevel(logging.CRITICAL)
USERNAME_ENV = "NOISYLINK_MQTT_USERNAME"
PASSWORD_ENV = "NOISYLINK_MQTT_PASSWORD"
CA_FILE_ENV = "NOISYLINK_MQTT_CA_FILE"
WINDOW = 256  # unacknowledged messages a writer may have in flight
RESEND_AFTER_S = 2.0  # no progress from the reader for this long: send the rest again
HEARTBEAT_S = 1.0
ACK_EVERY = 16


class CredentialsError(NoisylinkError):
    """The broker refused the username/password (or anonymous access)."""


class PeerTimeoutError(LinkError):
    """A role this one waits on has gone quiet."""


@dataclass(frozen=True)
class Broker:
    """Where the broker is and how to log in (the password is never printed)."""

    host: str
    port: int
    tls: bool = False
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ca_file: Path | None = None

    @classmethod
    def from_url(cls, url: str, username: str | None = None, password: str | None = None,
                 ca_file: Path | None = None) -> Broker:
        """``mqtt://host:port`` or ``mqtts://host:port`` (TLS); credentials from the
        arguments, else the URL, else ``NOISYLINK_MQTT_USERNAME``/``_PASSWORD``."""
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            raise NoisylinkError(f"--broker must look like mqtt://host:port or mqtts://host:port, "
                                 f"got {redact(url)!r}")
        try:
            port = parts.port or (8883 if parts.scheme == "mqtts" else 1883)
        except ValueError:
            raise NoisylinkError(f"--broker: bad port in {redact(url)!r}") from None
        username = username or (unquote(parts.username) if parts.username else None) \
            or os.environ.get(USERNAME_ENV) or None
        password = password or (unquote(parts.password) if parts.password else None) \
            or os.environ.get(PASSWORD_ENV) or None
        ca = ca_file or (Path(os.environ[CA_FILE_ENV]) if os.environ.get(CA_FILE_ENV) else None)
        return cls(parts.hostname, port, parts.scheme == "mqtts", username, password, ca)

    @property
    def url(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"

    @property
    def on_loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    def check_security(self, allow_anonymous: bool = False) -> None:
        """Anonymous access only to a broker on this machine, unless explicitly allowed."""
        if self.username is None and not self.on_loopback and not allow_anonymous:
            raise NoisylinkError(
                f"refusing anonymous access to {self.url}: give --username/--password "
                f"(or {USERNAME_ENV}/{PASSWORD_ENV}), or --allow-anonymous"
            )

    def tls_context(self) -> ssl.SSLContext | None:
        if not self.tls:
            return None
        try:
            return ssl.create_default_context(cafile=str(self.ca_file) if self.ca_file else None)
        except (OSError, ssl.SSLError) as exc:
            raise NoisylinkError(f"--ca-file {self.ca_file}: {exc}") from None


def redact(url: str) -> str:
    """The URL without its password."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return parts._replace(netloc=netloc).geturl()


@dataclass(frozen=True)
class Topics:
    run_id: str

    def frames(self, link: str) -> str:
        return f"noisylink/{self.run_id}/frames/{link}"

    def acks(self, link: str) -> str:
        return f"noisylink/{self.run_id}/acks/{link}"

    def status(self, role: str) -> str:
        return f"noisylink/{self.run_id}/status/{role}"

    @property
    def results(self) -> str:
        return f"noisylink/{self.run_id}/results"


class LinkWriter:
    """The writing end of one link: numbers messages and keeps them until acknowledged."""

    def __init__(self, endpoint: Endpoint, link: str):
        self.endpoint = endpoint
        self.link = link
        self.topic = endpoint.topics.frames(link)
        self.kept: dict[int, bytes] = {}
        self.next_n = 0
        self.consumed = 0  # the reader's next
        self.have = 0  # the reader has every message below this
        self.last_progress = time.monotonic()
        self.changed = asyncio.Event()
        self.reader_heard = False

    async def put(self, message: Message) -> None:
        while self.next_n - self.consumed >= WINDOW:
            self.changed.clear()
            await self.endpoint.wait(self.changed.wait(), self.link_peer)
        n = self.next_n
        self.next_n += 1
        self.kept[n] = wire.encode(message, n=n)
        await self.endpoint.publish(self.topic, self.kept[n])

    @property
    def link_peer(self) -> str:
        return "channel" if self.link == "tx" else "receiver"

    def on_ack(self, consumed: int, have: int) -> None:
        if not self.reader_heard:  # the reader has just subscribed: it missed what came before
            self.reader_heard = True
            self.resending = asyncio.ensure_future(self.resend())
        if have > self.have or consumed > self.consumed:
            self.last_progress = time.monotonic()
        self.have = max(self.have, have)
        self.consumed = max(self.consumed, consumed)
        for n in [n for n in self.kept if n < self.consumed]:
            del self.kept[n]
        self.changed.set()

    async def resend(self) -> None:
        """Send again what the reader has not received."""
        for n in sorted(n for n in self.kept if n >= self.have):
            await self.endpoint.publish(self.topic, self.kept[n])
        self.last_progress = time.monotonic()

    @property
    def outstanding(self) -> bool:
        return self.consumed < self.next_n

    async def drain(self) -> None:
        """Wait until the reader has consumed everything written (or said it is done)."""
        while self.outstanding and self.link_peer not in self.endpoint.done_peers:
            self.changed.clear()
            await self.endpoint.wait(self.changed.wait(), self.link_peer)


class LinkReader:
    """The reading end of one link: in order, once each, acknowledging as it goes."""

    def __init__(self, endpoint: Endpoint, link: str):
        self.endpoint = endpoint
        self.link = link
        self.waiting: dict[int, Message] = {}
        self.next = 0
        self.have = 0
        self.arrived = asyncio.Event()
        self.acked_at = 0

    @property
    def link_peer(self) -> str:
        return "transmitter" if self.link == "tx" else "channel"

    def on_message(self, payload: bytes) -> None:
        message, envelope = wire.decode(payload)
        n = int(envelope["n"])
        if n < self.next or n in self.waiting:
            return  # a duplicate (resent, or QoS 1 delivered it twice)
        self.waiting[n] = message
        while self.have in self.waiting or self.have < self.next:
            self.have += 1
        self.arrived.set()

    async def get(self) -> Message:
        while self.next not in self.waiting:
            self.arrived.clear()
            await self.endpoint.wait(self.arrived.wait(), self.link_peer)
        message = self.waiting.pop(self.next)
        self.next += 1
        if self.next - self.acked_at >= ACK_EVERY or isinstance(message, Finished):
            await self.ack()
        return message

    async def ack(self) -> None:
        self.acked_at = self.next
        body = json.dumps({"next": self.next, "have": self.have}).encode()
        await self.endpoint.publish(self.endpoint.topics.acks(self.link), body)


class Endpoint:
    """One role's connection: reconnects, heartbeats, and the links it reads and writes."""

    def __init__(self, broker: Broker, run_id: str, role: str, *, reads: tuple[str, ...] = (),
                 writes: tuple[str, ...] = (), peers: tuple[str, ...] = (),
                 timeout: float = 60.0):
        self.broker = broker
        self.topics = Topics(run_id)
        self.role = role
        self.timeout = timeout
        self.readers = {link: LinkReader(self, link) for link in reads}
        self.writers = {link: LinkWriter(self, link) for link in writes}
        self.peers = peers
        self.seen = {peer: time.monotonic() for peer in peers}
        self.client: Any = None
        self.connected = asyncio.Event()
        self.failure: BaseException | None = None
        self.failed = asyncio.Event()
        self.done_peers: set[str] = set()

    async def publish(self, topic: str, payload: bytes, qos: int = QOS,
                      retain: bool = False) -> None:
        """Publish if connected; a failure here is repaired by the link's resending."""
        import aiomqtt

        client = self.client
        if client is None:
            return
        with contextlib.suppress(aiomqtt.MqttError):
            await client.publish(topic, payload, qos=qos, retain=retain)

    async def wait(self, awaitable: Awaitable[Any], peer: str) -> Any:
        """Await ``awaitable`` unless the connection fails or ``peer`` goes quiet."""
        task = asyncio.ensure_future(awaitable)
        failed = asyncio.ensure_future(self.failed.wait())
        try:
            while True:
                done, _ = await asyncio.wait({task, failed}, timeout=HEARTBEAT_S,
                                             return_when=asyncio.FIRST_COMPLETED)
                if task in done:
                    return task.result()
                if failed in done:
                    raise self.failure or LinkError("connection failed")
                quiet = time.monotonic() - self.seen.get(peer, time.monotonic())
                if peer in self.seen and quiet > self.timeout:
                    raise PeerTimeoutError(
                        f"no word from the {peer} for {quiet:.0f} s (timeout {self.timeout:g} s); "
                        f"is `noisylink {peer_command(peer)}` running for run "
                        f"{self.topics.run_id!r} on {self.broker.url}?"
                    )
        finally:
            for pending in (task, failed):
                if not pending.done():
                    pending.cancel()

    async def run(self, body: Callable[[Endpoint], Awaitable[None]]) -> None:
        """Connect, run ``body`` with the links, and keep the connection up meanwhile."""
        network = asyncio.create_task(self._network(), name=f"{self.role}-network")
        try:
            await self.wait(self.connected.wait(), "broker")
            await body(self)
            for writer in self.writers.values():
                await writer.drain()
            for reader in self.readers.values():
                await reader.ack()
            await self.publish(self.topics.status(self.role), self._status("done"), qos=QOS)
        finally:
            network.cancel()
            await asyncio.gather(network, return_exceptions=True)

    def _status(self, state: str) -> bytes:
        return json.dumps({"role": self.role, "state": state, "t": time.time()}).encode()

    async def _network(self) -> None:
        try:
            await self._connect_forever()
        except BaseException as exc:  # handed to whoever waits
            if not isinstance(exc, asyncio.CancelledError):
                self.failure = exc
                self.failed.set()
            raise

    async def _connect_forever(self) -> None:
        import aiomqtt

        down_since: float | None = None
        delay = 0.1
        while True:
            try:
                async with aiomqtt.Client(
                    self.broker.host, self.broker.port, username=self.broker.username,
                    password=self.broker.password, tls_context=self.broker.tls_context(),
                    identifier=f"noisylink-{self.role}-{uuid.uuid4().hex[:12]}",
                    keepalive=5, timeout=10, logger=PAHO_LOG,
                ) as client:
                    await self._subscribe(client)
                    self.client = client
                    self.connected.set()
                    down_since, delay = None, 0.1
                    await self._on_connected()
                    await self._serve(client)
            except aiomqtt.MqttCodeError as exc:
                if _refused_credentials(exc):
                    who = f"user {self.broker.username!r}" if self.broker.username else "anonymous"
                    raise CredentialsError(
                        f"broker {self.broker.url} refused the credentials ({who}): {exc}"
                    ) from None
                self._disconnected()
            except aiomqtt.MqttError:
                self._disconnected()
            down_since = down_since or time.monotonic()
            if time.monotonic() - down_since > self.timeout:
                raise LinkError(f"cannot reach the broker at {self.broker.url} for "
                                f"{self.timeout:g} s")
            await asyncio.sleep(delay)
            delay = min(1.0, delay * 2)

    def _disconnected(self) -> None:
        self.client = None
        self.connected.clear()

    async def _subscribe(self, client: Any) -> None:
        for link in self.readers:
            await client.subscribe(self.topics.frames(link), qos=QOS)
        for link in self.writers:
            await client.subscribe(self.topics.acks(link), qos=QOS)
        await client.subscribe(self.topics.status("+"), qos=0)

    async def _on_connected(self) -> None:
        for reader in self.readers.values():
            await reader.ack()
        for writer in self.writers.values():
            await writer.resend()

    async def _serve(self, client: Any) -> None:
        ticker = asyncio.create_task(self._tick())
        try:
            async for message in client.messages:
                self._dispatch(str(message.topic), bytes(message.payload))
        finally:
            ticker.cancel()
            await asyncio.gather(ticker, return_exceptions=True)

    def _dispatch(self, topic: str, payload: bytes) -> None:
        for link, reader in self.readers.items():
            if topic == self.topics.frames(link):
                with contextlib.suppress(wire.WireError):  # not ours: ignore
                    reader.on_message(payload)
                return
        for link, writer in self.writers.items():
            if topic == self.topics.acks(link):
                try:
                    ack = json.loads(payload)
                    writer.on_ack(int(ack["next"]), int(ack["have"]))
                except (ValueError, KeyError, TypeError):
                    pass
                return
        if topic.startswith(self.topics.status("")):
            try:
                status = json.loads(payload)
            except ValueError:
                return
            role = status.get("role")
            if role in self.seen:
                self.seen[role] = time.monotonic()
            if status.get("state") == "done":
                self.done_peers.add(role)

    async def _tick(self) -> None:
        while True:
            await self.publish(self.topics.status(self.role), self._status("running"), qos=0)
            for reader in self.readers.values():
                await reader.ack()
            now = time.monotonic()
            for writer in self.writers.values():
                if writer.outstanding and writer.kept and now - writer.last_progress > \
                        RESEND_AFTER_S:
                    await writer.resend()
            await asyncio.sleep(HEARTBEAT_S)


def _refused_credentials(exc: Any) -> bool:
    rc = getattr(exc, "rc", None)
    value = getattr(rc, "value", rc)
    return value in (4, 5, 134, 135)


def peer_command(peer: str) -> str:
    return {"transmitter": "tx", "channel": "channel", "receiver": "rx"}.get(peer, peer)
