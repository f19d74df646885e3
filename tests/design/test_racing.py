"""Racing statistics (``noisylink.design.racing``), on outcome lists built by hand.

Claims: ``standing`` gives the statistic over all rows with a 95 % interval stratified by image
(mean: t-interval from the within-image spread, nan until an image has two trials; p10: numpy's
10th percentile with a deterministic stratified bootstrap); ``dominated`` is True only for a
lead whose interval lies above zero, None for an exact tie, False otherwise; ``qualified`` keeps
the configurations within ``max_corruption``, best first, ties by index; ``next_trials``
doubles the contenders and the leader up to ``trials_max`` and nothing else.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pytest

from noisylink.design.racing import (
    Outcome,
    Rules,
    Standing,
    _bootstrap,
    _by_image,
    dominated,
    next_trials,
    qualified,
    standing,
)

MEAN = Rules(statistic="mean", max_corruption=0.1, images=2, trials_max=8, seed=0)
P10 = Rules(statistic="p10", max_corruption=0.1, images=2, trials_max=8, seed=0)


def rows(*per_image: Sequence[float], failed: int = 0) -> list[Outcome]:
    """Outcomes with ``per_image[i]`` the values of image i's trials; the first ``failed``
    rows (image by image) are not decoded."""
    out = []
    for image, values in enumerate(per_image):
        for trial, value in enumerate(values):
            out.append(Outcome(image, trial, float(value), decoded=len(out) >= failed))
    return out


# --- standing, mean ------------------------------------------------------------------------


def test_mean_standing_is_the_mean_over_rows_with_a_stratified_t_interval() -> None:
    # image 0: 10, 12 (variance 2); image 1: 20, 24, 22 (variance 4); 5 rows, 3 dof
    result = standing(rows([10, 12], [20, 24, 22]), MEAN)
    assert result.value == pytest.approx(88 / 5)
    variance_of_mean = (2 * 2 + 3 * 4) / 5**2  # sum(n_i * s_i^2) / N^2 = 0.64
    t_975_3_dof = 3.182446305284263
    assert result.half_width == pytest.approx(t_975_3_dof * math.sqrt(variance_of_mean))
    assert (result.rows, result.failures) == (5, 0)


def test_mean_interval_ignores_the_spread_between_images() -> None:
    # the images differ by 100 dB, each image's trials by nothing: no channel uncertainty
    result = standing(rows([10, 10], [110, 110]), MEAN)
    assert result.value == pytest.approx(60)
    assert result.half_width == 0


def test_mean_half_width_is_nan_until_an_image_has_two_trials() -> None:
    result = standing(rows([10], [20]), MEAN)
    assert result.value == pytest.approx(15)
    assert math.isnan(result.half_width)


def test_standing_counts_the_streams_not_decoded() -> None:
    result = standing(rows([10, 11], [20, 21], failed=3), MEAN)
    assert result.failures == 3
    assert result.corruption == pytest.approx(3 / 4)


def test_standing_of_no_rows_is_nan_with_zero_rows() -> None:
    result = standing([], MEAN)
    assert result.rows == 0 and math.isnan(result.value) and math.isnan(result.corruption)


# --- dominated, mean -----------------------------------------------------------------------


def test_a_clear_gap_with_small_spread_is_dominated() -> None:
    leader = rows([30.0, 30.1], [40.0, 40.2])
    other = rows([20.0, 20.1], [30.1, 30.0])
    assert dominated(leader, other, MEAN) is True


def test_overlapping_intervals_are_not_dominated() -> None:
    leader = rows([20, 25], [30, 35])
    other = rows([21, 23], [31, 33])
    assert dominated(leader, other, MEAN) is False


def test_the_worse_of_two_is_never_dominating_the_better() -> None:
    better = rows([30.0, 30.1], [40.0, 40.2])
    worse = rows([20.0, 20.1], [30.1, 30.0])
    assert dominated(worse, better, MEAN) is False


def test_an_exact_tie_is_neither_dominated_nor_in_contention() -> None:
    same = rows([20, 20], [30, 30])
    assert dominated(same, rows([20, 20], [30, 30]), MEAN) is None


def test_zero_spread_and_a_gap_is_settled_by_the_gap() -> None:
    high, low = rows([21, 21], [31, 31]), rows([20, 20], [30, 30])
    assert dominated(high, low, MEAN) is True
    assert dominated(low, high, MEAN) is False


def test_an_image_with_one_trial_only_cannot_be_dominated() -> None:
    leader = rows([30.0, 30.1], [40])
    other = rows([10.0, 10.1], [11])
    assert dominated(leader, other, MEAN) is False


def test_the_lead_is_over_all_rows_even_when_one_image_prefers_the_other() -> None:
    # the images are fixed: a sure lead of 0.5 dB on the mean is a lead, though image 1 loses
    leader = rows([30.0, 30.1], [20.0, 20.1])
    other = rows([20.0, 20.1], [29.0, 29.1])
    assert dominated(leader, other, MEAN) is True


# --- p10 -------------------------------------------------------------------------------------


def spread(seed: int, centre: float, trials: int = 8) -> list[float]:
    return list(np.random.default_rng(seed).normal(centre, 2.0, trials))


def test_p10_standing_is_numpys_tenth_percentile_over_all_rows() -> None:
    outcomes = rows(spread(1, 30), spread(2, 25))
    values = np.array([item.value for item in outcomes])
    result = standing(outcomes, P10)
    assert result.value == pytest.approx(float(np.percentile(values, 10)))
    assert result.half_width > 0


def test_p10_bootstrap_is_deterministic_for_the_same_inputs_and_seed() -> None:
    outcomes = rows(spread(1, 30), spread(2, 25))
    first = standing(outcomes, P10, key=3)
    assert standing(list(outcomes), P10, key=3) == first
    assert standing(outcomes[::-1], P10, key=3) == first  # whatever order the rows came in


def test_p10_bootstrap_interval_brackets_the_p10() -> None:
    outcomes = rows(spread(1, 30, 16), spread(2, 25, 16))
    value = standing(outcomes, P10).value
    low, high = _bootstrap(_by_image(outcomes), np.random.default_rng(0))
    assert low <= value <= high
    assert low < high


def test_p10_clear_gap_is_dominated_and_an_exact_tie_is_none() -> None:
    leader = rows(spread(1, 40), spread(2, 40))
    other = rows(spread(3, 20), spread(4, 20))
    assert dominated(leader, other, P10) is True
    assert dominated(other, leader, P10) is False
    flat = rows([20] * 4, [30] * 4)
    assert dominated(flat, rows([20] * 4, [30] * 4), P10) is None


# --- qualified --------------------------------------------------------------------------------


def test_qualified_excludes_corrupt_configurations_and_ranks_best_first() -> None:
    standings = {
        0: Standing(30.0, 1.0, 16, 0),
        1: Standing(35.0, 1.0, 16, 2),  # 0.125 > 0.1: out, though best
        2: Standing(32.0, 1.0, 16, 1),  # 0.0625: in
        3: Standing(31.0, 1.0, 10, 1),  # exactly 0.1: in
    }
    assert qualified(standings, MEAN) == [2, 3, 0]


def test_qualified_breaks_ties_by_the_lowest_index() -> None:
    standings = {5: Standing(30.0, 0.0, 4, 0), 2: Standing(30.0, 0.0, 4, 0),
                 7: Standing(29.0, 0.0, 4, 0), 4: Standing(30.0, 0.0, 4, 0)}
    assert qualified(standings, MEAN) == [2, 4, 5, 7]


def test_qualified_leaves_out_configurations_without_rows_or_value() -> None:
    standings = {0: Standing(math.nan, math.nan, 0, 0), 1: Standing(math.nan, 0.0, 4, 0),
                 2: Standing(10.0, 0.0, 4, 0)}
    assert qualified(standings, MEAN) == [2]


# --- next_trials -------------------------------------------------------------------------------


def test_contenders_and_the_leader_double_their_trials_the_dominated_keep_theirs() -> None:
    outcomes = {
        0: rows([30, 32], [40, 42]),  # leader
        1: rows([29, 33], [39, 43]),  # overlaps the leader: in contention
        2: rows([10.0, 10.1], [20.0, 20.1]),  # dominated
    }
    trials = {0: 2, 1: 2, 2: 2}
    assert next_trials(outcomes, trials, MEAN) == {0: 4, 1: 4, 2: 2}


def test_doubling_stops_at_trials_max() -> None:
    outcomes = {0: rows([30, 32], [40, 42]), 1: rows([29, 33], [39, 43])}
    assert next_trials(outcomes, {0: 6, 1: 8}, MEAN) == {0: 8, 1: 8}


def test_a_hopeless_configuration_is_left_alone_even_when_it_overlaps() -> None:
    # allowed failures: floor(0.1 * 2 images * 8 trials) = 1; configuration 1 has 2
    assert MEAN.allowed_failures == 1
    outcomes = {
        0: rows([30, 32], [40, 42]),
        1: rows([31, 35], [41, 45], failed=2),
        2: rows([29, 33], [39, 43], failed=1),  # one failure: still allowed, in contention
    }
    assert next_trials(outcomes, {0: 2, 1: 2, 2: 2}, MEAN) == {0: 4, 1: 2, 2: 4}


def test_without_contenders_only_the_leader_grows_until_trials_max() -> None:
    outcomes = {
        0: rows([30, 30], [40, 40]),
        1: rows([10.0, 10.1], [20.0, 20.1]),  # dominated
        2: rows([30, 30], [40, 40]),  # an exact tie with the leader
        3: rows([50, 50], [60, 60], failed=4),  # hopeless
    }
    trials = {0: 2, 1: 2, 2: 2, 3: 2}
    assert next_trials(outcomes, trials, MEAN) == {0: 4, 1: 2, 2: 2, 3: 2}


def test_nothing_changes_once_the_leader_has_trials_max_and_no_one_contends() -> None:
    outcomes = {
        0: rows([30, 30], [40, 40]),
        1: rows([10.0, 10.1], [20.0, 20.1]),  # dominated
    }
    trials = {0: MEAN.trials_max, 1: 2}
    assert next_trials(outcomes, trials, MEAN) == trials


def test_without_a_qualified_leader_everyone_not_hopeless_doubles() -> None:
    # one failure in 4 rows is over 0.1 now, but within the 1 allowed at trials_max: more
    # trials may qualify them; two failures are hopeless
    outcomes = {
        0: rows([30, 31], [40, 41], failed=1),
        1: rows([20, 21], [30, 31], failed=1),
        2: rows([50, 51], [60, 61], failed=2),
    }
    assert qualified({c: standing(o, MEAN) for c, o in outcomes.items()}, MEAN) == []
    assert next_trials(outcomes, {0: 2, 1: 2, 2: 2}, MEAN) == {0: 4, 1: 4, 2: 2}
