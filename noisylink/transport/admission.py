"""Which link messages a role may act on: those the run's plan can have produced, in order.

A message from the broker may be well-formed and of this run and still not fit: a stream the
plan does not hold, a second start of a stream, a frame before its stream's start or after its
end, a sequence number past the stream's frames, an array whose length is not the one the
plan implies. ``StreamLedger.admit`` says why such a message is refused (None: admit); the
reader drops and counts it, so the role's code only ever sees consistent streams.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

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


@dataclass(frozen=True)
class OpenStream:
    lengths: list[int]  # payload bytes per frame
    classes: list[int]  # the protection class of each frame (``LinkChain.frame_plan``)


class StreamLedger:
    """The reading end of link ``tx`` (frames on air) or ``rx`` (frames received)."""

    def __init__(self, plan: LinkPlan, link: str):
        self.plan = plan
        self.frame_type = FrameOnAir if link == "tx" else FrameReceived
        self.open: dict[StreamId, OpenStream] = {}
        self.seen: set[StreamId] = set()
        self.finished = False

    def admit(self, message: Message) -> str | None:
        if self.finished:
            return "a message after the run's end"
        if isinstance(message, StreamStart):
            return self._start(message)
        if isinstance(message, FrameOnAir | FrameReceived):
            if not isinstance(message, self.frame_type):
                return f"a {type(message).__name__} on the wrong link"
            return self._frame(message)
        if isinstance(message, StreamEnd):
            if self.open.pop(message.stream, None) is None:
                return f"the end of stream {message.stream} that is not open"
            return None
        if isinstance(message, Finished):
            if self.open:
                return f"the run's end with {len(self.open)} streams still open"
            self.finished = True
            return None
        return f"an unknown message {type(message).__name__}"  # pragma: no cover

    def _in_plan(self, stream: StreamId) -> bool:
        plan = self.plan
        inside = (stream.cell < len(plan.cells) and stream.image < len(plan.images)
                  and stream.trial < plan.scenario.trials)
        return inside and (plan.only is None or stream in plan.only)

    def _start(self, message: StreamStart) -> str | None:
        stream = message.stream
        if not self._in_plan(stream):
            return f"stream {stream} that the plan does not hold"
        if stream in self.seen:
            return f"a second start of stream {stream}"
        n_bytes = -(-message.n_bits // 8)
        if len(message.truth) != n_bytes:
            return f"{message.n_bits} payload bits in {len(message.truth)} bytes"
        chain = self.plan.chain(stream.cell)
        try:
            chain.segments(message.n_bits, message.side_info)
        except ValueError as exc:  # an importance order that does not fit the payload
            return str(exc)
        planned = chain.frame_plan(n_bytes)
        lengths = [frame.length for frame in planned]
        classes = [frame.ecc_class for frame in planned]
        if message.n_frames != len(lengths):
            return f"{message.n_frames} frames for {n_bytes} bytes (expected {len(lengths)})"
        self.seen.add(stream)
        self.open[stream] = OpenStream(lengths, classes)
        return None

    def _frame(self, message: FrameOnAir | FrameReceived) -> str | None:
        opened = self.open.get(message.stream)
        if opened is None:
            return f"a frame of stream {message.stream} that is not open"
        if message.seq >= len(opened.lengths):
            return f"frame {message.seq} of a stream of {len(opened.lengths)} frames"
        chain = self.plan.chain(message.stream.cell)
        header = message.header
        if chain.inband_header and header is not None:
            return "an out-of-band header with inband headers"
        if not chain.inband_header and (
            header is None or header.seq != message.seq or header.count != len(opened.lengths)
            or header.length != opened.lengths[message.seq]
            or header.stream_id != message.stream.wire_id
        ):
            return f"frame {message.seq} of {message.stream} without its ideal header"
        layout = chain.layout(opened.lengths[message.seq], opened.classes[message.seq])
        symbols = chain.channel_kind == "symbols"
        count = layout.channel_bits // chain.bits_per_symbol
        array = message.data if isinstance(message, FrameOnAir) else message.received
        if array.ndim != 1 or array.size != count:
            return f"{array.shape} values in a frame that carries {count}"
        if symbols != (array.dtype.kind == "c"):
            return f"{array.dtype} values on a {'symbol' if symbols else 'bit'} channel"
        if isinstance(message, FrameReceived):
            return _noise_var_problem(message.noise_var, symbols, count)
        return None


def _noise_var_problem(noise_var: object, symbols: bool, count: int) -> str | None:
    if not symbols:
        return None if noise_var is None else "a noise variance on a bit channel"
    if isinstance(noise_var, float | int):
        return None if noise_var > 0 else f"noise variance {noise_var}"
    if isinstance(noise_var, np.ndarray) and noise_var.dtype.kind == "f" \
            and noise_var.shape == (count,) and bool(np.all(noise_var > 0)):
        return None
    return "noise variances that do not match the frame"
