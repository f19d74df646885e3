"""Quality at a given bandwidth: curves over a codec's rate knob, read at one channel bpp."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest

from noisylink.results.bandwidth import Point, at_bandwidth, curves, family
from noisylink.results.row import ResultRow


def a_row(**values: object) -> ResultRow:
    fields: dict[str, object] = {}
    for item in dataclasses.fields(ResultRow):
        fields[item.name] = {"str": "", "int": 1, "float": 0.0, "bool": True}[str(item.type)]
    return ResultRow(**(fields | values))


def jpeg_row(quality: int, bpp: float, psnr: float, ecc: str = "none", ber: float = 1e-3,
             decoded: bool = True, restart_rows: int | None = None) -> ResultRow:
    params: dict[str, object] = {"quality": quality}
    if restart_rows is not None:
        params["restart_rows"] = restart_rows
    return a_row(codec="jpeg", codec_label=f"jpeg(quality={quality})",
                 codec_params=json.dumps(params), ecc=ecc, channel_param="ber",
                 channel_value=ber, bpp_channel=bpp, psnr=psnr, decoded=decoded)


def point(bpp: float, psnr: float, corruption: float = 0.0) -> Point:
    return Point(f"at {bpp}", bpp, psnr, math.nan, corruption, 4)


def test_a_curve_joins_the_rate_knob_settings_and_nothing_else() -> None:
    rows = [jpeg_row(q, bpp, psnr) for q, bpp, psnr in [(50, 1.0, 30.0), (20, 0.5, 26.0)]]
    rows += [jpeg_row(50, 1.0, 20.0, ecc="rs(k=223)"), jpeg_row(50, 1.1, 29.0, restart_rows=1),
             jpeg_row(50, 1.0, 25.0, ber=1e-2)]
    found = curves(rows)
    assert len(found) == 4
    plain = next(points for key, points in found.items()
                 if key.ecc == "none" and key.channel_value == 1e-3
                 and "restart_rows" not in key.codec)
    assert [(p.bpp_channel, p.psnr) for p in plain] == [(0.5, 26.0), (1.0, 30.0)]
    assert family("jpeg", {"quality": 10, "progressive": True}) == family(
        "jpeg", {"progressive": True, "quality": 90})


def test_a_point_averages_its_rows_and_counts_undecodable_ones() -> None:
    rows = [jpeg_row(50, 1.0, 30.0), jpeg_row(50, 1.2, 20.0, decoded=False)]
    (only,) = curves(rows).values()
    assert only[0].bpp_channel == pytest.approx(1.1) and only[0].psnr == pytest.approx(25.0)
    assert only[0].corruption == 0.5 and only[0].rows == 2 and only[0].psnr_ci > 0


def test_a_point_within_tolerance_is_read_as_measured() -> None:
    points = [point(0.5, 20.0), point(1.01, 30.0), point(2.0, 40.0)]
    read = at_bandwidth(points, 1.0, tolerance=0.02)
    assert read is not None and read.measured and read.psnr == 30.0


def test_between_points_the_curve_is_read_on_the_straight_line() -> None:
    points = [point(0.5, 20.0, 0.5), point(1.5, 30.0, 0.0)]
    read = at_bandwidth(points, 1.25)
    assert read is not None and not read.measured
    assert read.psnr == pytest.approx(27.5) and read.corruption == pytest.approx(0.125)
    assert (read.low.bpp_channel, read.high.bpp_channel) == (0.5, 1.5)


def test_a_budget_outside_the_curve_is_not_extrapolated() -> None:
    points = [point(0.5, 20.0), point(1.5, 30.0)]
    assert at_bandwidth(points, 0.3) is None
    assert at_bandwidth(points, 1.6) is None
    assert at_bandwidth([], 1.0) is None
