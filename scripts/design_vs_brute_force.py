"""Check a design's answer against a brute-force sweep over the same candidates.

    python scripts/design_vs_brute_force.py DESIGN_YAML OUT_DIR [--workers N]
    python scripts/design_vs_brute_force.py small-case OUT_DIR   # the issue's small design

``DESIGN_YAML`` is a design file (or ``small-case``: ``SMALL_CASE`` below, the issue's 3 codecs x
3 ECCs x 2 modulations over AWGN at 4 Es/N0 points, written to ``OUT_DIR/small-case.yaml``
as JSON, which is YAML).

1. ``noisylink design`` runs into ``OUT_DIR/design`` (``run_design``).
2. A brute-force sweep runs into ``OUT_DIR/brute``: the same images, seed, frames, channel
   points, ECCs and modulations, each codec's rate knob on a grid of ``GRID_STEPS`` values
   (the top of its range and down in tenths of it: jpeg quality 100, 90, ..., 11; jpeg2000
   70, 64, ..., 16 dB), every cell at ``trials.max``. It is a ``Study`` run by ``run_sweep``, so
   its rows come from the same keyed random streams as the design's. A cell's channel bits do
   not depend on the channel or the trial, so each grid cell first runs once per image at the
   first channel point, and only the cells whose rows fit the budget run on at every point:
   the others cannot be the best, whatever their pictures.
3. Per channel point, the brute-force best: among the cells whose mean ``bpp_channel`` over
   their rows is within the budget (the most of any row with ``per_image``) and whose
   corruption rate (streams not decoded) is at most ``max_corruption``, the one with the
   highest objective statistic (the mean of the metric, or its p10) over all its rows.
4. Each point's winner is also run on to ``trials.max`` (``OUT_DIR/winners``, the same cell
   and streams) and scored as the brute force scores its cells: racing may stop a winner at
   ``trials.min``, and this shows what its value and corruption rate are at ``trials.max``.

It prints, per point, the design's winner (label, value, 95 % half-width; value and corruption
at ``trials.max``), the brute-force best (label, value), their difference and whether
``value + ci95 >= brute-force best`` (the issue's acceptance check; a note names a winner that
breaks ``max_corruption`` at ``trials.max``), then the link-run counts: the design's
(``design.json`` ``link_runs``), the full grid at ``trials.max`` (``full_grid_runs``), the brute
force's rows and its whole grid at ``trials.max``. Exit status 0 when every point passes the
check, 1 when one fails, 2 when the design is bad or a run fails. Every run resumes: a rerun
with the same ``OUT_DIR`` only runs what is missing.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from noisylink.design.racing import Outcome, Rules
    from noisylink.design.run import Answer, DesignOutcome
    from noisylink.design.schema import Design
    from noisylink.registry import ComponentConfig
    from noisylink.results.row import ResultRow

GRID_STEPS = 10
TOLERANCE = 1e-9  # the same rows summed in another order: the check is not loosened beyond it
SMALL_CASE_NAME = "small-case"
SMALL_CASE: dict[str, Any] = {
    "name": "small-case",
    "description": "issue 16's acceptance case: 3 codecs x 3 ECCs x 2 modulations, 4 points",
    "images": {"source": "samples", "size": 128, "limit": 4},
    "channel": {"name": "awgn", "esn0_db": [2, 6, 9, 11]},
    "budget": {"bpp_channel": 1.0},
    "objective": {"metric": "psnr", "statistic": "mean", "max_corruption": 0.01},
    "candidates": {
        "codec": [{"name": "jpeg"}, {"name": "webp"}, {"name": "jpeg2000"}],
        "ecc": [{"name": "none"}, {"name": "rs", "k": 223}, {"name": "conv"}],
        "modulation": [{"name": "bpsk"}, {"name": "qpsk"}],
    },
    "frames": {"payload_bytes": 256, "header": "ideal"},
    "trials": {"min": 2, "max": 16},
    "seed": 1,
}


@dataclass(frozen=True)
class Best:
    """A cell at one channel point as the comparison scores it: the design's winner, the
    brute-force best, or the winner run to ``trials.max``."""

    label: str  # "" when nothing qualifies (or this cell does not)
    value: float
    ci95: float
    bpp_channel: float
    corruption: float
    rows: int  # the rows its value rests on


@dataclass(frozen=True)
class Point:
    """One channel point of the comparison."""

    channel_value: float
    design: Best
    brute: Best
    confirmed: Best  # the design's winner, its cell run to trials.max (label "" if none)

    @property
    def confirmed_qualifies(self) -> bool:
        """Whether the design's winner, at trials.max, still keeps its corruption rate within
        ``max_corruption`` (no winner: nothing to confirm)."""
        return not self.design.label or bool(self.confirmed.label)

    @property
    def difference(self) -> float:
        return self.design.value - self.brute.value

    @property
    def passed(self) -> bool:
        """The design's winner is at least as good as the brute-force best, within its own
        95 % interval (an unknown half-width counts as zero); nothing to beat passes."""
        if not self.brute.label:
            return True
        if not self.design.label:
            return False
        half = 0.0 if math.isnan(self.design.ci95) else self.design.ci95
        return self.design.value + half + TOLERANCE >= self.brute.value


@dataclass(frozen=True)
class Comparison:
    points: list[Point]
    design_link_runs: int
    full_grid_runs: int
    brute_rows: int  # rows in the brute-force results (screening included)
    brute_grid_runs: int  # every grid cell at every point at trials.max
    brute_cells: int  # grid cells (all points)
    brute_cells_fitting: int
    shared_rows: int  # rows both folders hold (same cell, image and trial)
    shared_rows_differing: int  # of those, rows whose metric, decoded or bpp differ
    design_wall_s: float
    brute_wall_s: float

    @property
    def passed(self) -> bool:
        return all(point.passed for point in self.points)


def rate_grid(low: float, high: float, integer: bool, resolution: float) -> list[int | float]:
    """``GRID_STEPS`` values from ``high`` down in tenths of the range, lowest first, on the
    knob's own grid (whole numbers, or multiples of ``resolution`` above ``low``)."""
    values: list[int | float] = []
    for step in range(GRID_STEPS - 1, -1, -1):
        value = high - (high - low) * step / GRID_STEPS
        if integer:
            values.append(math.floor(value + 0.5))
        else:
            steps = math.floor((value - low) / resolution + 0.5)
            values.append(round(low + steps * resolution, 6))
    return sorted(set(values))


