"""The command line: every command a thin layer over the library.

Expected problems (a bad scenario, an unknown component) print one line and exit with code 2;
no traceback.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn
from rich.table import Table

from noisylink.errors import NoisylinkError, ScenarioError

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


BrokerUrl = Annotated[str, typer.Option("--broker", help="mqtt://host:port or mqtts://host:port.")]
Username = Annotated[str | None, typer.Option(
    help="Broker username (or NOISYLINK_MQTT_USERNAME).", show_default=False)]
Password = Annotated[str | None, typer.Option(
    help="Broker password (better: NOISYLINK_MQTT_PASSWORD; never printed).",
    show_default=False)]
CaFile = Annotated[Path | None, typer.Option(
    help="CA certificate for mqtts:// (or NOISYLINK_MQTT_CA_FILE).", show_default=False)]
RunId = Annotated[str | None, typer.Option(
    help="Run id shared by the three roles (default: the scenario name).", show_default=False)]
Timeout = Annotated[float, typer.Option(
    help="Give up after this many seconds without the broker or a peer role.")]
AllowAnonymous = Annotated[bool, typer.Option(
    help="Connect without credentials to a broker that is not on this machine.")]
RunToken = Annotated[str | None, typer.Option(
    help="The run's token (hex), when the roles are told it (default: the receiver makes one "
         "and announces it, the others join it).", show_default=False)]
KeyFile = Annotated[Path | None, typer.Option(
    help="Shared key: every message is signed and checked (or NOISYLINK_MQTT_KEY). Use it on "
         "a broker shared with people you do not fully trust.", show_default=False)]


def _access(run_id: str, token: str | None, key_file: Path | None, timeout: float):
    """How a role finds its run on the broker (one-line errors for a bad token or key)."""
    from noisylink.transport.roles import RunAccess
    from noisylink.transport.session import load_key, parse_token

    return RunAccess(run_id, parse_token(token) if token else None, load_key(key_file), timeout)


def _broker(url: str, username: str | None, password: str | None, ca_file: Path | None,
            allow_anonymous: bool):
    from noisylink.transport.mqtt import Broker

    broker = Broker.from_url(url, username, password, ca_file)
    broker.check_security(allow_anonymous)
    return broker


def _run_role(scenario: str, role: str, body) -> None:
    """Load the scenario and run one MQTT role, turning expected failures into one line."""
    import asyncio

    from noisylink.link.runner import IncompleteRunError
    from noisylink.scenarios import load_scenario
    from noisylink.transport.mqtt import CredentialsError
    from noisylink.transport.session import RunClashError

    try:
        loaded, source = load_scenario(scenario)
        result = body(loaded, source)
        if asyncio.iscoroutine(result):
            asyncio.run(result)
    except (CredentialsError, RunClashError) as exc:
        raise fail(str(exc), code=2) from None
    except IncompleteRunError as exc:
        raise fail(f"{role}: {exc}", code=1) from None
    except ScenarioError as exc:
        raise fail(str(exc), code=2) from None
    except NoisylinkError as exc:
        raise fail(f"{role}: {exc}", code=1) from None
    except KeyboardInterrupt:
        raise fail(f"{role}: interrupted", code=130) from None


def _check_run_out(out_dir: Path, force: bool) -> None:
    """A writable --out for ``run`` that holds no results, unless ``force``."""
    from noisylink.outdir import prepare_out_dir

    prepare_out_dir(out_dir, "output folder")
    _refuse_existing_results(out_dir, force)


def _refuse_existing_results(out_dir: Path, force: bool) -> None:
    """Results already in ``out_dir`` are never overwritten silently."""
    results = out_dir / "results.csv"
    if not results.exists():
        return
    if not results.is_file():
        raise NoisylinkError(f"{results}: not a file")
    try:
        with results.open("rb") as handle:
            handle.readline()  # the header
            holds_rows = bool(handle.readline().strip())
    except OSError as exc:
        raise NoisylinkError(f"{results}: cannot read ({exc.strerror})") from None
    if holds_rows and not force:
        raise NoisylinkError(f"{out_dir} already holds results (results.csv); use another --out, "
                             "or --force to overwrite them")
    if not os.access(results, os.W_OK):
        raise NoisylinkError(f"{results}: not writable")


@app.command()
def run(
    scenario: Annotated[str, typer.Argument(help="Scenario file, or the name of a built-in.")],
    out: Annotated[
        Path | None, typer.Option(help="Output folder (default: noisylink-out/<scenario name>).")
    ] = None,
    transport: Annotated[
        str, typer.Option(help="inprocess, or mqtt: the three roles as processes and a broker.")
    ] = "inprocess",
    broker: Annotated[str | None, typer.Option(
        help="mqtt: broker URL (default: start mosquitto, else amqtt, on loopback).",
        show_default=False)] = None,
    username: Username = None, password: Password = None, ca_file: CaFile = None,
    timeout: Timeout = 60.0, allow_anonymous: AllowAnonymous = False, key_file: KeyFile = None,
    force: Annotated[bool, typer.Option(
        "--force", help="Overwrite the results an --out folder already holds.")] = False,
) -> None:
    """Run a scenario: write results.csv and manifest.json, print a summary per cell.

    An --out folder that already holds results is refused unless --force."""
    from noisylink.link.results import read_rows, summarize
    from noisylink.link.runner import IncompleteRunError, run_scenario
    from noisylink.scenarios import expand, load_scenario

    if transport not in ("inprocess", "mqtt"):
        raise fail(f"--transport must be inprocess or mqtt, got {transport!r}")
    started = time.perf_counter()
    try:
        loaded, source = load_scenario(scenario)
        out_dir = out or Path("noisylink-out") / loaded.name
        _check_run_out(out_dir, force)
        if transport == "mqtt":
            from noisylink.transport.multiprocess import RoleFailed, run_over_mqtt
            from noisylink.transport.session import load_key

            link = None if broker is None else _broker(broker, username, password, ca_file,
                                                        allow_anonymous)
            load_key(key_file)  # a bad key is the parent's one-line error, not three
            try:
                run_over_mqtt(scenario, loaded.name, out_dir, link, timeout, key_file=key_file)
            except RoleFailed as exc:  # the role's own line, which names the role
                raise fail(str(exc),
                           code=exc.code if exc.code in (1, 2) else 1) from None
            results_path = out_dir / "results.csv"
            cells, rows = expand(loaded), read_rows(results_path)
        else:
            progress = LazyProgress(loaded.name)
            try:
                outcome = run_scenario(loaded, out_dir, source=source,
                                       on_progress=progress.update)
            finally:
                progress.close()
            results_path, cells, rows = outcome.results_path, outcome.plan.cells, outcome.rows
    except IncompleteRunError as exc:
        raise fail(str(exc), code=1) from None
    except NoisylinkError as exc:
        raise fail(str(exc)) from None
    except KeyboardInterrupt:
        raise fail("interrupted; rows finished so far are in results.csv", code=130) from None

    table = Table(title=f"{loaded.name}: mean ± 95 % interval per cell", show_lines=False)
    for header in ("cell", "n", "bpp channel", "raw BER", "post BER", "PSNR dB", "SSIM",
                   "corrupted"):
        table.add_column(header, justify="left" if header == "cell" else "right")
    for summary in summarize(cells, rows):
        table.add_row(
            summary.label, str(summary.rows), str(summary.bpp_channel), str(summary.raw_ber),
            str(summary.post_ber), str(summary.psnr), str(summary.ssim),
            f"{summary.corruption_rate:.0%}",
        )
    console.print(table)
    console.print(
        f"{len(rows)} rows in {time.perf_counter() - started:.1f} s -> {results_path}",
        highlight=False,
    )


def _network_role(scenario: str, role: str, runner, broker: str, username: str | None,
                  password: str | None, ca_file: Path | None, run_id: str | None,
                  run_token: str | None, key_file: Path | None, timeout: float,
                  allow_anonymous: bool) -> None:
    """Run the transmitter or channel role (``runner``) for a scenario over MQTT."""

    def body(loaded, _source):
        link = _broker(broker, username, password, ca_file, allow_anonymous)
        return runner(loaded, link, _access(run_id or loaded.name, run_token, key_file, timeout))

    _run_role(scenario, role, body)


@app.command()
def tx(
    scenario: Annotated[str, typer.Argument(help="Scenario file, or the name of a built-in.")],
    broker: BrokerUrl, username: Username = None, password: Password = None,
    ca_file: CaFile = None, run_id: RunId = None, run_token: RunToken = None,
    key_file: KeyFile = None, timeout: Timeout = 60.0, allow_anonymous: AllowAnonymous = False,
) -> None:
    """The transmitter role: encode, packetize, protect and send frames to the broker."""
    from noisylink.transport.roles import run_transmitter

    _network_role(scenario, "transmitter", run_transmitter, broker, username, password,
                  ca_file, run_id, run_token, key_file, timeout, allow_anonymous)


@app.command("channel")
def channel_role(
    scenario: Annotated[str, typer.Argument(help="Scenario file, or the name of a built-in.")],
    broker: BrokerUrl, username: Username = None, password: Password = None,
    ca_file: CaFile = None, run_id: RunId = None, run_token: RunToken = None,
    key_file: KeyFile = None, timeout: Timeout = 60.0, allow_anonymous: AllowAnonymous = False,
) -> None:
    """The channel role: corrupt the transmitter's frames and pass them to the receiver."""
    from noisylink.transport.roles import run_channel

    _network_role(scenario, "channel", run_channel, broker, username, password, ca_file,
                  run_id, run_token, key_file, timeout, allow_anonymous)


