"""Figures of a sweep's results folder, written as PNG files under ``<run_dir>/plots/``.

Per scenario of ``results.csv``:

- ``<scenario>-quality-vs-<param>.png``: PSNR and SSIM against the swept channel setting, one
  line per (codec, ECC) with its mean and 95 % confidence band (only when several values swept);
- ``<scenario>-corruption-vs-<param>.png``: share of undecodable images, same axis (idem);
- ``<scenario>-quality-vs-bandwidth.png``: PSNR against channel bits per pixel, one panel per
  channel value, with the Pareto front and the part of the bandwidth spent on ECC parity;
- ``<scenario>-examples.png``: the saved example reconstructions (only when
  ``<run_dir>/examples/<scenario>/`` holds some).

A damaged ``results.csv`` (not UTF-8, a row with too few or too many fields, a number that is
not one) is one ``NoisylinkError`` line naming the file and the line; a last line without its
end (a sweep writing, or killed mid-write) is left out. Rows of one scenario made under
different ``setting`` values are refused rather than averaged together.

Matplotlib is used through ``Figure`` and the Agg canvas only: no pyplot, no global state.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FixedLocator, NullFormatter, NullLocator
from PIL import Image

from noisylink.errors import NoisylinkError
from noisylink.outdir import prepare_out_dir
from noisylink.results.file import read_results
from noisylink.results.row import ResultRow
from noisylink.results.summary import estimate

__all__ = ["mean_ci", "pareto_front", "write_plots"]

DPI = 120
BER_LIKE = ("ber", "p", "mean_ber")
AXIS_LABELS = {
    "ber": "channel bit error rate (BER)",
    "p": "erasure probability p",
    "mean_ber": "mean channel bit error rate",
    "esn0_db": "Es/N0 (dB)",
    "ebn0_db": "Eb/N0 (dB)",
}
SHORT_NAMES = {"ber": "BER", "p": "p", "mean_ber": "mean BER", "esn0_db": "Es/N0",
               "ebn0_db": "Eb/N0"}
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "h", "<", ">", "p")
CORRUPTION_LABEL = "corruption rate (share of undecodable images)"

# (codec label, ecc, modulation, channel without its swept setting)
Series = tuple[str, str, str, str]
# (swept setting, its value); value None when nothing is swept
XKey = tuple[str, float | None]


@dataclass(frozen=True)
class _Row:
    scenario: str
    setting: str
    cell_id: str
    series: Series
    x: XKey
    trial: int
    image: str
    bpp: float
    ecc_overhead: float
    decoded: bool
    psnr: float
    ssim: float


def write_plots(run_dir: Path) -> list[Path]:
    """Write the figures of ``run_dir/results.csv`` under ``run_dir/plots/``; return the paths."""
    run_dir = Path(run_dir)
    rows = _read(run_dir)
    out = prepare_out_dir(run_dir / "plots", "plots folder")
    scenarios: dict[str, list[_Row]] = {}
    for row in rows:
        scenarios.setdefault(row.scenario, []).append(row)
    written: list[Path] = []
    for name, group in scenarios.items():
        written += _scenario_plots(run_dir, out, name, group)
    return written


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the (cost, gain) points no other point beats, in increasing cost.

    A point is beaten by another with cost <= and gain >=, one of them strictly; equal points
    do not beat each other, so both stay. Points with a NaN are never on the front.
    """
    valid = [i for i, (x, y) in enumerate(points) if not (math.isnan(x) or math.isnan(y))]
    front = []
    for i in valid:
        xi, yi = points[i]
        beaten = any(
            points[j][0] <= xi and points[j][1] >= yi and points[j] != (xi, yi) for j in valid
        )
        if not beaten:
            front.append(i)
    return sorted(front, key=lambda i: (points[i][0], -points[i][1], i))


def mean_ci(values: Iterable[float]) -> tuple[float, float]:
    """Mean of the finite values and half width of its 95 % interval (Student t; 0 below 2)."""
    found = estimate(v for v in values if math.isfinite(v))
    if math.isnan(found.mean):
        return math.nan, math.nan
    return found.mean, 0.0 if math.isnan(found.half_width) else found.half_width


# --- reading -----------------------------------------------------------------------------