def brute_codecs(design: Design) -> list[dict[str, Any]]:
    """The design's codec candidates with their rate knob as a list over the grid (a fixed-rate
    candidate as it is)."""
    from noisylink.design.rates import codec_candidates

    codecs = []
    for candidate in codec_candidates(design):
        settings = dict(candidate.settings)
        knob = candidate.knob
        if knob is not None:
            settings[knob.field] = rate_grid(candidate.low, candidate.high, knob.integer,
                                             knob.resolution)
        codecs.append(settings)
    return codecs


def brute_scenario_data(design: Design, channel: dict[str, Any], trials: int) -> dict[str, Any]:
    """The brute-force grid as one scenario (as data), named as the design's rows are."""
    first = design.candidates
    data = design.scenario_data(first.codec[0], first.ecc[0],
                                first.modulation[0] if first.modulation else None)
    data |= {"codec": brute_codecs(design), "ecc": list(first.ecc), "channel": channel,
             "trials": trials}
    if first.modulation is not None:
        data["modulation"] = list(first.modulation)
    return data


def first_point(channel: dict[str, Any]) -> dict[str, Any]:
    """The channel settings at the first point of its grid."""
    return {key: value[0] if isinstance(value, list) else value for key, value in channel.items()}


def cell_label(row: ResultRow) -> str:
    return " | ".join((row.codec_label, row.ecc, row.modulation or "-"))


def _outcomes(rows: list[ResultRow], position: dict[str, int], metric: str) -> list[Outcome]:
    from noisylink.design.racing import Outcome

    return [Outcome(position[row.image], row.trial, float(getattr(row, metric)), row.decoded)
            for row in sorted(rows, key=lambda r: (position[r.image], r.trial))]


def fits(bpp: list[float], design: Design) -> bool:
    spent = max(bpp) if design.budget.per_image else sum(bpp) / len(bpp)
    return spent <= design.budget.bpp_channel * (1 + 1e-12)


