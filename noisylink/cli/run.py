"""``noisylink run``: a scenario end to end, in this process or as three MQTT processes."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from noisylink.cli.common import Force, LazyProgress, ScenarioArgument, check_run_out, console, fail
from noisylink.cli.mqtt_options import (
    AllowAnonymous,
    CaFile,
    KeyFile,
    MqttOptions,
    Password,
    Timeout,
    Username,
)
from noisylink.errors import NoisylinkError

app = typer.Typer()


@app.command()
def run(
    scenario: ScenarioArgument,
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
    force: Force = False,
) -> None:
    """Run a scenario: write results.csv and manifest.json, print a summary per cell.

    An --out folder that already holds results is refused unless --force."""
    from noisylink.link.runner import IncompleteRunError, run_scenario
    from noisylink.results.file import read_results
    from noisylink.results.summary import summarize
    from noisylink.scenarios import expand, load_scenario

    if transport not in ("inprocess", "mqtt"):
        raise fail(f"--transport must be inprocess or mqtt, got {transport!r}")
    started = time.perf_counter()
    try:
        loaded, source = load_scenario(scenario)
        out_dir = out or Path("noisylink-out") / loaded.name
        check_run_out(out_dir, force)
        if transport == "mqtt":
            from noisylink.transport.multiprocess import RoleFailed, run_over_mqtt
            from noisylink.transport.session import load_key

            link = None if broker is None else MqttOptions(
                broker, username, password, ca_file, allow_anonymous=allow_anonymous).connect()
            load_key(key_file)  # a bad key is the parent's one-line error, not three
            try:
                run_over_mqtt(scenario, loaded.name, out_dir, link, timeout, key_file=key_file)
            except RoleFailed as exc:  # the role's own line, which names the role
                raise fail(str(exc),
                           code=exc.code if exc.code in (1, 2) else 1) from None
            results_path = out_dir / "results.csv"
            cells, rows = expand(loaded), read_results(results_path)
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
