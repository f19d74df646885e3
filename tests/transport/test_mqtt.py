"""The link over MQTT: message encoding, reliable links, and whole runs through a real broker
(mosquitto where installed, else the embedded amqtt broker): same results as in one process,
a broker restart mid-run, a role that dies, wrong credentials, TLS."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from noisylink.codecs.classical import PictureSideInfo
from noisylink.codecs.diffusion.codecs import DiffusionSideInfo
from noisylink.errors import NoisylinkError
from noisylink.link.frames import FrameHeader
from noisylink.link.messages import (
    Finished,
    FrameOnAir,
    FrameReceived,
    StreamEnd,
    StreamId,
    StreamStart,
)
from noisylink.link.runner import run_scenario
from noisylink.results.file import read_rows
from noisylink.results.row import TIMING_COLUMNS
from noisylink.scenarios import parse_scenario
from noisylink.transport import wire
from noisylink.transport.brokers import mosquitto_binary, start_broker
from noisylink.transport.mqtt import (
    ACK_EVERY,
    BATCH_BYTES,
    RESEND_AFTER_S,
    WINDOW,
    Broker,
    Endpoint,
    LinkReader,
    RunIdentity,
    redact,
)
from noisylink.transport.session import Rejected, Seal, new_token

KINDS = ["mosquitto", "amqtt"] if mosquitto_binary() else ["amqtt"]

SCENARIO = {
    "name": "mqtt-small",
    "seed": 9,
    "images": {"source": "samples", "resize": 48, "size": 48, "limit": 2},
    "codec": {"name": "jpeg", "quality": [50, 80]},
    "frames": {"payload_bytes": 256, "header": "inband", "on_crc_fail": "deliver"},
    "ecc": [{"name": "none"}, {"name": "rs", "k": 223}],
    "modulation": {"name": "qpsk"},
    "channel": {"name": "awgn", "esn0_db": [6.0, 12.0]},
    "trials": 2,
}


# --- wire ---------------------------------------------------------------------------------------


def test_every_message_kind_survives_the_wire_bit_for_bit() -> None:
    rng = np.random.default_rng(0)
    stream = StreamId(3, 1, 4)
    header = FrameHeader(77, 2, 5, 256)
    messages = [
        StreamStart(stream, 1234, DiffusionSideInfo(8, 8, 3, "robust", "prior-é", 64, 4, 3, 0,
                                                    2**40, 8), 5, 0.25, b"\x00\xffpayload"),
        FrameOnAir(stream, 2, header, rng.integers(0, 2, 999).astype(np.uint8)),
        FrameOnAir(stream, 3, None, (rng.normal(size=40) + 1j * rng.normal(size=40))),
        FrameReceived(stream, 2, header, rng.normal(size=(3, 7)), rng.random(7), 11),
        FrameReceived(stream, 3, None, rng.normal(size=16).astype(np.float32), 0.125, 0),
        FrameReceived(stream, 4, None, np.zeros(0), None, 0),
        StreamEnd(stream),
        Finished(),
    ]
    for index, message in enumerate(messages):
        decoded, envelope = wire.decode(wire.encode(message, n=index))
        assert envelope == {"n": index}
        assert type(decoded) is type(message)
        for name, value in vars(message).items():
            got = getattr(decoded, name)
            if isinstance(value, np.ndarray):
                assert got.dtype == value.dtype and got.shape == value.shape
                assert got.tobytes() == value.tobytes()
            else:
                assert got == value


def test_wire_rejects_what_is_not_a_message() -> None:
    data = wire.encode(
        StreamStart(StreamId(0, 0, 0), 8, PictureSideInfo(8, 8, 1), 1, 0.0, b"abcdef"), n=0
    )
    for bad in (b"", b"\x00\x00", data[:-3], b"\x00\x00\x00\x02{}", b"\x00\x00\x00\x01x"):
        with pytest.raises(wire.WireError):
            wire.decode(bad)


# --- broker URLs and security ------------------------------------------------------------------


def test_broker_urls_credentials_and_redaction(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOISYLINK_MQTT_USERNAME", raising=False)
    monkeypatch.delenv("NOISYLINK_MQTT_PASSWORD", raising=False)
    plain = Broker.from_url("mqtt://127.0.0.1:1884")
    assert (plain.host, plain.port, plain.tls, plain.username) == ("127.0.0.1", 1884, False, None)
    assert Broker.from_url("mqtts://example.org").port == 8883
    inline = Broker.from_url("mqtt://bob:s%40cret@example.org:1883")
    assert (inline.username, inline.password) == ("bob", "s@cret")
    assert "s@cret" not in repr(inline) and "cret" not in redact("mqtt://bob:s%40cret@h:1")
    monkeypatch.setenv("NOISYLINK_MQTT_USERNAME", "env-user")
    monkeypatch.setenv("NOISYLINK_MQTT_PASSWORD", "env-pass")
    from_env = Broker.from_url("mqtt://example.org")
    assert (from_env.username, from_env.password) == ("env-user", "env-pass")
    assert Broker.from_url("mqtt://example.org", "opt", "pw").username == "opt"
    for bad in ("http://x:1", "mqtt://", "mqtt://h:notaport"):
        with pytest.raises(NoisylinkError, match="--broker"):
            Broker.from_url(bad)


def test_anonymous_access_only_on_loopback_unless_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOISYLINK_MQTT_USERNAME", raising=False)
    Broker.from_url("mqtt://127.0.0.1:1883").check_security()
    Broker.from_url("mqtt://localhost:1883").check_security()
    remote = Broker.from_url("mqtt://10.1.2.3:1883")
    with pytest.raises(NoisylinkError, match="refusing anonymous access"):
        remote.check_security()
    remote.check_security(allow_anonymous=True)
    Broker.from_url("mqtt://u:p@10.1.2.3:1883").check_security()


# --- the reliable link, without a network -----------------------------------------------------


async def test_link_reader_delivers_in_order_once_each() -> None:
    endpoint = Endpoint(Broker.from_url("mqtt://127.0.0.1:1"), RunIdentity("r", "receiver", "s"),
                        reads=("rx",), peers=("channel",), timeout=5)
    reader: LinkReader = endpoint.readers["rx"]
    messages = [StreamEnd(StreamId(0, 0, i)) for i in range(6)]
    for n in (2, 0, 0, 1, 5, 2, 3, 4, 4, 1):  # out of order, with duplicates
        reader.on_message(wire.encode(messages[n], n=n))
    got = [await asyncio.wait_for(reader.get(), 60) for _ in range(6)]
    assert got == messages
    assert reader.have == 6 and reader.next == 6
    reader.on_message(wire.encode(messages[3], n=3))  # late duplicate: ignored
    assert not reader.waiting


class PubackNeverComes:
    """A connected client whose broker takes every message and never acknowledges one."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes]] = []
        self.puback = asyncio.Event()

    async def publish(self, topic: str, payload: bytes, qos: int) -> None:
        self.sent.append((topic, payload))
        await self.puback.wait()

    def payloads(self, topic: str) -> list[list[int]]:
        """The sequence numbers of the link messages of each payload sent on ``topic``."""
        return [[envelope["n"] for _, envelope in wire.decode_all(Seal().open(t, p)[1])]
                for t, p in self.sent if t == topic]

    def numbers(self, topic: str) -> list[int]:
        """The sequence numbers of the link messages sent on ``topic``, in sending order."""
        return [n for payload in self.payloads(topic) for n in payload]