@app.command()
def rx(
    scenario: Annotated[str, typer.Argument(help="Scenario file, or the name of a built-in.")],
    broker: BrokerUrl,
    out: Annotated[Path, typer.Option(help="Output folder for results.csv and manifest.json.")],
    username: Username = None, password: Password = None, ca_file: CaFile = None,
    run_id: RunId = None, run_token: RunToken = None, key_file: KeyFile = None,
    timeout: Timeout = 60.0, allow_anonymous: AllowAnonymous = False,
    force: Annotated[bool, typer.Option(
        "--force", help="Overwrite the results an --out folder already holds.")] = False,
) -> None:
    """The receiver role: demodulate, decode ECC and images, write results.csv (an --out
    folder that already holds results is refused unless --force)."""
    from noisylink.outdir import check_out_dir
    from noisylink.transport.roles import run_receiver

    try:
        check_out_dir(out, "output folder")
        _refuse_existing_results(out, force)
    except NoisylinkError as exc:
        raise fail(str(exc)) from None

    def body(loaded, source):
        link = _broker(broker, username, password, ca_file, allow_anonymous)
        access = _access(run_id or loaded.name, run_token, key_file, timeout)
        outcome = run_receiver(loaded, link, access, out, source)
        console.print(f"{len(outcome.rows)} rows in {outcome.wall_s:.1f} s -> "
                      f"{outcome.results_path}", highlight=False)

    _run_role(scenario, "receiver", body)


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


