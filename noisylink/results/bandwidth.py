"""Picture quality at a given bandwidth: rate curves from results rows, read at one channel bpp.

Comparing two links is fair only at the same channel bits per pixel (ECC parity, CRCs and
padding included). A *curve* is one configuration with its rate left free: the rows of every
codec setting that differs only in the codec's rate knobs (``Codec.rate_knobs``, e.g. JPEG's
``quality``), for one ECC, modulation and channel point. Each codec setting is one *point*: the
means over its rows of the channel bpp and the PSNR (undecodable pictures count with the PSNR
the receiver's picture has), its 95 % interval and its corruption rate.

``at_bandwidth`` reads a curve at a budget: the measured point nearest the budget when one lies
within ``tolerance`` of it (relative), otherwise the straight line between the two points that
bracket it; outside the curve's range it gives ``None`` rather than extrapolate.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from noisylink.codecs import codec_class
from noisylink.results.row import ResultRow
from noisylink.results.summary import estimate


@dataclass(frozen=True)
class CurveKey:
    """What a curve holds fixed: everything but the codec's rate knobs."""

    scenario_group: str
    codec: str  # the codec name and its settings other than its rate knobs, as JSON
    ecc: str
    modulation: str
    channel_param: str
    channel_value: float


@dataclass(frozen=True)
class Point:
    """One codec setting of a curve: means over its rows."""

    codec_label: str
    bpp_channel: float
    psnr: float
    psnr_ci: float  # half width of the 95 % interval (nan with one row)
    corruption: float  # share of the rows whose picture could not be decoded
    rows: int


@dataclass(frozen=True)
class AtBandwidth:
    """A curve read at a budget."""

    psnr: float
    corruption: float
    low: Point  # the points used: the same one twice when measured within tolerance
    high: Point

    @property
    def measured(self) -> bool:
        return self.low == self.high


def family(codec: str, params: dict[str, object]) -> str:
    """The codec with its rate knobs left out, as JSON (the same for every point of a curve)."""
    knobs = {knob.field for knob in codec_class(codec).rate_knobs} | {"bpp"}
    kept = {key: value for key, value in sorted(params.items()) if key not in knobs}
    return json.dumps({"name": codec, **kept}, sort_keys=True)


def curves(rows: Iterable[ResultRow], group: str = "") -> dict[CurveKey, list[Point]]:
    """The rows' curves, each with its points in order of channel bpp. ``group`` names the set
    of rows (a study, or scenarios that belong together); it only labels the keys."""
    by_setting: dict[tuple[CurveKey, str], list[ResultRow]] = {}
    for row in rows:
        key = CurveKey(group, family(row.codec, json.loads(row.codec_params)), row.ecc,
                       row.modulation, row.channel_param, row.channel_value)
        by_setting.setdefault((key, row.codec_label), []).append(row)
    out: dict[CurveKey, list[Point]] = {}
    for (key, label), members in by_setting.items():
        psnr = estimate(row.psnr for row in members)
        out.setdefault(key, []).append(Point(
            label,
            sum(row.bpp_channel for row in members) / len(members),
            psnr.mean,
            psnr.half_width,
            sum(not row.decoded for row in members) / len(members),
            len(members),
        ))
    return {key: sorted(points, key=lambda p: p.bpp_channel) for key, points in out.items()}


def at_bandwidth(points: Sequence[Point], bpp: float, tolerance: float = 0.02
                 ) -> AtBandwidth | None:
    """The curve ``points`` (in order of channel bpp) read at ``bpp`` (see the module)."""
    if not points:
        return None
    nearest = min(points, key=lambda p: abs(p.bpp_channel - bpp))
    if abs(nearest.bpp_channel - bpp) <= tolerance * bpp:
        return AtBandwidth(nearest.psnr, nearest.corruption, nearest, nearest)
    for low, high in itertools.pairwise(points):
        if low.bpp_channel <= bpp <= high.bpp_channel and high.bpp_channel > low.bpp_channel:
            share = (bpp - low.bpp_channel) / (high.bpp_channel - low.bpp_channel)
            return AtBandwidth(
                low.psnr + share * (high.psnr - low.psnr),
                low.corruption + share * (high.corruption - low.corruption),
                low, high,
            )
    return None