def offline_endpoint(role: str, **links: tuple[str, ...]) -> tuple[Endpoint, PubackNeverComes]:
    endpoint = Endpoint(Broker.from_url("mqtt://127.0.0.1:1"),
                        RunIdentity("r", role, "s", token=new_token()), timeout=600, **links)
    client = PubackNeverComes()
    endpoint.client = client
    return endpoint, client


async def settle(endpoint: Endpoint) -> None:
    """Let the publishes already started hand their messages to the client."""
    for _ in range(3):
        await asyncio.sleep(0)


async def acknowledge_all(endpoint: Endpoint, client: PubackNeverComes) -> None:
    client.puback.set()
    await asyncio.gather(*endpoint.sending)


async def test_a_writer_has_its_whole_window_in_flight_without_waiting_for_pubacks() -> None:
    endpoint, client = offline_endpoint("transmitter", writes=("tx",), peers=("channel",))
    writer = endpoint.writers["tx"]
    for i in range(WINDOW):
        await asyncio.wait_for(writer.put(StreamEnd(StreamId(0, 0, i))), 60)
    writer.flush()
    await settle(endpoint)
    topic = endpoint.topics.frames("tx")
    assert client.numbers(topic) == list(range(WINDOW))  # all of them, in order
    beyond = asyncio.ensure_future(writer.put(Finished()))
    await settle(endpoint)
    assert not beyond.done()  # the window is the backpressure: the reader must consume first
    writer.on_ack(json.dumps({"next": 1, "have": WINDOW}).encode())
    await asyncio.wait_for(beyond, 60)
    writer.flush()
    await settle(endpoint)
    assert client.numbers(topic) == list(range(WINDOW + 1))
    assert sorted(writer.kept) == list(range(1, WINDOW + 1))  # kept until consumed
    await acknowledge_all(endpoint, client)