@app.command()
def sweep(
    study: Annotated[str, typer.Argument(help="Study file, scenario file, or a built-in name.")],
    out: Annotated[Path, typer.Option(help="Output folder; run again to resume.")],
    engine: Annotated[str, typer.Option(help="local (process pool) or ray.")] = "local",
    workers: Annotated[
        int | None, typer.Option(help="Local worker processes (default: CPU count).")
    ] = None,
    address: Annotated[
        str | None, typer.Option(help="Ray: address of an existing cluster (default: local).")
    ] = None,
    images: Annotated[int | None, typer.Option(help="Images per scenario (scale).")] = None,
    size: Annotated[int | None, typer.Option(help="Image side in pixels (scale).")] = None,
    trials: Annotated[int | None, typer.Option(help="Trials per image (scale).")] = None,
    fresh: Annotated[bool, typer.Option(
        "--fresh", help="Start over: move the folder's results to OUT/replaced-<time>/.")] = False,
) -> None:
    """Run a study cell by cell; rows are appended as they finish, and a rerun resumes.

    A folder holding results of a different study (other seed, image shaping, frames or
    noisylink version) is refused; --fresh moves them aside and starts over."""
    import pydantic
    from rich.progress import TextColumn

    from noisylink.registry import scenario_error_from
    from noisylink.sweeps.study import Scale, load_study
    from noisylink.sweeps.sweep import SweepProgress, run_sweep

    if engine not in ("local", "ray"):
        raise fail(f"--engine must be local or ray, got {engine!r}")
    try:
        scale = Scale(images=images, size=size, trials=trials)
    except pydantic.ValidationError as exc:
        error = scenario_error_from(exc)
        raise fail(f"--{error.field}: {error.message}") from None
    progress = Progress(
        "[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
        TextColumn("rows"), TextColumn("{task.fields[cells]}"), TimeRemainingColumn(),
        console=errors, transient=False,
    )
    task_id = None

    def on_progress(state: SweepProgress) -> None:
        nonlocal task_id
        cells = f"cells {state.cells_done}/{state.cells_total}"
        if task_id is None:  # started here, so that a refusal before any work prints one line
            progress.start()
            task_id = progress.add_task(loaded.name, total=state.rows_total, cells=cells,
                                        completed=state.rows_done)
        progress.update(task_id, completed=state.rows_done, cells=cells)

    try:
        loaded = load_study(study, scale)
        try:
            outcome = run_sweep(loaded, out, engine=engine, workers=workers,  # type: ignore[arg-type]
                                address=address, on_progress=on_progress, fresh=fresh)
        finally:
            if task_id is not None:
                progress.stop()
    except NoisylinkError as exc:
        raise fail(str(exc)) from None
    except KeyboardInterrupt:
        raise fail("interrupted; finished rows are in results.csv, run again to resume",
                   code=130) from None
    if outcome.set_aside is not None:
        console.print(f"earlier results moved to {outcome.set_aside}", highlight=False)
    console.print(
        f"{outcome.rows_run} rows run, {outcome.rows_skipped} already done, "
        f"{outcome.rows_total} in all, in {outcome.wall_s:.1f} s -> {outcome.results_path}",
        highlight=False,
    )
    for failure in outcome.failures:
        errors.print(f"error: {failure.task.scenario.name} cell {failure.task.cell}: "
                     f"{failure.message}", highlight=False, markup=False)
    if outcome.failures:
        raise typer.Exit(1)