def _read(run_dir: Path) -> list[_Row]:
    if not run_dir.is_dir():
        raise NoisylinkError(f"{run_dir}: no such results folder")
    path = run_dir / "results.csv"
    if not path.is_file():
        raise NoisylinkError(f"{path}: not found (run a sweep into this folder first)")
    rows = [_parse(path, row) for row in read_results(path)]
    if not rows:
        raise NoisylinkError(f"{path}: no result rows")
    _check_one_setting(path, rows)
    return rows


def _check_one_setting(path: Path, rows: list[_Row]) -> None:
    """Refuse a file whose rows of one scenario were made under different settings."""
    settings: dict[str, set[str]] = {}
    for row in rows:
        settings.setdefault(row.scenario, set()).add(row.setting)
    for scenario, found in settings.items():
        if len(found) > 1:
            raise NoisylinkError(
                f"{path}: scenario {scenario} has rows of {len(found)} different settings "
                "(seed, image shaping, frames or noisylink version); plot one study per folder"
            )


def _parse(path: Path, row: ResultRow) -> _Row:
    def params(column: str, text: str) -> dict[str, object]:
        try:
            value = json.loads(text) if text.strip() else {}
        except json.JSONDecodeError:
            value = None
        if not isinstance(value, dict):
            raise NoisylinkError(f"{path}: row of {row.image} trial {row.trial} in cell "
                                 f"{row.cell}: column {column} is not a JSON object")
        return value

    channel = dict(params("channel_params", row.channel_params))
    channel.pop(row.channel_param, None)
    series = (
        row.codec_label or _label(row.codec, params("codec_params", row.codec_params)),
        row.ecc,
        row.modulation,
        _label(row.channel, channel) if row.channel else "",
    )
    value = row.channel_value
    return _Row(
        scenario=row.scenario,
        setting=row.setting.strip(),
        cell_id=row.cell_id.strip(),
        series=series,
        x=(row.channel_param.strip(), None if math.isnan(value) else value),
        trial=row.trial,
        image=row.image,
        bpp=row.bpp_channel,
        ecc_overhead=row.ecc_overhead,
        decoded=row.decoded,
        psnr=row.psnr,
        ssim=row.ssim,
    )


def _label(name: str, params: dict[str, object]) -> str:
    """``name(key=value,...)``, or just the name without settings (as the registry labels)."""
    if not params:
        return name
    return f"{name}({','.join(f'{key}={value}' for key, value in params.items())})"


# --- per scenario ------------------------------------------------------------------------


def _scenario_plots(run_dir: Path, out: Path, name: str, rows: list[_Row]) -> list[Path]:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", name) or "scenario"
    series = list(dict.fromkeys(row.series for row in rows))
    labels = _series_labels(series, with_ecc=True)
    written = []
    for param in dict.fromkeys(row.x[0] for row in rows):
        sweep = [row for row in rows if row.x[0] == param]
        values = sorted({row.x[1] for row in sweep if row.x[1] is not None})
        if len(values) < 2:
            continue
        quality = _quality_figure(name, param, values, sweep, series, labels)
        written.append(_save(quality, out / f"{slug}-quality-vs-{param}.png"))
        corruption = _corruption_figure(name, param, values, sweep, series, labels)
        written.append(_save(corruption, out / f"{slug}-corruption-vs-{param}.png"))
    bandwidth = _bandwidth_figure(name, rows, series)
    written.append(_save(bandwidth, out / f"{slug}-quality-vs-bandwidth.png"))
    examples = _examples_figure(run_dir / "examples" / name, name, rows, series, labels)
    if examples is not None:
        written.append(_save(examples, out / f"{slug}-examples.png"))
    return written


def _series_labels(series: list[Series], *, with_ecc: bool) -> dict[Series, str]:
    """Short labels: codec (+ ECC), then modulation and channel where they vary."""
    varies = [len({s[i] for s in series}) > 1 for i in range(4)]
    labels = {}
    for s in series:
        text = f"{s[0]} + {s[1]}" if with_ecc else s[0]
        extra = [s[i] for i in (2, 3) if varies[i] and s[i]]
        labels[s] = " · ".join([text, *extra])
    return labels


def _save(figure: Figure, path: Path) -> Path:
    FigureCanvasAgg(figure)
    try:
        figure.savefig(path, dpi=DPI)
    except OSError as exc:
        raise NoisylinkError(f"{path}: cannot write ({exc.strerror or exc})") from None
    return path