async def test_a_writer_resends_nothing_before_its_reader_is_heard_then_what_it_lacks() -> None:
    endpoint, client = offline_endpoint("transmitter", writes=("tx",), peers=("channel",))
    writer = endpoint.writers["tx"]
    for i in range(4):
        await writer.put(StreamEnd(StreamId(0, 0, i)))
    writer.flush()
    late = time.monotonic() + 10 * RESEND_AFTER_S
    assert not writer.stalled(late)  # nobody listens yet: sending again would be in vain
    writer.on_ack(json.dumps({"next": 0, "have": 0}).encode())  # subscribed, nothing yet
    await settle(endpoint)
    assert client.numbers(endpoint.topics.frames("tx")) == [0, 1, 2, 3, 0, 1, 2, 3]
    assert writer.stalled(late)  # from now on, no progress for a while means send again
    await acknowledge_all(endpoint, client)


async def test_a_reader_that_got_the_first_message_gets_nothing_twice() -> None:
    endpoint, client = offline_endpoint("transmitter", writes=("tx",), peers=("channel",))
    writer = endpoint.writers["tx"]
    for i in range(4):
        await writer.put(StreamEnd(StreamId(0, 0, i)))
    writer.flush()
    writer.on_ack(json.dumps({"next": 0, "have": 2}).encode())  # 2 and 3 are on their way
    await settle(endpoint)
    assert client.numbers(endpoint.topics.frames("tx")) == [0, 1, 2, 3]
    assert writer.stalled(time.monotonic() + 10 * RESEND_AFTER_S)  # unless they never come
    writer.resend()
    await settle(endpoint)
    assert client.numbers(endpoint.topics.frames("tx")) == [0, 1, 2, 3, 2, 3]
    await acknowledge_all(endpoint, client)


