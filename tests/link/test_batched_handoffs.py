"""The channel and the receiver hand the messages waiting in an in-process queue to one worker
thread together (``noisylink.link.roles``): the same rows as one message at a time, fewer
hand-offs than frames, and an error raised only after what came before it was given out."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import numpy as np
import pytest

from noisylink.errors import LinkError
from noisylink.link import roles
from noisylink.link.messages import FrameReceived, Message, StreamId
from noisylink.link.plan import LinkPlan
from noisylink.link.runner import build_plan
from noisylink.results.row import TIMING_COLUMNS
from noisylink.scenarios import parse_scenario


def plan_of(**changes: Any) -> LinkPlan:
    data = {
        "name": "batches",
        "seed": 5,
        "images": {"source": "samples", "resize": 64, "size": 64, "limit": 2},
        "codec": {"name": "jpeg", "quality": 90},
        "frames": {"payload_bytes": 128, "header": "inband", "on_crc_fail": "drop"},
        "ecc": [{"name": "none"}, {"name": "rs", "k": 223}],
        "modulation": {"name": "qpsk"},
        "channel": {"name": "awgn", "esn0_db": [6.0, 9.0]},
        "trials": 2,
    } | changes
    return build_plan(parse_scenario(data, "test"))


class OneAtATime:
    """An in-process link that is no ``asyncio.Queue``: its reader gives one message at a time,
    as the MQTT transport's does."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[Message] = asyncio.Queue(maxsize=8)

    async def get(self) -> Message:
        return await self.queue.get()

    async def put(self, message: Message) -> None:
        await self.queue.put(message)


async def one_at_a_time(plan: LinkPlan, on_row: roles.RowSink) -> None:
    to_channel, to_receiver = OneAtATime(), OneAtATime()
    await asyncio.gather(
        roles.transmitter(plan, to_channel),
        roles.channel(plan, to_channel, to_receiver),
        roles.receiver(plan, to_receiver, on_row),
    )


Link = Callable[[LinkPlan, roles.RowSink], Coroutine[Any, Any, None]]


def rows_of(link: Link, plan: LinkPlan) -> dict[StreamId, tuple[dict[str, Any], np.ndarray]]:
    rows: dict[StreamId, tuple[dict[str, Any], np.ndarray]] = {}

    def keep(stream: StreamId, row: dict[str, Any], image: np.ndarray) -> None:
        assert stream not in rows
        rows[stream] = ({k: v for k, v in row.items() if k not in TIMING_COLUMNS}, image)

    asyncio.run(link(plan, keep))
    return rows


def test_batched_hand_offs_give_the_rows_and_pictures_of_one_message_at_a_time() -> None:
    batched = rows_of(roles.run_in_process, plan_of(trials=1))
    single = rows_of(one_at_a_time, plan_of(trials=1))
    assert batched.keys() == single.keys() and len(batched) == 4 * 2
    for stream, (row, image) in batched.items():
        assert row == single[stream][0]
        assert np.array_equal(image, single[stream][1])
    assert any(row["frames_lost"] for row, _ in batched.values())  # the channel did something


def test_the_waiting_frames_go_to_a_worker_thread_together(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hand_offs: dict[str, int] = {"channel": 0, "receiver": 0}
    to_thread = asyncio.to_thread

    async def counting(fn: Callable[..., Any], /, *args: Any) -> Any:
        owner = getattr(fn, "__self__", None)
        if isinstance(owner, roles._ChannelState):
            hand_offs["channel"] += 1
        elif isinstance(owner, roles._ReceiverState):
            hand_offs["receiver"] += 1
        return await to_thread(fn, *args)

    monkeypatch.setattr(asyncio, "to_thread", counting)
    rows = rows_of(roles.run_in_process, plan_of(ecc={"name": "none"}, trials=1))
    frames = sum(row["frames"] for row, _ in rows.values())
    assert frames >= 4 * len(rows)
    assert 0 < hand_offs["channel"] <= frames / 2
    assert 0 < hand_offs["receiver"] <= frames / 2


def test_an_error_in_a_batch_is_raised_after_the_rows_before_it() -> None:
    plan = plan_of(ecc={"name": "none"}, channel={"name": "awgn", "esn0_db": 9.0}, trials=1)

    async def scenario() -> tuple[list[StreamId], BaseException | None]:
        to_channel: asyncio.Queue[Message] = asyncio.Queue()
        to_receiver: asyncio.Queue[Message] = asyncio.Queue()
        await roles.transmitter(plan, to_channel)
        await roles.channel(plan, to_channel, to_receiver)
        messages = [to_receiver.get_nowait() for _ in range(to_receiver.qsize())]
        stray = next(m for m in messages if isinstance(m, FrameReceived))
        unknown = FrameReceived(StreamId(0, 0, 99), 0, None, stray.received, stray.noise_var, 0)
        for message in [*messages[:-1], unknown, messages[-1]]:  # before Finished
            to_receiver.put_nowait(message)
        emitted: list[StreamId] = []

        def keep(stream: StreamId, row: dict[str, Any], image: np.ndarray) -> None:
            emitted.append(stream)

        try:
            await roles.receiver(plan, to_receiver, keep)
        except LinkError as exc:
            return emitted, exc
        return emitted, None

    emitted, error = asyncio.run(scenario())
    assert isinstance(error, LinkError) and "unknown stream" in str(error)
    assert emitted == list(plan.streams())  # every stream that ended before the stray frame
