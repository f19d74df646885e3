"""Gilbert-Elliott burst channel: a two-state (good/bad) Markov chain over bits.

In state good a bit flips with probability ``e_good``, in state bad with ``e_bad``; after each
bit the chain moves good -> bad with probability ``p_gb`` and bad -> good with ``p_bg``, so a
stay in the bad state lasts ``1/p_bg`` bits on average (geometric). Two parametrisations,
exactly one per config:

- ``{p_gb, p_bg, e_good: 0, e_bad: 0.5}``: the chain itself;
- ``{mean_ber, burst_length, e_good: 0, e_bad: 0.5}``: ``p_bg = 1 / burst_length`` and ``p_gb``
  set so that the stationary bad-state probability is
  ``pi_B = (mean_ber - e_good) / (e_bad - e_good)``, i.e. ``p_gb = p_bg pi_B / (1 - pi_B)``.

Simulation (vectorised, exact under chunking): every bit consumes two uniforms, one deciding
the transition into it and one its error. A transition is then a swap (both moves would fire),
a "set" to good or to bad (only one would), or nothing; the state of each bit is the value of
the last "set" (or the carried state) flipped by the parity of the swaps since. Only the rare
bits where a move can fire are scanned; the state is held constant in between. The chain is
memoryless, so the Markov state is all that carries from one ``transmit`` call to the next
(the remaining stay in a state needs no bookkeeping: it is geometric whatever has passed), and
a stream sent in one call or in many chunks gives identical output. The first call draws the
initial state from the stationary distribution. commpy's ``Channels.gilbert_elliott`` loops
per bit in Python and always starts in the good state, hence this implementation.

The receiver knows only the channel's mean BER: LLRs are ``±ln((1-p)/p)`` with p that mean.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

import numpy as np
import pydantic
from numpy.typing import ArrayLike, NDArray

from noisylink.phy.channels.base import CHANNELS, BitChannel, ChannelConfig
from noisylink.phy.channels.bsc import as_bits, bits_to_llr

Probability = Annotated[float, pydantic.Field(ge=0.0, le=1.0)]


class GilbertElliottConfig(ChannelConfig):
    """``{p_gb, p_bg}`` or ``{mean_ber, burst_length}``, with ``e_good`` and ``e_bad``."""

    sweep_params: ClassVar[tuple[str, ...]] = ("mean_ber", "p_gb", "burst_length")

    name: Literal["gilbert_elliott"] = "gilbert_elliott"
    p_gb: Probability | None = None
    p_bg: Probability | None = None
    mean_ber: Probability | None = None
    burst_length: pydantic.FiniteFloat | None = pydantic.Field(None, ge=1.0)
    e_good: Probability = 0.0
    e_bad: Probability = 0.5

    @pydantic.model_validator(mode="after")
    def _one_parametrisation(self) -> GilbertElliottConfig:
        chain = (self.p_gb, self.p_bg)
        target = (self.mean_ber, self.burst_length)
        given_chain = any(v is not None for v in chain)
        given_target = any(v is not None for v in target)
        if given_chain and given_target:
            raise ValueError(
                "give either p_gb and p_bg, or mean_ber and burst_length, not settings of both"
            )
        if not (given_chain or given_target):
            raise ValueError("needs p_gb and p_bg, or mean_ber and burst_length")
        if given_chain:
            if None in chain:
                raise ValueError("p_gb and p_bg go together; give both")
            if self.p_bg == 0.0:
                raise ValueError("p_bg must be > 0 (a bad stay must end)")
            return self
        if None in target:
            raise ValueError("mean_ber and burst_length go together; give both")
        if not self.e_good < self.e_bad:
            raise ValueError("mean_ber needs e_good < e_bad")
        if not self.e_good <= self.mean_ber < self.e_bad:
            raise ValueError(
                f"mean_ber must lie in [e_good, e_bad) = [{self.e_good}, {self.e_bad})"
            )
        p_bg = 1.0 / self.burst_length
        if self.stationary_bad() > 1.0 / (1.0 + p_bg):
            raise ValueError(
                f"mean_ber {self.mean_ber} with burst_length {self.burst_length} needs "
                f"p_gb > 1; lower mean_ber or lengthen the bursts"
            )
        return self

    def params(self) -> dict[str, Any]:
        """Settings other than the name, leaving out the parametrisation not given."""
        return self.model_dump(exclude={"name"}, exclude_none=True, mode="json")

    def stationary_bad(self) -> float:
        """Stationary probability pi_B of the bad state."""
        if self.mean_ber is not None:
            return (self.mean_ber - self.e_good) / (self.e_bad - self.e_good)
        assert self.p_gb is not None and self.p_bg is not None
        return self.p_gb / (self.p_gb + self.p_bg)

    def transitions(self) -> tuple[float, float]:
        """``(p_gb, p_bg)`` whichever parametrisation was given."""
        if self.p_gb is not None and self.p_bg is not None:
            return self.p_gb, self.p_bg
        assert self.burst_length is not None
        p_bg = 1.0 / self.burst_length
        pi_bad = self.stationary_bad()
        return p_bg * pi_bad / (1.0 - pi_bad), p_bg

    def error_rate(self) -> float:
        """Mean BER of the channel: ``pi_G e_good + pi_B e_bad``."""
        pi_bad = self.stationary_bad()
        return (1.0 - pi_bad) * self.e_good + pi_bad * self.e_bad


@CHANNELS.register("gilbert_elliott", GilbertElliottConfig)
class GilbertElliott(BitChannel):
    """Bursty bit flips; ``transmit(bits, rng) -> LLRs``, state carried across calls."""

    def __init__(
        self, config: GilbertElliottConfig, bits_per_symbol: int = 1, code_rate: float = 1.0
    ):
        self.config = config
        self.p_gb, self.p_bg = config.transitions()
        self.mean_ber = config.error_rate()
        self.bad: bool | None = None  # state of the last bit sent; None before the first

    def transmit(self, x: ArrayLike, rng: np.random.Generator) -> NDArray[np.float64]:
        """LLRs ``float64 [n]`` for ``uint8`` bits ``[n]``."""
        bits = as_bits(x)
        errors = self.errors(bits.size, rng)
        return bits_to_llr(bits ^ errors.astype(np.uint8), self.mean_ber)

    def errors(self, n: int, rng: np.random.Generator) -> NDArray[np.bool_]:
        """The error pattern ``bool [n]`` of the next ``n`` bits, advancing the chain."""
        if self.bad is None:
            self.bad = bool(rng.random() < self.config.stationary_bad())
        draws = rng.random((n, 2))
        states = self._states(draws[:, 0], self.bad)
        if n:
            self.bad = bool(states[-1])
        flip_p = np.where(states, self.config.e_bad, self.config.e_good)
        return draws[:, 1] < flip_p

    def _states(self, u: NDArray[np.float64], bad_before: bool) -> NDArray[np.bool_]:
        """Bad-state flags ``[n]`` from the transition uniforms ``u`` and the prior state.

        Only bits with ``u < max(p_gb, p_bg)`` can change the state (the "events"); the
        state is solved at those and held constant in between.
        """
        events = np.flatnonzero(u < max(self.p_gb, self.p_bg))
        to_bad = u[events] < self.p_gb  # taken if the chain is good
        to_good = u[events] < self.p_bg  # taken if the chain is bad
        swap = to_bad & to_good
        sets = to_bad ^ to_good  # the next state is to_bad whatever the current one
        index = np.arange(events.size)
        last_set = np.maximum.accumulate(np.where(sets, index, -1)) if events.size else index
        at = np.maximum(last_set, 0)
        swaps = np.cumsum(swap)
        base = np.where(last_set >= 0, to_bad[at], bad_before)
        parity = (swaps - np.where(last_set >= 0, swaps[at], 0)) % 2 == 1
        after_event = base ^ parity
        held = np.concatenate([[bad_before], after_event])
        spans = np.diff(np.concatenate([[0], events, [u.size]]))
        return np.repeat(held, spans)
