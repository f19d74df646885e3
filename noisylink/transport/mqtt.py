"""The link's roles joined by an MQTT broker, with no message lost, duplicated or reordered,
and no message of another run (or of nobody's run) ever counted.

Topics, per run id ``R``:

| topic | from → to | payload | QoS |
| --- | --- | --- | --- |
| ``noisylink/R/run`` | any role ↔ receiver | probes, and the receiver's answers | 0 |
| ``noisylink/R/frames/tx`` | transmitter → channel | link messages (``wire``) | 1 |
| ``noisylink/R/frames/rx`` | channel → receiver | link messages (``wire``) | 1 |
| ``noisylink/R/acks/tx``, ``.../acks/rx`` | reader → writer of that link | JSON ack | 1 |
| ``noisylink/R/status/ROLE`` | each role → all | JSON status every second | 0 |
| ``noisylink/R/results`` | receiver → anyone | one JSON row per finished stream | 1 |

Every payload is sealed with the run's fresh token, and signed when the roles share a key
(``session``); bodies are parsed only through ``schema``. A message that is retained, of
another run, unsigned or wrongly signed, malformed, or inconsistent with the plan
(``admission``) is dropped and counted, never acted on and never fatal. The receiver makes the
token and gives it in answer to probes; the transmitter and channel join it (or all three get
it from the one-command run). A role that finds its place taken in the run (another receiver
on the run id, a second transmitter, a peer running another scenario) stops, the later of the
two, with a ``RunClashError``.

QoS 1 alone gives at-least-once delivery only while the broker is up. On top of it each link
numbers its messages: the reader delivers them in order, drops duplicates and acknowledges what
it has consumed (``next``) and received (``have``); the writer keeps what is not yet
acknowledged, so the window also gives backpressure. After a reconnection, when the reader is
first heard without the first message, or when the reader has received nothing new for a while,
the writer sends again what the reader has not got. A broker restart (even one that forgets
every session) therefore loses nothing.

Since the links' own acknowledgements, not the broker's PUBACKs, decide what is kept and sent
again, a writer does not wait for a PUBACK before its next message: every message within the
window is in flight at once (``Endpoint.send``), which is what lets an MQTT run keep pace
with the in-process run (``benchmarks/mqtt_throughput.py``).

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
import secrets
import socket
import ssl
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from noisylink.errors import LinkError, NoisylinkError
from noisylink.link.messages import Finished, Message
from noisylink.transport import schema, wire
from noisylink.transport.session import (
    NO_TOKEN,
    Rejected,
    Rejections,
    RunClashError,
    Seal,
    new_token,
)

QOS = 1
# paho's own socket errors would reach stderr through logging's last resort; the endpoint
# reports what matters itself (reconnects are silent, failures are one line).
PAHO_LOG = logging.getLogger("noisylink.mqtt.paho")
PAHO_LOG.setLevel(logging.CRITICAL)
USERNAME_ENV = "NOISYLINK_MQTT_USERNAME"
PASSWORD_ENV = "NOISYLINK_MQTT_PASSWORD"
CA_FILE_ENV = "NOISYLINK_MQTT_CA_FILE"
WINDOW = 256  # unacknowledged messages a writer may have in flight
BATCH_BYTES = 64 << 10  # link messages smaller than this may travel several to a publish
SOCKET_BUFFER_BYTES = 1 << 20  # a frame's tens of kilobytes leave in one send (see Endpoint)
GATHER_S = 0.002  # a writer gathers small messages this long before sending them together
RESEND_AFTER_S = 2.0  # no progress from the reader for this long: send the rest again
HEARTBEAT_S = 1.0
ACK_EVERY = 16
# With the kernel's 16 KiB default send buffer paho writes a large message in many partial
# sends, copying the rest of it each time; one buffer of a megabyte takes it in one.
SOCKET_OPTIONS = ((socket.SOL_SOCKET, socket.SO_SNDBUF, SOCKET_BUFFER_BYTES),
                  (socket.SOL_SOCKET, socket.SO_RCVBUF, SOCKET_BUFFER_BYTES))
STOP_ATTEMPTS = 5
CLAIM_WAIT_S = 2.0  # listen this long for another process in the same place before taking it


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

    @property
    def run(self) -> str:
        return f"noisylink/{self.run_id}/run"


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
        self.unsent: list[int] = []  # kept, gathered to go out together
        self.unsent_bytes = 0
        self.flushing: asyncio.TimerHandle | None = None

    async def put(self, message: Message) -> None:
        """Number and keep ``message``, and send it: a large one at once, small ones
        gathered for at most ``GATHER_S`` (or ``BATCH_BYTES``) and sent as one batch."""
        while self.next_n - self.consumed >= WINDOW:
            self.changed.clear()
            await self.endpoint.wait(self.changed.wait(), self.link_peer)
        n = self.next_n
        self.next_n += 1
        self.kept[n] = wire.encode(message, n=n)
        self.unsent.append(n)
        self.unsent_bytes += len(self.kept[n])
        if self.unsent_bytes >= BATCH_BYTES or len(self.unsent) >= wire.MAX_BATCH:
            self.flush()
        elif self.flushing is None:
            self.flushing = asyncio.get_running_loop().call_later(GATHER_S, self.flush)

    def flush(self) -> None:
        """Send what ``put`` has gathered."""
        if self.flushing is not None:
            self.flushing.cancel()
            self.flushing = None
        numbers, self.unsent, self.unsent_bytes = self.unsent, [], 0
        self._send(numbers)

    def _send(self, numbers: list[int]) -> None:
        """Send these kept messages in order, runs of small ones as batches."""
        run: list[bytes] = []
        size = 0
        for n in numbers:
            data = self.kept.get(n)
            if data is None:  # consumed meanwhile
                continue
            if run and (size + len(data) > BATCH_BYTES or len(run) >= wire.MAX_BATCH):
                self._send_run(run)
                run, size = [], 0
            run.append(data)
            size += len(data)
        if run:
            self._send_run(run)

    def _send_run(self, run: list[bytes]) -> None:
        self.endpoint.send(self.topic, run[0] if len(run) == 1 else wire.encode_batch(run))

    @property
    def link_peer(self) -> str:
        return "channel" if self.link == "tx" else "receiver"

    def on_ack(self, body: bytes) -> None:
        try:
            ack = schema.ack(body)
        except schema.SchemaError as exc:
            raise Rejected("malformed", str(exc)) from None
        if ack.have > self.next_n:
            raise Rejected("inconsistent", f"acknowledges {ack.have} of {self.next_n} messages")
        if ack.have > self.have or ack.next > self.consumed:
            self.last_progress = time.monotonic()
        self.have = max(self.have, ack.have)
        self.consumed = max(self.consumed, ack.next)
        for n in [n for n in self.kept if n < self.consumed]:
            del self.kept[n]
        if not self.reader_heard:
            self.reader_heard = True
            if self.have == 0:  # it may have subscribed after the first messages went out
                self.resend()
        self.changed.set()

    def resend(self) -> None:
        """Send again what the reader has not received (what is gathered included)."""
        if self.flushing is not None:
            self.flushing.cancel()
            self.flushing = None
        self.unsent, self.unsent_bytes = [], 0
        self._send(sorted(n for n in self.kept if n >= self.have))
        self.last_progress = time.monotonic()

    @property
    def outstanding(self) -> bool:
        return self.consumed < self.next_n

    def stalled(self, now: float) -> bool:
        """Whether to send the rest again: the reader has made no progress for a while.
        Before the reader is first heard, sending is in vain: its first acknowledgement
        brings everything it lacks (``on_ack``: when it has not got the first message yet;
        once it has, it was listening before all the later ones went out)."""
        return self.reader_heard and self.outstanding and bool(self.kept) and \
            now - self.last_progress > RESEND_AFTER_S

    async def drain(self) -> None:
        """Wait until the reader has consumed everything written (or said it is done)."""
        while self.outstanding and self.link_peer not in self.endpoint.done_peers:
            self.changed.clear()
            await self.endpoint.wait(self.changed.wait(), self.link_peer)


Admit = Callable[[Message], "str | None"]


class LinkReader:
    """The reading end of one link: in order, once each, acknowledging as it goes. Messages
    that ``admit`` refuses (they do not fit the run's plan) are dropped and counted."""

    def __init__(self, endpoint: Endpoint, link: str, admit: Admit | None = None):
        self.endpoint = endpoint
        self.link = link
        self.admit = admit
        self.waiting: dict[int, Message] = {}
        self.next = 0
        self.have = 0
        self.arrived = asyncio.Event()
        self.acked_at = 0
        self.ready: Message | None = None  # taken by ``empty``, given by the next get

    @property
    def link_peer(self) -> str:
        return "transmitter" if self.link == "tx" else "channel"

    def on_message(self, payload: bytes) -> None:
        """Take in one message or a batch (refused whole if any of it is malformed or
        out of range)."""
        try:
            messages = wire.decode_all(payload)
        except wire.WireError as exc:
            raise Rejected("malformed", str(exc)) from None
        for _, envelope in messages:
            if envelope["n"] >= self.next + 2 * WINDOW:
                raise Rejected("inconsistent", f"message {envelope['n']} while expecting "
                                               f"{self.next}")
        for message, envelope in messages:
            n = envelope["n"]
            if n >= self.next and n not in self.waiting:  # else a duplicate (resent)
                self.waiting[n] = message
        while self.have in self.waiting or self.have < self.next:
            self.have += 1
        self.arrived.set()

    async def get(self) -> Message:
        while (message := self._take()) is None:
            self.arrived.clear()
            await self.endpoint.wait(self.arrived.wait(), self.link_peer)
        return message

    def get_nowait(self) -> Message:
        """The next message as ``get`` gives it if it has arrived, else
        ``asyncio.QueueEmpty``: with ``empty``, what a role that takes every message already
        waiting (``link.roles.next_messages``) uses of an ``asyncio.Queue``."""
        message = self._take()
        if message is None:
            raise asyncio.QueueEmpty
        return message

    def empty(self) -> bool:
        """Whether ``get_nowait`` would raise (a next message that ``admit`` refuses is
        dropped here and does not count)."""
        if self.ready is None:
            self.ready = self._take()
        return self.ready is None

    def _take(self) -> Message | None:
        """The next admitted message, or None while the next has not arrived;
        acknowledges as it goes, drops and counts what ``admit`` refuses."""
        if self.ready is not None:
            message, self.ready = self.ready, None
            return message
        while self.next in self.waiting:
            message = self.waiting.pop(self.next)
            self.next += 1
            if self.next - self.acked_at >= ACK_EVERY or isinstance(message, Finished):
                self.ack()
            reason = self.admit(message) if self.admit is not None else None
            if reason is None:
                return message
            self.endpoint.rejections.add(Rejected("inconsistent", reason),
                                         self.endpoint.topics.frames(self.link))
        return None

    def ack(self) -> None:
        self.acked_at = self.next
        body = json.dumps({"next": self.next, "have": self.have}).encode()
        self.endpoint.send(self.endpoint.topics.acks(self.link), body)


@dataclass(frozen=True)
class RunIdentity:
    """Who a role is in which run: the run id, the run's token (None: the receiver makes a
    fresh one and announces it, the others join it), the shared key, and what tells this
    role apart from another process that claims the same place."""

    run_id: str
    role: str
    scenario: str  # fingerprint of the scenario and its images: every role must agree
    token: bytes | None = None
    key: bytes | None = field(default=None, repr=False)
    instance: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    since: float = field(default_factory=time.time)


def _stderr_line(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


class Endpoint:
    """One role's connection: the run it belongs to, reconnects, heartbeats, and the links it
    reads and writes. Everything it receives is opened (``session.Seal``), checked against
    the run token and parsed by ``schema`` before use; what fails is dropped and counted."""

    def __init__(self, broker: Broker, identity: RunIdentity, *, reads: tuple[str, ...] = (),
                 writes: tuple[str, ...] = (), peers: tuple[str, ...] = (),
                 timeout: float = 60.0, admit: Callable[[str], Admit] | None = None,
                 report: Callable[[str], None] = _stderr_line):
        self.broker = broker
        self.identity = identity
        self.topics = Topics(identity.run_id)
        self.role = identity.role
        self.timeout = timeout
        self.seal = Seal(identity.key)
        self.token = identity.token
        self.nonce = secrets.token_hex(8)  # this role's probe: answers to it are fresh
        self.joined = asyncio.Event()
        self.rivals: list[str] = []
        self.answering: set[asyncio.Task[None]] = set()
        self.sending: set[asyncio.Future[None]] = set()  # publishes not yet acknowledged
        # the receiver's view of who serves each other role: (since, instance, last heard)
        self.members: dict[str, tuple[float, str, float]] = {}
        self.rejections = Rejections(identity.role, report)
        self.readers = {link: LinkReader(self, link, admit(link) if admit else None)
                        for link in reads}
        self.writers = {link: LinkWriter(self, link) for link in writes}
        self.peers = peers
        self.seen = {peer: time.monotonic() for peer in peers}
        self.client: Any = None
        self.connected = asyncio.Event()
        self.failure: BaseException | None = None
        self.failed = asyncio.Event()
        self.done_peers: set[str] = set()
        self.state = "running"  # what the heartbeats say; "done" once the body has finished
        self.closing = False

    async def publish(self, topic: str, payload: bytes, qos: int = QOS,
                      token: bytes | None = None) -> None:
        """Seal (with the run's token, or ``token``) and publish if connected and in a run; a
        failure here is repaired by the link's resending."""
        import aiomqtt

        client, token = self.client, token or self.token
        if client is None or token is None:
            return
        with contextlib.suppress(aiomqtt.MqttError):
            await client.publish(topic, self.seal.seal(topic, token, payload), qos=qos)

    def send(self, topic: str, payload: bytes) -> None:
        """Publish (QoS 1) without waiting for the broker's PUBACK: the links' own
        acknowledgements tell what has arrived, so a writer keeps up to its window of messages
        in flight instead of one. The publishes start in the order of the calls."""
        task = asyncio.ensure_future(self.publish(topic, payload))
        self.sending.add(task)
        task.add_done_callback(self.sending.discard)

    def fail(self, exc: BaseException) -> None:
        """Stop the role: whoever waits raises ``exc``."""
        if self.failure is None:
            self.failure = exc
        self.failed.set()

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
        """Connect, take this role's place in the run, run ``body`` with the links, and keep
        the connection up meanwhile."""
        network = asyncio.create_task(self._network(), name=f"{self.role}-network")
        try:
            await self.wait(self.connected.wait(), "broker")
            await self._take_place()
            await body(self)
            for writer in self.writers.values():
                await writer.drain()
            for reader in self.readers.values():
                reader.ack()
            self.state = "done"
            await self.publish(self.topics.status(self.role), self._status("done"), qos=QOS)
            await self._linger()
        except RunClashError:  # a receiver tells the roles that joined its token to stop too
            if self.role == "receiver":
                await self.publish(self.topics.status(self.role), self._status("clash"),
                                   qos=QOS)
            raise
        finally:
            await self._stop(network)

    async def _linger(self) -> None:
        """Stay connected, heartbeating "done" and acknowledging, until every peer is done too
        (at most ``timeout``): a last acknowledgement or "done" lost while the broker
        restarted is sent again, so no peer waits for it in vain."""
        deadline = time.monotonic() + self.timeout
        while not self.failed.is_set() and time.monotonic() < deadline:
            if all(peer in self.done_peers for peer in self.peers):
                return
            await asyncio.sleep(HEARTBEAT_S / 10)

    async def _stop(self, network: asyncio.Task[None]) -> None:
        """End the connection. aiomqtt's clean disconnect may turn the cancellation into an
        ``MqttError`` or wait for the broker without end: cancel again until it is over."""
        self.closing = True
        for _ in range(STOP_ATTEMPTS):
            network.cancel()
            done, _ = await asyncio.wait({network}, timeout=HEARTBEAT_S)
            if done:
                break
        if network.done() and not network.cancelled():
            network.exception()  # retrieved: a failure was already handed to whoever waited

    async def _take_place(self) -> None:
        """Agree on the run token, and make sure no other process plays this role in it.

        Roles ask who runs this run id with a probe carrying a fresh nonce; a receiver in
        the run answers with its token, and only an answer to one's own nonce counts, so a
        replayed or retained answer never does. A receiver that gets an answer is the later
        one and stops; else it makes the token. The transmitter and channel join the token
        of the receiver that answers them. Then each role listens a moment for another
        process in its own place. With a token given (the one-command run makes one),
        nobody waits. Receivers keep probing every beat of the run, and roles keep hearing
        each other's status, so a clash the first moments missed (a loaded machine answers
        late) still stops the later role."""
        if self.identity.token is not None:
            return
        if self.role == "receiver":
            await self.wait(self._probe(until=time.monotonic() + CLAIM_WAIT_S), "broker")
            if self.rivals:
                raise RunClashError(self._clash_line(f"its receiver {self.rivals[0]} answered"))
            self.token = new_token()
        else:
            await self.wait(self._probe(until=time.monotonic() + self.timeout), "broker")
            if not self.joined.is_set():
                raise PeerTimeoutError(
                    f"no receiver answered for run {self.topics.run_id!r} on "
                    f"{self.broker.url} in {self.timeout:g} s; is `noisylink rx` running "
                    f"with this run id?")
        await self.publish(self.topics.status(self.role), self._status("running"), qos=0)
        await self.wait(asyncio.sleep(CLAIM_WAIT_S), "broker")

    async def _probe(self, until: float) -> None:
        """Ask every beat until ``until`` (a joiner: until a receiver answers)."""
        body = json.dumps({"kind": "probe", "nonce": self.nonce}).encode()
        while time.monotonic() < until and not self.joined.is_set():
            await self.publish(self.topics.run, body, qos=0, token=NO_TOKEN)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.joined.wait(), HEARTBEAT_S)

    def _clash_line(self, other: str) -> str:
        return (f"run id {self.topics.run_id!r} on {self.broker.url} is in use by another "
                f"run ({other}); give this run its own --run-id")

    async def _answer(self, nonce: str) -> None:
        """The token (in the seal), and which process serves each role now, so a second
        transmitter or channel knows at once that its place is taken."""
        now = time.monotonic()
        members = {role: instance for role, (_, instance, heard) in self.members.items()
                   if now - heard <= self.timeout}
        body = json.dumps({"kind": "answer", "nonce": nonce, "instance": self.identity.instance,
                           "since": self.identity.since, "scenario": self.identity.scenario,
                           "members": members}).encode()
        await self.publish(self.topics.run, body, qos=0)

    def _status(self, state: str) -> bytes:
        return json.dumps({"role": self.role, "instance": self.identity.instance,
                           "state": state, "since": self.identity.since,
                           "scenario": self.identity.scenario}).encode()

    def _is_later_than(self, since: float, instance: str) -> bool:
        return (self.identity.since, self.identity.instance) > (since, instance)

    async def _network(self) -> None:
        try:
            await self._connect_forever()
        except BaseException as exc:  # handed to whoever waits
            if not isinstance(exc, asyncio.CancelledError):
                self.fail(exc)
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
                    keepalive=5, timeout=10, logger=PAHO_LOG, max_inflight_messages=WINDOW,
                    socket_options=SOCKET_OPTIONS,
                ) as client:
                    await self._subscribe(client)
                    self.client = client
                    self.connected.set()
                    down_since, delay = None, 0.1
                    self._on_connected()
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
            if self.closing:  # aiomqtt may turn a cancellation into MqttError on the way out
                return
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
        await client.subscribe(self.topics.run, qos=0)

    def _on_connected(self) -> None:
        for reader in self.readers.values():
            reader.ack()
        for writer in self.writers.values():
            writer.resend()

    async def _serve(self, client: Any) -> None:
        ticker = asyncio.create_task(self._tick())
        try:
            async for message in client.messages:
                self.dispatch(str(message.topic), bytes(message.payload), bool(message.retain))
        finally:
            ticker.cancel()
            await asyncio.gather(ticker, return_exceptions=True)

    def dispatch(self, topic: str, payload: bytes, retained: bool = False) -> None:
        """Act on one message from the broker, or drop and count it; never raises."""
        try:
            if retained:
                raise Rejected("retained")
            token, body = self.seal.open(topic, payload)
            if topic == self.topics.run:
                self._on_run_topic(token, body)
            elif self.token is None:
                return  # not in a run yet: the link's resending brings it again
            elif token != self.token:
                raise Rejected("foreign")
            else:
                self._on_message(topic, body)
        except Rejected as rejected:
            self.rejections.add(rejected, topic)

    def _on_message(self, topic: str, body: bytes) -> None:
        for link, reader in self.readers.items():
            if topic == self.topics.frames(link):
                reader.on_message(body)
                return
        for link, writer in self.writers.items():
            if topic == self.topics.acks(link):
                writer.on_ack(body)
                return
        if topic.startswith(self.topics.status("")):
            self._on_status(body)

    def _on_status(self, body: bytes) -> None:
        try:
            status = schema.status(body)
        except schema.SchemaError as exc:
            raise Rejected("malformed", str(exc)) from None
        if status.role == self.role:
            if status.instance != self.identity.instance and \
                    self._is_later_than(status.since, status.instance):
                self.fail(RunClashError(self._clash_line(
                    f"another {self.role} serves it already")))
            return
        if status.scenario != self.identity.scenario:
            self.fail(RunClashError(self._clash_line(
                f"its {status.role} runs another scenario or other images")))
            return
        if status.state == "clash" and status.role == "receiver":
            self.fail(RunClashError(self._clash_line("our receiver found it")))
            return
        if status.role in self.seen:
            self.seen[status.role] = time.monotonic()
        member = self.members.get(status.role)
        if member is None or (status.since, status.instance) <= member[:2]:
            self.members[status.role] = (status.since, status.instance, time.monotonic())
        if status.state == "done":
            self.done_peers.add(status.role)

    def _on_run_topic(self, token: bytes, body: bytes) -> None:
        """A probe (answered by the receiver once it holds the token) or an answer (counted
        only when it answers this role's own probe)."""
        try:
            message = schema.run_message(body)
        except schema.SchemaError as exc:
            raise Rejected("malformed", str(exc)) from None
        if isinstance(message, schema.Probe):
            if self.role == "receiver" and self.token is not None:
                task = asyncio.ensure_future(self._answer(message.nonce))
                self.answering.add(task)
                task.add_done_callback(self.answering.discard)
            return
        if message.nonce != self.nonce or message.instance == self.identity.instance:
            return
        if token == NO_TOKEN:
            raise Rejected("malformed", "an answer without a token")
        if self.role == "receiver":
            if self.token is None:
                self.rivals.append(message.instance)
            elif token != self.token and self._is_later_than(message.since, message.instance):
                self.fail(RunClashError(self._clash_line(
                    f"its receiver {message.instance} answered")))
        elif self.token is None:
            if message.scenario != self.identity.scenario:
                self.fail(RunClashError(self._clash_line(
                    "its receiver runs another scenario or other images")))
                return
            if message.members.get(self.role, self.identity.instance) != self.identity.instance:
                self.fail(RunClashError(self._clash_line(
                    f"another {self.role} serves it already")))
                return
            self.token = token
            self.joined.set()

    async def _tick(self) -> None:
        probe = json.dumps({"kind": "probe", "nonce": self.nonce}).encode()
        while True:
            if self.role == "receiver" and self.token is not None:
                await self.publish(self.topics.run, probe, qos=0, token=NO_TOKEN)
            await self.publish(self.topics.status(self.role), self._status(self.state), qos=0)
            for reader in self.readers.values():
                reader.ack()
            now = time.monotonic()
            for writer in self.writers.values():
                if writer.stalled(now):
                    writer.resend()
            await asyncio.sleep(HEARTBEAT_S)


def _refused_credentials(exc: Any) -> bool:
    rc = getattr(exc, "rc", None)
    value = getattr(rc, "value", rc)
    return value in (4, 5, 134, 135)


def peer_command(peer: str) -> str:
    return {"transmitter": "tx", "channel": "channel", "receiver": "rx"}.get(peer, peer)
