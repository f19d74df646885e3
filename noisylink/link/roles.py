"""The three roles of the link as asyncio tasks: transmitter, channel, receiver.

Each role reads messages from an inbox and writes to an outbox, objects with
``async get()`` / ``async put()`` (bounded ``asyncio.Queue`` in one process, 8 to 64 frames
or about 16 MB of them, so a slow stage holds back the ones before it). CPU-heavy work runs in
worker threads, off the event loop.

A hand-off to a worker thread costs some 50 us of CPU and a thread wake-up (with a frame's
channel or PHY work at 1-2 ms, one per frame and stage made the pipeline's own cost about 10 %
of its CPU time), so the channel and the receiver take, with the message they wait for, every
message already waiting behind it in an in-process queue (``next_messages``), and hand them all
to one worker thread together: a hand-off per batch of frames, not per frame. A batch is worked
through message by message in the order it came, so the results are those of one message at a
time; rows (and the messages the channel forwards) are given out after the batch, in order, and
an error in a batch is raised after what came before it was given out. A reader that is not an
``asyncio.Queue`` (the MQTT transport's) gives one message at a time, as before.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from noisylink.codecs.base import Encoded, SideInfo
from noisylink.errors import LinkError
from noisylink.link.chain import FrameLayout, LinkChain
from noisylink.link.frames import Frame
from noisylink.link.messages import (
    Finished,
    FrameOnAir,
    FrameReceived,
    Message,
    StreamEnd,
    StreamId,
    StreamStart,
)
from noisylink.link.plan import LinkPlan
from noisylink.link.reception import StreamReception, decode_receptions
from noisylink.phy.channels import BitChannel, Channel


class Inbox(Protocol):
    async def get(self) -> Message: ...


class Outbox(Protocol):
    async def put(self, message: Message) -> None: ...


MAX_BATCH = 64
"""Messages one hand-off to a worker thread takes at most (the in-process queues hold fewer)."""


async def next_messages(inbox: Inbox, most: int = MAX_BATCH) -> list[Message]:
    """The next message, and when the inbox is an in-process queue, the messages already
    waiting behind it (up to ``most`` in all), without waiting for more."""
    messages = [await inbox.get()]
    if isinstance(inbox, asyncio.Queue):
        while len(messages) < most and not inbox.empty():
            messages.append(inbox.get_nowait())
    return messages


def _bind_chains(plan: LinkPlan, messages: list[Message], codecs: bool = False) -> None:
    """Build the chains (and with ``codecs``, the codecs) of the cells these messages belong to
    here, on the event loop, so that worker threads only look them up: each is built once."""
    for message in messages:
        if isinstance(message, StreamStart | FrameOnAir | FrameReceived | StreamEnd):
            chain = plan.chain(message.stream.cell)
            if codecs and isinstance(message, StreamStart):
                chain.codec  # noqa: B018 (built on first use)


def _timed_encode(chain: LinkChain, pixels: np.ndarray) -> tuple[Encoded[SideInfo], float]:
    started = time.perf_counter()
    encoded = chain.codec.encode(pixels)
    return encoded, time.perf_counter() - started


def _timed_encode_all(
    chain: LinkChain, plan: LinkPlan, indices: list[int]
) -> dict[int, tuple[Encoded[SideInfo], float]]:
    """Encode the given images of the plan in one batched call; each gets an equal share of
    the time."""
    started = time.perf_counter()
    encoded = chain.codec.encode_batch([plan.images[i].pixels for i in indices])
    share = (time.perf_counter() - started) / max(1, len(encoded))
    return {index: (item, share) for index, item in zip(indices, encoded, strict=True)}


def _encode_frames(
    chain: LinkChain, frames: list[Frame]
) -> list[tuple[NDArray[np.generic], FrameLayout]]:
    return [chain.encode_frame(frame) for frame in frames]


async def transmitter(plan: LinkPlan, outbox: Outbox) -> None:
    """Encode each image once per codec setting, then send every stream frame by frame."""
    encodes = plan.encode_cache if plan.encode_cache is not None else {}
    for stream in plan.streams():
        chain = plan.chain(stream.cell)
        key = (chain.cell.codec.model_dump_json(), stream.image)
        if key not in encodes:
            for stale in [k for k in encodes if k[0] != key[0]]:  # keep one codec setting
                del encodes[stale]
            if chain.codec.batches:  # all images at once, sharing codebooks
                needed = sorted({s.image for s in plan.streams() if s.cell == stream.cell})
                batch = await asyncio.to_thread(_timed_encode_all, chain, plan, needed)
                encodes.update({(key[0], image): done for image, done in batch.items()})
            else:
                pixels = plan.images[stream.image].pixels
                encodes[key] = await asyncio.to_thread(_timed_encode, chain, pixels)
        encoded, encode_s = encodes[key]
        frames = chain.packetize(encoded.payload, encoded.n_bits, encoded.side_info,
                                 stream.wire_id)
        await outbox.put(
            StreamStart(stream, encoded.n_bits, encoded.side_info, len(frames), encode_s,
                        encoded.payload)
        )
        on_air = await asyncio.to_thread(_encode_frames, chain, frames)
        ideal = not chain.inband_header
        for frame, (data, _layout) in zip(frames, on_air, strict=True):
            header = frame.header if ideal else None
            await outbox.put(FrameOnAir(stream, frame.header.seq, header, data))
        await outbox.put(StreamEnd(stream))
    await outbox.put(Finished())


def pass_through_channel(
    chain: LinkChain, channel: Channel, rng: np.random.Generator, frame: FrameOnAir
) -> FrameReceived:
    """Corrupt one frame and count the raw bit errors a hard decision would make."""
    if isinstance(channel, BitChannel):
        llr = channel.transmit(frame.data, rng)
        wrong = ((llr < 0) != frame.data.astype(bool)) | (llr == 0)
        return FrameReceived(frame.stream, frame.seq, frame.header, llr, None,
                             int(np.count_nonzero(wrong)))
    modulation = chain.symbol_modulation
    received, noise_var = channel.transmit(frame.data, rng)
    sent_bits = modulation.demodulate_hard(frame.data)
    errors = int(np.count_nonzero(modulation.demodulate_hard(received) != sent_bits))
    return FrameReceived(frame.stream, frame.seq, frame.header, received, noise_var, errors)


@dataclass
class _ChannelState:
    """The channel role's state: one channel instance (and random stream) per open stream."""

    plan: LinkPlan
    active: dict[StreamId, tuple[Channel, np.random.Generator]] = field(default_factory=dict)
    finished: bool = False

    def take(self, messages: list[Message]) -> tuple[list[Message], Exception | None]:
        """Work through a batch in order: what to forward, and the error that stopped it."""
        out: list[Message] = []
        try:
            for message in messages:
                forward = self.take_one(message)
                if forward is not None:
                    out.append(forward)
                if self.finished:
                    break
        except Exception as exc:  # raised by the role once what came before is forwarded
            return out, exc
        return out, None

    def take_one(self, message: Message) -> Message | None:
        plan = self.plan
        if isinstance(message, StreamStart):
            chain = plan.chain(message.stream.cell)
            self.active[message.stream] = (chain.new_channel(), plan.channel_rng(message.stream))
            return message
        if isinstance(message, FrameOnAir):
            if message.stream not in self.active:
                raise LinkError(f"frame of unknown stream {message.stream}", stage="channel")
            instance, rng = self.active[message.stream]
            return pass_through_channel(plan.chain(message.stream.cell), instance, rng, message)
        if isinstance(message, StreamEnd):
            self.active.pop(message.stream, None)
            return message
        if isinstance(message, Finished):
            self.finished = True
            return message
        return None


