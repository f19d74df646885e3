"""The command line: every command a thin layer over the library.

Expected problems (a bad scenario, an unknown component) print one line and exit with code 2;
no traceback.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn
from rich.table import Table

from noisylink.errors import NoisylinkError

app = typer.Typer(
    name="noisylink",
    help="Simulate image links over noisy channels: codecs, ECC, modulation, channels.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console() if sys.stdout.isatty() else Console(width=160)
errors = Console(stderr=True)

PROGRESS_AFTER_S = 2.0


def fail(message: str, code: int = 2) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


class LazyProgress:
    """A progress bar that appears only once a run has lasted a couple of seconds."""

    def __init__(self, description: str):
        self.description = description
        self.started = time.perf_counter()
        self.progress: Progress | None = None
        self.task = None

    def update(self, done: int, total: int) -> None:
        if self.progress is None:
            if time.perf_counter() - self.started < PROGRESS_AFTER_S or done >= total:
                return
            self.progress = Progress(
                "[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                TimeRemainingColumn(), console=errors, transient=True,
            )
            self.progress.start()
            self.task = self.progress.add_task(self.description, total=total)
        self.progress.update(self.task, completed=done)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()


@app.command()
def run(
    scenario: Annotated[str, typer.Argument(help="Scenario file, or the name of a built-in.")],
    out: Annotated[
        Path | None, typer.Option(help="Output folder (default: noisylink-out/<scenario name>).")
    ] = None,
) -> None:
    """Run a scenario: write results.csv and manifest.json, print a summary per cell."""
    from noisylink.link.results import summarize
    from noisylink.link.runner import run_scenario
    from noisylink.scenarios import load_scenario

    try:
        loaded, source = load_scenario(scenario)
        out_dir = out or Path("noisylink-out") / loaded.name
        progress = LazyProgress(loaded.name)
        try:
            outcome = run_scenario(loaded, out_dir, source=source, on_progress=progress.update)
        finally:
            progress.close()
    except NoisylinkError as exc:
        raise fail(str(exc)) from None
    except KeyboardInterrupt:
        raise fail("interrupted; rows finished so far are in results.csv", code=130) from None

    table = Table(title=f"{loaded.name}: mean ± 95 % interval per cell", show_lines=False)
    for header in ("cell", "n", "bpp channel", "raw BER", "post BER", "PSNR dB", "SSIM",
                   "corrupted"):
        table.add_column(header, justify="left" if header == "cell" else "right")
    for summary in summarize(outcome.plan.cells, outcome.rows):
        table.add_row(
            summary.label, str(summary.rows), str(summary.bpp_channel), str(summary.raw_ber),
            str(summary.post_ber), str(summary.psnr), str(summary.ssim),
            f"{summary.corruption_rate:.0%}",
        )
    console.print(table)
    console.print(
        f"{len(outcome.rows)} rows in {outcome.wall_s:.1f} s -> {outcome.results_path}",
        highlight=False,
    )


@app.command()
def scenarios() -> None:
    """List the built-in scenarios."""
    from noisylink.scenarios import builtin_names, load_scenario

    table = Table(title="built-in scenarios (run with: noisylink run NAME)")
    table.add_column("name")
    table.add_column("description")
    for name in builtin_names():
        scenario, _ = load_scenario(name)
        table.add_row(name, scenario.description)
    console.print(table)


@app.command()
def check(
    scenario: Annotated[str, typer.Argument(help="Scenario file, or the name of a built-in.")],
) -> None:
    """Validate a scenario and list the cells of its grid, without running it."""
    from noisylink.scenarios import expand, load_scenario

    try:
        loaded, source = load_scenario(scenario)
        cells = expand(loaded)
    except NoisylinkError as exc:
        raise fail(str(exc)) from None
    console.print(f"{source}: {len(cells)} cells, {loaded.trials} trials each", highlight=False)
    for index, cell in enumerate(cells):
        console.print(f"  {index:3d}  {cell.label}", highlight=False, markup=False)


@app.command("train-prior")
def train_prior(
    data: Annotated[
        list[Path], typer.Option(help="Folder of training images (repeat for several).")
    ],
    out: Annotated[Path, typer.Option(help="Folder to write the diffusers-format prior to.")],
    work_dir: Annotated[
        Path, typer.Option(help="Checkpoints; a run resumes from here.")
    ] = Path("noisylink-out/train-prior"),
    steps: Annotated[int, typer.Option(help="Optimizer steps in all.")] = 20_000,
    crop: Annotated[int, typer.Option(help="Side of the random training crops.")] = 64,
    batch: Annotated[int, typer.Option(help="Crops per optimizer step.")] = 16,
    max_minutes: Annotated[
        float | None, typer.Option(help="Stop (and export) after this long.")
    ] = None,
    threads: Annotated[int | None, typer.Option(help="CPU threads for torch.")] = None,
) -> None:
    """Train the pixel-space diffusion prior the RCC codecs use (ε-prediction DDPM)."""
    from noisylink.codecs.rcc.training import PriorRecipe
    from noisylink.codecs.rcc.training import train_prior as run_training

    try:
        recipe = PriorRecipe(steps=steps, crop=crop, batch=batch)
        run_training(recipe, data, work_dir, out, max_minutes=max_minutes, threads=threads,
                     log=lambda line: typer.echo(line, err=True))
    except NoisylinkError as exc:
        raise fail(str(exc)) from None


@app.command("eval-prior")
def eval_prior(
    data: Annotated[Path, typer.Option(help="Folder of evaluation images.")],
    model: Annotated[str, typer.Option(help="'bundled', a local folder or a hub id.")] = "bundled",
    timesteps: Annotated[str, typer.Option(help="Comma-separated timesteps.")] = "100,300,500,700",
    crop: Annotated[int, typer.Option(help="Center crop side (a multiple of 8).")] = 256,
) -> None:
    """Denoising quality of a pixel prior: mean PSNR of its one-step x̂0 at each timestep."""
    from noisylink.codecs.rcc.backbone import load_backbone
    from noisylink.codecs.rcc.training import load_eval_images, x0_psnr

    try:
        steps = [int(t) for t in timesteps.split(",")]
        backbone = load_backbone(model)
        pictures = load_eval_images(data, crop)
        result = x0_psnr(backbone, pictures, steps)
    except ValueError as exc:
        raise fail(f"--timesteps: {exc}") from None
    except NoisylinkError as exc:
        raise fail(str(exc)) from None
    typer.echo(f"x0 PSNR of {model} on {len(pictures)} images from {data} ({crop}x{crop} crops)")
    for t, value in result.items():
        typer.echo(f"t={t}: {value:.2f} dB")


def main() -> None:  # pragma: no cover - console entry for `python -m noisylink`
    sys.exit(app())
