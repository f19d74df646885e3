"""BD-rate and the pointwise PSNR gap against hand-built curves."""

from __future__ import annotations

import math

import pytest

from noisylink.results.bdrate import bd_rate, psnr_gap

REFERENCE = [(0.25, 26.0), (0.5, 29.0), (1.0, 32.5), (2.0, 36.0)]


def test_a_curve_needing_a_fixed_fraction_more_bits_has_that_bd_rate() -> None:
    for factor in (0.7, 1.0, 1.25):
        scaled = [(bpp * factor, psnr) for bpp, psnr in REFERENCE]
        assert bd_rate(scaled, REFERENCE) == pytest.approx(factor - 1, abs=1e-9)


def test_a_better_curve_has_a_negative_bd_rate_and_swapping_inverts_it() -> None:
    better = [(bpp, psnr + 1.0) for bpp, psnr in REFERENCE]
    forward, backward = bd_rate(better, REFERENCE), bd_rate(REFERENCE, better)
    assert forward < -0.05
    assert (1 + forward) * (1 + backward) == pytest.approx(1.0, rel=1e-6)


def test_curves_with_no_common_quality_have_no_bd_rate() -> None:
    assert math.isnan(bd_rate([(0.1, 10.0), (0.2, 12.0)], REFERENCE))


def test_two_point_curves_use_a_straight_line() -> None:
    two = [(0.5, 29.0), (1.0, 32.5)]
    assert bd_rate([(b * 2, p) for b, p in two], two) == pytest.approx(1.0, abs=1e-9)


def test_psnr_gap_reads_the_reference_between_its_points_and_not_outside() -> None:
    gaps = psnr_gap([(0.5, 30.0), (math.sqrt(0.5), 31.0), (4.0, 40.0)], REFERENCE)
    assert gaps[0] == pytest.approx(1.0)
    assert gaps[1] == pytest.approx(31.0 - 30.75)
    assert math.isnan(gaps[2])


def test_a_bad_curve_is_refused_with_its_name() -> None:
    with pytest.raises(ValueError, match="test: a curve needs at least 2 points"):
        bd_rate([(1.0, 30.0)], REFERENCE)
    with pytest.raises(ValueError, match="reference: rates must be positive"):
        bd_rate(REFERENCE, [(0.0, 20.0), (1.0, 30.0)])