async def test_small_messages_travel_together_and_a_large_one_alone_at_once() -> None:
    endpoint, client = offline_endpoint("transmitter", writes=("tx",), peers=("channel",))
    writer = endpoint.writers["tx"]
    stream = StreamId(0, 0, 0)
    for i in range(5):
        await writer.put(StreamEnd(StreamId(0, 0, i)))
    large = np.zeros(BATCH_BYTES // 16 + 1, complex)
    await writer.put(FrameOnAir(stream, 0, None, large))  # too large to wait for company
    await settle(endpoint)
    topic = endpoint.topics.frames("tx")
    assert client.payloads(topic) == [[0, 1, 2, 3, 4], [5]]
    await writer.put(Finished())
    writer.flush()
    await settle(endpoint)
    assert client.payloads(topic) == [[0, 1, 2, 3, 4], [5], [6]]
    await acknowledge_all(endpoint, client)


async def test_a_reader_takes_a_batch_in_order_once_each() -> None:
    endpoint, _ = offline_endpoint("receiver", reads=("rx",), peers=("channel",))
    reader = endpoint.readers["rx"]
    messages = [StreamEnd(StreamId(0, 0, i)) for i in range(6)]
    encoded = [wire.encode(message, n=n) for n, message in enumerate(messages)]
    reader.on_message(wire.encode_batch([encoded[n] for n in (3, 4, 5)]))
    reader.on_message(wire.encode_batch([encoded[n] for n in (0, 1, 3, 2)]))  # 3 again
    assert [await asyncio.wait_for(reader.get(), 60) for _ in messages] == messages
    with pytest.raises(Rejected, match="while expecting"):  # far ahead: the whole batch
        reader.on_message(wire.encode_batch([wire.encode(messages[0], n=n)
                                             for n in (6, 6 + 2 * WINDOW)]))
    assert not reader.waiting


async def test_a_reader_gives_what_has_arrived_without_waiting_as_a_queue_does() -> None:
    plan_says_no = StreamEnd(StreamId(9, 9, 9))
    endpoint = Endpoint(Broker.from_url("mqtt://127.0.0.1:1"), RunIdentity("r", "receiver", "s"),
                        reads=("rx",), peers=("channel",), timeout=600,
                        admit=lambda _: lambda m: "not planned" if m == plan_says_no else None)
    reader = endpoint.readers["rx"]
    messages = [StreamEnd(StreamId(0, 0, i)) for i in range(3)]
    sent = [messages[0], plan_says_no, messages[1], messages[2]]
    for n in (0, 1, 3):  # 2 has not arrived
        reader.on_message(wire.encode(sent[n], n=n))
    assert not reader.empty()
    assert reader.get_nowait() == messages[0]
    assert reader.empty()  # the refused message 1 is dropped, and 2 is missing
    with pytest.raises(asyncio.QueueEmpty):
        reader.get_nowait()
    reader.on_message(wire.encode(sent[2], n=2))
    assert not reader.empty()
    assert [reader.get_nowait(), await asyncio.wait_for(reader.get(), 60)] == messages[1:]
    assert reader.empty() and endpoint.rejections.as_dict() == {"inconsistent": 1}


async def test_a_reader_acknowledges_without_waiting_for_pubacks() -> None:
    endpoint, client = offline_endpoint("channel", reads=("tx",), peers=("transmitter",))
    reader = endpoint.readers["tx"]
    messages = [StreamEnd(StreamId(0, 0, i)) for i in range(2 * ACK_EVERY)]
    for n, message in enumerate(messages):
        reader.on_message(wire.encode(message, n=n))
    got = [await asyncio.wait_for(reader.get(), 60) for _ in messages]
    await settle(endpoint)
    assert got == messages
    acks = [json.loads(Seal().open(t, p)[1]) for t, p in client.sent]
    assert acks == [{"next": ACK_EVERY, "have": 2 * ACK_EVERY},
                    {"next": 2 * ACK_EVERY, "have": 2 * ACK_EVERY}]
    await acknowledge_all(endpoint, client)


# --- whole runs through a broker ---------------------------------------------------------------


def noisylink(*args: str, env: dict[str, str] | None = None, timeout: float = 600
              ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "noisylink", *args], capture_output=True,
                          text=True, timeout=timeout,
                          env=(env or os.environ) | {"OMP_NUM_THREADS": "1"})


def comparable(path: Path) -> list[dict[str, str]]:
    rows = [{k: v for k, v in r.items() if k not in TIMING_COLUMNS} for r in read_rows(path)]
    return sorted(rows, key=lambda r: (int(r["cell"]), r["image"], int(r["trial"])))


