"""What every role needs to know about a run: the scenario, its cells and its images.

Each role (transmitter, channel, receiver) builds the same plan from the same scenario, so
they agree on cells, images and random streams without sending them to each other.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from noisylink.codecs.base import Encoded, SideInfo
from noisylink.images import SourceImage
from noisylink.link.chain import LinkChain
from noisylink.link.messages import StreamId
from noisylink.scenarios.grid import Cell, stream_seed
from noisylink.scenarios.schema import Scenario


@dataclass
class LinkPlan:
    scenario: Scenario
    cells: list[Cell]
    images: list[SourceImage]
    only: frozenset[StreamId] | None = None  # run just these streams (a sweep's remainder)
    # encodings by (codec settings, image index), shared by the plans of one worker process
    encode_cache: dict[tuple[str, int], tuple[Encoded[SideInfo], float]] | None = None
    _chains: dict[int, LinkChain] = field(default_factory=dict, repr=False)

    def chain(self, cell_index: int) -> LinkChain:
        """The cell's components, built once per role."""
        if cell_index not in self._chains:
            self._chains[cell_index] = LinkChain(
                self.cells[cell_index], self.scenario.frames, self.scenario.device
            )
        return self._chains[cell_index]

    def streams(self) -> Iterator[StreamId]:
        """Every (cell, image, trial) to run, in transmission order, codec-major."""
        for cell in range(len(self.cells)):
            for image in range(len(self.images)):
                for trial in range(self.scenario.trials):
                    stream = StreamId(cell, image, trial)
                    if self.only is None or stream in self.only:
                        yield stream

    @property
    def n_streams(self) -> int:
        if self.only is not None:
            return len(self.only)
        return len(self.cells) * len(self.images) * self.scenario.trials

    def channel_rng(self, stream: StreamId) -> np.random.Generator:
        """The channel's random stream for one (cell, image, trial)."""
        seed = stream_seed(self.scenario.seed, self.cells[stream.cell], stream.image, stream.trial)
        return np.random.default_rng(seed)