@dataclass(frozen=True)
class BruteForce:
    rows: list[ResultRow]  # every row in the brute-force folder
    cells: int  # grid cells, every point
    fitting_cells: int  # of those, the cells that fit the budget
    grid_runs: int  # every grid cell at trials.max
    wall_s: float


def _settings(config: ComponentConfig) -> dict[str, Any]:
    settings: dict[str, Any] = config.model_dump(mode="json", exclude_none=True)
    return settings


def run_brute_force(design: Design, source: str, out_dir: Path, workers: int) -> BruteForce:
    """Screen the grid at the first channel point (one trial), then run the cells that fit the
    budget at every point up to ``trials.max``."""
    from noisylink.errors import NoisylinkError
    from noisylink.results.file import read_results
    from noisylink.scenarios.grid import expand
    from noisylink.scenarios.loading import parse_scenario
    from noisylink.sweeps.study import Study
    from noisylink.sweeps.sweep import run_sweep

    started = time.perf_counter()
    screen = parse_scenario(brute_scenario_data(design, first_point(design.channel), 1), source)
    outcome = run_sweep(Study(design.name, "brute force: screening", source, [screen]),
                        out_dir, workers=workers)
    if outcome.failures:
        raise NoisylinkError(f"brute-force screening failed: {outcome.failures[0].message}")
    spent: dict[str, list[float]] = {}
    for row in read_results(out_dir / "results.csv"):
        if row.trial == 0:
            spent.setdefault(row.cell_id, []).append(row.bpp_channel)
    screen_cells = expand(screen)
    scenarios = []
    for cell in screen_cells:
        if not fits(spent[cell.id], design):
            continue
        data = design.scenario_data(_settings(cell.codec), _settings(cell.ecc),
                                    _settings(cell.modulation) if cell.modulation else None)
        scenario = parse_scenario(data, source)
        if expand(scenario)[0].id != cell.id:
            raise NoisylinkError(f"the brute-force cell {cell.label} changed identity")
        scenarios.append(scenario)
    if scenarios:
        outcome = run_sweep(Study(design.name, "brute force", source, scenarios), out_dir,
                            workers=workers)
        if outcome.failures:
            raise NoisylinkError(f"brute-force sweep failed: {outcome.failures[0].message}")
    full = parse_scenario(brute_scenario_data(design, design.channel, design.trials.max),
                          source)
    cells = len(expand(full))
    points = cells // len(screen_cells)
    rows = read_results(out_dir / "results.csv")
    images = len({row.image for row in rows})
    return BruteForce(rows, cells, len(scenarios) * points, cells * images * design.trials.max,
                      time.perf_counter() - started)


def _rules(design: Design, images: int) -> Rules:
    from noisylink.design.racing import Rules

    objective = design.objective
    return Rules(objective.statistic, objective.max_corruption, images, design.trials.max,
                 design.seed)


def score(design: Design, rows: list[ResultRow], position: dict[str, int]) -> Best:
    """One cell's rows at one point as a candidate: its statistic and corruption, with an
    empty label when it breaks the budget or ``max_corruption``."""
    from noisylink.design.racing import standing

    bpp = [row.bpp_channel for row in rows]
    outcomes = _outcomes(rows, position, design.objective.metric)
    result = standing(outcomes, _rules(design, len(position)))
    qualifies = (fits(bpp, design) and not math.isnan(result.value)
                 and result.corruption <= design.objective.max_corruption + 1e-12)
    return Best(cell_label(rows[0]) if qualifies else "", result.value, result.half_width,
                sum(bpp) / len(bpp), result.corruption, result.rows)


def brute_best(design: Design, rows: list[ResultRow], channel_value: float,
               position: dict[str, int]) -> Best:
    """The brute-force best at one channel point (``Best.label`` empty when none qualifies)."""
    by_cell: dict[str, list[ResultRow]] = {}
    for row in rows:
        if row.channel_value == channel_value:
            by_cell.setdefault(row.cell_id, []).append(row)
    best = Best("", math.nan, math.nan, math.nan, math.nan, 0)
    for cell_id in sorted(by_cell):
        candidate = score(design, by_cell[cell_id], position)
        if candidate.label and (not best.label or candidate.value > best.value):
            best = candidate
    return best


