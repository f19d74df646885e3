"""The three roles of the link as asyncio tasks: transmitter, channel, receiver.

Each role reads messages from an inbox and writes to an outbox, objects with
``async get()`` / ``async put()`` (bounded ``asyncio.Queue`` in one process, so a slow stage
holds back the ones before it). CPU-heavy work runs in worker threads, off the event loop.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from noisylink.codecs.base import Encoded, SideInfo
from noisylink.errors import LinkError
from noisylink.link.chain import FrameLayout, LinkChain
from noisylink.link.frames import Frame, packetize
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
        frames = packetize(encoded.payload, plan.scenario.frames.payload_bytes, stream.wire_id)
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


async def channel(plan: LinkPlan, inbox: Inbox, outbox: Outbox) -> None:
    """Corrupt frames; one channel instance (and random stream) per stream."""
    active: dict[StreamId, tuple[Channel, np.random.Generator]] = {}
    while True:
        message = await inbox.get()
        if isinstance(message, StreamStart):
            chain = plan.chain(message.stream.cell)
            active[message.stream] = (chain.new_channel(), plan.channel_rng(message.stream))
            await outbox.put(message)
        elif isinstance(message, FrameOnAir):
            if message.stream not in active:
                raise LinkError(f"frame of unknown stream {message.stream}", stage="channel")
            instance, rng = active[message.stream]
            chain = plan.chain(message.stream.cell)
            received = await asyncio.to_thread(pass_through_channel, chain, instance, rng, message)
            await outbox.put(received)
        elif isinstance(message, StreamEnd):
            active.pop(message.stream, None)
            await outbox.put(message)
        elif isinstance(message, Finished):
            await outbox.put(message)
            return


RowSink = Callable[[StreamId, dict[str, Any], np.ndarray], None]


async def receiver(plan: LinkPlan, inbox: Inbox, on_row: RowSink) -> None:
    """Decode frames as they come; at each stream's end, decode the image and emit its row.

    Codecs that decode in batches (``Codec.batches``) get finished streams of one codec setting
    in groups of their ``batch_size`` (the trials of a sweep go through the model together).
    """
    streams: dict[StreamId, StreamReception] = {}
    pending: dict[str, list[tuple[StreamId, StreamReception]]] = {}

    async def emit(finished: list[tuple[StreamId, StreamReception]]) -> None:
        sources = [plan.images[stream.image] for stream, _ in finished]
        receptions = [reception for _, reception in finished]
        outcomes = await asyncio.to_thread(
            decode_receptions, receptions, [source.pixels.shape for source in sources]
        )
        for (stream, reception), source, outcome in zip(finished, sources, outcomes, strict=True):
            row = await asyncio.to_thread(reception.row, source.pixels, source.name, outcome)
            on_row(stream, row, outcome.image)

    while True:
        message = await inbox.get()
        if isinstance(message, StreamStart):
            streams[message.stream] = StreamReception(message, plan.chain(message.stream.cell))
        elif isinstance(message, FrameReceived):
            reception = streams.get(message.stream)
            if reception is None:
                raise LinkError(f"frame of unknown stream {message.stream}", stage="receiver")
            await asyncio.to_thread(reception.receive, message)
        elif isinstance(message, StreamEnd):
            reception = streams.pop(message.stream)
            codec = reception.chain.codec
            if not codec.batches:
                await emit([(message.stream, reception)])
                continue
            key = reception.chain.cell.codec.model_dump_json()
            for other in [k for k in pending if k != key]:  # streams come codec-major
                await emit(pending.pop(other))
            group = pending.setdefault(key, [])
            group.append((message.stream, reception))
            if len(group) >= codec.batch_size:
                await emit(pending.pop(key))
        elif isinstance(message, Finished):
            for key in list(pending):
                await emit(pending.pop(key))
            return


async def run_in_process(plan: LinkPlan, on_row: RowSink, queue_size: int = 8) -> None:
    """The three roles in this process, joined by bounded queues."""
    to_channel: asyncio.Queue[Message] = asyncio.Queue(maxsize=queue_size)
    to_receiver: asyncio.Queue[Message] = asyncio.Queue(maxsize=queue_size)
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
