"""Racing: spend trials only on configurations that may still win at a channel point.

Pure functions over the metric values of rows, so a design decides the same from the same
rows whatever the engine, the order or an interruption.

The images are fixed (the design is for these images); the uncertainty is the channel's. So
intervals are stratified by image: the statistic is over all rows, its spread comes from the
trials of each image. Two configurations are compared image by image (the picture's own
difficulty cancels), and one is *dominated* when the 95 % interval of the leader's lead over it
lies above zero (``mean``), or when its interval lies below the leader's (``p10``, by a
stratified bootstrap). Exact ties (no spread, equal values) are settled: more trials cannot
separate them.

A configuration is *hopeless* at a point once more of its streams failed to decode than
``max_corruption`` allows at ``trials.max``: it can never qualify there. Each round, every
configuration in contention (neither dominated nor hopeless) doubles its trials, up to
``trials.max``, and so does the leader until it has ``trials.max`` even when no one contends:
a winner's score and corruption rate always rest on all its trials, and a leader that falls
back in them lets the others contend again. A point is settled when the leader has
``trials.max`` and no one is in contention.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import stats

Statistic = Literal["mean", "p10"]
BOOTSTRAP_SAMPLES = 2000


@dataclass(frozen=True)
class Outcome:
    """One stream's result as racing needs it."""

    image: int
    trial: int
    value: float  # the objective's metric
    decoded: bool


@dataclass(frozen=True)
class Standing:
    """Where a configuration stands at a channel point."""

    value: float  # the statistic over its rows
    half_width: float  # of the statistic's 95 % interval (nan: cannot tell yet)
    rows: int
    failures: int  # streams not decoded

    @property
    def corruption(self) -> float:
        return self.failures / self.rows if self.rows else math.nan


@dataclass(frozen=True)
class Rules:
    statistic: Statistic
    max_corruption: float
    images: int
    trials_max: int
    seed: int  # of the bootstrap

    @property
    def allowed_failures(self) -> int:
        """Most failed streams a configuration may have at ``trials_max`` and qualify."""
        return math.floor(self.max_corruption * self.images * self.trials_max + 1e-9)


def _by_image(outcomes: Sequence[Outcome]) -> list[np.ndarray]:
    groups: dict[int, list[tuple[int, float]]] = {}
    for item in outcomes:
        groups.setdefault(item.image, []).append((item.trial, item.value))
    return [np.array([v for _, v in sorted(groups[i])], dtype=float) for i in sorted(groups)]


def mean_value(outcomes: Sequence[Outcome]) -> float:
    """The metric's mean over the rows, summed in the same order as ``standing`` sums them."""
    return float(np.concatenate(_by_image(outcomes)).mean()) if outcomes else math.nan


def _quantile(values: np.ndarray, axis: int | None = None) -> np.ndarray:
    return np.asarray(np.quantile(values, 0.1, axis=axis))


def _bootstrap(groups: list[np.ndarray], rng: np.random.Generator) -> tuple[float, float]:
    """Percentile 95 % interval of the p10 over all rows, resampling trials within images."""
    draws = [g[rng.integers(0, g.size, size=(BOOTSTRAP_SAMPLES, g.size))] for g in groups]
    samples = _quantile(np.concatenate(draws, axis=1), axis=1)
    low, high = np.quantile(samples, [0.025, 0.975])
    return float(low), float(high)


def _stratified_variance(groups: list[np.ndarray]) -> tuple[float, int]:
    """Variance of the mean over all rows from the spread within each image, and its
    degrees of freedom (0: no image has two trials yet)."""
    total = sum(g.size for g in groups)
    variance = sum(g.size * g.var(ddof=1) for g in groups if g.size > 1) / total**2
    return float(variance), sum(g.size - 1 for g in groups)


def _t(dof: int) -> float:
    return float(stats.t.ppf(0.975, dof))


def standing(outcomes: Sequence[Outcome], rules: Rules, key: int = 0) -> Standing:
    """The statistic and its 95 % interval over a configuration's rows at a point."""
    failures = sum(not item.decoded for item in outcomes)
    if not outcomes:
        return Standing(math.nan, math.nan, 0, 0)
    groups = _by_image(outcomes)
    values = np.concatenate(groups)
    if rules.statistic == "mean":
        variance, dof = _stratified_variance(groups)
        half = _t(dof) * math.sqrt(variance) if dof > 0 else math.nan
        return Standing(float(values.mean()), half, values.size, failures)
    rng = np.random.default_rng([rules.seed, key, values.size])
    low, high = _bootstrap(groups, rng)
    return Standing(float(_quantile(values)), (high - low) / 2, values.size, failures)


def dominated(leader: Sequence[Outcome], other: Sequence[Outcome], rules: Rules,
              keys: tuple[int, int] = (0, 1)) -> bool | None:
    """True when ``other`` is worse than ``leader`` at 95 % confidence, None when they are
    exactly tied (no spread, equal values: more trials cannot separate them), else False."""
    lead, rest = _by_image(leader), _by_image(other)
    if rules.statistic == "mean":
        if len(lead) != len(rest):
            return False
        gap = float(np.mean([a.mean() - b.mean() for a, b in zip(lead, rest, strict=True)]))
        variance = sum(
            (a.var(ddof=1) / a.size if a.size > 1 else math.inf)
            + (b.var(ddof=1) / b.size if b.size > 1 else math.inf)
            for a, b in zip(lead, rest, strict=True)
        ) / len(lead) ** 2
        if variance == 0:
            return None if gap == 0 else gap > 0
        dof = min(sum(a.size - 1 for a in lead), sum(b.size - 1 for b in rest))
        return bool(math.isfinite(variance) and gap - _t(dof) * math.sqrt(variance) > 0)
    mine = standing(leader, rules, keys[0])
    theirs = standing(other, rules, keys[1])
    if mine.half_width == 0 and theirs.half_width == 0 and mine.value == theirs.value:
        return None
    return theirs.value + theirs.half_width < mine.value - mine.half_width


def qualified(standings: Mapping[int, Standing], rules: Rules) -> list[int]:
    """The configurations whose corruption rate is within ``max_corruption``, best statistic
    first (ties: the lowest index)."""
    ranked = [
        (-s.value, index) for index, s in standings.items()
        if s.rows and s.corruption <= rules.max_corruption + 1e-12 and not math.isnan(s.value)
    ]
    return [index for _, index in sorted(ranked)]


def next_trials(outcomes: Mapping[int, Sequence[Outcome]], trials: Mapping[int, int],
                rules: Rules) -> dict[int, int]:
    """The trials each configuration should have at one point after the rows so far."""
    standings = {index: standing(rows, rules, index) for index, rows in outcomes.items()}
    hopeless = {i for i, s in standings.items() if s.failures > rules.allowed_failures}
    ranked = qualified({i: s for i, s in standings.items() if i not in hopeless}, rules)
    leader = ranked[0] if ranked else None
    contenders = []
    for index in sorted(outcomes):
        if index in hopeless or index == leader:
            continue
        verdict = (False if leader is None
                   else dominated(outcomes[leader], outcomes[index], rules, (leader, index)))
        if verdict is False:
            contenders.append(index)
    grow = set(contenders) | ({leader} if leader is not None else set())
    return {
        index: min(2 * count, rules.trials_max) if index in grow else count
        for index, count in trials.items()
    }