async def channel(plan: LinkPlan, inbox: Inbox, outbox: Outbox) -> None:
    """Corrupt frames; one channel instance (and random stream) per stream. The frames waiting
    in an in-process inbox are corrupted together, in one worker thread."""
    state = _ChannelState(plan)
    while not state.finished:
        messages = await next_messages(inbox)
        _bind_chains(plan, messages)
        if any(isinstance(message, FrameOnAir) for message in messages):
            out, error = await asyncio.to_thread(state.take, messages)
        else:
            out, error = state.take(messages)
        for message in out:
            await outbox.put(message)
        if error is not None:
            raise error


RowSink = Callable[[StreamId, dict[str, Any], np.ndarray], None]


Row = tuple[StreamId, dict[str, Any], np.ndarray]


@dataclass
class _ReceiverState:
    """The receiver role's state: the open streams, and the finished streams of a batching
    codec waiting for their group."""

    plan: LinkPlan
    streams: dict[StreamId, StreamReception] = field(default_factory=dict)
    pending: dict[str, list[tuple[StreamId, StreamReception]]] = field(default_factory=dict)
    finished: bool = False

    def take(self, messages: list[Message]) -> tuple[list[Row], Exception | None]:
        """Work through a batch in order: the rows it finished, and the error that stopped it."""
        rows: list[Row] = []
        try:
            for message in messages:
                self.take_one(message, rows)
                if self.finished:
                    break
        except Exception as exc:  # raised by the role once the rows before it are given out
            return rows, exc
        return rows, None

    def take_one(self, message: Message, rows: list[Row]) -> None:
        if isinstance(message, StreamStart):
            self.streams[message.stream] = StreamReception(
                message, self.plan.chain(message.stream.cell))
        elif isinstance(message, FrameReceived):
            reception = self.streams.get(message.stream)
            if reception is None:
                raise LinkError(f"frame of unknown stream {message.stream}", stage="receiver")
            reception.receive(message)
        elif isinstance(message, StreamEnd):
            reception = self.streams.pop(message.stream)
            codec = reception.chain.codec
            if not codec.batches:
                self.emit([(message.stream, reception)], rows)
                return
            key = reception.chain.cell.codec.model_dump_json()
            for other in [k for k in self.pending if k != key]:  # streams come codec-major
                self.emit(self.pending.pop(other), rows)
            group = self.pending.setdefault(key, [])
            group.append((message.stream, reception))
            if len(group) >= codec.batch_size:
                self.emit(self.pending.pop(key), rows)
        elif isinstance(message, Finished):
            for key in list(self.pending):
                self.emit(self.pending.pop(key), rows)
            self.finished = True

    def emit(self, finished: list[tuple[StreamId, StreamReception]], rows: list[Row]) -> None:
        """Decode the pictures of finished streams (together when the codec batches) and add
        their rows."""
        sources = [self.plan.images[stream.image] for stream, _ in finished]
        receptions = [reception for _, reception in finished]
        outcomes = decode_receptions(receptions, [source.pixels.shape for source in sources])
        for (stream, reception), source, outcome in zip(finished, sources, outcomes, strict=True):
            row = reception.row(source.pixels, source.name, outcome)
            rows.append((stream, row, outcome.image))


