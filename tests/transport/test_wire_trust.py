"""What a role does with hostile bytes, without a broker: every malformed, foreign, replayed,
unsigned or inconsistent message is dropped and counted, never acted on, never a traceback."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest

from noisylink.codecs.classical import PictureSideInfo
from noisylink.link.frames import FrameHeader
from noisylink.link.messages import (
    Finished,
    FrameReceived,
    StreamEnd,
    StreamId,
    StreamStart,
)
from noisylink.link.runner import build_plan
from noisylink.scenarios import parse_scenario
from noisylink.transport import schema, wire
from noisylink.transport.admission import StreamLedger
from noisylink.transport.mqtt import Broker, Endpoint, RunIdentity
from noisylink.transport.session import (
    Rejected,
    RunClashError,
    Seal,
    load_key,
    new_token,
    parse_token,
)

SCENARIO = {
    "name": "trust-small",
    "seed": 3,
    "images": {"source": "samples", "resize": 32, "size": 32, "limit": 2},
    "codec": {"name": "jpeg", "quality": 50},
    "frames": {"payload_bytes": 256, "header": "ideal"},
    "ecc": {"name": "none"},
    "modulation": {"name": "qpsk"},
    "channel": {"name": "awgn", "esn0_db": 8.0},
    "trials": 2,
}
TOKEN = bytes.fromhex("0011223344556677")
SIDE = PictureSideInfo(32, 32, 3)
PICTURE = SIDE.to_json()
KEY = b"k" * 32


def head(**fields) -> bytes:
    text = json.dumps(fields).encode()
    return struct.pack("!I", len(text)) + text


def endpoint(role: str = "receiver", key: bytes | None = None, lines: list[str] | None = None
             ) -> Endpoint:
    plan = build_plan(parse_scenario(SCENARIO, "test"))
    sink = lines if lines is not None else []
    identity = RunIdentity("R", role, "fp", TOKEN, key)
    reads = ("rx",) if role == "receiver" else ()
    writes = ("tx",) if role == "transmitter" else ()
    return Endpoint(Broker.from_url("mqtt://127.0.0.1:1"), identity, reads=reads, writes=writes,
                    admit=lambda link: StreamLedger(plan, link).admit, report=sink.append)


# --- the schema -------------------------------------------------------------------------------


MALFORMED_LINK_MESSAGES = {
    "no env.n": head(env={}, kind="end", stream=[0, 0, 0], blobs=[]),
    "n is text": head(env={"n": "abc"}, kind="end", stream=[0, 0, 0], blobs=[]),
    "env is a list": head(env=[1], kind="end", stream=[0, 0, 0], blobs=[]),
    "n is a bool": head(env={"n": True}, kind="end", stream=[0, 0, 0], blobs=[]),
    "n is huge": head(env={"n": 2**70}, kind="end", stream=[0, 0, 0],
                      blobs=[]),
    "stream of two": head(env={"n": 0}, kind="end", stream=[0, 0], blobs=[]),
    "negative stream": head(env={"n": 0}, kind="end", stream=[0, -1, 0], blobs=[]),
    "unknown kind": head(env={"n": 0}, kind="boom", blobs=[]),
    "extra field": head(env={"n": 0}, kind="finished", blobs=[], evil=1),
    "not an object": struct.pack("!I", 7) + b"[1,2,3]",
    "nested 100000 deep": struct.pack("!I", 200_000) + b"[" * 100_000 + b"]" * 100_000,
    "head longer than the message": struct.pack("!I", 1000) + b"{}",
    "object dtype blob": head(env={"n": 0}, kind="frame", stream=[0, 0, 0], seq=0, header=None,
                              blobs=[["data", 8, "|O", [1]]]) + b"\0" * 8,
    "blob size and shape disagree": head(env={"n": 0}, kind="frame", stream=[0, 0, 0], seq=0,
                                         header=None, blobs=[["data", 8, "<f8", [3]]]) + b"\0" * 8,
    "bytes after the blobs": head(env={"n": 0}, kind="finished", blobs=[]) + b"junk",
    "missing blob": head(env={"n": 0}, kind="frame", stream=[0, 0, 0], seq=0, header=None,
                         blobs=[]),
    "encode_s is infinite": head(env={"n": 0}, kind="start", stream=[0, 0, 0], n_bits=8,
                                 side_info=PICTURE, n_frames=1, encode_s=1e400,
                                 blobs=[["truth", 1, None, None]]) + b"x",
    "empty": b"",
    **{
        f"side info {name}": head(env={"n": 0}, kind="start", stream=[0, 0, 0], n_bits=8,
                                  side_info=side_info, n_frames=1, encode_s=0.0,
                                  blobs=[["truth", 1, None, None]]) + b"x"
        for name, side_info in {
            "empty": {},
            "a list": [32, 32, 3],
            "of no codec": {**PICTURE, "note": "x"},
            "height a string": {**PICTURE, "height": "32"},
            "channels a bool": {**PICTURE, "channels": True},
            "channels 2": {**PICTURE, "channels": 2},
            "width 0": {**PICTURE, "width": 0},
            "too many pixels": {**PICTURE, "height": 1 << 20, "width": 1 << 20},
            "K huge": {**PICTURE, "method": "turbo", "model": "bundled", "K": 2**70, "M": 20,
                       "T": 10, "N": 0, "seed": 0, "chunk_atoms": 8},
            "unknown method": {**PICTURE, "method": "magic", "model": "bundled", "K": 64,
                               "M": 4, "T": 3, "N": 0, "seed": 0, "chunk_atoms": 8},
            "bits a float": {**PICTURE, "model": "necst-eps0.1", "bits": 100.0},
        }.items()
    },
}


@pytest.mark.parametrize("name", list(MALFORMED_LINK_MESSAGES))
def test_malformed_link_messages_are_wire_errors_not_crashes(name: str) -> None:
    with pytest.raises(wire.WireError):
        wire.decode(MALFORMED_LINK_MESSAGES[name])


GOOD = [wire.encode(StreamEnd(StreamId(0, 0, n)), n=n) for n in range(3)]
MALFORMED_BATCHES = {
    "no count": wire.BATCH_MAGIC + b"\0\0",
    "no messages": wire.BATCH_MAGIC + struct.pack("!I", 0),
    "too many messages": wire.BATCH_MAGIC + struct.pack("!I", wire.MAX_BATCH + 1)
    + b"".join(struct.pack("!I", len(GOOD[0])) + GOOD[0] for _ in range(wire.MAX_BATCH + 1)),
    "fewer messages than counted": wire.BATCH_MAGIC + struct.pack("!I", 4)
    + wire.encode_batch(GOOD)[8:],
    "a length past the end": wire.encode_batch(GOOD)[:-1],
    "a length field cut short": wire.encode_batch(GOOD)[:8] + struct.pack("!I", len(GOOD[0]))
    + GOOD[0] + b"\0\0",
    "bytes after the last message": wire.encode_batch(GOOD) + b"junk",
    "a batch inside a batch": wire.encode_batch([wire.encode_batch(GOOD)]),
    **{f"a message {name}": wire.encode_batch([GOOD[0], bad])
       for name, bad in (("extra field", MALFORMED_LINK_MESSAGES["extra field"]),
                         ("empty", b""), ("object dtype",
                                          MALFORMED_LINK_MESSAGES["object dtype blob"]))},
}


@pytest.mark.parametrize("name", list(MALFORMED_BATCHES))
def test_malformed_batches_are_wire_errors_not_crashes(name: str) -> None:
    with pytest.raises(wire.WireError):
        wire.decode_all(MALFORMED_BATCHES[name])


def test_a_batch_carries_its_messages_in_order_and_one_message_is_one_message() -> None:
    decoded = wire.decode_all(wire.encode_batch(GOOD))
    assert [(message, envelope["n"]) for message, envelope in decoded] == \
        [(StreamEnd(StreamId(0, 0, n)), n) for n in range(3)]
    assert wire.decode_all(GOOD[1]) == [wire.decode(GOOD[1])]


@pytest.mark.parametrize("body", [b"[1,2,3]", b'{"role":[1]}', b"null", b"\xff\xfe",
                                  b'{"role":"receiver","instance":"x","state":"running",'
                                  b'"since":true,"scenario":"fp"}', b"[" * 50_000])
def test_malformed_status_is_a_schema_error(body: bytes) -> None:
    with pytest.raises(schema.SchemaError):
        schema.status(body)


@pytest.mark.parametrize("body", [b'{"next": 1e400, "have": 1}', b'{"next": "1", "have": 1}',
                                  b'{"next": 2, "have": 1}', b'{"next": -1, "have": 0}',
                                  b'{"next": 1.0, "have": 1}', b"{}"])
def test_malformed_acks_are_schema_errors(body: bytes) -> None:
    with pytest.raises(schema.SchemaError):
        schema.ack(body)


# --- seals, tokens, keys ----------------------------------------------------------------------


def test_a_seal_carries_the_token_and_a_signature_over_topic_token_and_body() -> None:
    signed, plain = Seal(KEY), Seal()
    data = signed.seal("t/a", TOKEN, b"body")
    assert signed.open("t/a", data) == (TOKEN, b"body")
    assert plain.open("t/a", plain.seal("t/a", TOKEN, b"body")) == (TOKEN, b"body")
    reasons = {
        "forged": [data[:-1] + b"X", signed.seal("t/a", TOKEN[::-1], b"body")[:13] + data[13:]],
        "unsigned": [plain.seal("t/a", TOKEN, b"body")],
        "malformed": [b"", b"NLK1", b"XXXX" + data[4:], data[:4] + b"\x02" + data[5:]],
    }
    for reason, payloads in reasons.items():
        for payload in payloads:
            with pytest.raises(Rejected) as caught:
                signed.open("t/a", payload)
            assert caught.value.reason == reason
    with pytest.raises(Rejected) as moved:  # the same bytes on another topic
        signed.open("t/b", data)
    assert moved.value.reason == "forged"
    with pytest.raises(Rejected) as unverifiable:
        plain.open("t/a", data)
    assert unverifiable.value.reason == "unverifiable"


def test_keys_and_tokens_from_the_command_line_are_checked(tmp_path, monkeypatch) -> None:
    from noisylink.errors import NoisylinkError

    monkeypatch.delenv("NOISYLINK_MQTT_KEY", raising=False)
    assert load_key(None) is None
    (tmp_path / "key").write_bytes(b"0123456789abcdef0123\n")
    assert load_key(tmp_path / "key") == b"0123456789abcdef0123"
    (tmp_path / "short").write_bytes(b"short")
    with pytest.raises(NoisylinkError, match="at least 16 bytes"):
        load_key(tmp_path / "short")
    with pytest.raises(NoisylinkError, match="--key-file"):
        load_key(tmp_path / "missing")
    monkeypatch.setenv("NOISYLINK_MQTT_KEY", "x" * 20)
    assert load_key(None) == b"x" * 20
    assert parse_token(TOKEN.hex()) == TOKEN
    assert len(new_token()) == 8 and new_token() != new_token()
    for bad in ("zz", "00", TOKEN.hex() + "00"):
        with pytest.raises(NoisylinkError, match="--run-token"):
            parse_token(bad)


# --- what an endpoint does with what arrives --------------------------------------------------


def sealed(topic: str, body: bytes, token: bytes = TOKEN, key: bytes | None = None) -> bytes:
    return Seal(key).seal(topic, token, body)


def start_message(plan_stream: StreamId, n: int) -> bytes:
    truth = b"\x01" * 100
    return wire.encode(StreamStart(plan_stream, 800, SIDE, 1, 0.0, truth), n=n)


async def test_every_hostile_message_is_dropped_counted_and_reported_once() -> None:
    lines: list[str] = []
    ep = endpoint(lines=lines)
    frames, acks, status = ep.topics.frames("rx"), ep.topics.acks("tx"), ep.topics.status("x")
    for body in [*MALFORMED_LINK_MESSAGES.values(), *MALFORMED_BATCHES.values()]:
        ep.dispatch(frames, sealed(frames, body))
    for body in (b"[1,2,3]", b'{"role":[1]}'):
        ep.dispatch(status, sealed(status, body))
        ep.dispatch(status, sealed(status, body), retained=True)
    ep.dispatch(acks, sealed(acks, b'{"next": 1e400}'))
    ep.dispatch(frames, b"garbage without a seal")
    ep.dispatch(frames, sealed(frames, wire.encode(Finished(), n=0), token=new_token()))
    ep.dispatch(ep.topics.run, sealed(ep.topics.run, b"[1]"))
    counts = ep.rejections.as_dict()
    assert counts == {"malformed": len(MALFORMED_LINK_MESSAGES) + len(MALFORMED_BATCHES) + 4,
                      "retained": 2, "foreign": 1}
    assert len(lines) == 3 and all(line.startswith("warning: receiver: ") for line in lines)
    assert not ep.readers["rx"].waiting and not ep.failed.is_set()


async def test_with_a_key_unsigned_and_wrongly_signed_messages_do_not_count() -> None:
    ep = endpoint(key=KEY)
    frames = ep.topics.frames("rx")
    message = wire.encode(Finished(), n=0)
    ep.dispatch(frames, sealed(frames, message))  # unsigned
    ep.dispatch(frames, sealed(frames, message, key=b"w" * 32))  # another key
    assert ep.rejections.as_dict() == {"forged": 1, "unsigned": 1}
    assert not ep.readers["rx"].waiting
    ep.dispatch(frames, sealed(frames, message, key=KEY))
    assert 0 in ep.readers["rx"].waiting


async def test_messages_that_do_not_fit_the_plan_are_dropped_in_order() -> None:
    ep = endpoint()
    reader = ep.readers["rx"]
    frames = ep.topics.frames("rx")
    good = StreamId(0, 1, 1)
    sequence = [
        wire.encode(StreamEnd(StreamId(0, 0, 0)), n=0),  # end of a stream never started
        wire.encode(StreamStart(StreamId(999, 0, 0), 8, SIDE, 1, 0.0, b"x"), n=1),  # not planned
        wire.encode(StreamStart(StreamId(0, 0, 2), 8, SIDE, 1, 0.0, b"x"), n=2),  # trial 2 of 2
        wire.encode(StreamStart(good, 8, SIDE, 5, 0.0, b"x"), n=3),  # 5 frames for one byte
        start_message(good, 4),
        start_message(good, 5),  # started twice
        wire.encode(FrameReceived(good, 0, None, np.zeros(3, complex), 0.1, 0), n=6),  # size
        wire.encode(Finished(), n=7),  # with a stream still open
        wire.encode(StreamEnd(good), n=8),
        wire.encode(Finished(), n=9),
    ]
    for data in sequence:
        ep.dispatch(frames, sealed(frames, data))
    delivered = [await reader.get(), await reader.get(), await reader.get()]
    assert [type(m).__name__ for m in delivered] == ["StreamStart", "StreamEnd", "Finished"]
    assert ep.rejections.as_dict() == {"inconsistent": 7}


async def test_acks_for_messages_never_sent_are_refused() -> None:
    ep = endpoint(role="transmitter")
    acks = ep.topics.acks("tx")
    ep.dispatch(acks, sealed(acks, b'{"next": 5, "have": 5}'))
    assert ep.rejections.as_dict() == {"inconsistent": 1}
    assert ep.writers["tx"].consumed == 0


async def test_a_second_instance_of_a_role_in_the_same_run_stops_the_later_one() -> None:
    early, late = endpoint(role="receiver"), endpoint(role="receiver")
    topic = early.topics.status("receiver")
    assert early.identity.since <= late.identity.since
    for listener, speaker in ((early, late), (late, early)):
        listener.dispatch(topic, sealed(topic, speaker._status("running")))
    assert not early.failed.is_set()
    assert late.failed.is_set() and isinstance(late.failure, RunClashError)
    assert "give this run its own --run-id" in str(late.failure)


async def test_a_peer_running_another_scenario_is_a_clash() -> None:
    ep = endpoint(role="receiver")
    topic = ep.topics.status("channel")
    body = json.dumps({"role": "channel", "instance": "c", "state": "running", "since": 1.0,
                       "scenario": "another"}).encode()
    ep.dispatch(topic, sealed(topic, body))
    assert isinstance(ep.failure, RunClashError) and "another scenario" in str(ep.failure)


def test_a_role_ends_even_when_its_client_turns_the_cancellation_into_an_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import asyncio
    import threading

    import aiomqtt

    class StubbornClient:
        """Like aiomqtt's client when its clean disconnect fails on the way out."""

        def __init__(self, *_args, **_kwargs) -> None:
            pass

        async def __aenter__(self) -> StubbornClient:
            return self

        async def __aexit__(self, kind, *_rest) -> None:
            if kind is asyncio.CancelledError:
                raise aiomqtt.MqttError("Disconnected during message iteration")

        async def subscribe(self, *_args, **_kwargs) -> None:
            return None

        async def publish(self, *_args, **_kwargs) -> None:
            return None

        @property
        def messages(self):
            async def forever():
                while True:
                    await asyncio.sleep(3600)
                    yield None

            return forever()

    monkeypatch.setattr(aiomqtt, "Client", StubbornClient)

    async def nothing(_endpoint: Endpoint) -> None:
        return None

    async def role() -> None:
        ep = Endpoint(Broker.from_url("mqtt://127.0.0.1:1"),
                      RunIdentity("R", "channel", "fp", TOKEN))
        await ep.run(nothing)

    # a thread, so that a role that never ends fails this test instead of hanging the suite
    runner = threading.Thread(target=asyncio.run, args=(role(),), daemon=True)
    runner.start()
    runner.join(timeout=300)  # a hang guard, not a speed test
    assert not runner.is_alive(), "the role did not end after its body"