@pytest.fixture(scope="module")
def scenario_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("scenario") / "mqtt-small.yaml"
    path.write_text(yaml.safe_dump(SCENARIO))
    return path


@pytest.fixture(scope="module")
def in_process(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, str]]:
    out = tmp_path_factory.mktemp("in-process")
    return comparable(run_scenario(parse_scenario(SCENARIO, "test"), out).results_path)


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
def test_mqtt_run_equals_the_in_process_run(kind: str, tmp_path: Path, scenario_file: Path,
                                            in_process: list[dict[str, str]]) -> None:
    with start_broker(kind) as broker:  # type: ignore[arg-type]
        result = noisylink("run", str(scenario_file), "--transport", "mqtt", "--broker",
                           broker.url, "--out", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    assert comparable(tmp_path / "out" / "results.csv") == in_process


@pytest.mark.slow
def test_one_command_run_starts_and_stops_its_own_broker(tmp_path: Path, scenario_file: Path,
                                                         in_process: list[dict[str, str]]) -> None:
    result = noisylink("run", str(scenario_file), "--transport", "mqtt", "--out",
                       str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    assert comparable(tmp_path / "out" / "results.csv") == in_process
    leftovers = subprocess.run(["pgrep", "-f", "noisylink (rx|tx|channel) .*mqtt-small"],
                               capture_output=True, text=True)
    assert leftovers.stdout == ""


def start_roles(scenario_file: Path, url: str, out: Path, timeout: float,
                roles: tuple[str, ...] = ("rx", "channel", "tx"),
                env: dict[str, str] | None = None, extra: tuple[str, ...] = ()
                ) -> dict[str, subprocess.Popen[str]]:
    processes = {}
    for role in roles:
        out_option = ["--out", str(out)] if role == "rx" else []
        processes[role] = subprocess.Popen(
            [sys.executable, "-m", "noisylink", role, str(scenario_file), "--broker", url,
             "--run-id", "test-run", "--timeout", str(timeout), *out_option, *extra],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=(env or os.environ) | {"OMP_NUM_THREADS": "1"},
        )
    return processes


def wait_for_rows(results: Path, count: int, deadline_s: float = 600) -> int:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if results.exists():
            rows = len(results.read_text().splitlines()) - 1
            if rows >= count:
                return rows
        time.sleep(0.05)
    raise AssertionError(f"fewer than {count} rows after {deadline_s} s")


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
def test_broker_restart_mid_run_loses_and_repeats_nothing(
    kind: str, tmp_path: Path, scenario_file: Path, in_process: list[dict[str, str]]
) -> None:
    with start_broker(kind) as broker:  # type: ignore[arg-type]
        processes = start_roles(scenario_file, broker.url, tmp_path / "out", timeout=60)
        try:
            before = wait_for_rows(tmp_path / "out" / "results.csv", 8)
            assert before < len(in_process), "the restart should come mid-run"
            broker.restart()
            for role, process in processes.items():
                _, stderr = process.communicate(timeout=600)
                assert process.returncode == 0, f"{role}: {stderr}"
        finally:
            for process in processes.values():
                if process.poll() is None:
                    process.kill()
    assert comparable(tmp_path / "out" / "results.csv") == in_process


@pytest.mark.slow
def test_a_dead_role_makes_the_others_stop_with_a_clear_message(
    tmp_path: Path, scenario_file: Path
) -> None:
    with start_broker(KINDS[0]) as broker:  # type: ignore[arg-type]
        processes = start_roles(scenario_file, broker.url, tmp_path / "out", timeout=30)
        wait_for_rows(tmp_path / "out" / "results.csv", 2)
        processes["tx"].send_signal(signal.SIGKILL)
        outputs = {role: p.communicate(timeout=600) for role, p in processes.items()}
    rx_code, channel_code = processes["rx"].returncode, processes["channel"].returncode
    finished = len(read_rows(tmp_path / "out" / "results.csv"))
    if finished < 32:  # the kill landed before the end: the others must notice
        assert channel_code == 1, outputs["channel"]
        assert "no word from the transmitter" in outputs["channel"][1]
        assert rx_code == 1 and "no word from the channel" in outputs["rx"][1]
        assert outputs["rx"][1].count("\n") == 1  # one line, no traceback
    assert finished >= 2  # rows written before the failure stay readable


@pytest.mark.slow
def test_wrong_password_is_one_line_and_exit_2(tmp_path: Path, scenario_file: Path) -> None:
    with start_broker(KINDS[0], users={"alice": "right"}) as broker:  # type: ignore[arg-type]
        env = os.environ | {"NOISYLINK_MQTT_USERNAME": "alice",
                            "NOISYLINK_MQTT_PASSWORD": "wrong-pass"}
        result = noisylink("rx", str(scenario_file), "--broker", broker.url, "--out",
                           str(tmp_path / "out"), "--timeout", "120", env=env)
        anonymous = noisylink("channel", str(scenario_file), "--broker", broker.url,
                              "--timeout", "120")
        good = noisylink("run", str(scenario_file), "--transport", "mqtt", "--broker",
                         broker.url, "--username", "alice", "--password", "right", "--out",
                         str(tmp_path / "good"))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "refused the credentials" in result.stderr
    assert "wrong-pass" not in result.stderr + result.stdout
    assert anonymous.returncode == 2 and "anonymous" in anonymous.stderr
    assert good.returncode == 0, good.stderr
    assert "right" not in good.stdout + good.stderr


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, made with the openssl tool."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl not installed")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    return cert, key


@pytest.mark.slow
def test_tls_with_a_self_signed_certificate(tmp_path: Path, scenario_file: Path,
                                            in_process: list[dict[str, str]]) -> None:
    cert, key = self_signed_certificate(tmp_path)
    with start_broker(KINDS[0], tls=(cert, key)) as broker:  # type: ignore[arg-type]
        assert broker.url.startswith("mqtts://")
        result = noisylink("run", str(scenario_file), "--transport", "mqtt", "--broker",
                           broker.url, "--ca-file", str(cert), "--out", str(tmp_path / "out"))
        untrusted = noisylink("tx", str(scenario_file), "--broker", broker.url,
                              "--timeout", "3")
    assert result.returncode == 0, result.stderr
    assert comparable(tmp_path / "out" / "results.csv") == in_process
    assert untrusted.returncode != 0 and untrusted.stderr.count("\n") == 1


# --- hostile brokers: other runs, replays, garbage, clashes ------------------------------------


RUN_TOPICS = ("frames/tx", "frames/rx", "acks/tx", "acks/rx", "status/receiver",
              "status/channel", "status/transmitter", "run", "results")
GARBAGE = (
    b"[1,2,3]", b'{"role":[1]}', b'{"next": 1e400}', b"[" * 100_000 + b"]" * 100_000,
    b"\x00\x00\x00\x02{}", wire.encode(Finished(), n=0),  # a forged end of the run, unsealed
    wire.encode(StreamEnd(StreamId(0, 0, 0)), n=0),
    wire.encode(StreamStart(StreamId(999, 0, 0), 8, PictureSideInfo(8, 8, 1), 1, 0.0, b"x"), n=0),
)


class Hostile:
    """A client that records everything of a run id and publishes garbage and replays."""

    def __init__(self, url: str, run_id: str = "test-run"):
        import paho.mqtt.client as paho

        self.prefix = f"noisylink/{run_id}/"
        self.captured: list[tuple[str, bytes]] = []
        broker = Broker.from_url(url)
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2)
        self.client.on_message = lambda _c, _u, m: self.captured.append((m.topic, m.payload))
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        self.client.subscribe(self.prefix + "#", qos=1)

    def garbage(self, retain: bool = False) -> None:
        for topic in RUN_TOPICS:
            for payload in GARBAGE:
                self.client.publish(self.prefix + topic, payload, qos=1, retain=retain)

    def replay(self, messages: list[tuple[str, bytes]]) -> None:
        for topic, payload in messages:
            self.client.publish(topic, payload, qos=1)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def finish(processes: dict[str, subprocess.Popen[str]], timeout: float = 300
           ) -> dict[str, tuple[int, str]]:
    """Each role's exit code and stderr."""
    outcomes = {}
    try:
        for role, process in processes.items():
            _, stderr = process.communicate(timeout=timeout)
            outcomes[role] = (process.returncode, stderr)
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.kill()
    return outcomes


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
def test_garbage_retained_messages_and_replays_of_an_earlier_run_change_nothing(
    kind: str, tmp_path: Path, scenario_file: Path, in_process: list[dict[str, str]]
) -> None:
    with start_broker(kind) as broker:  # type: ignore[arg-type]
        hostile = Hostile(broker.url)
        try:
            earlier = finish(start_roles(scenario_file, broker.url, tmp_path / "earlier", 60))
            assert all(code == 0 for code, _ in earlier.values()), earlier
            recorded = list(hostile.captured)
            assert any(topic.endswith("frames/rx") for topic, _ in recorded)
            hostile.garbage(retain=True)  # waiting for every later subscriber
            hostile.replay(recorded)
            processes = start_roles(scenario_file, broker.url, tmp_path / "out", 60)
            while any(p.poll() is None for p in processes.values()):
                hostile.garbage()
                hostile.replay(recorded[:: max(1, len(recorded) // 50)])
                time.sleep(0.5)
            outcomes = finish(processes)
        finally:
            hostile.close()
    assert all(code == 0 for code, _ in outcomes.values()), outcomes
    assert comparable(tmp_path / "out" / "results.csv") == in_process
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["complete"] is True
    dropped = manifest["mqtt"]["dropped"]
    assert dropped["retained"] > 0 and dropped["foreign"] > 0 and dropped["malformed"] > 0
    for _code, stderr in outcomes.values():
        assert "Traceback" not in stderr
        assert all(line.startswith("warning: ") for line in stderr.splitlines())


@pytest.mark.slow
def test_with_a_key_messages_from_whoever_lacks_it_do_not_count(
    tmp_path: Path, scenario_file: Path, in_process: list[dict[str, str]]
) -> None:
    key_file = tmp_path / "key"
    key_file.write_text("a shared secret of enough bytes\n")
    env = os.environ | {"NOISYLINK_MQTT_KEY": ""}
    with start_broker(KINDS[0]) as broker:  # type: ignore[arg-type]
        hostile = Hostile(broker.url)
        try:
            processes = start_roles(scenario_file, broker.url, tmp_path / "out", 60, env=env,
                                    extra=("--key-file", str(key_file)))
            while any(p.poll() is None for p in processes.values()):
                # the token is public: whoever reads the broker can seal with it, not sign
                tokens = {payload[5:13] for topic, payload in hostile.captured
                          if topic.endswith("/run") and payload.startswith(b"NLK1")}
                for token in tokens:
                    forged = Seal().seal(hostile.prefix + "frames/rx", token,
                                         wire.encode(Finished(), n=0))
                    hostile.client.publish(hostile.prefix + "frames/rx", forged, qos=1)
                time.sleep(0.2)
            outcomes = finish(processes)
        finally:
            hostile.close()
    assert all(code == 0 for code, _ in outcomes.values()), outcomes
    assert comparable(tmp_path / "out" / "results.csv") == in_process
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["mqtt"]["signed"] is True and manifest["mqtt"]["dropped"]["unsigned"] > 0


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
def test_two_role_sets_on_one_run_id_the_later_stops_with_one_line(kind: str, tmp_path: Path
                                                                   ) -> None:
    # more messages than the links' windows hold (WINDOW = 256), so that the first run
    # cannot end while its channel is stopped, however fast the machine is
    long_run = SCENARIO | {"trials": 12}
    first_file, other, same = (tmp_path / f"{name}.yaml" for name in ("first", "other", "same"))
    first_file.write_text(yaml.safe_dump(long_run))
    other.write_text(yaml.safe_dump(long_run | {"seed": 10, "channel": {
        "name": "awgn", "esn0_db": [1.0, 2.0]}}))
    same.write_text(first_file.read_text())
    expected = comparable(run_scenario(parse_scenario(long_run, "test"),
                                       tmp_path / "in-process").results_path)
    with start_broker(kind) as broker:  # type: ignore[arg-type]
        first = start_roles(first_file, broker.url, tmp_path / "first", 600)
        try:
            wait_for_rows(tmp_path / "first" / "results.csv", 1)
            first["channel"].send_signal(signal.SIGSTOP)  # hold the first run open
            later = start_roles(other, broker.url, tmp_path / "later", 600)
            clone = start_roles(same, broker.url, tmp_path / "clone", 600)
            outcomes = {f"later {role}": outcome for role, outcome in finish(later).items()}
            outcomes |= {f"clone {role}": outcome for role, outcome in finish(clone).items()}
        finally:
            first["channel"].send_signal(signal.SIGCONT)
        first_outcomes = finish(first)
    assert all(code == 0 for code, _ in first_outcomes.values()), first_outcomes
    assert comparable(tmp_path / "first" / "results.csv") == expected
    for role, (code, stderr) in outcomes.items():
        assert code == 2, (role, stderr)
        lines = [line for line in stderr.strip().splitlines() if line.startswith("error: ")]
        assert len(lines) == 1 and "in use by another run" in lines[0], (role, stderr)
        assert "Traceback" not in stderr


@pytest.mark.slow
def test_sigterm_to_the_one_command_run_stops_its_role_processes(tmp_path: Path) -> None:
    scenario = tmp_path / "sigterm-run.yaml"
    scenario.write_text(yaml.safe_dump(SCENARIO | {"name": "sigterm-run", "trials": 50}))
    parent = subprocess.Popen(
        [sys.executable, "-m", "noisylink", "run", str(scenario), "--transport", "mqtt",
         "--out", str(tmp_path / "out")], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env=os.environ | {"OMP_NUM_THREADS": "1"})
    try:
        wait_for_rows(tmp_path / "out" / "results.csv", 1)
        parent.send_signal(signal.SIGTERM)
        _, stderr = parent.communicate(timeout=120)
    finally:
        if parent.poll() is None:
            parent.kill()
    children = subprocess.run(["pgrep", "-f", str(scenario)], capture_output=True, text=True)
    assert children.stdout == "", "role processes outlived the one-command run"
    assert parent.returncode != 0 and "interrupted" in stderr


@pytest.mark.slow
def test_an_unreachable_broker_is_one_line_naming_the_role_once(tmp_path: Path,
                                                                 scenario_file: Path) -> None:
    from noisylink.transport.brokers import free_port

    result = noisylink("run", str(scenario_file), "--transport", "mqtt", "--broker",
                       f"mqtt://127.0.0.1:{free_port()}", "--timeout", "2", "--out",
                       str(tmp_path / "out"))
    assert result.returncode == 1
    line = result.stderr.strip()
    assert "\n" not in line and "cannot reach the broker" in line
    role = line.removeprefix("error: ").split(":")[0]
    assert role in ("receiver", "channel", "transmitter") and line.count(f"{role}:") == 1


@pytest.mark.slow
def test_rx_refuses_an_out_folder_that_holds_results_unless_force(tmp_path: Path,
                                                                  scenario_file: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "results.csv").write_text("scenario,cell\nold,0\n")
    result = noisylink("rx", str(scenario_file), "--broker", "mqtt://127.0.0.1:1", "--out",
                       str(out), "--timeout", "1")
    assert result.returncode == 2 and "already holds results" in result.stderr
    assert result.stderr.count("\n") == 1
    assert (out / "results.csv").read_text() == "scenario,cell\nold,0\n"
