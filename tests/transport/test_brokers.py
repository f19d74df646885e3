"""Local MQTT brokers (mosquitto, amqtt): round trip, passwords, TLS, restart, start failures."""

from __future__ import annotations

import asyncio
import shutil
import socket
import ssl
import subprocess
from pathlib import Path

import aiomqtt
import pytest

from noisylink.errors import NoisylinkError
from noisylink.transport import brokers
from noisylink.transport.brokers import LocalBroker, free_port, mosquitto_binary, start_broker

KINDS = [
    pytest.param(
        "mosquitto",
        marks=pytest.mark.skipif(mosquitto_binary() is None, reason="mosquitto not installed"),
    ),
    "amqtt",
]
NOT_AUTHORIZED = 135  # CONNACK 5 of MQTT 3.1.1, as paho reports it; both brokers send it


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return request.param


def client(broker: LocalBroker, **kwargs) -> aiomqtt.Client:
    # MQTT 3.1.1: amqtt speaks nothing newer
    return aiomqtt.Client(broker.host, broker.port, **{"timeout": 60, **kwargs})


async def round_trip(broker: LocalBroker, topic: str = "noisylink/test", **kwargs) -> None:
    async with client(broker, **kwargs) as sub:
        await sub.subscribe(topic, qos=1)
        async with client(broker, **kwargs) as pub:
            await pub.publish(topic, b"\x00hello\xff", qos=1)
        async with asyncio.timeout(60):
            message = await anext(sub.messages)
    assert message.payload == b"\x00hello\xff"
    assert message.qos == 1
    assert str(message.topic) == topic


async def test_round_trip_qos1(kind: str) -> None:
    with start_broker(kind) as broker:
        assert broker.kind == kind
        assert broker.host == "127.0.0.1"
        assert broker.url == f"mqtt://127.0.0.1:{broker.port}"
        await round_trip(broker)


@pytest.mark.slow
async def test_users_only(kind: str) -> None:
    with start_broker(kind, users={"alice": "secret", "bob": "pa:ss word"}) as broker:
        await round_trip(broker, username="alice", password="secret")
        await round_trip(broker, username="bob", password="pa:ss word")
        refused = [
            {"username": "alice", "password": "wrong"},
            {"username": "carol", "password": "secret"},
            {},  # anonymous
        ]
        for credentials in refused:
            with pytest.raises(aiomqtt.MqttCodeError) as caught:
                async with client(broker, **credentials):
                    pass
            assert caught.value.rc == NOT_AUTHORIZED, credentials


async def test_mosquitto_password_file_without_mosquitto_passwd(monkeypatch) -> None:
    if mosquitto_binary() is None:
        pytest.skip("mosquitto not installed")
    find = brokers._find
    monkeypatch.setattr(brokers, "_find", lambda name: None if "passwd" in name else find(name))
    with start_broker("mosquitto", users={"alice": "secret"}) as broker:
        assert (broker.workdir / "passwords").read_text().startswith("alice:$7$101$")
        await round_trip(broker, username="alice", password="secret")
        with pytest.raises(aiomqtt.MqttCodeError):
            async with client(broker, username="alice", password="secre"):
                pass


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (IP SAN), made with the openssl CLI."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("no openssl CLI to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.mark.slow
async def test_tls_only(kind: str, certificate: tuple[Path, Path]) -> None:
    cert, _ = certificate
    with start_broker(kind, tls=certificate, users={"alice": "secret"}) as broker:
        assert broker.url == f"mqtts://127.0.0.1:{broker.port}"
        context = ssl.create_default_context(cafile=cert)
        await round_trip(broker, tls_context=context, username="alice", password="secret")
        with pytest.raises(aiomqtt.MqttError):  # plain MQTT on the TLS port
            async with client(broker, username="alice", password="secret", timeout=1.5):
                pass
        with pytest.raises(aiomqtt.MqttError):  # a certificate the client does not trust
            async with client(broker, tls_context=ssl.create_default_context(), timeout=1.5):
                pass


@pytest.mark.slow
async def test_restart_keeps_port(kind: str) -> None:
    with start_broker(kind) as broker:
        port, workdir = broker.port, broker.workdir
        await round_trip(broker)
        broker.restart()
        assert broker.running
        assert (broker.port, broker.workdir) == (port, workdir)
        await round_trip(broker)
        broker.stop()
        broker.stop()  # idempotent
        assert not broker.running
        with socket.socket() as sock:
            assert sock.connect_ex(("127.0.0.1", port)) != 0
        broker.start()
        await round_trip(broker)
    assert not broker.running
    assert not workdir.exists()


def test_port_in_use(kind: str) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(NoisylinkError) as caught:
            start_broker(kind, port=port)
    message = str(caught.value)
    assert "\n" not in message
    assert kind in message
    assert str(port) in message
    assert "in use" in message.lower()


def test_bad_certificate_fails_at_start(kind: str, tmp_path: Path) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    with pytest.raises(NoisylinkError) as caught:
        start_broker(kind, tls=(junk, junk), workdir=tmp_path / "broker")
    assert "\n" not in str(caught.value)
    assert kind in str(caught.value)
    assert (tmp_path / "broker").is_dir()  # a workdir given by the caller stays


def test_bad_arguments() -> None:
    with pytest.raises(NoisylinkError, match="not found"):
        start_broker("amqtt", tls=(Path("/nonexistent/cert.pem"), Path("/nonexistent/key.pem")))
    with pytest.raises(NoisylinkError, match="username"):
        start_broker("amqtt", users={"a:b": "x"})
    with pytest.raises(NoisylinkError, match="unknown broker kind"):
        start_broker("hivemq")  # type: ignore[arg-type]


def test_auto_and_binary_lookup(monkeypatch) -> None:
    expected = "mosquitto" if mosquitto_binary() else "amqtt"
    with start_broker() as broker:
        assert broker.kind == expected
    if Path("/usr/sbin/mosquitto").is_file():
        monkeypatch.setenv("PATH", "/nonexistent")
        assert mosquitto_binary() == "/usr/sbin/mosquitto"
    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