@app.command()
def plot(
    run_dir: Annotated[Path, typer.Argument(help="A run or sweep folder with results.csv.")],
) -> None:
    """Write PNG plots of a results folder to RUN_DIR/plots/."""
    from noisylink.plots import write_plots

    try:
        written = write_plots(run_dir)
    except NoisylinkError as exc:
        raise fail(str(exc)) from None
    for path in written:
        console.print(str(path), highlight=False, markup=False)


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
    from noisylink.outdir import check_out_dir

    try:
        recipe = PriorRecipe(steps=steps, crop=crop, batch=batch)
        check_out_dir(out, "prior folder (--out)")
        check_out_dir(work_dir, "work folder (--work-dir)")
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


@app.command("train-jscc")
def train_jscc(
    method: Annotated[str, typer.Option(help="necst or iabf.")],
    eps: Annotated[float, typer.Option(help="BSC flip probability to train for (0 < ε < 0.5).")],
    data: Annotated[Path, typer.Option(help="MNIST in keras layout (mnist.npz).")] = Path(
        "../shared/data/mnist/mnist.npz"
    ),
    out: Annotated[
        Path | None, typer.Option(help="Model folder (default noisylink-out/jscc/METHOD-epsE).")
    ] = None,
    epochs: Annotated[int, typer.Option(help="Most epochs over the 50k training digits.")] = 200,
    patience: Annotated[int, typer.Option(help="Stop after this many epochs without a better "
                                                "validation L2.")] = 20,
    estimator: Annotated[str, typer.Option(help="rloo or vimco.")] = "rloo",
    info_weight: Annotated[float, typer.Option(help="IABF's λ for the infomax term.")] = 0.001,
    adversarial: Annotated[
        str, typer.Option(help="IABF: 'regularize' (NECST loss + adversarial term) or 'replace'.")
    ] = "regularize",
    adversarial_weight: Annotated[
        float, typer.Option(help="IABF with regularize: weight of the adversarial term.")
    ] = 0.1,
    seed: Annotated[int, typer.Option(help="Seed for initialisation and sampling.")] = 0,
    max_minutes: Annotated[
        float | None, typer.Option(help="Stop after the epoch that passes this time.")
    ] = None,
    threads: Annotated[int | None, typer.Option(help="CPU threads for torch.")] = None,
) -> None:
    """Train NECST or IABF on MNIST (100 bits); keeps the model with the best validation L2."""
    from noisylink.codecs.jscc.training import Recipe, load_mnist
    from noisylink.codecs.jscc.training import train_jscc as run_training
    from noisylink.codecs.jscc.weights import model_dir
    from noisylink.outdir import prepare_out_dir

    try:
        recipe = Recipe(method=method, eps=eps, epochs=epochs, patience=patience,  # type: ignore[arg-type]
                        estimator=estimator, info_weight=info_weight, seed=seed,  # type: ignore[arg-type]
                        adversarial=adversarial, adversarial_weight=adversarial_weight)  # type: ignore[arg-type]
        split = load_mnist(data)
        target = prepare_out_dir(out or model_dir("noisylink-out/jscc", method, eps),
                                 "model folder (--out)")
        if threads is not None:
            import torch

            torch.set_num_threads(threads)
        report = run_training(recipe, split, target, max_minutes=max_minutes,
                              log=lambda line: typer.echo(line, err=True))
    except NoisylinkError as exc:
        raise fail(str(exc)) from None
    typer.echo(f"best validation L2 {report.best_validation_l2:.3f} at epoch {report.best_epoch} "
               f"of {report.epochs_run}; {report.seconds / 60:.1f} min")