def confirm_winners(design: Design, source: str, outcome: DesignOutcome, out_dir: Path,
                    workers: int, position: dict[str, int]) -> list[Best]:
    """Each point's winner, its cell run to ``trials.max`` (racing may have stopped it
    earlier), scored as the brute force scores its cells."""
    from noisylink.errors import NoisylinkError
    from noisylink.results.file import read_results
    from noisylink.scenarios.grid import expand
    from noisylink.scenarios.loading import parse_scenario
    from noisylink.sweeps.study import Study
    from noisylink.sweeps.sweep import run_sweep
    from noisylink.sweeps.tasks import scenario_cells

    wanted: dict[int, str] = {}
    scenarios = []
    for point, answer in enumerate(outcome.answers):
        if not answer.label:
            continue
        configuration = outcome.configurations[outcome.labels.index(answer.label)]
        cell = scenario_cells(configuration.scenario)[point]
        data = design.scenario_data(configuration.codec, configuration.ecc,
                                    configuration.modulation)
        scenario = parse_scenario(data | {"channel": _settings(cell.channel)}, source)
        if expand(scenario)[0].id != cell.id:
            raise NoisylinkError(f"the design's cell {cell.label} changed identity")
        wanted[point] = cell.id
        scenarios.append(scenario)
    rows: list[ResultRow] = []
    if scenarios:
        done = run_sweep(Study(design.name, "design winners", source, scenarios), out_dir,
                         workers=workers)
        if done.failures:
            raise NoisylinkError(f"running the winners failed: {done.failures[0].message}")
        rows = read_results(out_dir / "results.csv")
    confirmed = []
    for point in range(len(outcome.answers)):
        mine = [row for row in rows if row.cell_id == wanted.get(point)]
        confirmed.append(score(design, mine, position) if mine
                         else Best("", math.nan, math.nan, math.nan, math.nan, 0))
    return confirmed


def design_best(answer: Answer, images: int) -> Best:
    """The design's winner at one point (``Answer``), its rows being its trials per image."""
    if not answer.label:
        return Best("", math.nan, math.nan, math.nan, math.nan, 0)
    return Best(answer.label, answer.value, answer.ci95, answer.bpp_channel, answer.corruption,
                answer.trials * images)


def compare(design: Design, source: str, out_dir: Path, workers: int) -> Comparison:
    """Run the design and the brute force into ``out_dir`` and compare them point by point."""
    from noisylink.design.run import run_design
    from noisylink.errors import NoisylinkError
    from noisylink.images import load_images
    from noisylink.results.file import read_results
    from noisylink.sweeps.tasks import image_identities

    outcome = run_design(design, source, out_dir / "design", workers=workers)
    if outcome.failures:
        raise NoisylinkError(f"the design failed: {outcome.failures[0].message}")
    recorded = json.loads((out_dir / "design" / "design.json").read_text())
    brute = run_brute_force(design, source, out_dir / "brute", workers)
    identities = image_identities(load_images(design.images))
    position = {name: index for index, (name, _) in enumerate(identities)}
    confirmed = confirm_winners(design, source, outcome, out_dir / "winners", workers,
                                position)
    points = [
        Point(answer.channel_value, design_best(answer, len(position)),
              brute_best(design, brute.rows, answer.channel_value, position), winner)
        for answer, winner in zip(outcome.answers, confirmed, strict=True)
    ]
    shared, differing = same_rows(read_results(out_dir / "design" / "results.csv"),
                                  brute.rows, design.objective.metric)
    return Comparison(points, int(recorded["link_runs"]), int(recorded["full_grid_runs"]),
                      len(brute.rows), brute.grid_runs, brute.cells, brute.fitting_cells,
                      shared, differing, outcome.wall_s, brute.wall_s)


def same_rows(design_rows: list[ResultRow], brute_rows: list[ResultRow],
              metric: str) -> tuple[int, int]:
    """How many rows the design and the brute force share (same cell, image and trial), and
    how many of those differ in the metric, ``decoded`` or ``bpp_channel``: the keyed random
    streams make them the same."""
    def key(row: ResultRow) -> tuple[str, str, int]:
        return row.cell_id, row.image, row.trial

    def figures(row: ResultRow) -> tuple[str, bool, float]:
        return repr(getattr(row, metric)), row.decoded, row.bpp_channel

    mine = {key(row): figures(row) for row in design_rows}
    shared = [row for row in brute_rows if key(row) in mine]
    return len(shared), sum(figures(row) != mine[key(row)] for row in shared)


