"""Showing a design's answer: the printed table and the figure of the best quality reachable
at each channel point, with the winner named and the runner-up beside it."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

from rich.table import Table

from noisylink.design.run import Answer
from noisylink.design.schema import Design
from noisylink.errors import NoisylinkError

METRIC_NAMES = {"psnr": "PSNR (dB)", "ssim": "SSIM", "ms_ssim": "MS-SSIM"}
PROBABILITIES = ("ber", "mean_ber", "p", "p_gb")  # channel settings shown on a log axis


def _number(value: float, digits: int = 3) -> str:
    return "-" if math.isnan(value) else f"{value:.{digits}g}"


def _objective(design: Design) -> str:
    statistic = "mean" if design.objective.statistic == "mean" else "10th percentile"
    return f"{statistic} {METRIC_NAMES[design.objective.metric]}"


def answer_table(design: Design, answers: Sequence[Answer], short: Mapping[str, str]) -> Table:
    """One line per channel point: the winner, its rate, its score and the runner-up
    (``short``: a shorter name for each results label)."""
    table = Table(title=f"{design.name}: best configuration within "
                        f"{design.budget.bpp_channel:g} channel bits per pixel "
                        f"({_objective(design)})")
    param = answers[0].channel_param if answers else "channel"
    for column in (param, "winner", "rate", "bpp", "score ± 95 %", "corrupted", "trials",
                   "runner-up", "margin"):
        table.add_column(column, no_wrap=column in (param, "rate", "bpp"))
    for answer in answers:
        if not answer.label:
            table.add_row(f"{answer.channel_value:g}", "none qualifies", *["-"] * 7)
            continue
        table.add_row(
            f"{answer.channel_value:g}", short.get(answer.label, answer.label),
            answer.codec_setting or "fixed",
            f"{answer.bpp_channel:.3f}",
            f"{answer.value:.4g} ± {_number(answer.ci95, 2)}",
            f"{answer.corruption:.1%}", str(answer.trials),
            short.get(answer.runner_up, answer.runner_up) or "-",
            _number(answer.margin_db),
        )
    return table


def write_figure(path: Path, design: Design, answers: Sequence[Answer],
                 short: Mapping[str, str]) -> Path:
    """The best score at each channel point (95 % interval as error bars) with the winner
    named beside it, and the runner-up's score and name in grey."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    answered = [a for a in answers if a.label]
    figure = Figure(figsize=(8.0, 4.8), layout="constrained")
    FigureCanvasAgg(figure)
    ax = figure.add_subplot()
    xs = [a.channel_value for a in answered]
    ax.errorbar(xs, [a.value for a in answered],
                yerr=[0 if math.isnan(a.ci95) else a.ci95 for a in answered],
                marker="o", color="tab:blue", capsize=3, label="winner (95 % interval)")
    runners = [a for a in answered if a.runner_up]
    ax.plot([a.channel_value for a in runners], [a.runner_up_value for a in runners],
            ls="", marker="x", color="tab:orange", label="runner-up")
    for answer in answered:
        ax.annotate(short.get(answer.label, answer.label).replace(" | ", "\n"),
                    (answer.channel_value, answer.value), textcoords="offset points",
                    xytext=(6, 4), fontsize=7, va="bottom")
    for answer in runners:
        ax.annotate(short.get(answer.runner_up, answer.runner_up).replace(" | ", "\n"),
                    (answer.channel_value, answer.runner_up_value), textcoords="offset points",
                    xytext=(6, -4), fontsize=6, va="top", color="0.45")
    for answer in answers:
        if not answer.label:
            ax.axvline(answer.channel_value, color="0.8", lw=1, ls=":")
    param = answers[0].channel_param if answers else ""
    ax.set_xlabel(param or "channel point")
    ax.set_ylabel(f"{_objective(design)}")
    ax.set_title(f"{design.name}: best within {design.budget.bpp_channel:g} channel bpp",
                 fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    every = [a.channel_value for a in answers]
    if every and param in PROBABILITIES and min(every) > 0:
        ax.set_xscale("log")
        ax.set_xlim(min(every) / 1.5, max(every) * 4)
    elif every:
        span = max(every) - min(every) or 1.0
        ax.set_xlim(min(every) - 0.05 * span, max(every) + 0.3 * span)
    try:
        figure.savefig(path, dpi=120)
    except OSError as exc:
        raise NoisylinkError(f"{path}: cannot write ({exc.strerror or exc})") from None
    return path