@app.command("eval-jscc")
def eval_jscc(
    data: Annotated[Path, typer.Option(help="MNIST in keras layout (mnist.npz).")] = Path(
        "../shared/data/mnist/mnist.npz"
    ),
    weights: Annotated[
        str, typer.Option(help="'bundled' or a folder holding METHOD-epsE model folders.")
    ] = "bundled",
    seed: Annotated[int, typer.Option(help="Seed of the bit sampling and the channel.")] = 0,
) -> None:
    """Score the NECST and IABF models on the MNIST test set (the IABF paper's Table 1)."""
    from noisylink.codecs.jscc.evaluation import TOLERANCE, evaluate_models, iabf_at_or_below_necst
    from noisylink.codecs.jscc.training import load_mnist

    try:
        scores = evaluate_models(weights, load_mnist(data).test, seed=seed)
    except NoisylinkError as exc:
        raise fail(str(exc)) from None
    typer.echo("method,eps,l2")
    for score in scores:
        typer.echo(f"{score.method},{score.eps:g},{score.l2:.3f}")
    table = Table(title="MNIST test set, 100 bits: mean per-image squared error (lower is better)")
    for header in ("method", "eps", "ours", "paper", "gap", f"within {TOLERANCE:.0%}",
                   "kept epoch", "training min"):
        table.add_column(header, justify="right")
    for score in scores:
        gap = score.relative_gap
        table.add_row(
            score.method, f"{score.eps:g}", f"{score.l2:.3f}",
            "" if score.paper is None else f"{score.paper:.3f}",
            "" if gap is None else f"{gap:+.1%}",
            "" if gap is None else ("yes" if abs(gap) <= TOLERANCE else "no"),
            "" if score.epoch is None else str(score.epoch),
            "" if score.train_minutes is None else f"{score.train_minutes:.1f}",
        )
    console.print(table)
    for eps, ok in iabf_at_or_below_necst(scores).items():
        console.print(f"eps={eps:g}: IABF {'at or below' if ok else 'above'} NECST",
                      highlight=False)


@app.command("export-digits")
def export_digits(
    data: Annotated[Path, typer.Option(help="MNIST in keras layout (mnist.npz).")] = Path(
        "../shared/data/mnist/mnist.npz"
    ),
    count: Annotated[int, typer.Option(help="How many test digits, from the first.")] = 300,
    out: Annotated[Path | None, typer.Option(help="npz to write (default: the package's).")] = None,
) -> None:
    """Write the first COUNT MNIST test digits as the built-in ``digits`` image source."""
    import numpy as np

    from noisylink.images import DIGITS_FILE
    from noisylink.outdir import prepare_out_file

    target = out or DIGITS_FILE
    try:
        with np.load(data) as mnist:
            digits, labels = mnist["x_test"][:count], mnist["y_test"][:count]
    except (OSError, ValueError, KeyError) as exc:
        raise fail(f"{data}: cannot read MNIST ({exc})") from None
    try:
        prepare_out_file(target, "digits file (--out)")
        np.savez_compressed(target, digits=digits.astype(np.uint8), labels=labels.astype(np.uint8))
    except NoisylinkError as exc:
        raise fail(str(exc)) from None
    except OSError as exc:
        raise fail(f"{target}: cannot write ({exc.strerror or exc})") from None
    typer.echo(f"{len(digits)} digits -> {target}")


def main() -> None:  # pragma: no cover - console entry for `python -m noisylink`
    sys.exit(app())