def _value(value: float, digits: int = 3) -> str:
    return "-" if math.isnan(value) else f"{value:.{digits}f}"


def report(comparison: Comparison, design: Design) -> str:
    """The comparison as printed: one line per channel point, then the link-run counts.

    ``check`` is the issue's: the winner's value + ci95 >= the brute-force best. The columns
    ``at max`` and ``corr`` are the winner's own cell run to trials.max (value, corruption)."""
    param = next((k for k, v in design.channel.items() if isinstance(v, list)), "point")
    label_width = max([len(p.design.label) for p in comparison.points]
                      + [len(p.brute.label) for p in comparison.points] + [16])
    header = (f"{param:>8}  {'design winner':<{label_width}}  {'value':>7}  {'ci95':>6}  "
              f"{'at max':>7}  {'corr':>6}  {'brute-force best':<{label_width}}  {'value':>7}  "
              f"{'diff':>7}  check")
    lines = [f"{design.name}: {design.objective.statistic} {design.objective.metric} within "
             f"{design.budget.bpp_channel:g} bpp_channel, max corruption "
             f"{design.objective.max_corruption:g}, trials {design.trials.min}..."
             f"{design.trials.max}", header, "-" * len(header)]
    for point in comparison.points:
        lines.append(
            f"{point.channel_value:>8g}  {point.design.label or '(none)':<{label_width}}  "
            f"{_value(point.design.value):>7}  {_value(point.design.ci95):>6}  "
            f"{_value(point.confirmed.value):>7}  {_value(point.confirmed.corruption):>6}  "
            f"{point.brute.label or '(none)':<{label_width}}  {_value(point.brute.value):>7}  "
            f"{_value(point.difference):>7}  {'ok' if point.passed else 'FAIL'}")
    for point in comparison.points:
        if not point.passed:
            lines.append(
                f"FAIL at {point.channel_value:g}: design {point.design.label} "
                f"{point.design.value!r} +- {point.design.ci95!r} "
                f"(bpp {point.design.bpp_channel!r}, corruption {point.design.corruption!r}, "
                f"{point.design.rows} rows) < brute {point.brute.label} {point.brute.value!r} "
                f"(bpp {point.brute.bpp_channel!r}, corruption {point.brute.corruption!r}, "
                f"{point.brute.rows} rows)")
        if not point.confirmed_qualifies:
            lines.append(
                f"note at {point.channel_value:g}: the winner {point.design.label} run to "
                f"trials.max ({point.confirmed.rows} rows) has corruption "
                f"{point.confirmed.corruption!r} > {design.objective.max_corruption:g} (mean "
                f"{point.confirmed.value!r}); the design saw {point.design.rows} rows")
    c = comparison
    lines += [
        f"design link runs: {c.design_link_runs} (full grid at trials.max: {c.full_grid_runs}; "
        f"{c.design_wall_s:.1f} s this run)",
        f"brute-force rows: {c.brute_rows} ({c.brute_cells_fitting} of {c.brute_cells} grid "
        f"cells fit the budget; whole grid at trials.max: {c.brute_grid_runs}; "
        f"{c.brute_wall_s:.1f} s this run)",
        f"rows the design and the brute force share: {c.shared_rows}, of which differ: "
        f"{c.shared_rows_differing}",
        f"check (value + ci95 >= brute-force best): "
        f"{'passed at every point' if c.passed else 'FAILED'}",
    ]
    return "\n".join(lines)


def load(ref: str, out_dir: Path) -> tuple[Design, str]:
    """The design named on the command line (``small-case``: ``SMALL_CASE``, written down)."""
    from noisylink.design.loading import load_design

    if ref != SMALL_CASE_NAME:
        return load_design(ref)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{SMALL_CASE_NAME}.yaml"
    path.write_text(json.dumps(SMALL_CASE, indent=2) + "\n")  # JSON is YAML
    return load_design(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("design", help=f"design file, or {SMALL_CASE_NAME}")
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)
    from noisylink.errors import NoisylinkError

    try:
        design, source = load(args.design, args.out_dir)
        comparison = compare(design, source, args.out_dir, args.workers)
    except NoisylinkError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(report(comparison, design))
    return 0 if comparison.passed else 1


if __name__ == "__main__":
    sys.exit(main())