async def receiver(plan: LinkPlan, inbox: Inbox, on_row: RowSink) -> None:
    """Decode frames as they come; at each stream's end, decode the image and emit its row.

    Codecs that decode in batches (``Codec.batches``) get finished streams of one codec setting
    in groups of their ``batch_size`` (the trials of a sweep go through the model together).
    The messages waiting in an in-process inbox are worked through together, in one worker
    thread; ``on_row`` is called on the event loop, in order, after each batch.
    """
    state = _ReceiverState(plan)
    while not state.finished:
        messages = await next_messages(inbox)
        _bind_chains(plan, messages, codecs=True)
        if all(isinstance(message, StreamStart) for message in messages):
            rows, error = state.take(messages)
        else:
            rows, error = await asyncio.to_thread(state.take, messages)
        for stream, row, image in rows:
            on_row(stream, row, image)
        if error is not None:
            raise error


QUEUE_BYTES = 16 << 20
"""About how much frame data each in-process queue holds when full."""


def frames_queue_size(plan: LinkPlan) -> int:
    """Messages each in-process queue holds: as many of the plan's largest frames as fit in
    ``QUEUE_BYTES`` at 16 bytes per channel bit (a complex128 symbol per bit at BPSK, a float64
    LLR takes 8), 8 at least and ``MAX_BATCH`` at most. Small frames thus reach the channel and
    the receiver a whole stream at a time; large ones in eights, as before."""
    cells = sorted({stream.cell for stream in plan.streams()})
    payload_bytes = plan.scenario.frames.payload_bytes
    largest = max((plan.chain(cell).layout(payload_bytes).channel_bits for cell in cells),
                  default=1)
    return max(8, min(MAX_BATCH, QUEUE_BYTES // (16 * max(1, largest))))


async def run_in_process(plan: LinkPlan, on_row: RowSink, queue_size: int | None = None) -> None:
    """The three roles in this process, joined by bounded queues of ``queue_size`` messages
    (by default ``frames_queue_size``)."""
    size = queue_size if queue_size is not None else frames_queue_size(plan)
    to_channel: asyncio.Queue[Message] = asyncio.Queue(maxsize=size)
    to_receiver: asyncio.Queue[Message] = asyncio.Queue(maxsize=size)
    tasks = [
        asyncio.create_task(transmitter(plan, to_channel), name="transmitter"),
        asyncio.create_task(channel(plan, to_channel, to_receiver), name="channel"),
        asyncio.create_task(receiver(plan, to_receiver, on_row), name="receiver"),
    ]
    try:
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
