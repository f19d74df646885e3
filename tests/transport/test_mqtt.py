"""The link over MQTT: message encoding, reliable links, and whole runs through a real broker
(mosquitto where installed, else the embedded amqtt broker): same results as in one process,
a broker restart mid-run, a role that dies, wrong credentials, TLS."""

from __future__ import annotations

import asyncio
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
from noisylink.link.results import TIMING_COLUMNS, read_rows
from noisylink.link.runner import run_scenario
from noisylink.scenarios import parse_scenario
from noisylink.transport import wire
from noisylink.transport.brokers import mosquitto_binary, start_broker
from noisylink.transport.mqtt import Broker, Endpoint, LinkReader, redact

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
        StreamStart(stream, 1234, {"height": 8, "note": "é"}, 5, 0.25, b"\x00\xffpayload"),
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
    data = wire.encode(StreamStart(StreamId(0, 0, 0), 8, {}, 1, 0.0, b"abcdef"), n=0)
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
    endpoint = Endpoint(Broker.from_url("mqtt://127.0.0.1:1"), "r", "receiver", reads=("rx",),
                        peers=("channel",), timeout=5)
    reader: LinkReader = endpoint.readers["rx"]
    messages = [StreamEnd(StreamId(0, 0, i)) for i in range(6)]
    for n in (2, 0, 0, 1, 5, 2, 3, 4, 4, 1):  # out of order, with duplicates
        reader.on_message(wire.encode(messages[n], n=n))
    got = [await asyncio.wait_for(reader.get(), 1) for _ in range(6)]
    assert got == messages
    assert reader.have == 6 and reader.next == 6
    reader.on_message(wire.encode(messages[3], n=3))  # late duplicate: ignored
    assert not reader.waiting


# --- whole runs through a broker ---------------------------------------------------------------


def noisylink(*args: str, env: dict[str, str] | None = None, timeout: float = 300
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


@pytest.mark.parametrize("kind", KINDS)
def test_mqtt_run_equals_the_in_process_run(kind: str, tmp_path: Path, scenario_file: Path,
                                            in_process: list[dict[str, str]]) -> None:
    with start_broker(kind) as broker:  # type: ignore[arg-type]
        result = noisylink("run", str(scenario_file), "--transport", "mqtt", "--broker",
                           broker.url, "--out", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    assert comparable(tmp_path / "out" / "results.csv") == in_process


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
                env: dict[str, str] | None = None) -> dict[str, subprocess.Popen[str]]:
    processes = {}
    for role in roles:
        extra = ["--out", str(out)] if role == "rx" else []
        processes[role] = subprocess.Popen(
            [sys.executable, "-m", "noisylink", role, str(scenario_file), "--broker", url,
             "--run-id", "test-run", "--timeout", str(timeout), *extra],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=(env or os.environ) | {"OMP_NUM_THREADS": "1"},
        )
    return processes


def wait_for_rows(results: Path, count: int, deadline_s: float = 120) -> int:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if results.exists():
            rows = len(results.read_text().splitlines()) - 1
            if rows >= count:
                return rows
        time.sleep(0.05)
    raise AssertionError(f"fewer than {count} rows after {deadline_s} s")


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
                _, stderr = process.communicate(timeout=180)
                assert process.returncode == 0, f"{role}: {stderr}"
        finally:
            for process in processes.values():
                if process.poll() is None:
                    process.kill()
    assert comparable(tmp_path / "out" / "results.csv") == in_process


def test_a_dead_role_makes_the_others_stop_with_a_clear_message(
    tmp_path: Path, scenario_file: Path
) -> None:
    with start_broker(KINDS[0]) as broker:  # type: ignore[arg-type]
        processes = start_roles(scenario_file, broker.url, tmp_path / "out", timeout=4)
        wait_for_rows(tmp_path / "out" / "results.csv", 2)
        processes["tx"].send_signal(signal.SIGKILL)
        outputs = {role: p.communicate(timeout=120) for role, p in processes.items()}
    rx_code, channel_code = processes["rx"].returncode, processes["channel"].returncode
    finished = len(read_rows(tmp_path / "out" / "results.csv"))
    if finished < 32:  # the kill landed before the end: the others must notice
        assert channel_code == 1, outputs["channel"]
        assert "no word from the transmitter" in outputs["channel"][1]
        assert rx_code == 1 and "no word from the channel" in outputs["rx"][1]
        assert outputs["rx"][1].count("\n") == 1  # one line, no traceback
    assert finished >= 2  # rows written before the failure stay readable


def test_wrong_password_is_one_line_and_exit_2(tmp_path: Path, scenario_file: Path) -> None:
    with start_broker(KINDS[0], users={"alice": "right"}) as broker:  # type: ignore[arg-type]
        env = os.environ | {"NOISYLINK_MQTT_USERNAME": "alice",
                            "NOISYLINK_MQTT_PASSWORD": "wrong-pass"}
        result = noisylink("rx", str(scenario_file), "--broker", broker.url, "--out",
                           str(tmp_path / "out"), "--timeout", "10", env=env)
        anonymous = noisylink("channel", str(scenario_file), "--broker", broker.url,
                              "--timeout", "10")
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
