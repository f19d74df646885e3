"""The `resilience` study's tables and figures (issue 15), from a finished sweep folder.

    python scripts/resilience_report.py RESULTS_DIR [--question DIR] [--plots DIR]
        [--jpeg-budget-bsc 2.0] [--jpeg-budget-awgn 3.0]

Prints markdown: Robust Turbo-DDCM's configurations (each spends the same channel bits within
2 %, checked here on the rows), JPEG's curves read at one channel bpp
(``noisylink.results.bandwidth``), and, with ``--question``, the loss of Robust Turbo-DDCM at
BER 1e-3 by atom spread, picture size and protection (``scenarios/rcc-loss-question.yaml``).
With ``--plots`` it writes the figures there.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from noisylink.results.bandwidth import at_bandwidth, curves
from noisylink.results.file import read_results
from noisylink.results.row import ResultRow
from noisylink.results.summary import estimate

TOLERANCE = 0.02


SHORTER = ((",shortened=True", ""), ("(n=1944,", "("), (",iterations=20,method=sum-product", ""),
           ("concatenated(rs(k=223),I=5,conv)", "CCSDS concatenated"))


def short_ecc(label: str) -> str:
    for long, short in SHORTER:
        label = label.replace(long, short)
    return label


def channel_text(param: str, value: float) -> str:
    return f"BER {value:g}" if param == "ber" else f"Es/N0 {value:g} dB"


def rcc_section(rows: list[ResultRow], prefix: str, reference: tuple[str, str]) -> tuple[str, dict]:
    """Table of one channel's Robust Turbo-DDCM configurations; ``reference`` (scenario, ecc)
    sets the budget."""
    mine = [r for r in rows if r.scenario.startswith(prefix)]
    by_config: dict[tuple[str, str], list[ResultRow]] = defaultdict(list)
    for row in mine:
        by_config[(row.codec_label, row.ecc)].append(row)
    budget_rows = [r for r in mine if r.scenario == reference[0] and r.ecc == reference[1]]
    budget = float(np.mean([r.bpp_channel for r in budget_rows]))
    values = sorted({(r.channel_param, r.channel_value) for r in mine}, key=lambda v: v[1])
    if mine[0].channel_param == "esn0_db":
        values = sorted(values, key=lambda v: v[1])
    lines = ["| configuration | channel bpp (× budget) | "
             + " | ".join(channel_text(*v) for v in values) + " | mean, noisy points | worst |",
             "| --- | --- | " + " | ".join("---" for _ in values) + " | --- | --- |"]
    series = {}
    for (codec, ecc), members in sorted(by_config.items(), key=lambda kv: kv[0][1]):
        bpp = float(np.mean([r.bpp_channel for r in members]))
        ratio = bpp / budget
        flag = "" if abs(ratio - 1) <= TOLERANCE else " **(beyond 2 %)**"
        cells = []
        means = []
        for value in values:
            group = [r for r in members if (r.channel_param, r.channel_value) == value]
            psnr = estimate(r.psnr for r in group)
            lost = sum(not r.decoded for r in group)
            lost_text = f" ({lost} lost)" if lost else ""
            cells.append(f"{psnr.mean:.2f} ± {psnr.half_width:.2f}{lost_text}")
            means.append(psnr.mean)
        name = f"{codec.replace('robust-turbo-ddcm', 'RTDDCM')} + {short_ecc(ecc)}"
        series[name] = ([v[1] for v in values], means)
        noisy = [m for v, m in zip(values, means, strict=True) if v[1] != 0.0 or v[0] != "ber"]
        lines.append(f"| {name} | {bpp:.4f} ({ratio:.3f}){flag} | " + " | ".join(cells)
                     + f" | {np.mean(noisy):.2f} | {min(noisy):.2f} |")
    return "\n".join(lines), series


def paired_gaps(rows: list[ResultRow], prefix: str) -> str:
    """Per channel point: the best unequal configuration against the best uniform one, the
    difference of their per-picture mean PSNRs with its 95 % interval over the pictures."""
    mine = [r for r in rows if r.scenario.startswith(prefix)]
    per: dict[tuple[float, str], dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for row in mine:
        per[(row.channel_value, f"{row.codec_label} + {short_ecc(row.ecc)}")][row.image].append(
            row.psnr)
    lines = []
    for value in sorted({v for v, _ in per}):
        if value == 0.0 and mine[0].channel_param == "ber":
            continue
        means = {name: {image: float(np.mean(p)) for image, p in images.items()}
                 for (v, name), images in per.items() if v == value}
        best = {kind: max((n for n in means if ("unequal" in n) == (kind == "unequal")),
                          key=lambda n: np.mean(list(means[n].values())))
                for kind in ("unequal", "uniform")}
        a, b = means[best["unequal"]], means[best["uniform"]]
        gap = estimate(a[image] - b[image] for image in a)
        lines.append(f"- {channel_text(mine[0].channel_param, value)}: best unequal "
                     f"{best['unequal']} minus best uniform {best['uniform']}: "
                     f"{gap.mean:+.2f} ± {gap.half_width:.2f} dB (paired over {len(a)} pictures)")
    return "\n".join(lines)


def jpeg_section(rows: list[ResultRow], scenario: str, budget: float) -> tuple[str, dict]:
    mine = [r for r in rows if r.scenario == scenario]
    found = curves(mine, scenario)
    values = sorted({(k.channel_param, k.channel_value) for k in found}, key=lambda v: v[1])
    by_config: dict[tuple[str, str], dict] = defaultdict(dict)
    for key, points in found.items():
        by_config[(key.codec, key.ecc)][(key.channel_param, key.channel_value)] = points
    lines = [f"| configuration (at {budget:g} channel bpp) | "
             + " | ".join(channel_text(*v) for v in values) + " | mean | worst |",
             "| --- | " + " | ".join("---" for _ in values) + " | --- | --- |"]
    series = {}
    for (codec, ecc), per_value in sorted(by_config.items()):
        cells, means = [], []
        for value in values:
            read = at_bandwidth(per_value.get(value, []), budget, TOLERANCE)
            if read is None:
                cells.append("out of range")
                means.append(math.nan)
                continue
            how = "" if read.measured else "~"
            lost = f" ({100 * read.corruption:.0f} % lost)" if read.corruption > 0 else ""
            cells.append(f"{how}{read.psnr:.2f}{lost}")
            means.append(read.psnr)
        variant = codec.replace('{"name": "jpeg"', "jpeg").replace("}", "").replace('"', "")
        name = f"{variant} + {short_ecc(ecc)}"
        series[name] = ([v[1] for v in values], means)
        lines.append(f"| {name} | " + " | ".join(cells)
                     + f" | {np.mean(means):.2f} | {np.min(means):.2f} |")
    return "\n".join(lines), series


def question_section(rows: list[ResultRow]) -> str:
    clean: dict[tuple[str, str], float] = {}
    for row in rows:
        if row.channel_value == 0.0:
            clean[(row.codec_label, row.image, row.width)] = row.psnr
    lines = ["| scenario | codec | ecc | channel bits (× unprotected) | PSNR clean "
             "| loss at 1e-3 (dB, ± 95 %) | streams |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    groups: dict[tuple[str, str, str], list[ResultRow]] = defaultdict(list)
    for row in rows:
        if row.channel_value == 1e-3:
            groups[(row.scenario, row.codec_label, row.ecc)].append(row)
    base_bits = {}
    for (_, codec, ecc), members in groups.items():
        if ecc == "none":
            base_bits[(codec, members[0].width)] = np.mean([r.channel_bits for r in members])
    for (scenario, codec, ecc), members in sorted(groups.items()):
        losses = [clean[(r.codec_label, r.image, r.width)] - r.psnr for r in members
                  if (r.codec_label, r.image, r.width) in clean]
        loss = estimate(losses)
        bits = np.mean([r.channel_bits for r in members])
        base = base_bits.get((codec, members[0].width), math.nan)
        clean_mean = np.mean([clean[(r.codec_label, r.image, r.width)] for r in members
                              if (r.codec_label, r.image, r.width) in clean])
        lines.append(f"| {scenario} | {codec} | {short_ecc(ecc)} | {bits:.0f} ({bits / base:.3f}) "
                     f"| {clean_mean:.2f} | {loss.mean:.2f} ± {loss.half_width:.2f} "
                     f"| {len(losses)} |")
    return "\n".join(lines)


def figure(panels: list[tuple[str, str, dict]], path: Path) -> None:
    fig = Figure(figsize=(6.5 * len(panels), 5.5), layout="constrained")
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (title, xlabel, series) in zip(axes, panels, strict=True):
        colours = colormaps["tab20"].colors
        for index, (name, (xs, ys)) in enumerate(series.items()):
            style = "-" if "unequal" in name else "--"
            ax.plot(xs, ys, style, marker="o", label=name, color=colours[index % len(colours)])
        if xlabel.startswith("BER"):
            ax.set_xscale("symlog", linthresh=1e-4)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("PSNR (dB)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6)
    FigureCanvasAgg(fig).print_png(str(path))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path)
    parser.add_argument("--question", type=Path)
    parser.add_argument("--plots", type=Path)
    parser.add_argument("--jpeg-budget-bsc", type=float, default=2.0)
    parser.add_argument("--jpeg-budget-awgn", type=float, default=3.0)
    args = parser.parse_args()
    rows = read_results(args.results / "results.csv")
    out = []
    panels_rcc, panels_jpeg = [], []
    for prefix, reference, xlabel in [("rcc-bsc", ("rcc-bsc-m20", "none"), "BER"),
                                      ("rcc-awgn", ("rcc-awgn-m20", None), "Es/N0 (dB)")]:
        if not any(r.scenario.startswith(prefix) for r in rows):
            continue
        if reference[1] is None:
            reference = (reference[0], next(r.ecc for r in rows if r.scenario == reference[0]
                                            and r.ecc.startswith("ldpc")))
        table, series = rcc_section(rows, prefix, reference)
        out += [f"### Robust Turbo-DDCM, {prefix.split('-')[1].upper()}", "", table, "",
                paired_gaps(rows, prefix), ""]
        panels_rcc.append((f"Robust Turbo-DDCM at equal bandwidth ({prefix})", xlabel, series))
    for scenario, budget, xlabel in [("jpeg-bsc", args.jpeg_budget_bsc, "BER"),
                                     ("jpeg-bsc-progressive", args.jpeg_budget_bsc, "BER"),
                                     ("jpeg-awgn", args.jpeg_budget_awgn, "Es/N0 (dB)")]:
        if not any(r.scenario == scenario for r in rows):
            continue
        table, series = jpeg_section(rows, scenario, budget)
        out += [f"### {scenario} at {budget:g} channel bpp", "", table, ""]
        panels_jpeg.append((f"{scenario} at {budget:g} channel bpp", xlabel, series))
    if args.question:
        out += ["### Robust Turbo-DDCM's loss at BER 1e-3", "",
                question_section(read_results(args.question / "results.csv")), ""]
    print("\n".join(out))
    if args.plots:
        args.plots.mkdir(parents=True, exist_ok=True)
        if panels_rcc:
            figure(panels_rcc, args.plots / "resilience-rcc.png")
        if panels_jpeg:
            figure(panels_jpeg, args.plots / "resilience-jpeg.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