def _legend(figure: Figure, handles: Sequence[Artist], texts: list[str], title: str) -> None:
    """One legend below the panels, so it covers neither data nor the title."""
    longest = max((len(t) for t in texts), default=0)
    width_chars = figure.get_figwidth() * 13  # about 13 legend characters per inch at 9 pt
    columns = min(len(texts), 4, max(1, int(width_chars // (longest + 6))))
    figure.legend(handles, texts, loc="outside lower center", ncols=max(columns, 1), title=title,
                  fontsize=9, title_fontsize=9, frameon=False)


def _legend_height(entries: int, columns: int = 2) -> float:
    """Inches to add below the panels for a legend of that many entries."""
    return 0.4 + 0.22 * math.ceil(entries / columns)


def _colours(count: int) -> list[tuple[float, ...]]:
    cmap = colormaps["tab10" if count <= 10 else "tab20"]
    return [tuple(cmap(i % cmap.N)) for i in range(count)]


def _x_order(key: XKey) -> tuple[str, float]:
    return key[0], -math.inf if key[1] is None else key[1]


def _value_text(param: str, value: float | None) -> str:
    if value is None:
        return "no swept setting"
    short = SHORT_NAMES.get(param, param)
    unit = " dB" if param.endswith("_db") else ""
    return f"{short} = {value:g}{unit}"


# --- channel axis ------------------------------------------------------------------------


def _positions(param: str, values: list[float]) -> dict[float, float]:
    """Where each channel value goes on the x axis (0 one decade left on a log axis)."""
    if param not in BER_LIKE:
        return {v: v for v in values}
    nonzero = [v for v in values if v > 0]
    zero_at = min(nonzero) / 10 if nonzero else 1e-6
    return {v: (v if v > 0 else zero_at) for v in values}


def _channel_axis(ax: Axes, param: str, values: list[float]) -> None:
    ax.set_xlabel(AXIS_LABELS.get(param, param))
    if param not in BER_LIKE:
        return
    ax.set_xscale("log")
    positions = _positions(param, values)
    nonzero = sorted(v for v in values if v > 0)
    if len(nonzero) <= 6:
        ticks = nonzero
        texts = [f"{v:g}" for v in nonzero]
    else:
        low, high = math.floor(math.log10(nonzero[0])), math.ceil(math.log10(nonzero[-1]))
        ticks = [10.0**k for k in range(low, high + 1) if nonzero[0] / 1.01 <= 10.0**k]
        ticks = [t for t in ticks if t <= nonzero[-1] * 1.01]
        texts = [f"$10^{{{round(math.log10(t))}}}$" for t in ticks]
    if 0.0 in positions:
        zero_at = positions[0.0]
        ticks = [zero_at, *ticks]
        texts = ["0", *texts]
        ax.axvline(math.sqrt(zero_at * nonzero[0]), color="0.75", lw=0.8, ls=":")
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xticklabels(texts)
    ax.set_xlim(min(positions.values()) / 1.6, max(positions.values()) * 1.6)


# --- figures -----------------------------------------------------------------------------


def _by_series_and_value(rows: list[_Row]) -> dict[tuple[Series, float | None], list[_Row]]:
    groups: dict[tuple[Series, float | None], list[_Row]] = {}
    for row in rows:
        groups.setdefault((row.series, row.x[1]), []).append(row)
    return groups


def _quality_figure(
    name: str, param: str, values: list[float], rows: list[_Row], series: list[Series],
    labels: dict[Series, str],
) -> Figure:
    figure = Figure(figsize=(13, 4.6 + _legend_height(len(series))), layout="constrained")
    psnr_ax, ssim_ax = figure.subplots(1, 2)
    groups = _by_series_and_value(rows)
    positions = _positions(param, values)
    colours = _colours(len(series))
    for index, s in enumerate(series):
        for ax, column in ((psnr_ax, "psnr"), (ssim_ax, "ssim")):
            xs, means, halves = [], [], []
            for value in values:
                group = groups.get((s, value), [])
                mean, half = mean_ci(getattr(row, column) for row in group)
                if not math.isnan(mean):
                    xs.append(positions[value])
                    means.append(mean)
                    halves.append(half)
            if not xs:
                continue
            m, h = np.array(means), np.array(halves)
            style = {"color": colours[index], "marker": MARKERS[index % len(MARKERS)]}
            ax.plot(xs, m, label=labels[s], ms=5, lw=1.5, **style)
            ax.fill_between(xs, m - h, m + h, color=colours[index], alpha=0.15, lw=0)
    for ax, ylabel in ((psnr_ax, "PSNR (dB)"), (ssim_ax, "SSIM")):
        _channel_axis(ax, param, values)
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    handles, texts = psnr_ax.get_legend_handles_labels()
    _legend(figure, handles, texts, "codec + ECC")
    figure.suptitle(
        f"{name}: picture quality vs {AXIS_LABELS.get(param, param)} "
        "(mean and 95 % confidence band over images and trials)"
    )
    return figure


def _corruption_figure(
    name: str, param: str, values: list[float], rows: list[_Row], series: list[Series],
    labels: dict[Series, str],
) -> Figure:
    figure = Figure(figsize=(11, 4.6 + _legend_height(len(series))), layout="constrained")
    ax = figure.subplots()
    groups = _by_series_and_value(rows)
    positions = _positions(param, values)
    colours = _colours(len(series))
    for index, s in enumerate(series):
        xs, rates = [], []
        for value in values:
            known = [row.decoded for row in groups.get((s, value), [])]
            if known:
                xs.append(positions[value])
                rates.append(1 - sum(known) / len(known))
        if xs:
            marker = MARKERS[index % len(MARKERS)]
            ax.plot(xs, rates, marker=marker, color=colours[index], label=labels[s], ms=5)
    _channel_axis(ax, param, values)
    ax.set_ylim(-0.03, 1.03)
    ax.set_ylabel(CORRUPTION_LABEL)
    ax.grid(alpha=0.3)
    handles, texts = ax.get_legend_handles_labels()
    _legend(figure, handles, texts, "codec + ECC")
    figure.suptitle(f"{name}: undecodable images vs {AXIS_LABELS.get(param, param)}")
    return figure


def _bandwidth_figure(name: str, rows: list[_Row], series: list[Series]) -> Figure:
    keys = sorted({row.x for row in rows}, key=_x_order)
    columns = min(3, len(keys))
    lines = math.ceil(len(keys) / columns)
    height = 4 * lines + 0.8 + _legend_height(len(series) + 4)
    figure = Figure(figsize=(13 if columns > 1 else 10, height), layout="constrained")
    axes = figure.subplots(lines, columns, squeeze=False, sharex=True, sharey=True).ravel()
    for ax in axes[len(keys):]:
        ax.set_visible(False)

    colour_labels = _series_labels(series, with_ecc=False)
    colour_keys = list(dict.fromkeys(colour_labels.values()))
    colour_of = dict(zip(colour_keys, _colours(len(colour_keys)), strict=True))
    eccs = list(dict.fromkeys(s[1] for s in series))
    marker_of = {ecc: MARKERS[i % len(MARKERS)] for i, ecc in enumerate(eccs)}
    groups: dict[tuple[Series, XKey], list[_Row]] = {}
    for row in rows:
        groups.setdefault((row.series, row.x), []).append(row)

    bpps = []
    for ax, key in zip(axes, keys, strict=False):
        points, shares, owners = [], [], []
        for s in series:
            group = groups.get((s, key), [])
            bpp, _ = mean_ci(row.bpp for row in group)
            psnr, _ = mean_ci(row.psnr for row in group)
            share, _ = mean_ci(row.ecc_overhead for row in group)
            if group and not (math.isnan(bpp) or math.isnan(psnr)) and bpp > 0:
                points.append((bpp, psnr))
                shares.append(0.0 if math.isnan(share) else share)
                owners.append(s)
        bpps += [p[0] for p in points]
        for (bpp, psnr), share in zip(points, shares, strict=True):
            if share > 0:
                ax.hlines(psnr, bpp * (1 - share), bpp, color="0.45", lw=1.2)
        for (bpp, psnr), s in zip(points, owners, strict=True):
            ax.scatter(bpp, psnr, s=42, marker=marker_of[s[1]], color=colour_of[colour_labels[s]],
                       zorder=3)
        front = pareto_front(points)
        if front:
            xs = [points[i][0] for i in front]
            ys = [points[i][1] for i in front]
            ax.plot(xs, ys, drawstyle="steps-post", color="k", lw=1, ls="--", zorder=2)
            ax.scatter(xs, ys, s=140, facecolors="none", edgecolors="k", lw=1.3, zorder=4)
        if not points:
            ax.text(0.5, 0.5, "no data", transform=ax.transAxes, ha="center", color="0.5")
        ax.set_title(_value_text(*key), fontsize=10)
        ax.grid(alpha=0.3)
    positive = [b for b in bpps if b > 0]
    if positive and max(positive) / min(positive) > 10:
        axes[0].set_xscale("log")
        for ax in axes:
            ax.xaxis.set_minor_formatter(NullFormatter())  # decade labels only
    for index, ax in enumerate(axes[: len(keys)]):
        if index + columns >= len(keys):  # nothing shown below it
            ax.tick_params(labelbottom=True)
            ax.set_xlabel("channel bits per pixel (ECC included)")
        if index % columns == 0:
            ax.set_ylabel("PSNR (dB)")

    handles: list[Line2D] = [
        Line2D([], [], ls="", marker="o", color=colour_of[k], label=k) for k in colour_keys
    ]
    for ecc in eccs:
        share, _ = mean_ci(row.ecc_overhead for row in rows if row.series[1] == ecc)
        text = f"{ecc}: parity {0 if math.isnan(share) else 100 * share:.1f} % of channel bits"
        handles.append(Line2D([], [], ls="", marker=marker_of[ecc], color="0.3", label=text))
    handles.append(Line2D([], [], color="0.45", lw=1.2, label="bandwidth spent on ECC parity"))
    handles.append(Line2D([], [], color="k", ls="--", marker="o", mfc="none", ms=9,
                          label="Pareto front (fewest bits for the PSNR)"))
    _legend(figure, handles, [h.get_label() for h in handles], "colour: codec · marker: ECC")
    figure.suptitle(f"{name}: PSNR vs bandwidth (mean over images and trials)")
    return figure


def _examples_figure(
    folder: Path, name: str, rows: list[_Row], series: list[Series], labels: dict[Series, str],
) -> Figure | None:
    if not folder.is_dir():
        return None
    cells: dict[str, tuple[Series, XKey]] = {}
    for row in rows:
        if row.cell_id and (folder / f"{row.cell_id}.png").is_file():
            cells.setdefault(row.cell_id, (row.series, row.x))
    if not cells:
        return None
    first_image = rows[0].image
    psnr_of = {
        row.cell_id: row for row in rows if row.trial == 0 and row.image == first_image
    }
    keys = sorted({x for _, x in cells.values()}, key=_x_order)
    shown = [s for s in series if any(owner == s for owner, _ in cells.values())]
    tile = min(1.9, 11.5 / (len(keys) + 1))
    figure = Figure(
        figsize=(tile * (len(keys) + 1) + 2.6, tile * len(shown) + 1.0), layout="constrained"
    )
    axes = figure.subplots(len(shown), len(keys) + 1, squeeze=False)
    by_place = {(s, x): cell_id for cell_id, (s, x) in cells.items()}
    for r, s in enumerate(shown):
        _tile(axes[r][0], folder / "source.png", "source" if r == 0 else "")
        axes[r][0].set_ylabel(labels[s], rotation=0, ha="right", va="center", fontsize=9)
        for c, key in enumerate(keys, start=1):
            cell_id = by_place.get((s, key))
            title = _value_text(*key) + "\n" if r == 0 else ""
            row = psnr_of.get(cell_id or "")
            if row is not None and row.decoded is False:
                title += "undecodable"
            elif row is not None and not math.isnan(row.psnr):
                title += f"PSNR {row.psnr:.1f} dB"
            path = folder / f"{cell_id}.png" if cell_id else None
            _tile(axes[r][c], path, title)
    figure.suptitle(f"{name}: reconstructions of {first_image or 'the first image'} (trial 0)")
    return figure


def _tile(ax: Axes, path: Path | None, title: str) -> None:
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.set_title(title, fontsize=8)
    try:
        if path is None:
            raise FileNotFoundError
        with Image.open(path) as image:
            gray = image.mode in ("L", "1", "I", "I;16", "F")
            pixels = np.asarray(image.convert("L" if gray else "RGB"))
    except (OSError, ValueError):
        ax.text(0.5, 0.5, "—", transform=ax.transAxes, ha="center", va="center", color="0.5")
        return
    if gray:
        ax.imshow(pixels, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    else:
        ax.imshow(pixels, interpolation="nearest")