async def test_a_joiner_whose_role_is_served_already_stops_on_the_receivers_answer() -> None:
    receiver = endpoint(role="receiver")
    status_topic = receiver.topics.status("channel")
    serving = json.dumps({"role": "channel", "instance": "first", "state": "running",
                          "since": 1.0, "scenario": "fp"}).encode()
    receiver.dispatch(status_topic, sealed(status_topic, serving))
    assert receiver.members["channel"][:2] == (1.0, "first")

    plan = build_plan(parse_scenario(SCENARIO, "test"))
    joiner = Endpoint(Broker.from_url("mqtt://127.0.0.1:1"), RunIdentity("R", "channel", "fp"),
                      admit=lambda link: StreamLedger(plan, link).admit)
    answer = json.dumps({"kind": "answer", "nonce": joiner.nonce, "instance": "rx",
                         "since": 0.5, "scenario": "fp",
                         "members": {"channel": "first"}}).encode()
    joiner.dispatch(joiner.topics.run, sealed(joiner.topics.run, answer))
    assert joiner.token is None and isinstance(joiner.failure, RunClashError)
    assert "another channel serves it already" in str(joiner.failure)


def test_the_ledger_sizes_each_frame_by_its_protection_class() -> None:
    """Under unequal protection a frame's expected size is its class's code's, by sequence
    number, as the receiver's frame plan says."""
    unequal = {"name": "unequal", "classes": [{"name": "rs", "k": 127}, {"name": "none"}],
               "split": [0.4]}
    plan = build_plan(parse_scenario(SCENARIO | {"ecc": unequal}, "test"))
    chain = plan.chain(0)
    ledger = StreamLedger(plan, "rx")
    stream = StreamId(0, 0, 0)
    frames = chain.frame_plan(300)  # 120 bytes under RS(255,127), 180 unprotected
    assert [(f.ecc_class, f.length) for f in frames] == [(0, 120), (1, 180)]
    assert ledger.admit(StreamStart(stream, 8 * 300, SIDE, 2, 0.0, bytes(300))) is None

    def received(seq: int, ecc_class: int) -> FrameReceived:
        symbols = chain.layout(frames[seq].length, ecc_class).channel_bits // 2
        header = FrameHeader(stream.wire_id, seq, 2, frames[seq].length)
        return FrameReceived(stream, seq, header, np.zeros(symbols, complex), 0.1, 0)

    assert ledger.admit(received(1, 0)) is not None  # sized as if class 0 protected it
    assert ledger.admit(received(1, 1)) is None
    assert ledger.admit(received(0, 0)) is None
